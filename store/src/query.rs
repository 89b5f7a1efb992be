//! The rows of a table as stored, for a read path to plan on: segments read as Parquet,
//! the log tail from memory, cut to a time range.

use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::logical_expr::{Expr, ident, lit};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::Stream;

use crate::StoreError;
use crate::table::{Snapshot, Table};

/// A stream of record batches with its schema known before the first batch.
pub struct BatchStream {
    pub schema: SchemaRef,
    pub batches: Pin<Box<dyn Stream<Item = Result<RecordBatch, StoreError>> + Send>>,
}

/// A half-open time range `[from, to)` on a table's time column; either end may be open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
}

/// A consistent cut of one table's rows, not yet planned.
pub struct Stored {
    pub id: String,
    pub time_column: Option<String>,
    /// The rows as stored within the range, as a DataFusion frame of the store's session.
    pub frame: DataFrame,
}

/// The rows of `table` within `range`. The range is a bound on stored time, so segments
/// outside it are pruned by their statistics.
pub(crate) fn stored(ctx: &SessionContext, table: &Table, range: TimeRange) -> Result<Stored, StoreError> {
    let mut frame = rows(ctx, table, table.snapshot())?;
    if !range.is_open() {
        let time = table.time_column.as_deref().ok_or_else(|| StoreError::InvalidRequest {
            reason: format!("dataset `{}` has no time column, so `from` and `to` cannot be used", table.id),
        })?;
        let data_type = table.schema.field_with_name(time)?.data_type().clone();
        if let Some(from) = range.from {
            frame = frame.filter(ident(time).gt_eq(timestamp(&data_type, from)?))?;
        }
        if let Some(to) = range.to {
            frame = frame.filter(ident(time).lt(timestamp(&data_type, to)?))?;
        }
    }
    Ok(Stored { id: table.id.clone(), time_column: table.time_column.clone(), frame })
}

/// All rows of the snapshot: segments read as Parquet, the tail from memory.
fn rows(ctx: &SessionContext, table: &Table, snapshot: Snapshot) -> Result<DataFrame, StoreError> {
    let tail = MemTable::try_new(table.schema.clone(), vec![snapshot.tail])?;
    let tail = ctx.read_table(Arc::new(tail))?;
    if snapshot.segments.is_empty() {
        return Ok(tail);
    }
    let urls = snapshot.segments.iter().map(ListingTableUrl::parse).collect::<Result<Vec<_>, _>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config =
        ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(table.schema.clone());
    let segments = ctx.read_table(Arc::new(ListingTable::try_new(config)?))?;
    Ok(segments.union(tail)?)
}

fn timestamp(data_type: &DataType, at: DateTime<Utc>) -> Result<Expr, StoreError> {
    Ok(lit(match data_type {
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(at.timestamp_millis()), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            ScalarValue::TimestampMicrosecond(Some(at.timestamp_micros()), tz.clone())
        }
        other => {
            return Err(StoreError::Corrupt { reason: format!("time column has type {other}") });
        }
    }))
}
