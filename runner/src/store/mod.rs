//! The store: runs, scenarios and steps per revision, in sled.
//!
//! **Invariant:** this is the only module that touches sled. Everything else reads and
//! writes typed records through [`Store`].

pub mod artifacts;
pub mod chunk;
pub mod control;
pub mod detail;
mod encoding;
pub mod error;
pub mod gc;
pub mod judged;
pub mod migrate;
pub mod observations;
pub mod releases;
pub mod sink;
pub mod space;
#[expect(clippy::module_inception, reason = "the main type of the module")]
pub mod store;
pub mod tips;

pub use error::StoreError;
pub use observations::ObservationRecord;
pub use sink::StoreSink;
pub use store::Store;
