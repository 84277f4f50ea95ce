//! A daemon's outbox: observations numbered, kept until the router acknowledges them,
//! sent again after a reconnect — so every one arrives exactly once (the router drops a
//! sequence number it has seen). Bounded: when the router is away too long the oldest are
//! dropped, counted, and the count is reported, never silently lost. Pure.

use std::collections::VecDeque;

use super::codec::Observation;

#[derive(Debug)]
pub struct Outbox {
    items: VecDeque<(u64, Observation)>,
    next_seq: u64,
    /// Items with a lower number than this were sent on the current connection.
    sent_up_to: u64,
    capacity: usize,
    /// Dropped because the outbox was full and not yet reported.
    dropped: u64,
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            items: VecDeque::new(),
            next_seq: 1,
            sent_up_to: 1,
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Keeps `o` for sending.
    pub fn push(&mut self, o: Observation) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back((self.next_seq, o));
        self.next_seq += 1;
    }

    /// What to send now: the first sequence number and the items not yet sent on this
    /// connection (at most `max`).
    pub fn to_send(&mut self, max: usize) -> Option<(u64, Vec<Observation>)> {
        // Numbers are consecutive from the front: the first unsent one is found by
        // subtraction, not by a walk over everything unacknowledged.
        let front = self.items.front()?.0;
        let start = self.sent_up_to.saturating_sub(front) as usize;
        let batch: Vec<_> = self.items.iter().skip(start).take(max).cloned().collect();
        let first = batch.first()?.0;
        self.sent_up_to = batch.last().map_or(first, |(s, _)| s + 1);
        Some((first, batch.into_iter().map(|(_, o)| o).collect()))
    }

    /// The router stored everything up to `seq`.
    pub fn ack(&mut self, seq: u64) {
        while self.items.front().is_some_and(|(s, _)| *s <= seq) {
            self.items.pop_front();
        }
    }

    /// A new connection: everything not acknowledged goes again.
    pub fn reconnected(&mut self) {
        self.sent_up_to = self.items.front().map_or(self.next_seq, |(s, _)| *s);
    }

    /// Dropped items not yet reported; reporting resets the count.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The router's side: which sequence numbers of a daemon it has already stored. One per
/// daemon process (its `boot` in `Hello`): a restarted daemon numbers from 1 again.
#[derive(Debug, Default, Clone)]
pub struct Inbox {
    /// Everything below this is stored.
    pub next_expected: u64,
}

impl Inbox {
    /// The observations of a batch that are new, and the sequence number to acknowledge.
    pub fn accept(&mut self, first_seq: u64, items: Vec<Observation>) -> (Vec<Observation>, u64) {
        if self.next_expected == 0 {
            self.next_expected = first_seq;
        }
        let mut fresh = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let seq = first_seq + i as u64;
            // A gap (items the daemon dropped while full) is accepted: the daemon reports
            // the count separately.
            if seq >= self.next_expected {
                fresh.push(item);
                self.next_expected = seq + 1;
            }
        }
        (fresh, self.next_expected.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn obs(i: u64) -> Observation {
        Observation::Metric {
            at_us: i as i64,
            source: "host".into(),
            name: "n".into(),
            value: i as f64,
        }
    }

    fn value(o: &Observation) -> u64 {
        match o {
            Observation::Metric { at_us, .. } | Observation::Event { at_us, .. } => *at_us as u64,
        }
    }

    #[test]
    fn unacknowledged_items_go_again_after_a_reconnect_and_arrive_once() {
        let mut out = Outbox::new(100);
        let mut inbox = Inbox::default();
        let mut stored = Vec::new();
        for i in 0..5 {
            out.push(obs(i));
        }
        let (first, batch) = out.to_send(3).unwrap();
        let (fresh, ack) = inbox.accept(first, batch);
        stored.extend(fresh);
        // The connection drops before the ack arrives; more observations meanwhile.
        out.push(obs(5));
        out.reconnected();
        while let Some((first, batch)) = out.to_send(2) {
            let (fresh, ack) = inbox.accept(first, batch);
            stored.extend(fresh);
            out.ack(ack);
        }
        let _ = ack;
        assert_eq!(
            stored.iter().map(value).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4, 5]
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_and_counts_them() {
        let mut out = Outbox::new(3);
        for i in 0..5 {
            out.push(obs(i));
        }
        assert_eq!(out.take_dropped(), 2);
        assert_eq!(out.take_dropped(), 0);
        let (first, batch) = out.to_send(10).unwrap();
        assert_eq!(first, 3);
        assert_eq!(batch.iter().map(value).collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    proptest! {
        /// Any interleaving of pushes, sends, lost acks and reconnects: the router stores
        /// each observation at most once, in order, and with enough room, all of them.
        #[test]
        fn exactly_once_in_order(ops in proptest::collection::vec(0u8..5, 1..200)) {
            let mut out = Outbox::new(10_000);
            let mut inbox = Inbox::default();
            let mut stored: Vec<u64> = Vec::new();
            let mut pushed = 0u64;
            let mut pending_ack: Option<u64> = None;
            for op in ops {
                match op {
                    0 | 1 => { out.push(obs(pushed)); pushed += 1; }
                    2 => if let Some((first, batch)) = out.to_send(3) {
                        let (fresh, ack) = inbox.accept(first, batch);
                        stored.extend(fresh.iter().map(value));
                        pending_ack = Some(ack);
                    },
                    3 => if let Some(a) = pending_ack.take() { out.ack(a) },
                    _ => { pending_ack = None; out.reconnected(); }
                }
            }
            out.reconnected();
            while let Some((first, batch)) = out.to_send(5) {
                let (fresh, ack) = inbox.accept(first, batch);
                stored.extend(fresh.iter().map(value));
                out.ack(ack);
            }
            prop_assert_eq!(stored, (0..pushed).collect::<Vec<_>>());
        }
    }
}
