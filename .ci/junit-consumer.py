"""Our JUnit files as a real consumer reads them: junitparser (PyPI), the parser many CI
tools and scripts use. Runs lowtouch on a small project with a flaky and a failing
scenario (both retried) and checks what the consumer sees: counts, statuses, the
Surefire rerun elements, lowtouch's suite properties and the testcase output.

Usage: python3 .ci/junit-consumer.py LOWTOUCH_BINARY
"""

import os
import subprocess
import sys
import tempfile

from junitparser import Failure, JUnitXml

ENV = """variables: {}
aliases:
  count:
    shell: 'f="$LOWTOUCH_PROJECT_DIR/count-$1"; n=$(($(cat "$f" 2>/dev/null || echo 0) + 1)); echo $n > "$f"; echo $n'
"""


def main(lowtouch: str) -> None:
    with tempfile.TemporaryDirectory() as project:
        def write(path: str, text: str) -> None:
            full = os.path.join(project, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as f:
                f.write(text)

        write("environments/local.yaml", ENV)
        write(
            "pipelines/retry.yaml",
            "environment: local\nscenarios:\n"
            "  - { path: r/lucky.scn, retries: 2 }\n"
            "  - { path: r/doomed.scn, retries: 1 }\n"
            "  - r/steady.scn\n",
        )
        write("pipelines/r/lucky.scn", 'set n count lucky\nassert #{n} >= 2 "second time lucky"\n')
        write("pipelines/r/doomed.scn", "echo never\nexit 1\n")
        write("pipelines/r/steady.scn", "echo steady\n")
        run = subprocess.run(
            [lowtouch, "-C", project, "run", "retry"], capture_output=True, text=True
        )
        assert run.returncode == 1, f"exit {run.returncode}\n{run.stderr}"

        report = JUnitXml.fromfile(os.path.join(project, "reports/junit.xml"))
        suites = list(report)
        # The scenarios' suite, then the judge's (its verdict as properties; no testcase
        # while there is no history to judge against).
        assert [s.name for s in suites] == ["retry.local", "lowtouch.judge"], [
            s.name for s in suites
        ]
        judge = {p.name: p.value for p in suites[1].properties()}
        assert judge["lowtouch.judge.outcome"] == "NOT ENOUGH HISTORY", judge
        assert suites[1].tests == 0, suites[1].tests
        suite = suites[0]
        assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (3, 1, 0, 0), (
            suite.tests, suite.failures, suite.errors, suite.skipped
        )
        props = {p.name: p.value for p in suite.properties()}
        assert props["lowtouch.compared_with"] == "none", props
        assert props["lowtouch.change.lucky"] == "new", props

        cases = {c.name: c for c in suite}
        assert set(cases) == {"lucky", "doomed", "steady"}, set(cases)
        lucky, doomed, steady = cases["lucky"], cases["doomed"], cases["steady"]
        # Flaky: passed, the failed attempt kept as Surefire's flakyFailure.
        assert lucky.is_passed, lucky.result
        assert [c.tag for c in lucky._elem].count("flakyFailure") == 1
        # Failed every time: a failure, the earlier attempt as rerunFailure.
        assert [type(r) for r in doomed.result] == [Failure], doomed.result
        assert "exited with" in doomed.result[0].message, doomed.result[0].message
        assert [c.tag for c in doomed._elem].count("rerunFailure") == 1
        assert steady.is_passed and "steady" in (steady.system_out or "")
        assert (steady.system_out or "").startswith("lowtouch: new"), steady.system_out
    print(
        "junitparser reads lowtouch's JUnit: 3 cases, 1 failure, 1 flaky, reruns kept; "
        "the judge's suite and its verdict"
    )


if __name__ == "__main__":
    main(sys.argv[1])
