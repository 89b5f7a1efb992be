//! Observations: a stream's rows, read through the sealed path (`ReadGate::table`), with
//! `$filter`, `$orderby`, `$skip`, `$top` and `$count` planned on the released rows.
//! The latest observation, as map layers ask for it, comes from the latest rows instead.

use std::sync::Arc;

use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, Utc};
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr as Df, SortExpr, ident, lit};
use futures::TryStreamExt;
use urbanmesh_dataspace::RECORDS;
use urbanmesh_policy::{Interface, Subject};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::StoreError;

use super::StaError;
use super::filter::{Expr, Function, Literal, Op};
use super::graph::{Graph, Observation, micros};
use super::options::Options;
use crate::AppState;
use crate::api::encode::json_objects;

/// One page of observations, and how many match where `$count` asks.
pub(crate) struct Page {
    pub(crate) items: Vec<Observation>,
    pub(crate) count: Option<u64>,
    /// Whether more follow the page.
    pub(crate) more: bool,
}

/// Whether `options` ask for the latest observation only, as Masterportal does:
/// `$orderby=phenomenonTime desc;$top=1`.
fn latest_only(options: &Options) -> bool {
    options.filter.is_none()
        && options.skip == 0
        && options.top == Some(1)
        && !options.count
        && matches!(options.orderby.as_slice(), [order] if order.descending && order.path == ["phenomenonTime"])
}

/// A page of the observations of `streams`, as `options` ask; `at` narrows to one time
/// (an observation named by id).
pub(crate) async fn page(
    state: &AppState,
    subject: &Subject,
    graph: &Graph,
    streams: &[usize],
    options: &Options,
    at: Option<DateTime<Utc>>,
) -> Result<Page, StaError> {
    if at.is_none() && latest_only(options) && streams.iter().all(|s| graph.streams[*s].latest.is_some()) {
        let mut items: Vec<Observation> = streams.iter().filter_map(|s| graph.streams[*s].latest.clone()).collect();
        items.sort_by(|a, b| b.time.cmp(&a.time));
        let more = items.len() > 1;
        items.truncate(1);
        return Ok(Page { items, count: None, more });
    }
    let top = options.top();
    let wanted = options.skip.saturating_add(top).saturating_add(1);
    let mut items = Vec::new();
    let mut count = options.count.then_some(0u64);
    for stream in streams {
        // Each stream's first `skip + top + 1`, merged below: a page across streams.
        let single = streams.len() == 1;
        let (skip, fetch) = if single { (options.skip, top + 1) } else { (0, wanted) };
        let query = Query::new(graph, *stream, options, at)?;
        items.extend(query.rows(state, subject, skip, fetch).await?);
        if let Some(total) = &mut count {
            *total += query.count(state, subject).await?;
        }
    }
    if streams.len() > 1 {
        sort(&mut items, options);
        items.drain(..options.skip.min(items.len()));
    }
    let more = items.len() > top;
    items.truncate(top);
    Ok(Page { items, count, more })
}

fn sort(items: &mut [Observation], options: &Options) {
    items.sort_by(|a, b| {
        for order in &options.orderby {
            let ordering = match order.path.first().map(String::as_str) {
                Some("result") => a.result.as_f64().partial_cmp(&b.result.as_f64()).unwrap_or(std::cmp::Ordering::Equal),
                _ => a.time.cmp(&b.time),
            };
            let ordering = if order.descending { ordering.reverse() } else { ordering };
            if ordering.is_ne() {
                return ordering;
            }
        }
        a.time.cmp(&b.time).then(a.stream.cmp(&b.stream))
    });
}

/// The read of one stream's observations.
struct Query {
    stream: usize,
    dataset: String,
    time: String,
    key: ScalarValue,
    key_column: String,
    column: String,
    aggregated: bool,
    filter: Option<Df>,
    order: Vec<SortExpr>,
    at: Option<DateTime<Utc>>,
}

impl Query {
    fn new(graph: &Graph, stream: usize, options: &Options, at: Option<DateTime<Utc>>) -> Result<Self, StaError> {
        let row = &graph.streams[stream];
        let station = &graph.stations[row.station];
        let source = &graph.sources[station.source];
        let columns = Columns { time: &source.time, result: &row.column };
        let filter = options.filter.as_ref().map(|f| columns.expr(f)).transpose()?;
        let mut order: Vec<SortExpr> = options
            .orderby
            .iter()
            .map(|o| Ok(columns.path(&o.path)?.sort(!o.descending, false)))
            .collect::<Result<_, StaError>>()?;
        order.push(ident(&source.time).sort(true, false));
        Ok(Self {
            stream,
            dataset: source.dataset.clone(),
            time: source.time.clone(),
            key: station.key.clone(),
            key_column: source.key.clone(),
            column: row.column.clone(),
            aggregated: source.bucket_seconds.is_some(),
            filter,
            order,
            at,
        })
    }

    /// The released rows of the stream that match, as a frame of `session`.
    fn frame(
        &self,
        session: &datafusion::prelude::SessionContext,
        table: Arc<dyn TableProvider>,
    ) -> Result<datafusion::prelude::DataFrame, StoreError> {
        let time_type = table.schema().field_with_name(&self.time).map_err(StoreError::from)?.data_type().clone();
        let mut frame = session
            .read_table(table)?
            .filter(ident(&self.key_column).eq(lit(self.key.clone())))?
            .filter(ident(&self.column).is_not_null())?;
        if let Some(at) = self.at {
            frame = frame.filter(ident(&self.time).eq(lit(timestamp(&time_type, at))))?;
        }
        if let Some(filter) = &self.filter {
            frame = frame.filter(retype(filter.clone(), &time_type)?)?;
        }
        Ok(frame)
    }

    fn table(&self, state: &AppState, subject: &Subject) -> Result<Arc<dyn TableProvider>, StaError> {
        let request = ReadRequest::whole(&self.dataset);
        Ok(Arc::new(state.gate.table(subject, &request, Interface::SensorThings, false)?))
    }

    async fn rows(
        &self,
        state: &AppState,
        subject: &Subject,
        skip: usize,
        fetch: usize,
    ) -> Result<Vec<Observation>, StaError> {
        let table = self.table(state, subject)?;
        let (time, column, order) = (self.time.clone(), self.column.clone(), self.order.clone());
        let mut columns = vec![ident(&time), ident(&column)];
        if self.aggregated {
            columns.push(ident(RECORDS));
        }
        let frame = self.frame(state.store.session(), table).map_err(planning_error)?;
        let scan = state
            .store
            .run(move |_| async move {
                let plan = frame.select(columns)?.sort(order)?.limit(skip, Some(fetch))?.create_physical_plan().await;
                plan.map_err(StoreError::from)
            })
            .await
            .map_err(planning_error)?;
        let batches: Vec<_> = scan.batches.try_collect().await.map_err(StaError::from)?;
        let mut items = Vec::new();
        for batch in &batches {
            let times = micros(batch, &time)?;
            let objects = json_objects(batch).map_err(StaError::internal)?;
            for (at, object) in times.into_iter().zip(objects) {
                let Some(at) = at else { continue };
                items.push(Observation {
                    stream: self.stream,
                    time: at,
                    result: object.get(&column).cloned().unwrap_or_default(),
                    records: object.get(RECORDS).and_then(serde_json::Value::as_i64),
                });
            }
        }
        Ok(items)
    }

    async fn count(&self, state: &AppState, subject: &Subject) -> Result<u64, StaError> {
        let table = self.table(state, subject)?;
        let frame = self.frame(state.store.session(), table).map_err(planning_error)?;
        let scan = state
            .store
            .run(move |_| async move {
                let plan = frame.aggregate(vec![], vec![count(lit(1)).alias("n")])?.create_physical_plan().await;
                plan.map_err(StoreError::from)
            })
            .await
            .map_err(planning_error)?;
        let batches: Vec<_> = scan.batches.try_collect().await.map_err(StaError::from)?;
        let n = batches
            .first()
            .and_then(|b| b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().map(|c| c.value(0)))
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Errors of a `$filter` the engine cannot plan (a number compared with text, say) are
/// the caller's.
fn planning_error(error: StoreError) -> StaError {
    if error.is_client_error() { StaError::bad_request(format!("$filter: {error}")) } else { StaError::from(error) }
}

/// How observations' properties map to a stream's columns.
struct Columns<'a> {
    time: &'a str,
    result: &'a str,
}

impl Columns<'_> {
    fn path(&self, path: &[String]) -> Result<Df, StaError> {
        match path.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["phenomenonTime" | "resultTime" | "id" | "@iot.id"] => Ok(ident(self.time)),
            ["result"] => Ok(ident(self.result)),
            _ => Err(StaError::bad_request(format!(
                "Observations can be filtered and ordered by phenomenonTime, resultTime and result, not `{}`",
                path.join("/")
            ))),
        }
    }

    fn expr(&self, expr: &Expr) -> Result<Df, StaError> {
        Ok(match expr {
            Expr::Literal(literal) => match literal {
                Literal::Null => lit(ScalarValue::Null),
                Literal::Bool(b) => lit(*b),
                Literal::Number(n) => lit(*n),
                Literal::Text(s) => lit(s.clone()),
                Literal::Time(t) => time_literal(*t),
                Literal::Geometry(_) => return Err(StaError::bad_request("$filter: observations have no geometry")),
            },
            Expr::Path(path) => self.path(path)?,
            Expr::Not(inner) => Df::Not(Box::new(self.expr(inner)?)),
            Expr::Negate(inner) => Df::Negative(Box::new(self.expr(inner)?)),
            Expr::Binary(left, op, right) => {
                let null = |e: &Expr| matches!(e, Expr::Literal(Literal::Null));
                match (op, null(left), null(right)) {
                    (Op::Eq, false, true) => return Ok(self.expr(left)?.is_null()),
                    (Op::Ne, false, true) => return Ok(self.expr(left)?.is_not_null()),
                    _ => {}
                }
                let (l, r) = (self.expr(left)?, self.expr(right)?);
                match op {
                    Op::Eq => l.eq(r),
                    Op::Ne => l.not_eq(r),
                    Op::Gt => l.gt(r),
                    Op::Ge => l.gt_eq(r),
                    Op::Lt => l.lt(r),
                    Op::Le => l.lt_eq(r),
                    Op::And => l.and(r),
                    Op::Or => l.or(r),
                    Op::Add => l + r,
                    Op::Sub => l - r,
                    Op::Mul => l * r,
                    Op::Div => l / r,
                    Op::Mod => l % r,
                }
            }
            Expr::Call(function, arguments) => {
                let mut args = arguments.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
                let part = |name: &str, args: &mut Vec<Df>| {
                    let mut call = vec![lit(name)];
                    call.append(args);
                    datafusion::functions::datetime::date_part().call(call)
                };
                match function {
                    Function::Year => part("year", &mut args),
                    Function::Month => part("month", &mut args),
                    Function::Day => part("day", &mut args),
                    Function::Hour => part("hour", &mut args),
                    Function::Minute => part("minute", &mut args),
                    Function::Second => part("second", &mut args),
                    Function::Round => datafusion::functions::math::round().call(args),
                    Function::Floor => datafusion::functions::math::floor().call(args),
                    Function::Ceiling => datafusion::functions::math::ceil().call(args),
                    Function::Now => time_literal(Utc::now()),
                    other => {
                        return Err(StaError::bad_request(format!(
                            "$filter: `{other:?}` does not apply to observations' times and results"
                        )));
                    }
                }
            }
        })
    }
}

/// A time as a literal in microseconds, UTC; [`retype`] gives it the column's type.
fn time_literal(at: DateTime<Utc>) -> Df {
    lit(ScalarValue::TimestampMicrosecond(Some(at.timestamp_micros()), Some("UTC".into())))
}

fn timestamp(data_type: &DataType, at: DateTime<Utc>) -> ScalarValue {
    let micros = at.timestamp_micros();
    match data_type {
        DataType::Timestamp(TimeUnit::Second, tz) => ScalarValue::TimestampSecond(Some(micros.div_euclid(1_000_000)), tz.clone()),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => ScalarValue::TimestampMillisecond(Some(micros.div_euclid(1000)), tz.clone()),
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            ScalarValue::TimestampNanosecond(Some(micros.saturating_mul(1000)), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => ScalarValue::TimestampMicrosecond(Some(micros), tz.clone()),
        _ => ScalarValue::TimestampMicrosecond(Some(micros), Some("UTC".into())),
    }
}

/// `expr` with every time literal in the time column's own type, so that a comparison
/// with the time column stays a bound on stored time (which prunes segments).
fn retype(expr: Df, data_type: &DataType) -> Result<Df, datafusion::error::DataFusionError> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    expr.transform(|e| {
        Ok(match e {
            Df::Literal(ScalarValue::TimestampMicrosecond(Some(micros), _), _) => {
                let at = DateTime::from_timestamp_micros(micros).unwrap_or_default();
                Transformed::yes(lit(timestamp(data_type, at)))
            }
            other => Transformed::no(other),
        })
    })
    .map(|t| t.data)
}
