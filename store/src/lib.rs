//! Durable storage of dataset rows and the query path over them.
//!
//! Write: decoded or received rows are checked against the dataset's Arrow schema
//! ([`rows`], [`decode`], [`conform`]), appended to a write-ahead log in sled and
//! acknowledged after a shared fsync ([`commit`]). A background [`compaction`] moves the
//! log tail into immutable, time-sorted Parquet segments and swaps the manifest.
//!
//! Read: [`query`] builds a DataFusion plan over the segments plus the log tail, with the
//! request's projection, time range, filter and limit pushed into the scan, and runs it
//! on a dedicated runtime so that decoding never holds up the I/O threads.

pub mod conform;
pub mod decode;
pub mod rows;

mod commit;
mod compaction;
mod error;
mod extent;
mod failpoint;
mod filter;
mod manifest;
mod metrics;
mod query;
mod removal;
mod segment;
mod shaping;
mod store;
mod table;
mod wal;
mod withdrawal;

pub use error::StoreError;
pub use extent::TimeExtent;
pub use failpoint::{FAILPOINT_ENV, FailAction, Failpoints};
pub use query::BatchStream;
pub use rows::RowError;
pub use shaping::RECORDS;
pub use store::{Appended, StagedAppend, Store, StoreConfig, TableStats};
