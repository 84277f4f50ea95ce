//! Deterministic random numbers: SplitMix64 for uniforms, Box–Muller for normals.
//!
//! "Same seed, same bytes" must hold forever, on every platform and every Rust or libc
//! version, so nothing here calls the platform's `ln`, `sin` or `cos` (libm results may
//! differ in the last bit between versions, and a last bit can move a rounded price).
//! [`ln`] and [`sin_cos_turns`] are series evaluated with IEEE 754 basic operations
//! only (`+ - * /` and `sqrt`, all correctly rounded), so they give the same bits
//! everywhere. Changing anything in this file changes generated data: bump
//! [`super::GENERATOR_VERSION`] when you do.

use std::f64::consts::{FRAC_PI_2, LN_2, SQRT_2};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for test data.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, 53 random bits.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Two independent standard normal numbers (Box–Muller).
    #[inline]
    pub fn normal_pair(&mut self) -> (f64, f64) {
        // (0, 1]: never ln(0). The smallest value, 2^-53, gives a radius of about 8.6.
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        let r = (-2.0 * ln(u1)).sqrt();
        let (s, c) = sin_cos_turns(u2);
        (r * c, r * s)
    }
}

/// 1/(2k+1) for k = 0..12: the series of atanh.
const ATANH: [f64; 12] = [
    1.0,
    1.0 / 3.0,
    1.0 / 5.0,
    1.0 / 7.0,
    1.0 / 9.0,
    1.0 / 11.0,
    1.0 / 13.0,
    1.0 / 15.0,
    1.0 / 17.0,
    1.0 / 19.0,
    1.0 / 21.0,
    1.0 / 23.0,
];

const SIN_COS_TERMS: usize = 12;
/// 1/((2k)(2k+1)) for k = 1..=12: Horner factors of sin a / a.
const SIN: [f64; SIN_COS_TERMS] = horner(1);
/// 1/((2k-1)(2k)) for k = 1..=12: Horner factors of cos a.
const COS: [f64; SIN_COS_TERMS] = horner(0);

const fn horner(odd: u64) -> [f64; SIN_COS_TERMS] {
    let mut out = [0.0; SIN_COS_TERMS];
    let mut k = 1;
    while k <= SIN_COS_TERMS as u64 {
        let lo = 2 * k - 1 + odd;
        out[k as usize - 1] = 1.0 / (lo * (lo + 1)) as f64;
        k += 1;
    }
    out
}

/// Natural logarithm of a positive, normal, finite `x`, from basic operations only.
///
/// `x = m·2^e` with `m` in `[√½, √2)`; `ln m = 2·atanh(s)`, `s = (m-1)/(m+1)`,
/// `|s| ≤ 0.172`, so twelve terms are exact to well below one ulp of the result.
#[inline]
pub fn ln(x: f64) -> f64 {
    debug_assert!(x.is_normal() && x > 0.0, "ln of {x}");
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut sum = 0.0;
    for c in ATANH.iter().rev() {
        sum = sum * s2 + c;
    }
    e as f64 * LN_2 + 2.0 * s * sum
}

/// `(sin, cos)` of the angle `2π·t` for `t` in `[0, 1)`, from basic operations only.
///
/// The quadrant comes from `4t` (exact); within it the angle is in `[0, π/2)`, where
/// Taylor series to the 23rd/22nd power are exact to well below one ulp.
#[inline]
pub fn sin_cos_turns(t: f64) -> (f64, f64) {
    let q4 = t * 4.0;
    let q = q4 as u32 & 3;
    let a = (q4 - q4.floor()) * FRAC_PI_2;
    let a2 = a * a;
    // sin a = a(1 - a²/3! + a⁴/5! - …), cos a = 1 - a²/2! + a⁴/4! - …, by Horner.
    let mut s = 1.0;
    let mut c = 1.0;
    for k in (0..SIN_COS_TERMS).rev() {
        s = 1.0 - a2 * SIN[k] * s;
        c = 1.0 - a2 * COS[k] * c;
    }
    let (sa, ca) = (a * s, c);
    match q {
        0 => (sa, ca),
        1 => (ca, -sa),
        2 => (-sa, -ca),
        _ => (-ca, sa),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The reference implementation's first outputs for seed 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn ln_agrees_with_the_platform_to_an_ulp_or_two() {
        let mut r = SplitMix64::new(7);
        let mut xs: Vec<f64> = (0..10_000).map(|_| 1.0 - r.unit()).collect();
        xs.extend([
            1.0,
            0.5,
            2.0f64.powi(-53),
            0.707,
            1e-300,
            12345.678,
            1.0e300,
        ]);
        for x in xs {
            let (ours, std) = (ln(x), x.ln());
            assert!(
                (ours - std).abs() <= 4.0 * f64::EPSILON * std.abs().max(1.0),
                "ln({x}) = {ours}, std {std}"
            );
        }
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn sin_cos_agree_with_the_platform() {
        let mut r = SplitMix64::new(9);
        let mut ts: Vec<f64> = (0..10_000).map(|_| r.unit()).collect();
        ts.extend([0.0, 0.25, 0.5, 0.75, 0.999_999_999]);
        for t in ts {
            let (s, c) = sin_cos_turns(t);
            let angle = 2.0 * std::f64::consts::PI * t;
            assert!((s - angle.sin()).abs() < 1e-14, "sin at {t}: {s}");
            assert!((c - angle.cos()).abs() < 1e-14, "cos at {t}: {c}");
        }
    }

    #[test]
    fn normals_have_mean_0_and_variance_1() {
        let mut r = SplitMix64::new(42);
        let n = 200_000;
        let (mut sum, mut sq) = (0.0, 0.0);
        for _ in 0..n / 2 {
            let (a, b) = r.normal_pair();
            sum += a + b;
            sq += a * a + b * b;
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }
}
