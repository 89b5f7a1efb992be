//! A dataset as one reader may query it with SQL: the grant's output as a table, sealed
//! the same way as every other read ([`crate::sealed`]).
//!
//! The reader's statement is planned on top of this table. Only the projection, the limit
//! and bounds on the stored time column reach the grant's plan, as which released columns,
//! how many released rows and which stored time to produce; every other predicate is
//! evaluated above the seal, on released rows only.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use urbanmesh_policy::{AuditEntry, Grant};
use urbanmesh_store::{Store, TimeRange};

use crate::DataspaceError;
use crate::grant;
use crate::sealed::sealed_leaf;

/// One dataset under one reader's grant, for one statement. Its audit entry records the
/// rows the statement drew from it when the table is dropped with the statement.
pub struct SealedTable {
    store: Store,
    dataset: String,
    grant: Grant,
    /// The stored time column, where the grant releases it as stored; bounds on it are
    /// read as a time range.
    time_column: Option<String>,
    schema: SchemaRef,
    /// Where the rows read are counted; none when the table only describes a statement.
    audit: Option<Arc<AuditEntry>>,
}

impl SealedTable {
    pub(crate) fn new(
        store: &Store,
        dataset: &str,
        grant: Grant,
        audit: Option<AuditEntry>,
    ) -> Result<Self, DataspaceError> {
        let stored = store.stored(dataset, TimeRange::default())?;
        // Under a row cap the first rows in time order are released; narrowing the stored
        // rows by a reader's bound would release others (a page), so nothing is narrowed.
        let time_column = stored
            .time_column
            .clone()
            .filter(|time| grant.max_rows.is_none() && crate::sealed::time_released(Some(time), &grant).is_ok());
        let released = grant::release(stored, &grant)?;
        let schema = Arc::new(released.schema().as_arrow().clone());
        let audit = audit.map(Arc::new);
        Ok(Self { store: store.clone(), dataset: dataset.to_owned(), grant, time_column, schema, audit })
    }
}

impl std::fmt::Debug for SealedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedTable").field("dataset", &self.dataset).field("schema", &self.schema).finish()
    }
}

#[async_trait]
impl TableProvider for SealedTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let range = match &self.time_column {
            Some(time) => time_range(filters.iter(), time),
            None => TimeRange::default(),
        };
        let stored = self.store.stored(&self.dataset, grant::stored_range(&self.grant, range)).map_err(external)?;
        let frame = grant::release(stored, &self.grant).map_err(external)?;
        sealed_leaf(frame, &self.schema, projection, limit, self.audit.clone()).await
    }

    /// Bounds on the released stored time narrow the stored rows read; they are checked
    /// again above the seal. No other predicate enters the grant's plan.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        Ok(filters
            .iter()
            .map(|filter| match &self.time_column {
                Some(time) if bounds_time(filter, time) => TableProviderFilterPushDown::Inexact,
                _ => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }
}

fn external(error: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(error))
}

/// The time range `filters` bound `time` to, as a superset: `<=` reads on for a second,
/// since the store cuts a range's instants to the column's unit (a millisecond `to` one
/// nanosecond after a value would exclude it). Filters that bound nothing are ignored.
pub fn time_range<'a>(filters: impl IntoIterator<Item = &'a Expr>, time: &str) -> TimeRange {
    let mut range = TimeRange::default();
    let later = |a: Option<DateTime<Utc>>, b: DateTime<Utc>| Some(a.map_or(b, |a| a.max(b)));
    let earlier = |a: Option<DateTime<Utc>>, b: DateTime<Utc>| Some(a.map_or(b, |a| a.min(b)));
    for filter in filters {
        for (bound, at) in bounds(filter, time) {
            match bound {
                Bound::From => range.from = later(range.from, at),
                Bound::To => range.to = earlier(range.to, at),
            }
        }
    }
    range
}

/// Whether `filter` bounds the time column by a literal instant.
pub fn bounds_time(filter: &Expr, time: &str) -> bool {
    !bounds(filter, time).is_empty()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    /// Rows at or after the instant.
    From,
    /// Rows before the instant.
    To,
}

fn bounds(filter: &Expr, time: &str) -> Vec<(Bound, DateTime<Utc>)> {
    let is_time = |expr: &Expr| matches!(expr, Expr::Column(column) if column.name == time);
    // Past the last instant there is nothing to read on to: the end stays open.
    let next = |at: DateTime<Utc>| at.checked_add_signed(chrono::Duration::seconds(1));
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, at) = match (is_time(left), is_time(right)) {
                (true, false) => (*op, instant(right)),
                (false, true) => match op.swap() {
                    Some(op) => (op, instant(left)),
                    None => return vec![],
                },
                _ => return vec![],
            };
            let Some(at) = at else { return vec![] };
            match op {
                Operator::Gt | Operator::GtEq => vec![(Bound::From, at)],
                Operator::Lt => vec![(Bound::To, at)],
                Operator::LtEq => next(at).map(|to| (Bound::To, to)).into_iter().collect(),
                Operator::Eq => {
                    [Some((Bound::From, at)), next(at).map(|to| (Bound::To, to))].into_iter().flatten().collect()
                }
                _ => vec![],
            }
        }
        Expr::Between(Between { expr, negated: false, low, high }) if is_time(expr) => {
            match (instant(low), instant(high)) {
                (Some(low), Some(high)) => {
                    [Some((Bound::From, low)), next(high).map(|to| (Bound::To, to))].into_iter().flatten().collect()
                }
                _ => vec![],
            }
        }
        _ => vec![],
    }
}

/// The instant a timestamp literal names.
fn instant(expr: &Expr) -> Option<DateTime<Utc>> {
    let Expr::Literal(value, _) = expr else { return None };
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => DateTime::from_timestamp(*v, 0),
        ScalarValue::TimestampMillisecond(Some(v), _) => DateTime::from_timestamp_millis(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => DateTime::from_timestamp_micros(*v),
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(DateTime::from_timestamp_nanos(*v)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("instant")
    }

    fn ms(text: &str) -> Expr {
        lit(ScalarValue::TimestampMillisecond(Some(at(text).timestamp_millis()), Some("UTC".into())))
    }

    #[test]
    fn comparisons_and_between_bound_the_time() {
        let filters = [col("time").gt_eq(ms("2026-03-01T00:00:00Z")), ms("2026-03-02T00:00:00Z").gt(col("time"))];
        let range = time_range(filters.iter(), "time");
        assert_eq!(range.from, Some(at("2026-03-01T00:00:00Z")));
        assert_eq!(range.to, Some(at("2026-03-02T00:00:00Z")));

        let between = col("time").between(ms("2026-03-01T00:00:00Z"), ms("2026-03-01T06:00:00Z"));
        let range = time_range([&between], "time");
        assert_eq!(range.to, Some(at("2026-03-01T06:00:01Z")));
    }

    #[test]
    fn a_bound_at_the_end_of_time_leaves_the_range_open() {
        let last = lit(ScalarValue::TimestampMillisecond(Some(DateTime::<Utc>::MAX_UTC.timestamp_millis()), None));
        let range = time_range([&col("time").lt_eq(last)], "time");
        assert_eq!(range, TimeRange::default());
    }

    #[test]
    fn other_predicates_bound_nothing() {
        let filters = [
            col("value").gt(lit(3.0)),
            col("time").not_eq(ms("2026-03-01T00:00:00Z")),
            col("time").gt(lit("2026-03-01")),
            col("time").gt_eq(ms("2026-03-01T00:00:00Z")).or(col("value").gt(lit(1.0))),
        ];
        for filter in &filters {
            assert!(!bounds_time(filter, "time"), "{filter}");
        }
        assert_eq!(time_range(filters.iter(), "time"), TimeRange::default());
    }
}
