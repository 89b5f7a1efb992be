//! A usage-policy grant applied to the query plan: the owner's row filter, masked and
//! released columns, and aggregate-only release with small groups suppressed.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::{avg, count, sum};
use datafusion::logical_expr::{Expr, SortExpr, ident, lit};
use datafusion::prelude::DataFrame;
use urbanmesh_policy::{Aggregate, Grant};

use crate::StoreError;
use crate::table::Table;

/// The number of rows behind each released bucket.
pub const RECORDS: &str = "records";

/// The rows as the grant releases them, before the reader's own range, filter and projection.
pub(crate) fn restrict(mut frame: DataFrame, grant: &Grant) -> Result<DataFrame, StoreError> {
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
    Ok(frame)
}

/// Buckets of `aggregate.bucket` on the time column, grouped by `aggregate.by`: integer
/// columns summed, floating-point ones averaged, with the count of rows behind each bucket.
/// Buckets over fewer than `min_group` rows (or a smaller sum of `weight`) are left out.
pub(crate) fn aggregated(frame: DataFrame, table: &Table, aggregate: &Aggregate) -> Result<DataFrame, StoreError> {
    let time = table
        .time_column
        .as_deref()
        .ok_or_else(|| StoreError::InvalidRequest { reason: "aggregate-only release needs a time column".into() })?;
    let width = aggregate
        .bucket_seconds()
        .ok_or_else(|| StoreError::InvalidRequest { reason: format!("bad bucket width `{}`", aggregate.bucket) })?;
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

/// `[from, to)` widened to whole buckets, so that a range cannot cut a bucket down to a
/// few rows and tell them apart by difference.
pub(crate) fn bucket_range(
    aggregate: &Aggregate,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>) {
    let Some(width) = aggregate.bucket_seconds() else { return (from, to) };
    let floor = |t: chrono::DateTime<chrono::Utc>| {
        let s = t.timestamp();
        chrono::DateTime::from_timestamp(s - s.rem_euclid(width), 0).unwrap_or(t)
    };
    let ceil = |t: chrono::DateTime<chrono::Utc>| {
        let floored = floor(t);
        if floored == t { t } else { floored.checked_add_signed(chrono::Duration::seconds(width)).unwrap_or(t) }
    };
    (from.map(floor), to.map(ceil))
}

fn quoted(column: &str) -> String {
    format!("\"{}\"", column.replace('"', "\"\""))
}

fn policy_error(part: &str, error: &datafusion::error::DataFusionError) -> StoreError {
    StoreError::InvalidRequest { reason: format!("the dataset's policy ({part}) cannot be applied: {error}") }
}
