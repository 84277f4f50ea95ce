//! Deterministic noise for the benches' synthetic series, shared by `judge` and
//! `changepoint` (`#[path]`-included: a file under `benches/support/` is no bench).

/// Noise of standard deviation 1: a sum of 12 uniforms from a 64-bit LCG, so a bench
/// repeats exactly.
pub struct Noisy(pub u64);

impl Noisy {
    pub fn next(&mut self) -> f64 {
        let mut s = 0.0;
        for _ in 0..12 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s += (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        }
        s - 6.0
    }
}
