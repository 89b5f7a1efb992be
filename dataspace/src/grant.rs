//! The grant's output: the stored rows as the policy releases them to one subject — the
//! owner's row filter, masked and released columns, aggregate-only release with small
//! groups suppressed, and the row cap. Nothing of the reader's request is planned here
//! except the time range, a typed bound on stored time that commutes with the grant.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
use datafusion::logical_expr::{Expr, SortExpr, ident, lit};
use datafusion::prelude::DataFrame;
use urbanmesh_policy::{Aggregate, Grant};
use urbanmesh_store::{Stored, TimeRange};

use crate::DataspaceError;

/// The number of rows behind each released bucket.
pub const RECORDS: &str = "records";

/// The rows the grant releases, in the shape it releases them.
pub(crate) fn release(stored: Stored, grant: &Grant) -> Result<DataFrame, DataspaceError> {
    let Stored { id, time_column, mut frame } = stored;
    if let Some(filter) = &grant.row_filter {
        let predicate = frame.parse_sql_expr(filter).map_err(|e| policy_error("row_filter", &e))?;
        frame = frame.filter(predicate)?;
    }
    for column in &grant.masked {
        let data_type = frame.schema().field_with_unqualified_name(column)?.data_type().clone();
        frame = frame.with_column(column, lit(ScalarValue::try_from(&data_type)?))?;
    }
    if let Some(columns) = &grant.columns {
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        frame = frame.select_columns(&names)?;
    }
    if let Some(aggregate) = &grant.aggregate {
        let time = time_column.as_deref().ok_or_else(|| DataspaceError::Policy {
            part: "aggregate",
            reason: format!("dataset `{id}` has no time column to aggregate on"),
        })?;
        frame = aggregated(frame, time, aggregate)?;
    }
    if let Some(cap) = grant.max_rows {
        // The first rows in time order, so that the cap releases the same rows every time.
        if grant.aggregate.is_none()
            && let Some(time) = time_column.as_deref().filter(|t| frame.schema().has_column_with_unqualified_name(t))
        {
            frame = frame.sort(vec![ident(time).sort(true, false)])?;
        }
        frame = frame.limit(0, Some(usize::try_from(cap).unwrap_or(usize::MAX)))?;
    }
    Ok(frame)
}

/// The stored time to read for `range` under `grant`: under aggregation `[from, to)`
/// widened to whole buckets, so that a range cannot cut a bucket down to a few rows and
/// tell them apart by difference.
pub(crate) fn stored_range(grant: &Grant, range: TimeRange) -> TimeRange {
    match &grant.aggregate {
        Some(aggregate) => {
            let (from, to) = bucket_range(aggregate, range.from, range.to);
            TimeRange { from, to }
        }
        None => range,
    }
}

/// Buckets of `aggregate.bucket` on the time column, grouped by `aggregate.by`: integer
/// columns summed, floating-point ones averaged, with the count of rows behind each bucket.
/// Buckets over fewer than `min_group` rows (or a smaller sum of `weight`) are left out.
fn aggregated(frame: DataFrame, time: &str, aggregate: &Aggregate) -> Result<DataFrame, DataspaceError> {
    let width = aggregate.bucket_seconds().ok_or_else(|| DataspaceError::Policy {
        part: "aggregate",
        reason: format!("bad bucket width `{}`", aggregate.bucket),
    })?;
    let by = aggregate.by.clone().unwrap_or_default();
    let bucket = frame
        .parse_sql_expr(&format!("date_bin(INTERVAL '{width} seconds', {})", quoted(time)))
        .map_err(|e| policy_error("aggregate", &e))?;
    let mut groups = vec![bucket.alias(time)];
    groups.extend(by.iter().map(|c| ident(c.as_str())));
    let mut measures = vec![count(lit(1)).alias(RECORDS)];
    for field in frame.schema().fields() {
        let name = field.name();
        if name == time || by.contains(name) {
            continue;
        }
        match field.data_type() {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => {
                measures.push(sum(ident(name.as_str())).alias(name));
            }
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                measures.push(avg(ident(name.as_str())).alias(name));
            }
            _ => {}
        }
    }
    let size = match &aggregate.weight {
        Some(weight) => ident(weight.as_str()),
        None => ident(RECORDS),
    };
    let threshold = lit(i64::try_from(aggregate.min_group).unwrap_or(i64::MAX));
    let mut order: Vec<SortExpr> = vec![ident(time).sort(true, false)];
    order.extend(by.iter().map(|c| ident(c.as_str()).sort(true, false)));
    Ok(frame
        .aggregate(groups, measures)?
        .filter(
            Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(size), DataType::Float64))
                .gt_eq(Expr::Cast(datafusion::logical_expr::Cast::new(Box::new(threshold), DataType::Float64))),
        )?
        .sort(order)?)
}

fn bucket_range(
    aggregate: &Aggregate,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>) {
    let Some(buckets) = aggregate.buckets() else { return (from, to) };
    (from.map(|t| buckets.start(t)), to.map(|t| buckets.ceil(t)))
}

fn quoted(column: &str) -> String {
    format!("\"{}\"", column.replace('"', "\"\""))
}

fn policy_error(part: &'static str, error: &datafusion::error::DataFusionError) -> DataspaceError {
    DataspaceError::Policy { part, reason: error.to_string() }
}
