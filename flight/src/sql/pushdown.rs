//! Aggregates over one member's table are computed at the member: a `GROUP BY` whose input
//! is a single member table (with filters the read grammar accepts) is sent to the member
//! as an SQL statement of its own, and only the groups travel. The member answers it
//! through its own Flight SQL, for this node or, for anyone who is not this node's staff,
//! as for the public; its sealed read path, budgets and access log apply there.
//!
//! The rule rewrites `Aggregate(Filter?(TableScan(member table)))` into a scan of the
//! member's answer, projected back to the aggregate's own column names. Only plain
//! `count`, `sum`, `min`, `max` and `avg` over columns are sent; anything else is
//! computed here over the member's rows as before.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, TableReference};
use datafusion::datasource::{TableType, provider_as_source, source_as_provider};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Aggregate, Expr, Filter, LogicalPlan, LogicalPlanBuilder, TableScan};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::StreamingTableExec;

use super::member_table::{Ask, MemberRead, MemberTable};

/// Aggregate functions a member computes as this node would.
const SENT: &[&str] = &["count", "sum", "min", "max", "avg"];

/// The optimizer rule; see the module.
#[derive(Debug, Default)]
pub(crate) struct AggregateAtMember;

impl OptimizerRule for AggregateAtMember {
    fn name(&self) -> &str {
        "aggregate_at_member"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>, DataFusionError> {
        let LogicalPlan::Aggregate(aggregate) = &plan else { return Ok(Transformed::no(plan)) };
        match at_member(aggregate)? {
            Some(rewritten) => Ok(Transformed::yes(rewritten)),
            None => Ok(Transformed::no(plan)),
        }
    }
}

/// The aggregate as a scan of the member's answer, if it can be sent.
fn at_member(aggregate: &Aggregate) -> Result<Option<LogicalPlan>, DataFusionError> {
    // Down to the scan, through projections of plain columns and one filter.
    let mut input = aggregate.input.as_ref();
    let mut filter = None;
    let scan = loop {
        match input {
            LogicalPlan::TableScan(scan) => break scan,
            LogicalPlan::Projection(projection) if projection.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                input = projection.input.as_ref();
            }
            LogicalPlan::Filter(Filter { predicate, input: below, .. }) if filter.is_none() => {
                filter = Some(predicate);
                input = below.as_ref();
            }
            _ => return Ok(None),
        }
    };
    let Some(table) = member_table(scan) else { return Ok(None) };
    if scan.fetch.is_some()
        || !aggregate.group_expr.iter().all(|e| matches!(e, Expr::Column(_)))
        || !aggregate.aggr_expr.iter().all(sendable)
        || filter.is_some_and(|f| !split_conjunction(f).into_iter().all(urbanmesh_dataspace::is_filter))
    {
        return Ok(None);
    }
    let Some(statement) = statement(aggregate, scan, filter, table.dataset())? else { return Ok(None) };
    // The member's answer, in the aggregate's order of columns and types.
    let fields: Vec<Field> = aggregate
        .schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| f.as_ref().clone().with_name(format!("c{i}")))
        .collect();
    let answer = MemberAnswer { read: table.read(), statement, schema: Arc::new(Schema::new(fields)) };
    let name = TableReference::bare("member_answer");
    let columns: Vec<Expr> = aggregate
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some(name.clone()), format!("c{i}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let plan = LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(answer)), None)?.project(columns)?.build()?;
    Ok(Some(plan))
}

fn member_table(scan: &TableScan) -> Option<Arc<MemberTable>> {
    let provider = source_as_provider(&scan.source).ok()?;
    let any: Arc<dyn std::any::Any + Send + Sync> = provider;
    any.downcast::<MemberTable>().ok()
}

/// A plain aggregate of columns (or of `*`).
fn sendable(expr: &Expr) -> bool {
    let expr = match expr {
        Expr::Alias(alias) => alias.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = expr else { return false };
    SENT.contains(&func.name())
        && !params.distinct
        && params.filter.is_none()
        && params.order_by.is_empty()
        && params.args.iter().all(|a| matches!(a, Expr::Column(_) | Expr::Literal(..)))
}

/// The statement the member runs: the same aggregate over its own dataset, named as its
/// own schema's table.
fn statement(
    aggregate: &Aggregate,
    scan: &TableScan,
    filter: Option<&Expr>,
    dataset: &str,
) -> Result<Option<String>, DataFusionError> {
    let own = TableReference::bare(dataset);
    let requalify = |expr: &Expr| -> Result<Expr, DataFusionError> {
        use datafusion::common::tree_node::TreeNode;
        Ok(expr
            .clone()
            .transform(|e| match e {
                Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new(Some(own.clone()), c.name)))),
                other => Ok(Transformed::no(other)),
            })?
            .data)
    };
    let mut builder = LogicalPlanBuilder::scan(own.clone(), Arc::clone(&scan.source), scan.projection.clone())?;
    if let Some(filter) = filter {
        builder = builder.filter(requalify(filter)?)?;
    }
    let groups = aggregate.group_expr.iter().map(&requalify).collect::<Result<Vec<_>, _>>()?;
    let measures = aggregate.aggr_expr.iter().map(&requalify).collect::<Result<Vec<_>, _>>()?;
    let aggregated = builder.aggregate(groups, measures)?;
    // The answer's columns in the aggregate's order, named c0, c1, …
    let columns: Vec<Expr> = aggregated
        .schema()
        .columns()
        .into_iter()
        .enumerate()
        .map(|(i, column)| Expr::Column(column).alias(format!("c{i}")))
        .collect();
    let plan = aggregated.project(columns)?.build()?;
    Ok(datafusion::sql::unparser::plan_to_sql(&plan).ok().map(|sql| sql.to_string()))
}

/// What the member answered to the statement, as a table.
struct MemberAnswer {
    read: Arc<MemberRead>,
    statement: String,
    schema: SchemaRef,
}

impl std::fmt::Debug for MemberAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberAnswer").field("statement", &self.statement).finish()
    }
}

#[async_trait]
impl TableProvider for MemberAnswer {
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
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>, DataFusionError> {
        let partition = self.read.partition(Ask::Statement(self.statement.clone()), Arc::clone(&self.schema));
        Ok(Arc::new(StreamingTableExec::try_new(
            Arc::clone(&self.schema),
            vec![partition],
            projection,
            [],
            false,
            None,
        )?))
    }
}
