//! The span of a table's time column, kept as rows arrive so that the catalogue can
//! state a dataset's temporal coverage without scanning it.

use datafusion::arrow::array::{Array, TimestampMicrosecondArray, TimestampMillisecondArray};
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

/// Earliest and latest time, in microseconds since the epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeExtent {
    pub first_micros: i64,
    pub last_micros: i64,
}

impl TimeExtent {
    /// The extent of column `index` of `batch`, if it is a timestamp column with values.
    pub fn of(batch: &RecordBatch, index: usize) -> Option<Self> {
        let column = batch.column(index);
        let any = column.as_any();
        if let Some(millis) = any.downcast_ref::<TimestampMillisecondArray>() {
            let scale = |v: i64| v.saturating_mul(1000);
            return Some(Self { first_micros: scale(min(millis)?), last_micros: scale(max(millis)?) });
        }
        let micros = any.downcast_ref::<TimestampMicrosecondArray>()?;
        Some(Self { first_micros: min(micros)?, last_micros: max(micros)? })
    }

    pub(crate) fn union(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => Some(Self {
                first_micros: a.first_micros.min(b.first_micros),
                last_micros: a.last_micros.max(b.last_micros),
            }),
            (a, b) => a.or(b),
        }
    }
}
