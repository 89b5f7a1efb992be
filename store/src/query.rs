//! The read path: a DataFusion plan over a table's segments and log tail.

use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Expr, ident, lit};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use urbanmesh_protocol::ReadRequest;

use crate::rows::column_list;
use crate::table::{Snapshot, Table};
use crate::{StoreError, filter, shaping};
use urbanmesh_policy::Grant;

/// Longest filter expression accepted; deeper expressions are not a query language here.
const MAX_FILTER_LEN: usize = 4096;
/// Batches computed ahead of a slow reader.
const READ_AHEAD: usize = 4;

/// A stream of record batches with its schema known before the first batch.
pub struct BatchStream {
    pub schema: SchemaRef,
    pub batches: Pin<Box<dyn Stream<Item = Result<RecordBatch, StoreError>> + Send>>,
}

/// Plans `request` and runs it on the query runtime. Returns once the plan is valid,
/// so that a bad filter or column is reported before any data is streamed.
pub(crate) async fn scan(
    ctx: SessionContext,
    runtime: &tokio::runtime::Handle,
    table: Arc<Table>,
    request: ReadRequest,
    grant: Grant,
) -> Result<BatchStream, StoreError> {
    let (planned_tx, planned_rx) = oneshot::channel();
    let (batch_tx, batch_rx) = mpsc::channel(READ_AHEAD);
    runtime.spawn(async move {
        let planned = plan(&ctx, &table, &request, &grant).await;
        let plan = match planned {
            Ok(plan) => {
                let _ = planned_tx.send(Ok(plan.schema()));
                plan
            }
            Err(e) => {
                let _ = planned_tx.send(Err(e));
                return;
            }
        };
        let mut stream = match execute_stream(plan, ctx.task_ctx()) {
            Ok(stream) => stream,
            Err(e) => {
                let _ = batch_tx.send(Err(e.into())).await;
                return;
            }
        };
        while let Some(batch) = stream.next().await {
            if batch_tx.send(batch.map_err(StoreError::from)).await.is_err() {
                break; // the reader went away
            }
        }
    });
    let schema = planned_rx.await.map_err(|_| StoreError::ShuttingDown)??;
    Ok(BatchStream { schema, batches: Box::pin(ReceiverStream::new(batch_rx)) })
}

/// Plans `request` without running it: the output schema, or why the request is invalid.
pub(crate) async fn check(
    ctx: SessionContext,
    runtime: &tokio::runtime::Handle,
    table: Arc<Table>,
    request: ReadRequest,
    grant: Grant,
) -> Result<SchemaRef, StoreError> {
    runtime
        .spawn(async move { plan(&ctx, &table, &request, &grant).await.map(|plan| plan.schema()) })
        .await
        .map_err(|e| StoreError::from_join(e, "query planning"))?
}

async fn plan(
    ctx: &SessionContext,
    table: &Table,
    request: &ReadRequest,
    grant: &Grant,
) -> Result<Arc<dyn ExecutionPlan>, StoreError> {
    let mut frame = shaping::restrict(rows(ctx, table, table.snapshot())?, grant)?;
    let (from, to) = match &grant.aggregate {
        Some(aggregate) => shaping::bucket_range(aggregate, request.from, request.to),
        None => (request.from, request.to),
    };
    if from.is_some() || to.is_some() {
        let time = table.time_column.as_deref().ok_or_else(|| StoreError::InvalidRequest {
            reason: format!("dataset `{}` has no time column, so `from` and `to` cannot be used", table.id),
        })?;
        let data_type = frame
            .schema()
            .field_with_unqualified_name(time)
            .map_err(|_| StoreError::InvalidRequest {
                reason: format!("the time column `{time}` is not released to you, so `from` and `to` cannot be used"),
            })?
            .data_type()
            .clone();
        if let Some(from) = from {
            frame = frame.filter(ident(time).gt_eq(timestamp(&data_type, from)?))?;
        }
        if let Some(to) = to {
            frame = frame.filter(ident(time).lt(timestamp(&data_type, to)?))?;
        }
    }
    if let Some(aggregate) = &grant.aggregate {
        frame = shaping::aggregated(frame, table, aggregate)?;
    }
    if let Some(filter) = &request.filter {
        let predicate = parse_filter(&frame, filter)?;
        frame = frame
            .filter(predicate)
            .map_err(|e| StoreError::InvalidFilter { filter: filter.clone(), reason: plain(&e) })?;
    }
    if let Some(columns) = &request.columns {
        check_columns(frame.schema().as_arrow(), columns)?;
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        frame = frame.select_columns(&names)?;
    }
    let cap = grant.max_rows.map(|rows| usize::try_from(rows).unwrap_or(usize::MAX));
    let limit = match (request.limit, cap) {
        (Some(asked), Some(cap)) => Some(asked.min(cap)),
        (asked, cap) => asked.or(cap),
    };
    if let Some(limit) = limit {
        frame = frame.limit(0, Some(limit))?;
    }
    frame.create_physical_plan().await.map_err(|e| match (&request.filter, e) {
        // Type errors in a filter surface only when the plan is checked.
        (
            Some(filter),
            e @ (DataFusionError::Plan(_) | DataFusionError::SchemaError(..) | DataFusionError::NotImplemented(_)),
        ) => StoreError::InvalidFilter { filter: filter.clone(), reason: plain(&e) },
        (_, e) => e.into(),
    })
}

/// All rows of the snapshot: segments read as Parquet, the tail from memory.
fn rows(ctx: &SessionContext, table: &Table, snapshot: Snapshot) -> Result<DataFrame, StoreError> {
    let tail = MemTable::try_new(table.schema.clone(), vec![snapshot.tail])?;
    let tail = ctx.read_table(Arc::new(tail))?;
    if snapshot.segments.is_empty() {
        return Ok(tail);
    }
    let urls = snapshot
        .segments
        .iter()
        .map(|path| ListingTableUrl::parse(path.to_string_lossy()))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config =
        ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(table.schema.clone());
    let segments = ctx.read_table(Arc::new(ListingTable::try_new(config)?))?;
    Ok(segments.union(tail)?)
}

fn parse_filter(frame: &DataFrame, filter: &str) -> Result<Expr, StoreError> {
    let invalid = |reason: String| StoreError::InvalidFilter { filter: filter.to_owned(), reason };
    if filter.len() > MAX_FILTER_LEN {
        return Err(invalid(format!("longer than {MAX_FILTER_LEN} bytes")));
    }
    let expr = frame.parse_sql_expr(filter).map_err(|e| invalid(plain(&e)))?;
    match filter::refusal(&expr) {
        Some(reason) => Err(invalid(reason)),
        None => Ok(expr),
    }
}

fn check_columns(schema: &datafusion::arrow::datatypes::Schema, columns: &[String]) -> Result<(), StoreError> {
    if columns.is_empty() {
        return Err(StoreError::InvalidRequest { reason: "`columns` must name at least one column".into() });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = columns.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(StoreError::InvalidRequest { reason: format!("column `{twice}` is named twice") });
    }
    for column in columns {
        if schema.field_with_name(column).is_err() {
            return Err(StoreError::InvalidRequest {
                reason: format!("unknown column `{column}`; available: {}", column_list(schema)),
            });
        }
    }
    Ok(())
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

/// DataFusion's message without the placeholder name it gives an unnamed table.
fn plain(error: &datafusion::error::DataFusionError) -> String {
    error.to_string().replace("\"?table?\".", "").replace("?table?.", "")
}
