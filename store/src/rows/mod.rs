//! Turning loosely typed cells (from JSON, CSV or a spreadsheet) into Arrow columns of a
//! dataset's schema, collecting a precise error for every cell that does not fit.

mod builder;
mod cell;
mod column;

use std::fmt;

use serde::Serialize;

pub use builder::RowsBuilder;
pub use cell::Cell;

/// A schema's column names, for error messages.
pub fn column_list(schema: &datafusion::arrow::datatypes::Schema) -> String {
    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

/// Most errors reported for one rejected batch; the total is still counted.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Why one row (or one column of one row) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// 1-based position among the data rows (the header does not count).
    pub row: usize,
    /// Line in the file or sheet row, where the source has lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column `{column}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The bytes of a batch's values as read (its slices, not the whole buffers they share):
/// what an access-log record counts of the rows a query drew.
pub fn data_bytes(batch: &datafusion::arrow::record_batch::RecordBatch) -> u64 {
    batch.columns().iter().map(|column| column.to_data().get_slice_memory_size().unwrap_or(0) as u64).sum()
}
