//! The data processor: every observation the router delivers, stored as a time series
//! on the management server's timeline (see `store::observations`).

use std::collections::HashMap;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::net::Observation;
use crate::net::router::{Delivered, Router};
use crate::store::{ObservationRecord, Store};

/// At most this many observations go into one atomic batch.
const BATCH: usize = 4096;

/// Stores what arrives until the router goes away; events are also handed to `forward`
/// (the server's loop, which starts event-driven scenarios).
///
/// Whatever has queued up while the last batch was written is the next batch (a group
/// commit: one flush for many observations under load, one per observation when quiet).
/// A daemon's numbered observation below its stored mark is a duplicate — a resend to a
/// restarted server — and is dropped. Once a batch is on disk, `router` is told, and
/// only then are the daemons acknowledged.
pub async fn store_all(
    mut rx: UnboundedReceiver<Delivered>,
    store: Store,
    forward: Option<tokio::sync::mpsc::UnboundedSender<Delivered>>,
    router: Router,
) {
    let mut n: u32 = 0;
    let mut marks: HashMap<(String, String, String), u64> = match store.inbox_marks() {
        Ok(m) => m,
        Err(e) => {
            crate::errln!("data processor: cannot read what was stored before: {e}");
            HashMap::new()
        }
    };
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let mut items = Vec::with_capacity(batch.len());
        let mut moved: HashMap<(String, String, String), u64> = HashMap::new();
        for d in batch.drain(..) {
            if let Some(seq) = d.seq {
                let who = (d.environment.clone(), d.daemon.clone(), d.boot.clone());
                let mark = moved
                    .get(&who)
                    .or_else(|| marks.get(&who))
                    .copied()
                    .unwrap_or(0);
                if seq < mark {
                    continue;
                }
                moved.insert(who, seq + 1);
            }
            if let Some(f) = &forward
                && matches!(d.observation, Observation::Event { .. })
            {
                let _ = f.send(d.clone());
            }
            n = n.wrapping_add(1);
            items.push((record(d), n));
        }
        let moved: Vec<_> = moved.into_iter().collect();
        // The router has handed these over once: they are stored, or tried again, never
        // dropped (a store that cannot write stops everything anyway).
        let mut retry = std::time::Duration::from_millis(100);
        loop {
            let stored = match store.put_observations(&items, &moved) {
                Ok(()) => store.flush_observations().await,
                Err(e) => Err(e),
            };
            match stored {
                Ok(()) => break,
                Err(e) => {
                    crate::errln!(
                        "data processor: cannot store {} observations: {e}; trying again in {:.1}s",
                        items.len(),
                        retry.as_secs_f64()
                    );
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
        for ((env, daemon, boot), next) in moved {
            router.stored(&format!("{env}/{daemon}"), &boot, next - 1);
            marks.insert((env, daemon, boot), next);
        }
    }
}

pub fn record(d: Delivered) -> ObservationRecord {
    let (source, kind, name, text, number) = match d.observation {
        Observation::Event {
            source,
            name,
            value,
            ..
        } => (source, "event", name, Some(value), None),
        Observation::Metric {
            source,
            name,
            value,
            ..
        } => (source, "metric", name, None, Some(value)),
    };
    ObservationRecord {
        at_us: d.at_us,
        environment: d.environment,
        daemon: d.daemon,
        source,
        kind: kind.to_string(),
        name,
        text,
        number,
    }
}
