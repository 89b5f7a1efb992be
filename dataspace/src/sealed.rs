//! Grant, then request, with a wall between them.
//!
//! The grant's output is a table of its own ([`Released`]) whose scan is planned
//! separately and runs as one opaque leaf ([`SealedGrantExec`]). The reader's filter,
//! projection and limit are planned on top of that table. DataFusion pushes filters
//! through projections, into other filters and into Parquet scans, and would evaluate a
//! reader's predicate on rows the grant holds back; it cannot push anything into a leaf
//! with no children that accepts no filters. Only the projection and the limit reach the
//! grant's plan, as which released columns and how many released rows to produce, which
//! cannot change what a row is or whether a read fails.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties};
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use urbanmesh_policy::{AuditEntry, Grant};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::rows::column_list;
use urbanmesh_store::{Store, TimeRange};

use crate::{DataspaceError, filter, grant};

/// Longest filter expression accepted; deeper expressions are not a query language here.
const MAX_FILTER_LEN: usize = 4096;

/// The plan of `request` under `grant`: the grant's output, then the request on it.
pub(crate) async fn plan(
    store: &Store,
    request: &ReadRequest,
    grant: &Grant,
) -> Result<Arc<dyn ExecutionPlan>, DataspaceError> {
    let range = TimeRange { from: request.from, to: request.to };
    // Under a row cap the first rows in time order are released: a filter's bounds must not
    // narrow the stored rows to another set of first rows (a page).
    let range = match &request.filter {
        Some(filter) if grant.max_rows.is_none() => within_filter(store, request, grant, filter, range).await?,
        _ => range,
    };
    let stored = store.stored(&request.dataset, grant::stored_range(grant, range))?;
    if request.from.is_some() || request.to.is_some() {
        time_released(stored.time_column.as_deref(), grant)?;
    }
    let released = Released::new(grant::release(stored, grant)?);
    let mut frame = store.session().read_table(Arc::new(released))?;
    if let Some(filter) = &request.filter {
        let predicate = parse_filter(&frame, filter)?;
        frame = frame.filter(predicate).map_err(|e| invalid_filter(filter, &e))?;
    }
    if let Some(columns) = &request.columns {
        check_columns(frame.schema().as_arrow(), columns)?;
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        frame = frame.select_columns(&names)?;
    }
    if let Some(limit) = request.limit {
        frame = frame.limit(0, Some(limit))?;
    }
    frame.create_physical_plan().await.map_err(|e| match (&request.filter, e) {
        // Type errors in a filter surface only when the plan is checked.
        (
            Some(filter),
            e @ (DataFusionError::Plan(_) | DataFusionError::SchemaError(..) | DataFusionError::NotImplemented(_)),
        ) => invalid_filter(filter, &e),
        (_, e) => e.into(),
    })
}

/// `range` narrowed to the stored time the reader's filter bounds, where the grant releases
/// the time column as stored: a filter `time >= …` then reads only the segments it can
/// match, as `from` would. The bounds are read from the filter as the engine types and
/// simplifies it, and the filter is still applied to every row read.
async fn within_filter(
    store: &Store,
    request: &ReadRequest,
    grant: &Grant,
    filter: &str,
    range: TimeRange,
) -> Result<TimeRange, DataspaceError> {
    let whole = store.stored(&request.dataset, TimeRange::default())?;
    let Some(time) = whole.time_column.clone().filter(|t| time_released(Some(t), grant).is_ok()) else {
        return Ok(range);
    };
    let frame = store.session().read_table(Arc::new(Released::new(grant::release(whole, grant)?)))?;
    let predicate = parse_filter(&frame, filter)?;
    // A filter the engine cannot type narrows nothing here; planning the read says why.
    let Ok(plan) = frame.filter(predicate).and_then(DataFrame::into_optimized_plan) else { return Ok(range) };
    let mut bounded = TimeRange::default();
    let _ = plan.apply(|node| {
        if let LogicalPlan::Filter(filter) = node {
            bounded = crate::table::time_range(split_conjunction(&filter.predicate), &time);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    Ok(TimeRange {
        from: range.from.into_iter().chain(bounded.from).max(),
        to: range.to.into_iter().chain(bounded.to).min(),
    })
}

/// A time range is a bound on the stored time column, so it may only be asked for where
/// the grant releases that column as stored.
pub(crate) fn time_released(time: Option<&str>, grant: &Grant) -> Result<(), DataspaceError> {
    let Some(time) = time else { return Ok(()) };
    let withheld = grant.masked.iter().any(|c| c == time)
        || grant.columns.as_ref().is_some_and(|columns| !columns.iter().any(|c| c == time));
    if withheld {
        return Err(DataspaceError::InvalidRequest {
            reason: format!("the time column `{time}` is not released to you, so `from` and `to` cannot be used"),
        });
    }
    Ok(())
}

/// The grant's output as a table of its own.
#[derive(Debug)]
pub(crate) struct Released {
    frame: DataFrame,
    schema: SchemaRef,
}

impl Released {
    pub(crate) fn new(frame: DataFrame) -> Self {
        let schema = Arc::new(frame.schema().as_arrow().clone());
        Self { frame, schema }
    }
}

#[async_trait]
impl TableProvider for Released {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        sealed_leaf(self.frame.clone(), &self.schema, projection, limit, None).await
    }

    /// No reader predicate is ever evaluated inside the grant.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>, DataFusionError> {
        Ok(vec![TableProviderFilterPushDown::Unsupported; filters.len()])
    }
}

/// The grant's output `frame` (of `schema`) planned as a sealed leaf: only the projection
/// and the limit reach it. Where `audit` is given, the rows it releases are counted there.
pub(crate) async fn sealed_leaf(
    mut frame: DataFrame,
    schema: &SchemaRef,
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
    audit: Option<Arc<AuditEntry>>,
) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
    if let Some(projection) = projection {
        let names: Vec<&str> = projection.iter().map(|i| schema.field(*i).name().as_str()).collect();
        frame = frame.select_columns(&names)?;
    }
    if let Some(limit) = limit {
        frame = frame.limit(0, Some(limit))?;
    }
    let sealed = SealedGrantExec::new(frame.create_physical_plan().await?);
    Ok(Arc::new(SealedGrantExec { audit, ..sealed }))
}

/// The grant's physical plan, shown to the reader's plan as a leaf: no children to
/// rewrite, no filters accepted, no orderings or statistics passed up.
#[derive(Debug)]
struct SealedGrantExec {
    grant: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
    /// The access log's entry the rows it releases are counted in, if any; kept open
    /// until the last stream ends.
    audit: Option<Arc<AuditEntry>>,
}

impl SealedGrantExec {
    fn new(grant: Arc<dyn ExecutionPlan>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(grant.schema()),
            grant.output_partitioning().clone(),
            grant.pipeline_behavior(),
            grant.boundedness(),
        );
        Self { grant, properties: Arc::new(properties), audit: None }
    }
}

impl DisplayAs for SealedGrantExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SealedGrantExec")
    }
}

impl ExecutionPlan for SealedGrantExec {
    fn name(&self) -> &str {
        "SealedGrantExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion, DataFusionError>,
    ) -> Result<TreeNodeRecursion, DataFusionError> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        self.replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream, DataFusionError> {
        let stream = self.grant.execute(partition, context)?;
        let Some(audit) = self.audit.clone() else { return Ok(stream) };
        let schema = stream.schema();
        let counted = stream.inspect(move |batch| {
            if let Ok(batch) = batch {
                audit.served().add(batch.num_rows() as u64, urbanmesh_store::rows::data_bytes(batch));
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, counted)))
    }
}

fn parse_filter(frame: &DataFrame, filter: &str) -> Result<Expr, DataspaceError> {
    if filter.len() > MAX_FILTER_LEN {
        return Err(DataspaceError::InvalidFilter {
            filter: filter.to_owned(),
            reason: format!("longer than {MAX_FILTER_LEN} bytes"),
        });
    }
    let expr = frame.parse_sql_expr(filter).map_err(|e| invalid_filter(filter, &e))?;
    match filter::refusal(&expr) {
        Some(reason) => Err(DataspaceError::InvalidFilter { filter: filter.to_owned(), reason }),
        None => Ok(expr),
    }
}

fn invalid_filter(filter: &str, error: &DataFusionError) -> DataspaceError {
    DataspaceError::InvalidFilter { filter: filter.to_owned(), reason: plain(error) }
}

fn check_columns(schema: &arrow::datatypes::Schema, columns: &[String]) -> Result<(), DataspaceError> {
    let invalid = |reason: String| DataspaceError::InvalidRequest { reason };
    if columns.is_empty() {
        return Err(invalid("`columns` must name at least one column".into()));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = columns.iter().find(|c| !seen.insert(c.as_str())) {
        return Err(invalid(format!("column `{twice}` is named twice")));
    }
    for column in columns {
        if schema.field_with_name(column).is_err() {
            return Err(invalid(format!("unknown column `{column}`; available: {}", column_list(schema))));
        }
    }
    Ok(())
}

/// DataFusion's message without the placeholder name it gives an unnamed table.
fn plain(error: &DataFusionError) -> String {
    error.to_string().replace("\"?table?\".", "").replace("?table?.", "")
}
