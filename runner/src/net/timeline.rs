//! Clocks: hosts' clocks differ, so the router estimates each daemon's offset from ping
//! exchanges (NTP's four timestamps) and puts every observation on its own timeline.
//! Pure arithmetic; the router feeds it samples.

/// One exchange: the daemon's clock when it sent (`t0`) and got the answer (`t3`), the
/// router's when it received (`t1`) and answered (`t2`); microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub t0: i64,
    pub t1: i64,
    pub t2: i64,
    pub t3: i64,
}

impl Sample {
    /// An exchange the router started: it sent at `a` and got the answer at `d` (its
    /// clock); the daemon got it at `b` and answered at `c` (the daemon's clock). Stored
    /// as the equivalent daemon-started exchange, so [`Sample::offset`] and
    /// [`Sample::delay`] mean the same either way.
    pub fn router_initiated(a: i64, b: i64, c: i64, d: i64) -> Sample {
        let offset = ((a - b) + (d - c)) / 2;
        let delay = (d - a) - (c - b);
        let at = b + offset + delay / 2;
        Sample {
            t0: b,
            t1: at,
            t2: at,
            t3: b + delay,
        }
    }

    /// How far the router's clock is ahead of the daemon's.
    pub fn offset(&self) -> i64 {
        ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2
    }

    /// The round trip spent on the wire (the router's own time taken out).
    pub fn delay(&self) -> i64 {
        (self.t3 - self.t0) - (self.t2 - self.t1)
    }
}

/// A daemon's clock, as the router knows it: the offset of the sample with the smallest
/// round trip among the recent ones (the least disturbed by queueing).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    recent: std::collections::VecDeque<Sample>,
}

/// How many samples are kept.
const KEEP: usize = 8;

impl Clock {
    pub fn add(&mut self, s: Sample) {
        if s.delay() < 0 {
            // Impossible timestamps (a clock jumped mid-exchange): not a sample.
            return;
        }
        if self.recent.len() == KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(s);
    }

    /// The best estimate of the offset, and its uncertainty (half the round trip).
    pub fn offset(&self) -> Option<(i64, i64)> {
        self.recent
            .iter()
            .min_by_key(|s| s.delay())
            .map(|s| (s.offset(), s.delay() / 2))
    }

    /// A daemon timestamp on the router's timeline.
    pub fn to_router(&self, daemon_us: i64) -> i64 {
        daemon_us + self.offset().map_or(0, |(o, _)| o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_ahead_by_a_second_is_put_back() {
        // The daemon's clock is 1 s ahead; the wire takes 100 µs each way; the router
        // answers in 20 µs.
        let s = Sample {
            t0: 1_000_000 + 1_000_000,
            t1: 1_000_100,
            t2: 1_000_120,
            t3: 1_000_220 + 1_000_000,
        };
        assert_eq!(s.offset(), -1_000_000);
        assert_eq!(s.delay(), 200);
        let mut c = Clock::default();
        c.add(s);
        assert_eq!(c.to_router(5_000_000), 4_000_000);
    }

    #[test]
    fn an_exchange_the_router_started_gives_the_same_offset() {
        // Daemon 1 s ahead, 100 µs each way, the daemon answers in 20 µs.
        let s = Sample::router_initiated(1_000, 1_001_100, 1_001_120, 1_220);
        assert_eq!(s.offset(), -1_000_000);
        assert_eq!(s.delay(), 200);
    }

    #[test]
    fn the_least_queued_sample_wins_and_nonsense_is_ignored() {
        let mut c = Clock::default();
        // A slow exchange with an asymmetric path: a biased offset.
        c.add(Sample {
            t0: 0,
            t1: 5_000,
            t2: 5_000,
            t3: 6_000,
        });
        // A quick one: the true offset is 0.
        c.add(Sample {
            t0: 10_000,
            t1: 10_050,
            t2: 10_050,
            t3: 10_100,
        });
        c.add(Sample {
            t0: 0,
            t1: 0,
            t2: 100,
            t3: 50,
        });
        assert_eq!(c.offset(), Some((0, 50)));
        assert_eq!(Clock::default().to_router(7), 7);
    }
}
