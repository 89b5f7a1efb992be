//! Durable storage of dataset rows and the query path over them.
//!
//! Write: decoded or received rows are checked against the dataset's Arrow schema
//! ([`rows`], [`decode`], [`conform`]), appended to a write-ahead log in sled and
//! acknowledged after a shared fsync ([`commit`]). A background [`compaction`] moves the
//! log tail into immutable, time-sorted Parquet segments and swaps the manifest.
//!
//! Read: [`Store::stored`] gives a consistent cut of a table's rows (segments plus log tail)
//! within a time range, as a DataFusion frame. The store knows nothing of callers or
//! policies: the sealed read path (`urbanmesh-dataspace`) plans grant and request on it,
//! on the store's query runtime so that decoding never holds up the I/O threads.

pub mod conform;
pub mod decode;
pub mod rows;

mod budget;
mod commit;
mod compaction;
mod error;
mod extent;
mod failpoint;
mod latest;
mod limits;
mod location;
mod manifest;
mod merging;
mod metrics;
mod query;
mod removal;
mod run;
mod segment;
mod space;
mod store;
mod table;
mod wal;
mod withdrawal;

pub use error::StoreError;
pub use extent::TimeExtent;
pub use failpoint::{FAILPOINT_ENV, FailAction, Failpoints};
pub use latest::LatestRows;
pub use limits::QueryLimits;
pub use query::{BatchStream, Stored, TimeRange};
pub use rows::RowError;
pub use store::{Appended, StagedAppend, Store, StoreConfig, TableStats};
