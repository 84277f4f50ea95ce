//! Change points in a feature's series across candidates: the slow creep that no single
//! comparison with the baseline sees.
//!
//! The baseline comparison (`verdict`) asks "is this run unlike recent history?". A change
//! of +1 % per release never is: each candidate sits inside the noise of the ones just
//! before it, and they become the next baseline. Looking at the series of candidates as a
//! whole finds it once it adds up: some split of the series into "before" and "after"
//! makes the two sides differ by more than chance allows.
//!
//! This module owns that search, pure (numbers in, change points out). It is Apache
//! Otava's algorithm (Fleming et al., "Hunter: Using Change Point Detection to Hunt for
//! Performance Regressions", ICPE 2023), so its answers mean what Otava's mean:
//!
//! 1. Split: windows of `window` points, each advanced by half a window (or to the last
//!    point found), are cut by E-divisive means (Matteson & James 2014): the cut that
//!    maximises the energy statistic q̂ between the two sides, kept while Student's t
//!    between the segments it separates is significant at a relaxed level (10× `max_pvalue`
//!    below 0.05), then the next cut in whichever segment has the largest q̂. These are the
//!    "weak" points.
//! 2. Merge: the weak points, each tested (t) between its neighbours, are removed one at a
//!    time — the one with the largest p while any p is over `max_pvalue`, then the one
//!    with the smallest relative change while that is not over `min_magnitude` — and the
//!    neighbours of a removed point tested again.
//!
//! Otava tests significance with Student's t (equal variances, two-sided) between adjacent
//! segments, not the permutation test of the original E-divisive: it is deterministic and
//! works on a handful of points. Like Otava (`numpy.std`), the segments' standard
//! deviations are population ones (divided by n), then given to the t-test as if sample
//! ones; kept, so that p matches Otava's.
//!
//! Two deliberate differences, both in the merge. When a point is removed, its two
//! neighbours (whose segments now meet across it) are tested again; Otava 0.8.0 tests the
//! one after it and the one after that, so the one before keeps its old p and can survive
//! on it (on otava-test-data that keeps 6 false change points re-testing removes, one of
//! them with p 0.67 between its final segments, and loses one true one; BENCHMARKS.md).
//! And every point's reported statistics are computed again from its final neighbours. With Otava's merge
//! ([`change_points_as_otava_0_8`]) the points found and their p are Otava's on all 110
//! series of that data set.
//!
//! [`newest_shift`] is the judge's entry: the newest change point of the last window, so
//! judging a run costs one window's work, whatever the history's length; and, where the
//! history is longer than a window, the same on the window's worth of block means of the
//! whole series, so a drift too slow to show within one window is still found once it adds
//! up (a block mean's noise shrinks as its block grows; the drift does not).

use statrs::distribution::{ContinuousCDF, StudentsT};

/// How hard to look. The defaults are Otava's (`otava analyze` with no options).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Points analysed at once. Longer windows are less sensitive to noise but can
    /// dismiss a short-lived change; Otava's guidance is at most a few changes per window.
    pub window: usize,
    /// The largest p a change point may have (two-sided Student's t between the segments
    /// either side of it).
    pub max_pvalue: f64,
    /// The smallest relative change a change point may have (max of |after/before − 1|
    /// and |before/after − 1|); 0 keeps every significant one.
    pub min_magnitude: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: 50,
            max_pvalue: 0.001,
            min_magnitude: 0.0,
        }
    }
}

/// A point where the series' level changes: `index` is the first value of the later
/// segment; the segments run to the neighbouring change points (or the series' ends).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChangePoint {
    /// The first value after the change (never 0).
    pub index: usize,
    /// Two-sided Student's t p between the segments before and after.
    pub p: f64,
    pub mean_before: f64,
    pub mean_after: f64,
    /// Population standard deviations of the two segments (Otava's).
    pub stddev_before: f64,
    pub stddev_after: f64,
}

impl ChangePoint {
    /// `mean_after / mean_before − 1`; 0 when the mean before is 0 (Otava's convention).
    pub fn forward_change(&self) -> f64 {
        rel_change(self.mean_before, self.mean_after)
    }

    /// `mean_before / mean_after − 1`; 0 when the mean after is 0.
    pub fn backward_change(&self) -> f64 {
        rel_change(self.mean_after, self.mean_before)
    }

    /// The larger of the two relative changes in absolute value: what `min_magnitude` is
    /// compared with (symmetric, so a halving and a doubling weigh the same).
    pub fn magnitude(&self) -> f64 {
        self.forward_change()
            .abs()
            .max(self.backward_change().abs())
    }
}

fn rel_change(from: f64, to: f64) -> f64 {
    if from == 0.0 { 0.0 } else { to / from - 1.0 }
}

/// Every change point of `series` (oldest first), as Otava finds them, in index order.
///
/// Non-finite values are missing ones: filled with the value before (leading ones with
/// the first value after), as Otava fills a missing value. An empty, all-missing or
/// too-short series, or a window under 2, has none.
pub fn change_points(series: &[f64], config: &Config) -> Vec<ChangePoint> {
    let Some(values) = filled(series) else {
        return Vec::new();
    };
    // A window under 2 would not advance (Otava asserts it is at least 2).
    if config.window < 2 {
        return Vec::new();
    }
    let weak = split(&values, config);
    merge(&values, weak, config, false)
}

/// [`change_points`] with Otava 0.8.0's merge exactly, stale neighbour and stale p
/// reported: for the benchmark, to show that where the two differ, the merge is the only
/// cause.
#[doc(hidden)]
pub fn change_points_as_otava_0_8(series: &[f64], config: &Config) -> Vec<ChangePoint> {
    let Some(values) = filled(series) else {
        return Vec::new();
    };
    if config.window < 2 {
        return Vec::new();
    }
    let weak = split(&values, config);
    merge(&values, weak, config, true)
}

/// The newest change point of `series` (oldest first, the candidate's value last), if
/// the series has one: its later segment is the one this value ends.
///
/// Only the last `config.window` values are searched at full resolution, so judging each
/// new run costs O(window²) per feature however long the history (incremental in that
/// sense: nothing from earlier calls is needed, and nothing outside the window is
/// touched but once, below). When the series is longer than a window and that finds
/// nothing, the whole series is averaged into at most `window` equal blocks, aligned so
/// the last block ends with the newest value, and searched again: a drift of a few
/// percent spread over many more candidates than a window holds is found there, with
/// `index` the first value of the block where it shows. The means and deviations
/// reported are then of the raw values either side; `p` is the block means' test.
///
/// `index` may be well before the newest value: the change may have been found on an
/// earlier run already, and the caller decides what an old one means. `p` is Otava's, the
/// t-test's at the split the search chose as the best of about `n` (n − 1 splits):
/// smaller than chance alone gives, so 1 to 4 % of flat series of 10 to 60 candidates
/// have a shift (BENCHMARKS.md). A caller that corrects across features should correct
/// for the search too, e.g. multiply `p` by the splits (n − 1).
pub fn newest_shift(series: &[f64], config: &Config) -> Option<ChangePoint> {
    if config.window < 2 {
        return None;
    }
    let values = filled(series)?;
    let n = values.len();
    let window = config.window.min(n);
    let start = n - window;
    if let Some(cp) = change_points(&values[start..], config).last() {
        return Some(ChangePoint {
            index: cp.index + start,
            ..*cp
        });
    }
    if n <= config.window {
        return None;
    }
    // Coarse scale: `blocks` means of `size` values; the oldest `skip` values, fewer
    // than a block, are left out so every block weighs the same.
    let size = n.div_ceil(config.window);
    let blocks = n / size;
    let skip = n - blocks * size;
    let means: Vec<f64> = values[skip..]
        .chunks_exact(size)
        .map(|b| b.iter().sum::<f64>() / size as f64)
        .collect();
    let found = change_points(&means, config);
    let last = found.last()?;
    let before_start = match found.len() {
        1 => skip,
        k => skip + found[k - 2].index * size,
    };
    let index = skip + last.index * size;
    let (mean_before, stddev_before) = mean_std(&values[before_start..index]);
    let (mean_after, stddev_after) = mean_std(&values[index..]);
    Some(ChangePoint {
        index,
        p: last.p,
        mean_before,
        mean_after,
        stddev_before,
        stddev_after,
    })
}

/// The series with missing (non-finite) values filled as Otava's `fill_missing` does:
/// forward, then the leading ones backward. `None` when nothing is left to analyse.
fn filled(series: &[f64]) -> Option<Vec<f64>> {
    let first = series.iter().copied().find(|v| v.is_finite())?;
    let mut last = first;
    Some(
        series
            .iter()
            .map(|&v| {
                if v.is_finite() {
                    last = v;
                }
                last
            })
            .collect(),
    )
}

/// The split step: weak change points, sorted by index, with their statistics between
/// their weak neighbours.
fn split(values: &[f64], config: &Config) -> Vec<ChangePoint> {
    // Otava's relaxed first-pass level: points significant only at it are candidates the
    // merge may still keep once their neighbours are gone and their segments longer.
    let first_pass = if config.max_pvalue < 0.05 {
        config.max_pvalue * 10.0
    } else if config.max_pvalue < 0.5 {
        config.max_pvalue * 2.0
    } else {
        config.max_pvalue
    };
    let n = values.len();
    let step = config.window / 2;
    let mut start = 0;
    let mut weak: Vec<usize> = Vec::new();
    while start < n {
        let end = (start + config.window).min(n);
        let found = e_divisive(&values[start..end], first_pass);
        for i in found.iter().map(|i| i + start) {
            if !weak.contains(&i) {
                weak.push(i);
            }
        }
        // The next window starts at the newest point found (so what follows a change is
        // searched without the level before it), at least half a window on.
        let newest = found.last().map_or(0, |i| i + start);
        start = newest.max(start + step);
    }
    weak.sort_unstable();
    let mut cps: Vec<ChangePoint> = weak
        .into_iter()
        .map(|index| ChangePoint {
            index,
            p: 1.0,
            mean_before: 0.0,
            mean_after: 0.0,
            stddev_before: 0.0,
            stddev_after: 0.0,
        })
        .collect();
    for k in 0..cps.len() {
        retest(values, &mut cps, k);
    }
    cps
}

/// The merge step: weak points removed until every one left is significant at
/// `max_pvalue` and changes by more than `min_magnitude`.
fn merge(
    values: &[f64],
    mut cps: Vec<ChangePoint>,
    config: &Config,
    as_otava_0_8: bool,
) -> Vec<ChangePoint> {
    while !cps.is_empty() {
        // The weakest: the largest p (the first of equals, and a NaN p first in line
        // stays the largest, as Python's `max` has it), else the smallest change.
        let mut weakest = 0;
        for k in 1..cps.len() {
            if cps[k].p > cps[weakest].p {
                weakest = k;
            }
        }
        if cps[weakest].p < config.max_pvalue {
            let mut smallest = 0;
            for k in 1..cps.len() {
                if cps[k].magnitude() < cps[smallest].magnitude() {
                    smallest = k;
                }
            }
            if cps[smallest].magnitude() > config.min_magnitude {
                break;
            }
            weakest = smallest;
        }
        cps.remove(weakest);
        // The removed point's neighbours now span its two segments: test them again.
        // Otava 0.8.0 re-tests the points at `weakest` and `weakest + 1` instead (the one
        // after and the one after that), leaving the one before with its old p.
        if as_otava_0_8 {
            retest(values, &mut cps, weakest);
            retest(values, &mut cps, weakest + 1);
        } else {
            if weakest > 0 {
                retest(values, &mut cps, weakest - 1);
            }
            retest(values, &mut cps, weakest);
        }
    }
    // Reported statistics are those of the final segments (see the module comment).
    if !as_otava_0_8 {
        for k in 0..cps.len() {
            retest(values, &mut cps, k);
        }
    }
    cps
}

/// Tests the `k`-th change point between the segments from its neighbours (or the
/// series' ends) to it and from it to the next; nothing when there is no `k`-th.
fn retest(values: &[f64], cps: &mut [ChangePoint], k: usize) {
    let Some(cp) = cps.get(k) else {
        return;
    };
    let from = if k == 0 { 0 } else { cps[k - 1].index };
    let to = cps.get(k + 1).map_or(values.len(), |c| c.index);
    let t = t_test(&values[from..cp.index], &values[cp.index..to]);
    cps[k] = ChangePoint {
        index: cp.index,
        ..t
    };
}

/// E-divisive means on one window: cut the segment with the largest q̂ at its best split
/// while the cut is significant at `level`. Indices relative to `w`, sorted.
fn e_divisive(w: &[f64], level: f64) -> Vec<usize> {
    let mut cuts: Vec<usize> = Vec::new();
    loop {
        // The best split of every segment of 2 points or more; the first of equal q̂.
        let mut best: Option<(usize, usize, usize, f64)> = None;
        let mut from = 0;
        for to in cuts.iter().copied().chain(std::iter::once(w.len())) {
            if to - from > 1 {
                let (tau, q) = best_split(&w[from..to]);
                if best.is_none_or(|b| q > b.3) {
                    best = Some((from, from + tau, to, q));
                }
            }
            from = to;
        }
        let Some((from, tau, to, _)) = best else {
            break;
        };
        if t_test(&w[from..tau], &w[tau..to]).p <= level {
            let at = cuts.partition_point(|&c| c < tau);
            cuts.insert(at, tau);
        } else {
            // As Otava: the strongest remaining candidate is not significant, so none is.
            break;
        }
    }
    cuts
}

/// The split τ of `x` (2 values or more) maximising q̂ between `x[..τ]` and `x[τ..κ]`
/// over every κ, and that q̂ (Matteson & James' energy statistic with exponent 1):
///
///   q̂ = 2/(n+m) Σ|X−Y| − 2m/((n+m)(n−1)) Σ_{i<k}|Xi−Xk| − 2n/((n+m)(m−1)) Σ_{j<k}|Yj−Yk|
///
/// for X of n values and Y of m (a within-sum over one value is 0). Ties go to the
/// smallest τ, then κ, as numpy's `argmax` over Otava's matrix does. O(len²): each
/// sum grows by one column of distances, read from prefix sums.
fn best_split(x: &[f64]) -> (usize, f64) {
    let n = x.len();
    // pre[j * n + t] = Σ_{i<t} |x_i − x_j| for t ≤ j.
    let mut pre = vec![0.0; n * n];
    for j in 0..n {
        let mut acc = 0.0;
        for t in 0..=j {
            pre[j * n + t] = acc;
            acc += (x[t] - x[j]).abs();
        }
    }
    let mut best = (1, f64::NEG_INFINITY);
    let mut within_x = 0.0;
    for tau in 1..n {
        if tau > 1 {
            within_x += pre[(tau - 1) * n + tau - 1];
        }
        let nx = tau as f64;
        let mut cross = 0.0;
        let mut within_y = 0.0;
        for kappa in tau + 1..=n {
            let j = kappa - 1;
            cross += pre[j * n + tau];
            within_y += pre[j * n + j] - pre[j * n + tau];
            let m = (kappa - tau) as f64;
            let mut q = 2.0 / (nx + m) * cross;
            if tau > 1 {
                q -= 2.0 * m / ((nx + m) * (nx - 1.0)) * within_x;
            }
            if kappa - tau > 1 {
                q -= 2.0 * nx / ((nx + m) * (m - 1.0)) * within_y;
            }
            if q > best.1 {
                best = (tau, q);
            }
        }
    }
    best
}

/// Mean and population standard deviation (0 for fewer than 2 values).
fn mean_std(x: &[f64]) -> (f64, f64) {
    if x.is_empty() {
        return (f64::NAN, 0.0);
    }
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    if x.len() < 2 {
        return (mean, 0.0);
    }
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Otava's significance test between two adjacent segments: Student's t with pooled
/// variance (scipy's `ttest_ind_from_stats`, equal variances, two-sided), given the
/// population deviations. Two values in all: p = 1. Two constant segments: p = 0 when
/// their levels differ, NaN (never significant) when they do not.
fn t_test(left: &[f64], right: &[f64]) -> ChangePoint {
    let (m1, s1) = mean_std(left);
    let (m2, s2) = mean_std(right);
    let (n1, n2) = (left.len() as f64, right.len() as f64);
    let p = if left.is_empty() || right.is_empty() || left.len() + right.len() <= 2 {
        1.0
    } else {
        let df = n1 + n2 - 2.0;
        let pooled = ((n1 - 1.0) * s1 * s1 + (n2 - 1.0) * s2 * s2) / df;
        let t = (m1 - m2) / (pooled * (1.0 / n1 + 1.0 / n2)).sqrt();
        if t.is_nan() {
            f64::NAN
        } else if t.is_infinite() {
            0.0
        } else {
            StudentsT::new(0.0, 1.0, df).map_or(1.0, |d| 2.0 * d.sf(t.abs()))
        }
    };
    ChangePoint {
        index: 0,
        p,
        mean_before: m1,
        mean_after: m2,
        stddev_before: s1,
        stddev_after: s2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic uniform noise in [-1, 1): Knuth's MMIX LCG, top 53 bits.
    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
            })
            .collect()
    }

    /// `level(i)` plus uniform noise of standard deviation `sd` (half-width sd·√3).
    fn series(n: usize, seed: u64, sd: f64, level: impl Fn(usize) -> f64) -> Vec<f64> {
        noise(seed, n)
            .into_iter()
            .enumerate()
            .map(|(i, e)| level(i) + e * sd * 3f64.sqrt())
            .collect()
    }

    fn indices(cps: &[ChangePoint]) -> Vec<usize> {
        cps.iter().map(|c| c.index).collect()
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    #[test]
    fn a_step_is_found_at_its_index() {
        let s = series(60, 1, 0.5, |i| if i < 30 { 100.0 } else { 105.0 });
        let cps = change_points(&s, &Config::default());
        assert_eq!(indices(&cps), vec![30]);
        let cp = cps[0];
        assert!(cp.p < 1e-10, "{cp:?}");
        assert!((cp.mean_before - 100.0).abs() < 0.5 && (cp.mean_after - 105.0).abs() < 0.5);
        assert!(close(cp.forward_change(), 0.05, 0.2), "{cp:?}");
        // Downward too, and as the newest shift of the series.
        let down: Vec<f64> = s.iter().map(|v| 205.0 - v).collect();
        let cp = newest_shift(&down, &Config::default()).expect("a step down");
        assert_eq!(cp.index, 30);
        assert!(cp.mean_after < cp.mean_before);
    }

    #[test]
    fn a_constant_series_has_none() {
        let s = vec![42.0; 80];
        assert!(change_points(&s, &Config::default()).is_empty());
        assert!(newest_shift(&s, &Config::default()).is_none());
    }

    #[test]
    fn pure_noise_has_none() {
        for seed in 1..=20 {
            for n in [10, 30, 60] {
                let s = series(n, seed, 1.0, |_| 100.0);
                let cps = change_points(&s, &Config::default());
                assert!(cps.is_empty(), "seed {seed}, {n} points: {cps:?}");
                assert!(
                    newest_shift(&s, &Config::default()).is_none(),
                    "seed {seed}, {n}"
                );
            }
        }
    }

    /// p 0.001 holds for one test; the search tries every split of every window, so noise
    /// alone has a change point now and then, more often the longer the series (Otava's
    /// exactly as often or more: with its merge, 4 and 21 of these 200).
    #[test]
    fn pure_noise_rarely_has_any() {
        for (n, at_most) in [(60, 6), (200, 24)] {
            let flagged = (1..=200)
                .filter(|&seed| {
                    !change_points(&series(n, seed, 1.0, |_| 100.0), &Config::default()).is_empty()
                })
                .count();
            assert!(flagged <= at_most, "{n} points: {flagged} of 200 series");
        }
    }

    #[test]
    fn a_slow_ramp_of_five_percent_is_found() {
        // +5 % in total, spread evenly, under noise of 1 % standard deviation.
        for n in [30, 45, 60] {
            for seed in 1..=5 {
                let s = series(n, seed, 1.0, |i| {
                    100.0 * (1.0 + 0.05 * i as f64 / (n - 1) as f64)
                });
                let cp = newest_shift(&s, &Config::default())
                    .unwrap_or_else(|| panic!("{n} points, seed {seed}: no shift"));
                assert!(cp.mean_after > cp.mean_before, "{cp:?}");
                assert!(cp.p <= 0.001, "{cp:?}");
            }
        }
    }

    #[test]
    fn a_drift_slower_than_a_window_is_found_once_it_adds_up() {
        // 5 % over 200 and 500 candidates: within the last window of 50 it is 1.25 % and
        // 0.5 %, under 1 % noise; the block means see all of it.
        for n in [200, 500] {
            let s = series(n, 7, 1.0, |i| {
                100.0 * (1.0 + 0.05 * i as f64 / (n - 1) as f64)
            });
            let cp = newest_shift(&s, &Config::default()).expect("the drift");
            assert!(cp.mean_after > cp.mean_before, "{cp:?}");
            assert!(cp.index > 0 && cp.index < n, "{cp:?}");
            // And the same length of flat noise gives none at either scale.
            let flat = series(n, 7, 1.0, |_| 100.0);
            assert!(newest_shift(&flat, &Config::default()).is_none(), "{n}");
        }
    }

    #[test]
    fn newest_shift_reports_indices_in_the_whole_series() {
        let s = series(120, 3, 0.5, |i| if i < 100 { 10.0 } else { 12.0 });
        let cp = newest_shift(&s, &Config::default()).expect("the step");
        assert_eq!(cp.index, 100);
        // A level that changed back: the newest change is the return.
        let s = series(
            90,
            4,
            0.5,
            |i| if (30..60).contains(&i) { 12.0 } else { 10.0 },
        );
        assert_eq!(
            newest_shift(&s, &Config::default()).map(|c| c.index),
            Some(60)
        );
    }

    #[test]
    fn missing_empty_and_short_series_give_none() {
        let config = Config::default();
        let bad: [&[f64]; 6] = [
            &[],
            &[1.0],
            &[1.0, 2.0],
            &[f64::NAN; 20],
            &[f64::INFINITY, f64::NAN, f64::NEG_INFINITY],
            &[5.0, 5.0, 5.0],
        ];
        for s in bad {
            assert!(change_points(s, &config).is_empty(), "{s:?}");
            assert!(newest_shift(s, &config).is_none(), "{s:?}");
        }
        // Three values already can: two constant sides at different levels give t = ∞
        // (Otava too: [1, 1, 100] → index 2, p 0).
        let cps = change_points(&[1.0, f64::NAN, 100.0], &config);
        assert_eq!(indices(&cps), vec![2]);
        assert_eq!(cps[0].p, 0.0);
        // A window that could not advance finds nothing rather than looping.
        let step = series(40, 5, 0.5, |i| if i < 20 { 1.0 } else { 9.0 });
        for window in [0, 1] {
            let config = Config {
                window,
                ..Config::default()
            };
            assert!(change_points(&step, &config).is_empty());
            assert!(newest_shift(&step, &config).is_none());
        }
    }

    #[test]
    fn missing_values_are_filled_as_otava_fills_them() {
        let mut s = series(60, 6, 0.5, |i| if i < 30 { 100.0 } else { 105.0 });
        s[0] = f64::NAN; // back-filled from the next value
        s[40] = f64::NAN; // forward-filled from the value before
        s[59] = f64::INFINITY;
        assert_eq!(indices(&change_points(&s, &Config::default())), vec![30]);
        assert_eq!(
            newest_shift(&s, &Config::default()).map(|c| c.index),
            Some(30)
        );
    }

    #[test]
    fn min_magnitude_drops_small_changes() {
        let s = series(60, 8, 0.1, |i| if i < 30 { 100.0 } else { 101.0 });
        assert_eq!(indices(&change_points(&s, &Config::default())), vec![30]);
        let config = Config {
            min_magnitude: 0.02,
            ..Config::default()
        };
        assert!(change_points(&s, &config).is_empty());
    }

    #[test]
    fn relative_changes_follow_otava_at_zero() {
        let cp = ChangePoint {
            index: 1,
            p: 0.0,
            mean_before: 0.0,
            mean_after: 2.0,
            stddev_before: 0.0,
            stddev_after: 0.0,
        };
        assert_eq!(cp.forward_change(), 0.0);
        assert_eq!(cp.backward_change(), -1.0);
        assert_eq!(cp.magnitude(), 1.0);
    }

    /// Apache Otava 0.8.0's output (`otava.analysis.compute_change_points` at its
    /// defaults, Python 3.11, numpy 2.2, scipy 1.16) on series made by the same formulas
    /// there: (index, p, mean before, mean after) per change point. Ours with Otava's
    /// merge gives exactly these; ours gives them too but on the ramp (below).
    #[test]
    fn matches_otava() {
        #[allow(clippy::type_complexity)]
        let cases: [(&str, Vec<f64>, &[(usize, f64, f64, f64)]); 4] = [
            (
                "step",
                (0..40)
                    .map(|i| {
                        100.0 + ((i * 7919) % 13) as f64 * 0.5 + if i >= 24 { 8.0 } else { 0.0 }
                    })
                    .collect(),
                &[(24, 5.531900401222124e-16, 102.83333333333333, 111.0625)],
            ),
            (
                "regression and fix",
                (0..60)
                    .map(|i| {
                        50.0 + ((i * 31) % 7) as f64 + if (20..35).contains(&i) { 6.0 } else { 0.0 }
                    })
                    .collect(),
                &[
                    (20, 2.375412609169644e-10, 52.95, 59.06666666666667),
                    (35, 2.1395131961935513e-11, 59.06666666666667, 52.96),
                ],
            ),
            (
                "ramp of 5 %",
                (0..60)
                    .map(|i| {
                        100.0 * (1.0 + 0.05 * i as f64 / 59.0) + ((i * 17) % 5 - 2) as f64 * 0.5
                    })
                    .collect(),
                &[(
                    12,
                    0.0005533647530886098,
                    100.38276836158191,
                    101.5677966101695,
                )],
            ),
            (
                "two steps across windows",
                (0..120)
                    .map(|i| {
                        10.0 + ((i * 13) % 9) as f64 * 0.3
                            + if (40..90).contains(&i) { 3.0 } else { 0.0 }
                            - if i >= 90 { 2.0 } else { 0.0 }
                    })
                    .collect(),
                &[
                    (40, 8.194818589965283e-32, 11.1925, 14.206),
                    (90, 2.8651743951263164e-42, 14.206, 9.2),
                ],
            ),
        ];
        for (name, s, expected) in &cases {
            for cps in [
                change_points(s, &Config::default()),
                change_points_as_otava_0_8(s, &Config::default()),
            ] {
                if *name == "ramp of 5 %" {
                    // Otava's weak points are 12, 26, 37, 51. It removes 51 and re-tests
                    // nothing (no point after it), then 37 on that stale p, then 26, and
                    // keeps 12 with the statistics it had against 26 (the mean after is
                    // that of 12..26). Which of 26 and 37 goes first is a tie (mirror-image
                    // segments: equal p but for the last bits of rounding), so Otava's
                    // merge here is not reproducible to the bit. Ours re-tests the
                    // neighbours of each removed point, and 12 and 37 stand: to a
                    // mean-shift test a ramp is a staircase.
                    let ours = change_points(s, &Config::default());
                    assert_eq!(indices(&ours), vec![12, 37]);
                    assert!(ours.iter().all(|c| c.p < 1e-5), "{ours:?}");
                    break;
                }
                assert_eq!(cps.len(), expected.len(), "{name}: {cps:?}");
                for (cp, &(index, p, before, after)) in cps.iter().zip(expected.iter()) {
                    assert_eq!(cp.index, index, "{name}");
                    assert!(close(cp.p, p, 1e-6), "{name}: p {} vs Otava's {p}", cp.p);
                    assert!(close(cp.mean_before, before, 1e-12), "{name}");
                    assert!(close(cp.mean_after, after, 1e-12), "{name}");
                }
            }
        }
    }
}
