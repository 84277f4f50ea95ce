//! A feature's noise, learned from its baseline values alone: where it sits, how far it
//! wanders from run to run, and which shape it has — because the published judges fail
//! on exactly the awkward shapes (Kayenta passes tie-heavy changes, Perfherder misses
//! bimodal series), each has a rule of its own here:
//!
//! - **Spread**: Rousseeuw and Croux's Qn (the first quartile of the pairwise distances),
//!   robust like the MAD — a wild run or two do not move it — but 82 % efficient where
//!   the MAD is 37 %, so 30 baseline runs give a usable noise estimate.
//! - **Constant** (every baseline value equal): any other value is a change; how sure
//!   that is depends only on how many runs agreed ([`super::verdict`]).
//! - **Tied** (mostly one value, e.g. an error count that is nearly always 0): Qn is 0
//!   there, so the spread comes from the quantiles, then from the mean deviation.
//! - **Bimodal** (two clusters with a wide gap): the candidate is judged against the
//!   cluster it is nearest, so a shift of one mode is not lost in the gap's width.
//! - **Wild** (history itself flags far more often than the nominal rate when each
//!   baseline run is judged against the others): the feature is report-only — listed,
//!   never failing a run.

use super::stats;

/// The smallest baseline a feature is judged on.
pub const MIN_BASELINE: usize = 5;

/// The shape of a feature's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Spread,
    Constant,
    Tied,
    Bimodal,
}

/// What the baseline says about a feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Noise {
    pub shape: Shape,
    /// The values judged against (the nearer cluster of a bimodal feature), sorted.
    pub reference: Vec<f64>,
    pub center: f64,
    /// Robust standard deviation of one run's value (0 only for a constant).
    pub scale: f64,
    /// Degrees of freedom of the scale's estimate (for the t test).
    pub df: f64,
}

/// The per-feature level at which leave-one-out counts a baseline run as flagged.
pub const SELF_FLAG_LEVEL: f64 = 0.01;
/// The standard normal's two-sided [`SELF_FLAG_LEVEL`] point: Student's t of any degrees
/// of freedom has a larger one.
const NORMAL_TWO_SIDED_1PCT: f64 = 2.5758;

impl Noise {
    /// Whether history shows the feature flags far more often than the nominal rate: 10 %
    /// of its runs where 1 % is expected (binomially, under 0.4 % per clean feature of 30
    /// runs), and never fewer than 2. Computed when asked: it judges each baseline run
    /// against the others, and only a feature that would flag needs to know.
    pub fn wild(&self) -> bool {
        if self.shape == Shape::Constant {
            return false;
        }
        let n = self.reference.len();
        let flags = leave_one_out_flags(&self.reference);
        flags >= 2 && flags * 10 >= n
    }
}

/// Qn's small-sample correction (Croux and Rousseeuw 1992).
fn qn_correction(n: usize) -> f64 {
    match n {
        0..=1 => 1.0,
        2 => 0.399,
        3 => 0.994,
        4 => 0.512,
        5 => 0.844,
        6 => 0.611,
        7 => 0.857,
        8 => 0.669,
        9 => 0.872,
        n if n % 2 == 1 => n as f64 / (n as f64 + 1.4),
        n => n as f64 / (n as f64 + 3.8),
    }
}

/// The degrees of freedom Qn's estimate is worth from `n` values: its variance matched to
/// a chi distribution's by simulation of normal samples (5.4 at 10 values, 12.7 at 20,
/// 20.9 at 30 — fewer than the asymptotic 82 % of n-1 promises).
pub fn qn_df(n: usize) -> f64 {
    let n = n as f64;
    ((n - 1.0) * (0.80 - 2.2 / n)).max(1.0)
}

/// The variance of a sample median of `n` normal values, in units of σ²/n: π/2 in the
/// limit, 1.47 at 30 values (simulated).
pub const MEDIAN_VARIANCE: f64 = 1.5;

/// Qn, scaled to estimate a normal distribution's standard deviation.
pub fn qn(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mut d = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            d.push((values[i] - values[j]).abs());
        }
    }
    let h = n / 2 + 1;
    let k = (h * (h - 1) / 2).clamp(1, d.len());
    let (_, kth, _) = d.select_nth_unstable_by(k - 1, |a, b| a.total_cmp(b));
    2.2219 * qn_correction(n) * *kth
}

/// A spread for values Qn calls 0 but that are not all equal: the central 80 % of them,
/// else their mean deviation from the center.
fn tied_scale(sorted: &[f64], center: f64) -> f64 {
    let iqr80 = stats::quantile(sorted, 0.9) - stats::quantile(sorted, 0.1);
    if iqr80 > 0.0 {
        return iqr80 / 2.563;
    }
    1.2533
        * stats::mean(
            &sorted
                .iter()
                .map(|v| (v - center).abs())
                .collect::<Vec<_>>(),
        )
}

/// The two clusters of a bimodal baseline: split at the widest gap when each side holds at
/// least a fifth of the values (and 3), and the gap is more than 4× the wider side's
/// spread.
fn clusters(sorted: &[f64]) -> Option<(&[f64], &[f64])> {
    let n = sorted.len();
    let least = (n / 5).max(3);
    if n < 2 * least {
        return None;
    }
    let (at, gap) = (least..=n - least)
        .map(|i| (i, sorted[i] - sorted[i - 1]))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let (lo, hi) = sorted.split_at(at);
    let spread = spread_of(lo).max(spread_of(hi));
    (gap > 4.0 * spread && gap > 0.0).then_some((lo, hi))
}

fn spread_of(sorted: &[f64]) -> f64 {
    let c = stats::quantile(sorted, 0.5);
    let q = qn(sorted);
    if q > 0.0 { q } else { tied_scale(sorted, c) }
}

/// The noise of a feature whose baseline values are `baseline`, to judge `candidate` (the
/// candidate's runs' median: it picks a bimodal feature's cluster).
pub fn learn(baseline: &[f64], candidate: f64) -> Noise {
    let sorted = stats::sorted(baseline);
    let reference: Vec<f64> = match clusters(&sorted) {
        Some((lo, hi)) => {
            let (clo, chi) = (stats::quantile(lo, 0.5), stats::quantile(hi, 0.5));
            let near = if (candidate - clo).abs() <= (candidate - chi).abs() {
                lo
            } else {
                hi
            };
            return finish(near.to_vec(), Shape::Bimodal, None);
        }
        None => sorted,
    };
    let spread = qn(&reference);
    let shape = if reference.first() == reference.last() {
        Shape::Constant
    } else if spread == 0.0 {
        Shape::Tied
    } else {
        Shape::Spread
    };
    finish(reference, shape, Some(spread))
}

/// The noise of `reference` in `shape`; `qn` if it is known already.
fn finish(reference: Vec<f64>, shape: Shape, qn_known: Option<f64>) -> Noise {
    // A cluster of one value is a constant, whatever the rest of the baseline does.
    let shape = if reference.first() == reference.last() {
        Shape::Constant
    } else {
        shape
    };
    let center = stats::quantile(&reference, 0.5);
    let scale = match shape {
        Shape::Constant => 0.0,
        Shape::Tied => tied_scale(&reference, center),
        Shape::Spread => qn_known.unwrap_or_else(|| spread_of(&reference)),
        Shape::Bimodal => spread_of(&reference),
    };
    let n = reference.len();
    let df = qn_df(n);
    Noise {
        shape,
        reference,
        center,
        scale,
        df,
    }
}

/// How many baseline values flag at [`SELF_FLAG_LEVEL`] when each is judged against the
/// others (median and MAD: cheap, and enough to tell a heavy tail).
fn leave_one_out_flags(sorted: &[f64]) -> usize {
    let n = sorted.len();
    if n < MIN_BASELINE + 1 {
        return 0;
    }
    let mut others = Vec::with_capacity(n - 1);
    let mut flags = 0;
    for i in 0..n {
        others.clear();
        others.extend(
            sorted
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, v)| *v),
        );
        let c = stats::quantile(&others, 0.5);
        let mut s = stats::mad_scale(&others, c);
        if s == 0.0 {
            s = tied_scale(&others, c);
        }
        if s == 0.0 {
            // The others agree exactly: this one differs or not; that is a constant's rule.
            flags += usize::from(sorted[i] != c);
            continue;
        }
        let t = (sorted[i] - c) / (s * (1.0 + 1.0 / (n - 1) as f64).sqrt());
        // The MAD's estimate is worth about 37 % of the degrees of freedom. Below the
        // normal's two-sided 1 % point no Student's t reaches the level (the costly
        // distribution function is needed only beyond it).
        if t.abs() >= NORMAL_TWO_SIDED_1PCT
            && stats::t_two_sided(t, (0.37 * (n as f64 - 2.0)).max(1.0)) <= SELF_FLAG_LEVEL
        {
            flags += 1;
        }
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic, roughly normal noise (sum of uniforms from a fixed LCG).
    pub(crate) fn normalish(n: usize, seed: u64, center: f64, sd: f64) -> Vec<f64> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                let mut s = 0.0;
                for _ in 0..12 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    s += (x >> 11) as f64 / (1u64 << 53) as f64;
                }
                center + sd * (s - 6.0)
            })
            .collect()
    }

    #[test]
    fn below_the_normal_s_1pct_point_no_t_flags() {
        assert!((stats::t_two_sided(NORMAL_TWO_SIDED_1PCT, 1e9) - SELF_FLAG_LEVEL).abs() < 1e-5);
        for df in [1.0, 3.0, 7.4, 30.0, 1000.0] {
            assert!(stats::t_two_sided(NORMAL_TWO_SIDED_1PCT - 1e-9, df) > SELF_FLAG_LEVEL);
        }
    }

    #[test]
    fn qn_estimates_the_standard_deviation_of_normal_noise() {
        let v = normalish(2000, 7, 100.0, 5.0);
        let q = qn(&v);
        assert!((q - 5.0).abs() < 0.4, "{q}");
        // And ignores a few wild values.
        let mut w = normalish(30, 3, 100.0, 5.0);
        let calm = qn(&w);
        w[0] = 1e9;
        w[1] = -1e9;
        assert!((qn(&w) - calm).abs() < 0.35 * calm, "{} vs {calm}", qn(&w));
    }

    #[test]
    fn a_constant_baseline_has_no_spread_and_no_self_flags() {
        let n = learn(&[0.0; 12], 3.0);
        assert_eq!(n.shape, Shape::Constant);
        assert_eq!(n.scale, 0.0);
        assert!(!n.wild());
    }

    #[test]
    fn a_mostly_zero_baseline_gets_a_spread_from_its_tail() {
        let mut v = vec![0.0; 20];
        v.extend([1.0, 2.0, 1.0, 3.0, 1.0]);
        let n = learn(&v, 0.0);
        assert_eq!(n.shape, Shape::Tied);
        assert!(n.scale > 0.0);
        assert_eq!(n.center, 0.0);
    }

    #[test]
    fn a_bimodal_baseline_judges_against_the_nearer_cluster() {
        let mut v = normalish(15, 1, 100.0, 1.0);
        v.extend(normalish(15, 2, 200.0, 1.0));
        let n = learn(&v, 201.0);
        assert_eq!(n.shape, Shape::Bimodal);
        assert!((n.center - 200.0).abs() < 1.5, "{}", n.center);
        assert!(n.scale < 3.0, "{}", n.scale);
        assert_eq!(n.reference.len(), 15);
        // A value between the modes is far from both: its cluster's spread is small.
        let n = learn(&v, 150.0);
        assert!((150.0 - n.center).abs() / n.scale > 10.0);
    }

    #[test]
    fn normal_noise_is_not_wild_and_heavy_tails_are() {
        let calm = learn(&normalish(30, 11, 50.0, 2.0), 50.0);
        assert_eq!(calm.shape, Shape::Spread);
        assert!(!calm.wild(), "{calm:?}");
        // A quarter of the runs scattered far out (no second cluster): history flags
        // them against the rest.
        let mut heavy = normalish(30, 12, 50.0, 2.0);
        for (i, v) in heavy.iter_mut().enumerate().filter(|(i, _)| i % 4 == 0) {
            *v += 20.0 + 5.0 * i as f64;
        }
        let n = learn(&heavy, 50.0);
        assert!(n.wild(), "{n:?}");
    }
}
