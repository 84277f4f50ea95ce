//! Fault knobs: deliberate misbehaviour the demo switches on to give the
//! runner's monitors something to catch. Each knob comes from a flag, a
//! `--config` file key or an environment variable, in that order of
//! precedence (the caller folds the file into [`KnobFlags`]), so a test can
//! override the environment it inherited.

use std::time::Duration;

pub const ENV_LATENCY_US: &str = "EXCHANGE_LATENCY_US";
pub const ENV_LEAK_KB_PER_ORDER: &str = "EXCHANGE_LEAK_KB_PER_ORDER";
pub const ENV_FAILOVER_DELAY_MS: &str = "EXCHANGE_FAILOVER_DELAY_MS";
pub const ENV_CPU_US_PER_ORDER: &str = "EXCHANGE_CPU_US_PER_ORDER";

/// Below this a wait spins: a sleep costs about 100 µs on a loaded machine whatever it
/// asks for, so 5, 10 and 20 µs of sleep would all look alike.
const SPIN_BELOW: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Knobs {
    /// Extra processing time per order, in microseconds, spent inside the
    /// matching critical section (so it shows in INTERNAL LATENCY).
    pub latency_us: u64,
    /// KiB allocated, touched and never freed per accepted order.
    pub leak_kb_per_order: u64,
    /// How long a backup waits after losing the primary before going ACTIVE.
    pub failover_delay_ms: u64,
    /// CPU burnt per accepted order after it is answered (outside the latency measured).
    pub cpu_us_per_order: u64,
}

/// Flag values as given on the command line (`None` = flag absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct KnobFlags {
    pub latency_us: Option<u64>,
    pub leak_kb_per_order: Option<u64>,
    pub failover_delay_ms: Option<u64>,
    pub cpu_us_per_order: Option<u64>,
}

impl Knobs {
    /// Resolves each knob: flag, else environment variable, else 0.
    /// `env` is injected so tests need not mutate the process environment.
    pub fn resolve(
        flags: KnobFlags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Knobs, String> {
        let pick = |flag: Option<u64>, var: &str| -> Result<u64, String> {
            if let Some(v) = flag {
                return Ok(v);
            }
            match env(var) {
                None => Ok(0),
                Some(s) if s.trim().is_empty() => Ok(0),
                Some(s) => s
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{var} must be a non-negative integer, got {s:?}")),
            }
        };
        let knobs = Knobs {
            latency_us: pick(flags.latency_us, ENV_LATENCY_US)?,
            leak_kb_per_order: pick(flags.leak_kb_per_order, ENV_LEAK_KB_PER_ORDER)?,
            failover_delay_ms: pick(flags.failover_delay_ms, ENV_FAILOVER_DELAY_MS)?,
            cpu_us_per_order: pick(flags.cpu_us_per_order, ENV_CPU_US_PER_ORDER)?,
        };
        // Bound the knobs so a typo cannot hang the engine for hours or
        // exhaust memory on the first order.
        if knobs.latency_us > 10_000_000 {
            return Err("latency-us must be at most 10000000 (10 s)".into());
        }
        if knobs.leak_kb_per_order > 1_048_576 {
            return Err("leak-kb-per-order must be at most 1048576 (1 GiB)".into());
        }
        if knobs.cpu_us_per_order > 10_000_000 {
            return Err("cpu-us-per-order must be at most 10000000 (10 s)".into());
        }
        if knobs.failover_delay_ms > 3_600_000 {
            return Err("failover-delay-ms must be at most 3600000 (1 h)".into());
        }
        Ok(knobs)
    }

    /// Resolves against the real process environment.
    pub fn from_env(flags: KnobFlags) -> Result<Knobs, String> {
        Knobs::resolve(flags, |k| std::env::var(k).ok())
    }

    pub fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us)
    }

    /// Spends the latency knob's time: a spin for a short one (exact to a microsecond or
    /// so), a sleep for a long one.
    pub fn spend_latency(&self) {
        wait(self.latency());
    }

    /// Burns the CPU knob's time on this thread.
    pub fn burn_cpu(&self) {
        spin(Duration::from_micros(self.cpu_us_per_order));
    }

    pub fn failover_delay(&self) -> Duration {
        Duration::from_millis(self.failover_delay_ms)
    }

    /// The leak itself: `vec![1; n]` writes every byte, so the pages are
    /// really resident (an untouched allocation would not raise RSS).
    pub fn leak_block(&self) -> Option<Box<[u8]>> {
        let bytes = usize::try_from(self.leak_kb_per_order.checked_mul(1024)?).ok()?;
        (bytes > 0).then(|| vec![1u8; bytes].into_boxed_slice())
    }
}

/// Waits `d`: spinning when it is short, sleeping when it is long.
pub fn wait(d: Duration) {
    if d < SPIN_BELOW {
        spin(d);
    } else {
        std::thread::sleep(d);
    }
}

/// Keeps this thread busy for `d` of wall time.
fn spin(d: Duration) {
    if d.is_zero() {
        return;
    }
    let start = std::time::Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_are_zero() {
        assert_eq!(
            Knobs::resolve(KnobFlags::default(), env(&[])),
            Ok(Knobs::default())
        );
    }

    #[test]
    fn env_is_used_and_flags_win() {
        let e = env(&[
            (ENV_LATENCY_US, "250"),
            (ENV_LEAK_KB_PER_ORDER, "4"),
            (ENV_FAILOVER_DELAY_MS, "1000"),
        ]);
        let flags = KnobFlags {
            latency_us: Some(7),
            ..KnobFlags::default()
        };
        assert_eq!(
            Knobs::resolve(flags, e),
            Ok(Knobs {
                latency_us: 7,
                leak_kb_per_order: 4,
                failover_delay_ms: 1000,
                cpu_us_per_order: 0,
            })
        );
    }

    #[test]
    fn a_short_wait_spins_to_the_microsecond_and_a_long_one_sleeps() {
        // Small values must stay apart (5, 10, 20 µs): the spin takes at least what it
        // was asked, and a long wait still takes its time.
        for us in [5u64, 20] {
            let start = std::time::Instant::now();
            wait(Duration::from_micros(us));
            assert!(start.elapsed() >= Duration::from_micros(us));
        }
        let start = std::time::Instant::now();
        wait(Duration::from_millis(3));
        assert!(start.elapsed() >= Duration::from_millis(3));
        let knobs =
            Knobs::resolve(KnobFlags::default(), env(&[(ENV_CPU_US_PER_ORDER, "50")])).unwrap();
        assert_eq!(knobs.cpu_us_per_order, 50);
        assert!(
            Knobs::resolve(
                KnobFlags::default(),
                env(&[(ENV_CPU_US_PER_ORDER, "20000000")])
            )
            .is_err()
        );
    }

    #[test]
    fn bad_env_is_an_error() {
        assert!(Knobs::resolve(KnobFlags::default(), env(&[(ENV_LATENCY_US, "fast")])).is_err());
        assert!(Knobs::resolve(KnobFlags::default(), env(&[(ENV_LATENCY_US, "-1")])).is_err());
    }

    #[test]
    fn leak_block_size() {
        let k = Knobs {
            leak_kb_per_order: 3,
            ..Knobs::default()
        };
        assert_eq!(k.leak_block().map(|b| b.len()), Some(3072));
        assert!(Knobs::default().leak_block().is_none());
    }
}
