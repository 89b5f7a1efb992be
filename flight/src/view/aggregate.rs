//! A view's own aggregation (e.g. hourly maximum per station), applied to one source's
//! conformed rows so that sources aggregate in parallel, each as a query of the store's
//! query runtime within the query budgets.

use arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
use datafusion::logical_expr::{Expr, ident};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::TryStreamExt;
use urbanmesh_catalog::view::{AggregateFunction, SOURCE_DATASET, SOURCE_NODE, ViewAggregate};
use urbanmesh_store::{Store, StoreError};

/// Buckets of `aggregate.bucket` on `time`, per `by` group and source.
pub(crate) async fn aggregate(
    store: &Store,
    batches: Vec<RecordBatch>,
    time: &str,
    bucket_seconds: u64,
    aggregate: &ViewAggregate,
    order: &[String],
) -> Result<Vec<RecordBatch>, StoreError> {
    if batches.is_empty() {
        return Ok(batches);
    }
    let (time, aggregate, order) = (time.to_owned(), aggregate.clone(), order.to_vec());
    let rows = store
        .run(move |session| async move {
            let frame = planned(&session, batches, &time, bucket_seconds, &aggregate, &order)?;
            Ok::<_, StoreError>(frame.create_physical_plan().await?)
        })
        .await?;
    rows.batches.try_collect().await
}

fn planned(
    context: &SessionContext,
    batches: Vec<RecordBatch>,
    time: &str,
    bucket_seconds: u64,
    aggregate: &ViewAggregate,
    order: &[String],
) -> Result<DataFrame, DataFusionError> {
    let frame = context.read_batches(batches)?;
    let bucket = frame.parse_sql_expr(&format!("date_bin(INTERVAL '{bucket_seconds} seconds', \"{time}\")"))?;
    let mut groups = vec![bucket.alias(time)];
    groups.extend(
        aggregate.by.iter().chain([&SOURCE_NODE.to_owned(), &SOURCE_DATASET.to_owned()]).map(|c| ident(c.as_str())),
    );
    let measures: Vec<Expr> = aggregate
        .values
        .iter()
        .map(|(column, function)| {
            let column_expr = ident(column.as_str());
            let measure = match function {
                AggregateFunction::Min => min(column_expr),
                AggregateFunction::Max => max(column_expr),
                AggregateFunction::Avg => avg(column_expr),
                AggregateFunction::Sum => sum(column_expr),
                AggregateFunction::Count => count(column_expr),
            };
            measure.alias(column)
        })
        .collect();
    let mut sort = vec![ident(time).sort(true, false)];
    sort.extend(aggregate.by.iter().map(|c| ident(c.as_str()).sort(true, false)));
    let ordered: Vec<&str> = order.iter().map(String::as_str).collect();
    frame.aggregate(groups, measures).and_then(|f| f.select_columns(&ordered)).and_then(|f| f.sort(sort))
}
