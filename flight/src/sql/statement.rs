//! An SQL statement, planned for one caller: parsed, held to queries (nothing that defines,
//! changes, copies or configures), its `?` and `$n` parameters bound, and planned over
//! the caller's catalog in a session of its own.
//!
//! A statement travels as a handle (in a ticket, or as a prepared statement's handle):
//! its text and its bound values. Nothing else is kept between calls, so a handle grants
//! nothing: every call plans it anew for whoever makes it.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{self, visit_expressions_mut};
use serde::{Deserialize, Serialize};

use super::names::{self, CATALOG};
use super::pushdown::AggregateAtMember;
use super::tables::{self, CallerCatalog, Planning};
use crate::auth::Caller;
use crate::{FlightContext, FlightError};

/// Longest statement handle accepted: the text and its bound values.
const MAX_HANDLE_BYTES: usize = 1024 * 1024;

/// Longest statement text accepted.
const MAX_SQL_BYTES: usize = 256 * 1024;

/// Operators a statement may hold. The parser builds a chain of them without bound on its
/// depth, and every later pass walks it recursively: a long enough `1+1+…` would overflow
/// the stack. Real statements stay far below.
const MAX_OPERATORS: usize = 2000;

/// Functions whose result grows with an argument rather than with the rows they read
/// (`repeat('x', 1e12)` is folded into one allocation while planning, outside any memory
/// pool), refused like the read filter grammar refuses them.
const UNBOUNDED_FUNCTIONS: &[&str] = &[
    "repeat",
    "lpad",
    "rpad",
    "array_repeat",
    "list_repeat",
    "array_resize",
    "list_resize",
    "range",
    "generate_series",
];

/// A statement and the values bound to its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Statement {
    pub(crate) sql: String,
    /// The bound values as one row of an Arrow IPC stream, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<String>,
}

impl Statement {
    pub(crate) fn new(sql: String) -> Result<Self, FlightError> {
        if sql.len() > MAX_SQL_BYTES {
            return Err(FlightError::Sql { reason: format!("the statement is over {MAX_SQL_BYTES} bytes") });
        }
        Ok(Self { sql, params: None })
    }

    /// The statement with `row` bound to its parameters, in order.
    pub(crate) fn bind(&self, row: &RecordBatch) -> Result<Self, FlightError> {
        if row.num_rows() != 1 {
            return Err(FlightError::Sql {
                reason: format!("parameters are bound one row at a time, got {} rows", row.num_rows()),
            });
        }
        let mut bytes = Vec::new();
        let mut writer =
            StreamWriter::try_new(&mut bytes, &row.schema()).map_err(arrow_flight::error::FlightError::from)?;
        writer.write(row).map_err(arrow_flight::error::FlightError::from)?;
        writer.finish().map_err(arrow_flight::error::FlightError::from)?;
        drop(writer);
        Ok(Self { sql: self.sql.clone(), params: Some(STANDARD.encode(bytes)) })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, FlightError> {
        if bytes.len() > MAX_HANDLE_BYTES {
            return Err(FlightError::Sql { reason: format!("statement handle over {MAX_HANDLE_BYTES} bytes") });
        }
        let statement: Self = serde_json::from_slice(bytes)
            .map_err(|e| FlightError::Sql { reason: format!("invalid statement handle: {e}") })?;
        Self::new(statement.sql.clone())?;
        Ok(statement)
    }

    /// The bound values, in parameter order.
    fn values(&self) -> Result<Option<Vec<ScalarValue>>, FlightError> {
        let Some(params) = &self.params else { return Ok(None) };
        let invalid = |reason: String| FlightError::Sql { reason: format!("invalid bound parameters: {reason}") };
        let bytes = STANDARD.decode(params).map_err(|e| invalid(e.to_string()))?;
        crate::ipc_guard::check_stream(&bytes)?;
        let reader = StreamReader::try_new(bytes.as_slice(), None).map_err(|e| invalid(e.to_string()))?;
        let mut values = None;
        for batch in reader {
            let batch = batch.map_err(|e| invalid(e.to_string()))?;
            if batch.num_rows() == 0 {
                continue;
            }
            let row = batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column, 0))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(e.to_string()))?;
            values = Some(row);
        }
        Ok(values)
    }
}

/// A planning state over the caller's catalog: its own datasets found without naming
/// the catalog or the town's schema.
pub(crate) fn state(
    session: &SessionContext,
    context: &FlightContext,
    caller: &Arc<Caller>,
    planning: Planning,
) -> Result<SessionState, FlightError> {
    let listed = tables::list(context, caller)?;
    let catalogs = MemoryCatalogProviderList::new();
    catalogs.register_catalog(
        CATALOG.to_owned(),
        Arc::new(CallerCatalog::new(context, Arc::clone(caller), listed, planning)),
    );
    let mut state = SessionStateBuilder::new_from_existing(session.state())
        .with_catalog_list(Arc::new(catalogs))
        .with_optimizer_rule(Arc::new(AggregateAtMember))
        // No table functions: `generate_series` and `range` make rows without bound.
        .with_table_functions(std::collections::HashMap::new())
        .build();
    let options = state.config_mut().options_mut();
    options.catalog.default_catalog = CATALOG.to_owned();
    options.catalog.default_schema = names::own_schema(context);
    // Planning errors name where in the statement they arise.
    options.sql_parser.collect_spans = true;
    Ok(state)
}

/// The statement's logical plan, with its values bound where it has them.
pub(crate) async fn logical(state: &SessionState, statement: &Statement) -> Result<LogicalPlan, FlightError> {
    bounded_depth(&statement.sql)?;
    let mut parsed =
        state.sql_to_statement(&statement.sql, &datafusion::config::Dialect::Generic).map_err(sql_error)?;
    read_only(&parsed)?;
    number_placeholders(&mut parsed);
    let plan = state.statement_to_plan(parsed).await.map_err(sql_error)?;
    bounded_functions(&plan)?;
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| FlightError::ReadOnly { what: e.message().to_string() })?;
    match statement.values()? {
        Some(values) => plan.with_param_values(values).map_err(sql_error),
        None => Ok(plan),
    }
}

/// The statement's physical plan for the caller, ready to run in `session`.
pub(crate) async fn physical(
    session: SessionContext,
    context: FlightContext,
    caller: Arc<Caller>,
    statement: Statement,
) -> Result<Arc<dyn ExecutionPlan>, FlightError> {
    let state = state(&session, &context, &caller, Planning::Run)?;
    let plan = logical(&state, &statement).await?;
    state.create_physical_plan(&plan).await.map_err(sql_error)
}

/// The parameters a statement takes, `$1` first, typed where their use tells the type.
pub(crate) fn parameters(plan: &LogicalPlan) -> Result<SchemaRef, FlightError> {
    let mut fields: Vec<(usize, Field)> = plan
        .get_parameter_fields()
        .map_err(sql_error)?
        .into_iter()
        .map(|(name, field)| {
            let position = name.trim_start_matches('$').parse::<usize>().unwrap_or(usize::MAX);
            let data_type = field.map_or(arrow::datatypes::DataType::Null, |f| f.data_type().clone());
            (position, Field::new(name, data_type, true))
        })
        .collect();
    fields.sort_by_key(|(position, _)| *position);
    Ok(Arc::new(Schema::new(fields.into_iter().map(|(_, field)| field).collect::<Vec<_>>())))
}

/// Only queries are answered: a statement that defines, changes, copies or configures
/// anything is refused before it is planned.
fn read_only(statement: &DfStatement) -> Result<(), FlightError> {
    let what = match statement {
        DfStatement::Statement(statement) if matches!(**statement, ast::Statement::Query(_)) => return Ok(()),
        DfStatement::Statement(statement) => {
            statement.to_string().split_whitespace().take(2).collect::<Vec<_>>().join(" ").to_uppercase()
        }
        DfStatement::CreateExternalTable(_) => "CREATE EXTERNAL TABLE".to_owned(),
        DfStatement::CopyTo(_) => "COPY".to_owned(),
        DfStatement::Explain(_) => "EXPLAIN".to_owned(),
        DfStatement::Reset(_) => "RESET".to_owned(),
    };
    Err(FlightError::ReadOnly { what })
}

/// Refuses a statement with more operators than [`MAX_OPERATORS`], counted on its tokens
/// (no recursion) before it is parsed.
fn bounded_depth(sql: &str) -> Result<(), FlightError> {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
    // A statement the tokenizer refuses is left to the parser, which says where.
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else { return Ok(()) };
    let operators = tokens
        .iter()
        .filter(|token| match token {
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::LParen => true,
            Token::Word(word) => matches!(word.keyword, Keyword::AND | Keyword::OR | Keyword::NOT),
            _ => false,
        })
        .count();
    if operators > MAX_OPERATORS {
        return Err(FlightError::Sql {
            reason: format!("the statement has {operators} operators, more than {MAX_OPERATORS}"),
        });
    }
    Ok(())
}

/// Refuses a plan that calls one of the [`UNBOUNDED_FUNCTIONS`].
fn bounded_functions(plan: &LogicalPlan) -> Result<(), FlightError> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    let mut refused = None;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let datafusion::logical_expr::Expr::ScalarFunction(call) = e
                    && UNBOUNDED_FUNCTIONS.contains(&call.name())
                {
                    refused = Some(call.name().to_owned());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    match refused {
        Some(function) => {
            Err(FlightError::Sql { reason: format!("`{function}` is not allowed: its result grows without bound") })
        }
        None => Ok(()),
    }
}

/// JDBC and ADBC write parameters as `?`; the planner numbers them `$1`, `$2`, … in the
/// order they appear.
fn number_placeholders(statement: &mut DfStatement) {
    let DfStatement::Statement(statement) = statement else { return };
    let mut count = 0;
    let _ = visit_expressions_mut(statement.as_mut(), |expr| {
        if let ast::Expr::Value(value) = expr
            && let ast::Value::Placeholder(name) = &mut value.value
            && name == "?"
        {
            count += 1;
            *name = format!("${count}");
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A planning error as the caller should see it: our own refusals as they are, the rest as
/// a bad statement (the parser's message names the line and column).
pub(crate) fn sql_error(error: DataFusionError) -> FlightError {
    let error = match error {
        DataFusionError::Context(_, inner) => *inner,
        other => other,
    };
    match error {
        DataFusionError::External(inner) => match inner.downcast::<FlightError>() {
            Ok(flight) => *flight,
            Err(inner) => match inner.downcast::<urbanmesh_dataspace::DataspaceError>() {
                Ok(read) => FlightError::Read(*read),
                Err(other) => FlightError::Sql { reason: other.to_string() },
            },
        },
        DataFusionError::ResourcesExhausted(_) => FlightError::Store(error.into()),
        other => FlightError::Sql { reason: plain(&other) },
    }
}

/// DataFusion's message without its wrapping, with the place in the statement it names.
fn plain(error: &DataFusionError) -> String {
    let message = match error {
        DataFusionError::SQL(parser, _) => parser.to_string(),
        other => other.message().to_string(),
    };
    match error.diagnostic().and_then(|d| d.span) {
        Some(span) if span.start.line > 0 && !message.contains("Line:") => {
            format!("{message} at Line: {}, Column: {}", span.start.line, span.start.column)
        }
        _ => message,
    }
}

/// The schema of a statement's rows, for a `FlightInfo` or a prepared statement.
pub(crate) fn output(plan: &LogicalPlan) -> SchemaRef {
    Arc::new(plan.schema().as_arrow().clone())
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;
    use arrow::ipc::CompressionType;
    use arrow::ipc::writer::IpcWriteOptions;

    use super::*;

    #[test]
    fn compressed_bound_values_are_refused_before_decoding() {
        let row = RecordBatch::try_from_iter([("$1", Arc::new(Int64Array::from(vec![1])) as _)]).expect("row");
        let options = IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME)).expect("lz4");
        let mut bytes = Vec::new();
        let mut writer = StreamWriter::try_new_with_options(&mut bytes, &row.schema(), options).expect("writer");
        writer.write(&row).expect("write");
        writer.finish().expect("finish");
        drop(writer);
        let crafted = Statement { sql: "SELECT ?".into(), params: Some(STANDARD.encode(bytes)) };
        let refused = crafted.values().expect_err("compressed");
        assert!(refused.to_string().contains("compressed"), "{refused}");
        let honest = Statement::new("SELECT ?".into()).expect("short").bind(&row).expect("bound");
        assert_eq!(honest.values().expect("values").map(|v| v.len()), Some(1));
    }

    #[test]
    fn long_operator_chains_are_refused_before_parsing() {
        let chain = format!("SELECT {}1", "1+".repeat(MAX_OPERATORS + 1));
        assert!(bounded_depth(&chain).is_err());
        assert!(bounded_depth("SELECT a + b FROM t WHERE c > 1 AND (d < 2 OR e = 3)").is_ok());
    }
}
