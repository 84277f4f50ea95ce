//! Wall-clock timestamps and run ids.

use chrono::{SecondsFormat, Utc};

/// Now, as RFC 3339 UTC with milliseconds: what every record stores.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Microseconds since the epoch, on this host's clock: what observations and the
/// daemons' timeline carry.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A new run id: UTC time to the millisecond, then 16 random bits. Ids sort by time,
/// so the store lists runs newest first with a reverse scan.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let salt = h.finish() as u16;
    format!("{}-{salt:04x}", Utc::now().format("%Y%m%d-%H%M%S%.3f"))
}
