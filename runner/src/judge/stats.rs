//! The statistics the judge uses, as plain functions over slices: robust location and
//! scale, rank tests (Mann-Whitney U, a value's rank, Kolmogorov-Smirnov), Student's t,
//! and the multiple-testing corrections (Benjamini-Hochberg, Simes). No I/O, no state.
//!
//! statrs gives the distributions (t, normal); the rank statistics are a few lines each
//! and need ties handled the way a run's features have them (counts, constants), which
//! statrs does not offer.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The `p`-quantile of sorted values (linear between order statistics, R's type 7).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// Values sorted ascending (NaNs last).
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

pub fn median(values: &[f64]) -> f64 {
    quantile(&sorted(values), 0.5)
}

/// The median absolute deviation from `center`, scaled (×1.4826) to estimate a normal
/// distribution's standard deviation: half the values may be wild and it still holds.
pub fn mad_scale(values: &[f64], center: f64) -> f64 {
    let deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    1.4826 * median(&deviations)
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The least-squares slope of `y` over `x` (0 when `x` does not vary).
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
    }
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// The chance of `at_least` or more successes in `n` trials of chance `p` each.
pub fn binomial_tail(at_least: usize, n: usize, p: f64) -> f64 {
    let p = p.clamp(0.0, 1.0);
    let mut total = 0.0;
    for j in at_least..=n {
        // C(n, j) as a product of ratios: n is a few looks, never large.
        let c = (0..j).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64);
        total += c * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32);
    }
    total.min(1.0)
}

/// Two-sided p of a new value's rank among `baseline`: how often a value of the baseline's
/// own distribution would sit at least as far out. Ties count against significance.
pub fn rank_p(value: f64, baseline: &[f64]) -> f64 {
    let below = baseline.iter().filter(|b| **b < value).count();
    let above = baseline.iter().filter(|b| **b > value).count();
    let ties = baseline.len() - below - above;
    let lo = 1 + below + ties;
    let hi = 1 + above + ties;
    (2.0 * lo.min(hi) as f64 / (baseline.len() + 1) as f64).min(1.0)
}

/// The Mann-Whitney U test of `a` against `b`: U of `a`, and the two-sided p from the
/// normal approximation with the tie correction and a continuity correction (cautious for
/// small samples, where it overstates p).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    pub u: f64,
    pub p: f64,
}

pub fn mann_whitney(a: &[f64], b: &[f64]) -> MannWhitney {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return MannWhitney { u: 0.0, p: 1.0 };
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len() as f64;
    let (mut rank_sum_a, mut tie_term) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += mid_rank * all[i..=j].iter().filter(|x| x.1).count() as f64;
        tie_term += t * t * t - t;
        i = j + 1;
    }
    let u = rank_sum_a - na * (na + 1.0) / 2.0;
    let mu = na * nb / 2.0;
    let var = na * nb / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if var <= 0.0 {
        return MannWhitney { u, p: 1.0 };
    }
    let z = ((u - mu).abs() - 0.5).max(0.0) / var.sqrt();
    MannWhitney {
        u,
        p: normal_two_sided(z),
    }
}

/// The two-sample Kolmogorov-Smirnov statistic D and its asymptotic two-sided p (with
/// Stephens' small-sample adjustment).
pub fn kolmogorov_smirnov(a: &[f64], b: &[f64]) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 1.0);
    }
    let (sa, sb) = (sorted(a), sorted(b));
    let (na, nb) = (sa.len() as f64, sb.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < sa.len() && j < sb.len() {
        let x = sa[i].min(sb[j]);
        while i < sa.len() && sa[i] <= x {
            i += 1;
        }
        while j < sb.len() && sb[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    let en = (na * nb / (na + nb)).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    (d, kolmogorov_q(lambda))
}

/// Q_KS(λ) = 2 Σ (-1)^(j-1) exp(-2 j² λ²), the Kolmogorov distribution's upper tail.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let mut sum = 0.0;
    for j in 1..=100 {
        let j = j as f64;
        let term = (-2.0 * j * j * lambda * lambda).exp();
        sum += if j as u32 % 2 == 1 { term } else { -term };
        if term < 1e-12 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Two-sided p of a standard normal statistic.
pub fn normal_two_sided(z: f64) -> f64 {
    if z.is_nan() {
        return 1.0;
    }
    let n = Normal::standard();
    (2.0 * (1.0 - n.cdf(z.abs()))).clamp(0.0, 1.0)
}

/// Two-sided p of a t statistic with `df` degrees of freedom.
pub fn t_two_sided(t: f64, df: f64) -> f64 {
    // statrs panics outside the finite reals.
    if t.is_nan() {
        return 1.0;
    }
    if t.is_infinite() {
        return 0.0;
    }
    match StudentsT::new(0.0, 1.0, df.max(1.0)) {
        Ok(dist) => (2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0),
        Err(_) => 1.0,
    }
}

/// The t quantile with `df` degrees of freedom (`p` in (0, 1)).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df.max(1.0)).map_or(f64::INFINITY, |d| d.inverse_cdf(p))
}

/// Benjamini-Hochberg adjusted p-values (q), in the order given.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let mut q = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running.min(1.0);
    }
    q
}

/// Simes' combined p of a family: small when any of its members is small enough for
/// the family's size (valid under the positive dependence related features have).
pub fn simes(p: &[f64]) -> f64 {
    let s = sorted(p);
    let m = s.len() as f64;
    s.iter()
        .enumerate()
        .map(|(i, p)| p * m / (i + 1) as f64)
        .fold(1.0, f64::min)
}

/// The Hodges-Lehmann shift of `a` against `b`: the median of every pairwise difference.
pub fn hodges_lehmann(a: &[f64], b: &[f64]) -> f64 {
    let mut d = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            d.push(x - y);
        }
    }
    median(&d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn binomial_tails() {
        assert!((super::binomial_tail(1, 1, 0.03) - 0.03).abs() < 1e-15);
        assert!((super::binomial_tail(3, 3, 0.1) - 0.001).abs() < 1e-15);
        // At least 2 of 3 at 0.5: 3/8 + 1/8.
        assert!((super::binomial_tail(2, 3, 0.5) - 0.5).abs() < 1e-15);
        assert_eq!(super::binomial_tail(0, 4, 0.2), 1.0);
    }

    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics_as_r_does() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert!(close(quantile(&v, 0.95), 3.85, 1e-12));
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_mad_ignores_an_outlier_the_standard_deviation_would_not() {
        let v = [10.0, 10.5, 9.5, 10.2, 9.8, 1000.0];
        let m = median(&v);
        assert!(close(m, 10.1, 1e-9));
        let s = mad_scale(&v, m);
        assert!(s < 1.0, "{s}");
    }

    #[test]
    fn mann_whitney_matches_scipy_on_a_textbook_pair() {
        // scipy.stats.mannwhitneyu([1,2,3,4,5],[6,7,8,9,10], method="asymptotic") →
        // U=0, p=0.012186 (with continuity correction).
        let r = mann_whitney(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(r.u, 0.0);
        assert!(close(r.p, 0.012186, 1e-5), "{}", r.p);
        // Identical samples: nothing to tell apart.
        assert_eq!(mann_whitney(&[1.0, 1.0], &[1.0, 1.0, 1.0]).p, 1.0);
    }

    #[test]
    fn mann_whitney_handles_ties_as_scipy_does() {
        // scipy.stats.mannwhitneyu([1,2,2,3],[2,3,3,4,5], method="asymptotic") →
        // U=3, p=0.099342.
        let r = mann_whitney(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 3.0, 4.0, 5.0]);
        assert_eq!(r.u, 3.0);
        assert!(close(r.p, 0.099342, 1e-5), "{}", r.p);
    }

    #[test]
    fn a_value_beyond_every_baseline_value_has_the_smallest_rank_p_the_baseline_allows() {
        let base: Vec<f64> = (0..30).map(f64::from).collect();
        assert!(close(rank_p(100.0, &base), 2.0 / 31.0, 1e-12));
        assert!(close(rank_p(-1.0, &base), 2.0 / 31.0, 1e-12));
        assert_eq!(rank_p(15.0, &base), 1.0);
        // A value equal to a constant baseline is no evidence at all.
        assert_eq!(rank_p(0.0, &[0.0; 10]), 1.0);
    }

    #[test]
    fn kolmogorov_smirnov_sees_disjoint_samples_and_not_identical_ones() {
        let a: Vec<f64> = (0..40).map(f64::from).collect();
        let b: Vec<f64> = (100..140).map(f64::from).collect();
        let (d, p) = kolmogorov_smirnov(&a, &b);
        assert_eq!(d, 1.0);
        assert!(p < 1e-10, "{p}");
        let (d, p) = kolmogorov_smirnov(&a, &a);
        assert_eq!(d, 0.0);
        assert_eq!(p, 1.0);
    }

    #[test]
    fn t_and_normal_tails_match_tables() {
        assert!(close(normal_two_sided(1.959964), 0.05, 1e-6));
        // t(10): two-sided 5 % at 2.228139.
        assert!(close(t_two_sided(2.228139, 10.0), 0.05, 1e-5));
        assert!(close(t_quantile(0.975, 10.0), 2.228139, 1e-5));
        // No panic at the edges: a zero noise divides by zero.
        assert_eq!(t_two_sided(f64::NAN, 10.0), 1.0);
        assert_eq!(t_two_sided(f64::INFINITY, 10.0), 0.0);
        assert_eq!(normal_two_sided(f64::NAN), 1.0);
    }

    #[test]
    fn benjamini_hochberg_matches_r_p_adjust() {
        // p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH") → 0.02 0.04 0.04 0.02
        let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.005]);
        for (got, want) in q.iter().zip([0.02, 0.04, 0.04, 0.02]) {
            assert!(close(*got, want, 1e-12), "{q:?}");
        }
        assert!(benjamini_hochberg(&[]).is_empty());
    }

    #[test]
    fn simes_is_the_smallest_scaled_order_statistic() {
        assert!(close(simes(&[0.01, 0.5, 0.9]), 0.03, 1e-12));
        assert!(close(simes(&[0.02, 0.02, 0.9]), 0.03, 1e-12));
    }

    #[test]
    fn slope_and_hodges_lehmann_recover_a_known_shift() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 + 2.0 * i as f64)).collect();
        assert!(close(slope(&pts), 2.0, 1e-12));
        assert_eq!(slope(&[(1.0, 1.0)]), 0.0);
        let b = [1.0, 2.0, 3.0];
        let a = [11.0, 12.0, 13.0];
        assert_eq!(hodges_lehmann(&a, &b), 10.0);
    }
}
