//! The data processor: every observation the router delivers, stored as a time series
//! on the management server's timeline (see `store::observations`).

use tokio::sync::mpsc::UnboundedReceiver;

use crate::net::Observation;
use crate::net::router::Delivered;
use crate::store::{ObservationRecord, SCHEMA_VERSION, Store};

/// Stores what arrives until the router goes away; events are also handed to `forward`
/// (the server's loop, which starts event-driven scenarios).
pub async fn store_all(
    mut rx: UnboundedReceiver<Delivered>,
    store: Store,
    forward: Option<tokio::sync::mpsc::UnboundedSender<Delivered>>,
) {
    let mut n: u32 = 0;
    while let Some(d) = rx.recv().await {
        n = n.wrapping_add(1);
        if let Some(f) = &forward
            && matches!(d.observation, Observation::Event { .. })
        {
            let _ = f.send(d.clone());
        }
        if let Err(e) = store.put_observation(&record(d), n) {
            crate::errln!("data processor: cannot store an observation: {e}");
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
        v: SCHEMA_VERSION,
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
