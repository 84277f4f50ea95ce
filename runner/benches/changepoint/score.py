#!/usr/bin/env python3
"""Exports otava-test-data's series with their ground truth and Apache Otava's change
points on each, for the `changepoint` bench to score against ours.

Installs nothing. Needs (from PyPI):

    pip install apache-otava otava-test-data

Usage:  python3 runner/benches/changepoint/score.py DIR
then:   cargo bench -p lowtouch --bench changepoint -- DIR

The series are those `otava-gen generate` writes with its defaults (lengths 50 and 500,
seed 42, noise sigmas 0, 2, 5, 10, pairwise combinations with sigma 5): built here with
the same generator call rather than read back from its CSVs, which round values. Otava
runs at its defaults (`otava analyze` with no options: window 50, p 0.001, magnitude 0),
on a Python list as its own `Series.analyze` passes one (given a numpy array, 0.8.0's
detector ignores the window bounds).

DIR/cases.json: {"otava_version", "data_version", "seed", "tolerance", "config",
"cases": [{"id", "name", "group", "noise", "values", "truth", "otava": [index...],
"otava_p": [p...], "otava_seconds"}]}.
"""

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

try:
    from otava.analysis import compute_change_points
    from otava.series import AnalysisOptions
    from otava_test_data.generators.combiner import CombinationGenerator
except ImportError as e:
    sys.exit(f"{e}: run `pip install apache-otava otava-test-data` first")

# `otava-gen generate`'s defaults (otava_test_data/cli.py).
LENGTHS = [50, 500]
SEED = 42
NOISE_LEVELS = [0.0, 2.0, 5.0, 10.0]
# The matching tolerance of otava-test-data's own evaluation
# (web/main.py `compute_accuracy_metrics`, "default: 5 indices").
TOLERANCE = 5


def group_of(name: str) -> str:
    """The building block a series comes from ("step_function", ...), or "combined" for
    the pairwise combinations."""
    if name.startswith("combine("):
        return "combined"
    return name.split("+")[0]


def noise_of(ts) -> float:
    p = ts.parameters
    if "noise_sigma" in p:
        return float(p["noise_sigma"])
    return 0.0


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)

    options = AnalysisOptions()  # Otava's defaults
    gen = CombinationGenerator(lengths=LENGTHS, seed=SEED)
    series = gen.generate_all_test_cases(include_combinations=True, noise_levels=NOISE_LEVELS)

    cases = []
    for i, ts in enumerate(series):
        values = [float(v) for v in ts.data]
        started = time.perf_counter()
        found, _weak = compute_change_points(
            list(values),
            window_len=options.window_len,
            max_pvalue=options.max_pvalue,
            min_magnitude=options.min_magnitude,
        )
        seconds = time.perf_counter() - started
        cases.append(
            {
                "id": i,
                "name": ts.generator_name,
                "group": group_of(ts.generator_name),
                "noise": noise_of(ts),
                "values": values,
                "truth": [int(x) for x in ts.get_change_point_indices()],
                "otava": [int(cp.index) for cp in found],
                "otava_p": [float(cp.stats.pvalue) for cp in found],
                "otava_seconds": seconds,
            }
        )

    doc = {
        "otava_version": version("apache-otava"),
        "data_version": version("otava-test-data"),
        "seed": SEED,
        "tolerance": TOLERANCE,
        "config": {
            "window": options.window_len,
            "max_pvalue": options.max_pvalue,
            "min_magnitude": options.min_magnitude,
        },
        "cases": cases,
    }
    (out / "cases.json").write_text(json.dumps(doc))
    points = sum(len(c["values"]) for c in cases)
    seconds = sum(c["otava_seconds"] for c in cases)
    print(
        f"{len(cases)} series ({points} points, {sum(len(c['truth']) for c in cases)} true "
        f"change points) from otava-test-data {doc['data_version']}; Otava "
        f"{doc['otava_version']} found {sum(len(c['otava']) for c in cases)} in {seconds:.2f} s "
        f"({points / seconds:,.0f} points/s) -> {out / 'cases.json'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
