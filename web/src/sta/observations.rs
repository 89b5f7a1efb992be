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

/// How a page of observations is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    /// As a collection of its own: `more` is exact.
    Collection,
    /// Inside `$expand`: the latest observation comes from the latest rows, and `more`
    /// says only that older ones may exist.
    Expanded,
    /// The one observation at this time (named by its id).
    At(DateTime<Utc>),
}

/// A page of the observations of `streams`, as `options` ask.
pub(crate) async fn page(
    state: &AppState,
    subject: &Subject,
    graph: &Graph,
    streams: &[usize],
    options: &Options,
    asked: Asked,
) -> Result<Page, StaError> {
    if asked == Asked::Expanded
        && latest_only(options)
        && let [stream] = streams
        && let Some(latest) = &graph.streams[*stream].latest
    {
        return Ok(Page { items: vec![latest.clone()], count: None, more: true });
    }
    let at = match asked {
        Asked::At(at) => Some(at),
        Asked::Collection | Asked::Expanded => None,
    };
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
    let more = top > 0 && items.len() > top;
    items.truncate(top);
    Ok(Page { items, count, more })
}

fn sort(items: &mut [Observation], options: &Options) {
    items.sort_by(|a, b| {
        for order in &options.orderby {
            let ordering = match order.path.first().map(String::as_str) {
                Some("result") => {
                    a.result.as_f64().partial_cmp(&b.result.as_f64()).unwrap_or(std::cmp::Ordering::Equal)
                }
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
        let columns = Columns { time: &source.time, result: &row.column, bucket_seconds: source.bucket_seconds };
        let filter = options.filter.as_ref().map(|f| columns.condition(f)).transpose()?;
        let mut order: Vec<SortExpr> = options
            .orderby
            .iter()
            .map(|o| Ok(columns.path(&o.path, "$orderby")?.0.sort(!o.descending, false)))
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
            let results = batch.column_by_name(&column).map(numbers).transpose()?;
            let records = batch.column_by_name(RECORDS).map(numbers).transpose()?;
            for (row, at) in times.into_iter().enumerate() {
                let Some(at) = at else { continue };
                let result = results.as_ref().and_then(|r| r.get(row)).cloned().unwrap_or_default();
                let records = records.as_ref().and_then(|r| r.get(row)).and_then(serde_json::Value::as_i64);
                items.push(Observation { stream: self.stream, time: at, result, records });
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

/// A numeric column's values as JSON numbers: integers as integers.
fn numbers(column: &arrow::array::ArrayRef) -> Result<Vec<serde_json::Value>, StaError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    let integer = column.data_type().is_integer();
    let target = if integer { DataType::Int64 } else { DataType::Float64 };
    let cast = arrow::compute::cast(column, &target).map_err(|e| StaError::internal(format!("results: {e}")))?;
    Ok((0..cast.len())
        .map(|row| match (cast.is_valid(row), integer) {
            (false, _) => serde_json::Value::Null,
            (true, true) => serde_json::Value::from(cast.as_primitive::<Int64Type>().value(row)),
            (true, false) => serde_json::Number::from_f64(cast.as_primitive::<Float64Type>().value(row))
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
        })
        .collect())
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
    /// A bucket's width, where observations are aggregates: their result time is its end.
    bucket_seconds: Option<i64>,
}

/// What a `$filter` expression over observations yields, checked before it is planned so
/// that a mistake is named rather than failing in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Number,
    Time,
    Bool,
    Text,
    Null,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Self::Number => "a number",
            Self::Time => "a time",
            Self::Bool => "true or false",
            Self::Text => "text",
            Self::Null => "null",
        }
    }
}

fn mistake(reason: String) -> StaError {
    StaError::bad_request(format!("$filter: {reason}"))
}

impl Columns<'_> {
    fn path(&self, path: &[String], option: &str) -> Result<(Df, Type), StaError> {
        match path.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["phenomenonTime"] => Ok((ident(self.time), Type::Time)),
            ["resultTime"] => Ok(match self.bucket_seconds {
                Some(seconds) => {
                    let width = ScalarValue::DurationSecond(Some(seconds));
                    (ident(self.time) + lit(width), Type::Time)
                }
                None => (ident(self.time), Type::Time),
            }),
            ["result"] => Ok((ident(self.result), Type::Number)),
            _ => Err(StaError::bad_request(format!(
                "{option}: Observations can be filtered and ordered by phenomenonTime, resultTime and result, not `{}`",
                path.join("/")
            ))),
        }
    }

    /// A `$filter` as a condition on the stream's rows.
    fn condition(&self, expr: &Expr) -> Result<Df, StaError> {
        match self.expr(expr)? {
            (condition, Type::Bool) => Ok(condition),
            (_, other) => Err(mistake(format!("the filter is {}, not a condition", other.name()))),
        }
    }

    fn expr(&self, expr: &Expr) -> Result<(Df, Type), StaError> {
        Ok(match expr {
            Expr::Literal(literal) => match literal {
                Literal::Null => (lit(ScalarValue::Null), Type::Null),
                Literal::Bool(b) => (lit(*b), Type::Bool),
                Literal::Number(n) => (lit(*n), Type::Number),
                Literal::Text(s) => (lit(s.clone()), Type::Text),
                Literal::Time(t) => (time_literal(*t), Type::Time),
                Literal::Geometry(_) => return Err(mistake("observations have no geometry".into())),
            },
            Expr::Path(path) => self.path(path, "$filter")?,
            Expr::Not(inner) => match self.expr(inner)? {
                (inner, Type::Bool) => (Df::Not(Box::new(inner)), Type::Bool),
                (_, other) => return Err(mistake(format!("`not` needs a condition, not {}", other.name()))),
            },
            Expr::Negate(inner) => match self.expr(inner)? {
                (inner, Type::Number) => (Df::Negative(Box::new(inner)), Type::Number),
                (_, other) => return Err(mistake(format!("`-` needs a number, not {}", other.name()))),
            },
            Expr::Binary(left, op, right) => self.binary(left, *op, right)?,
            Expr::Call(function, arguments) => {
                let arguments = arguments.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
                let types: Vec<Type> = arguments.iter().map(|(_, t)| *t).collect();
                let mut args: Vec<Df> = arguments.into_iter().map(|(e, _)| e).collect();
                let wants = |wanted: Type| -> Result<(), StaError> {
                    match types.iter().find(|t| **t != wanted) {
                        Some(other) => {
                            Err(mistake(format!("`{function:?}` needs {}, not {}", wanted.name(), other.name())))
                        }
                        None => Ok(()),
                    }
                };
                let part = |name: &str, args: &mut Vec<Df>| {
                    let mut call = vec![lit(name)];
                    call.append(args);
                    (datafusion::functions::datetime::date_part().call(call), Type::Number)
                };
                match function {
                    Function::Year
                    | Function::Month
                    | Function::Day
                    | Function::Hour
                    | Function::Minute
                    | Function::Second => {
                        wants(Type::Time)?;
                        let name = format!("{function:?}").to_lowercase();
                        part(&name, &mut args)
                    }
                    Function::Round | Function::Floor | Function::Ceiling => {
                        wants(Type::Number)?;
                        let call = match function {
                            Function::Round => datafusion::functions::math::round().call(args),
                            Function::Floor => datafusion::functions::math::floor().call(args),
                            _ => datafusion::functions::math::ceil().call(args),
                        };
                        (call, Type::Number)
                    }
                    Function::Now => (time_literal(Utc::now()), Type::Time),
                    other => {
                        return Err(mistake(format!("`{other:?}` does not apply to observations' times and results")));
                    }
                }
            }
        })
    }

    fn binary(&self, left: &Expr, op: Op, right: &Expr) -> Result<(Df, Type), StaError> {
        let ((l, lt), (r, rt)) = (self.expr(left)?, self.expr(right)?);
        let comparison = matches!(op, Op::Eq | Op::Ne | Op::Gt | Op::Ge | Op::Lt | Op::Le);
        if comparison && (lt == Type::Null || rt == Type::Null) {
            let value = if lt == Type::Null { r } else { l };
            return match op {
                Op::Eq => Ok((value.is_null(), Type::Bool)),
                Op::Ne => Ok((value.is_not_null(), Type::Bool)),
                _ => Err(mistake("null can only be compared with eq and ne".into())),
            };
        }
        let typed = match op {
            Op::And | Op::Or if lt == Type::Bool && rt == Type::Bool => Type::Bool,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod if lt == Type::Number && rt == Type::Number => Type::Number,
            _ if comparison && lt == rt => Type::Bool,
            _ => {
                return Err(mistake(
                    format!("`{op:?}` cannot combine {} with {}", lt.name(), rt.name()).to_lowercase(),
                ));
            }
        };
        let combined = match op {
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
        };
        Ok((combined, typed))
    }
}

/// A time as a literal in microseconds, UTC; [`retype`] gives it the column's type.
fn time_literal(at: DateTime<Utc>) -> Df {
    lit(ScalarValue::TimestampMicrosecond(Some(at.timestamp_micros()), Some("UTC".into())))
}

fn timestamp(data_type: &DataType, at: DateTime<Utc>) -> ScalarValue {
    let micros = at.timestamp_micros();
    match data_type {
        DataType::Timestamp(TimeUnit::Second, tz) => {
            ScalarValue::TimestampSecond(Some(micros.div_euclid(1_000_000)), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(micros.div_euclid(1000)), tz.clone())
        }
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
