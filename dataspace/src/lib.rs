//! The sealed read path. Every read of a dataset, whichever interface it came through
//! (REST, Flight, the portal, views, and every interface to come), passes here:
//!
//! 1. the dataset's policy decides, for this subject, what it grants ([`ReadGate`]);
//! 2. the grant's output is produced first — released columns, masks, the owner's row
//!    filter, aggregation with small groups suppressed, the row cap ([`grant`]);
//! 3. only then does the reader's request act on that output — projection, filter, limit
//!    ([`sealed`]), across a plan boundary the optimizer cannot see through.
//!
//! So a reader's expression only ever meets released rows, and whether a read fails never
//! depends on rows the grant withholds. The dataset's lifecycle (publish, delete) lives
//! here too, so that a dataset exists as a description and a table together or not at all.

mod error;
mod filter;
mod follower;
mod gate;
mod grant;
mod latest;
mod lifecycle;
mod rules;
mod run;
mod sealed;
mod table;

pub use error::DataspaceError;
pub use follower::{follow, refresh_all};
pub use gate::{Opened, ReadGate};
pub use grant::RECORDS;
pub use latest::{Latest, latest_rows};
pub use lifecycle::{delete, publish};
pub use rules::check_rules;
pub use run::{check, scan};
pub use table::{SealedTable, bounds_time, time_range};

/// Whether a reader's predicate belongs to the filter grammar every read accepts, so that
/// it may be sent to another node as a read's filter.
pub fn is_filter(expr: &datafusion::logical_expr::Expr) -> bool {
    filter::refusal(expr).is_none()
}
