//! Flight SQL on the node's Flight port, for ADBC, JDBC, DBeaver and DuckDB.
//!
//! Flight SQL is one more kind of command: a descriptor's command or a ticket that is a
//! protobuf `Any` of a Flight SQL message ([`SqlCommand`]); the node's own routing
//! ([`crate::target`]) tells it from the JSON commands. Statements are read-only and run
//! over the caller's catalog ([`tables`]): this node's datasets through the sealed read
//! path, members' datasets read at the member for this caller, the regional views. Each
//! statement runs within the query budgets of `[limits]`.

mod member_table;
mod metadata;
mod names;
mod pushdown;
mod statement;
mod tables;
mod types;

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult,
    Any, Command, DoPutPreparedStatementResult, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, IpcMessage, SchemaAsIpc, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::Status;

pub(crate) use metadata::Metadata;
pub use names::table_name;
pub(crate) use statement::Statement;

use crate::auth::Caller;
use crate::metrics::FlightMetrics;
use crate::{FlightContext, FlightError};

/// Type URLs of Flight SQL messages start so.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/arrow.flight.protocol.sql.";

/// Batches a parameter binding may send (empty ones included).
const MAX_PARAMETER_BATCHES: usize = 16;

/// The actions of prepared statements.
pub(crate) const CREATE_PREPARED_STATEMENT: &str = "CreatePreparedStatement";
pub(crate) const CLOSE_PREPARED_STATEMENT: &str = "ClosePreparedStatement";

/// What a Flight SQL command asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlCommand {
    /// A statement's rows: a query, a prepared statement, or the ticket of either.
    Statement(Statement),
    /// A catalogue command.
    Metadata(Metadata),
    /// A command this read-only node does not take, by its message name.
    Refused(String),
}

impl SqlCommand {
    /// The command, if `bytes` are a Flight SQL message; `None` for anything else.
    pub(crate) fn recognise(bytes: &[u8]) -> Option<Result<Self, FlightError>> {
        let any = Any::decode(bytes).ok().filter(|any| any.type_url.starts_with(TYPE_URL_PREFIX))?;
        Some(Self::of_any(any))
    }

    fn of_any(any: Any) -> Result<Self, FlightError> {
        let malformed = |e: arrow::error::ArrowError| FlightError::Sql { reason: e.to_string() };
        Ok(match Command::try_from(any).map_err(malformed)? {
            Command::CommandStatementQuery(query) => Self::Statement(Statement::new(query.query)?),
            Command::CommandPreparedStatementQuery(prepared) => {
                Self::Statement(Statement::decode(&prepared.prepared_statement_handle)?)
            }
            Command::TicketStatementQuery(ticket) => Self::Statement(Statement::decode(&ticket.statement_handle)?),
            Command::CommandGetSqlInfo(c) => Self::Metadata(Metadata::SqlInfo(c)),
            Command::CommandGetCatalogs(c) => Self::Metadata(Metadata::Catalogs(c)),
            Command::CommandGetDbSchemas(c) => Self::Metadata(Metadata::DbSchemas(c)),
            Command::CommandGetTables(c) => Self::Metadata(Metadata::Tables(c)),
            Command::CommandGetTableTypes(c) => Self::Metadata(Metadata::TableTypes(c)),
            Command::CommandGetXdbcTypeInfo(c) => Self::Metadata(Metadata::XdbcTypeInfo(c)),
            Command::CommandGetPrimaryKeys(c) => Self::Metadata(Metadata::PrimaryKeys(c)),
            other => Self::Refused(other.type_url().trim_start_matches(TYPE_URL_PREFIX).to_owned()),
        })
    }

    /// The ticket that reads this command's answer.
    pub(crate) fn ticket(&self) -> Result<Ticket, FlightError> {
        let any = match self {
            Self::Statement(statement) => TicketStatementQuery { statement_handle: statement.encode().into() }.as_any(),
            Self::Metadata(metadata) => metadata.command().into_any(),
            Self::Refused(name) => return Err(refused(name)),
        };
        Ok(Ticket::new(any.encode_to_vec()))
    }
}

fn refused(name: &str) -> FlightError {
    FlightError::ReadOnly { what: name.to_owned() }
}

/// The schema of the command's answer, planned for the caller.
pub(crate) async fn schema(
    context: &FlightContext,
    caller: &Caller,
    command: &SqlCommand,
) -> Result<SchemaRef, FlightError> {
    match command {
        SqlCommand::Statement(statement) => Ok(describe(context, caller, statement).await?.0),
        SqlCommand::Metadata(metadata) => metadata.schema(),
        SqlCommand::Refused(name) => Err(refused(name)),
    }
}

/// `GetFlightInfo`: the answer's schema and one endpoint whose ticket reads it.
pub(crate) async fn flight_info(
    context: &FlightContext,
    caller: &Caller,
    command: SqlCommand,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, FlightError> {
    let schema = schema(context, caller, &command).await?;
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(descriptor)
        .with_endpoint(FlightEndpoint::new().with_ticket(command.ticket()?))
        .with_total_records(-1)
        .with_total_bytes(-1))
}

/// `DoGet`: the statement's rows, or the catalogue command's answer.
pub(crate) async fn do_get(
    context: &FlightContext,
    metrics: &FlightMetrics,
    caller: Caller,
    command: SqlCommand,
) -> Result<impl Stream<Item = Result<FlightData, Status>> + Send + 'static, FlightError> {
    let (schema, batches) = match command {
        SqlCommand::Statement(statement) => {
            let (planner, caller) = (context.clone(), Arc::new(caller));
            let rows =
                context.store.run(move |session| statement::physical(session, planner, caller, statement)).await?;
            let batches = rows.batches.map_err(|e| arrow_flight::error::FlightError::ExternalError(Box::new(e)));
            (rows.schema, batches.boxed())
        }
        SqlCommand::Metadata(metadata) => {
            let batch: RecordBatch = metadata.answer(context, &caller).await?;
            (batch.schema(), futures::stream::iter([Ok(batch)]).boxed())
        }
        SqlCommand::Refused(name) => return Err(refused(&name)),
    };
    let (rows, bytes) = (metrics.rows_sent.clone(), metrics.bytes_sent.clone());
    let counted = batches.inspect_ok(move |batch| {
        rows.inc_by(batch.num_rows() as u64);
    });
    Ok(FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(crate::do_get::MAX_FLIGHT_DATA_BYTES)
        .build(counted)
        .inspect_ok(move |data| {
            bytes.inc_by((data.data_body.len() + data.data_header.len()) as u64);
        })
        .map_err(crate::do_get::status_of))
}

/// The actions prepared statements take.
pub(crate) fn actions() -> Vec<ActionType> {
    [
        (CREATE_PREPARED_STATEMENT, "Plans a statement and returns a handle, its result schema and its parameters"),
        (CLOSE_PREPARED_STATEMENT, "Forgets a prepared statement (nothing is kept between calls)"),
    ]
    .into_iter()
    .map(|(r#type, description)| ActionType { r#type: r#type.to_owned(), description: description.to_owned() })
    .collect()
}

/// `DoAction` for prepared statements: the answer's body, if the action is one of them.
pub(crate) async fn do_action(
    context: &FlightContext,
    caller: Caller,
    action: &Action,
) -> Option<Result<Vec<arrow_flight::Result>, FlightError>> {
    let body = Any::decode(action.body.clone()).map_err(|e| FlightError::Sql { reason: format!("action body: {e}") });
    match action.r#type.as_str() {
        CREATE_PREPARED_STATEMENT => Some(
            async {
                let request: ActionCreatePreparedStatementRequest = unpack(body?)?;
                let statement = Statement::new(request.query)?;
                let (dataset, parameters) = describe(context, &caller, &statement).await?;
                let result = ActionCreatePreparedStatementResult {
                    prepared_statement_handle: statement.encode().into(),
                    dataset_schema: ipc_schema(&dataset)?,
                    parameter_schema: ipc_schema(&parameters)?,
                };
                Ok(vec![arrow_flight::Result { body: result.as_any().encode_to_vec().into() }])
            }
            .await,
        ),
        CLOSE_PREPARED_STATEMENT => Some(body.and_then(unpack::<ActionClosePreparedStatementRequest>).map(|_| vec![])),
        _ => None,
    }
}

/// `DoPut` of a prepared statement's parameters: the statement with them bound, as a new
/// handle (the statement is kept nowhere else).
pub(crate) async fn bind(
    statement: Statement,
    input: impl Stream<Item = Result<FlightData, Status>> + Send + Unpin + 'static,
) -> Result<arrow_flight::PutResult, FlightError> {
    let input = crate::ipc_guard::uncompressed::<_, Status>(input);
    let mut batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(input.map_err(Into::into));
    let mut bound = None;
    let mut received = 0;
    while let Some(batch) = batches.try_next().await? {
        received += 1;
        if received > MAX_PARAMETER_BATCHES {
            return Err(FlightError::Sql {
                reason: format!("parameters come in one row; more than {MAX_PARAMETER_BATCHES} batches were sent"),
            });
        }
        if batch.num_rows() > 0 {
            if bound.is_some() {
                return Err(FlightError::Sql { reason: "parameters are bound one row at a time".into() });
            }
            bound = Some(statement.bind(&batch)?);
        }
    }
    let handle = bound.unwrap_or(statement).encode();
    // The handle comes back with every execution; one that could not be read back is refused now.
    Statement::decode(&handle)?;
    let result = DoPutPreparedStatementResult { prepared_statement_handle: Some(handle.into()) };
    Ok(arrow_flight::PutResult { app_metadata: result.encode_to_vec().into() })
}

/// The statement's result schema (each column with its SQL type) and its parameters,
/// planned for the caller.
async fn describe(
    context: &FlightContext,
    caller: &Caller,
    statement: &Statement,
) -> Result<(SchemaRef, SchemaRef), FlightError> {
    let (planner, caller, statement) = (context.clone(), Arc::new(caller.clone()), statement.clone());
    context
        .store
        .plan(move |session| async move {
            let state = statement::state(&session, &planner, &caller, tables::Planning::Describe)?;
            let plan = statement::logical(&state, &statement).await?;
            Ok((types::with_type_names(&statement::output(&plan)), statement::parameters(&plan)?))
        })
        .await
}

fn unpack<M: ProstMessageExt>(any: Any) -> Result<M, FlightError> {
    let name = any.type_url.clone();
    any.unpack::<M>()
        .map_err(|e| FlightError::Sql { reason: e.to_string() })?
        .ok_or_else(|| FlightError::Sql { reason: format!("expected {}, got {name}", M::type_url()) })
}

fn ipc_schema(schema: &SchemaRef) -> Result<bytes::Bytes, FlightError> {
    let options = arrow::ipc::writer::IpcWriteOptions::default();
    let IpcMessage(bytes) =
        SchemaAsIpc::new(schema, &options).try_into().map_err(arrow_flight::error::FlightError::from)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow_flight::sql::{CommandGetTables, CommandStatementQuery, CommandStatementUpdate};

    use super::*;

    fn recognised(bytes: &[u8]) -> SqlCommand {
        SqlCommand::recognise(bytes).expect("a Flight SQL message").expect("valid")
    }

    #[test]
    fn flight_sql_messages_are_told_from_json_by_their_type_url() {
        assert!(SqlCommand::recognise(br#"{"dataset": "pegel"}"#).is_none());
        assert!(SqlCommand::recognise(b"").is_none());
        let foreign = Any { type_url: "type.googleapis.com/google.protobuf.Empty".into(), value: Default::default() };
        assert!(SqlCommand::recognise(&foreign.encode_to_vec()).is_none());

        let query = CommandStatementQuery { query: "SELECT 1".into(), transaction_id: None };
        assert_eq!(
            recognised(&query.as_any().encode_to_vec()),
            SqlCommand::Statement(Statement::new("SELECT 1".into()).expect("short"))
        );
        let tables = CommandGetTables { include_schema: true, ..Default::default() };
        assert!(matches!(recognised(&tables.as_any().encode_to_vec()), SqlCommand::Metadata(Metadata::Tables(_))));
        let update = CommandStatementUpdate { query: "DELETE FROM pegel".into(), transaction_id: None };
        assert_eq!(recognised(&update.as_any().encode_to_vec()), SqlCommand::Refused("CommandStatementUpdate".into()));
    }

    #[test]
    fn a_statement_and_its_bound_values_travel_in_its_ticket() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Float64, true),
            Field::new("$2", DataType::Utf8, true),
        ]));
        let row = RecordBatch::try_new(
            schema,
            vec![Arc::new(Float64Array::from(vec![80.5])), Arc::new(StringArray::from(vec!["Dalke"]))],
        )
        .expect("row");
        let bound = Statement::new("SELECT * FROM pegel WHERE value > ? AND station = ?".into())
            .expect("short")
            .bind(&row)
            .expect("bound");
        let ticket = SqlCommand::Statement(bound.clone()).ticket().expect("ticket");
        assert_eq!(recognised(&ticket.ticket), SqlCommand::Statement(bound));
    }

    #[test]
    fn an_oversized_statement_is_refused_before_parsing() {
        let query = CommandStatementQuery { query: "SELECT 1 ".repeat(40_000), transaction_id: None };
        let error = SqlCommand::recognise(&query.as_any().encode_to_vec()).expect("recognised").expect_err("too long");
        assert!(error.to_string().contains("bytes"), "{error}");
    }

    /// The Flight messages of `batches`, empty ones included, as a client's DoPut may send them.
    async fn sent(batches: Vec<RecordBatch>) -> impl Stream<Item = Result<FlightData, Status>> + Send + Unpin {
        let schema = batches.first().map(RecordBatch::schema).expect("a batch");
        let encoded = arrow_flight::utils::batches_to_flight_data(&schema, batches).expect("encoded");
        futures::stream::iter(encoded.into_iter().map(Ok))
    }

    #[tokio::test]
    async fn binding_is_one_row_in_a_few_batches_and_a_handle_that_reads_back() {
        let statement = Statement::new("SELECT ?".into()).expect("short");
        let row = |text: String| {
            RecordBatch::try_from_iter([("$1", Arc::new(StringArray::from(vec![text])) as _)]).expect("row")
        };
        let bound = bind(statement.clone(), sent(vec![row("Dalke".into())]).await).await.expect("bound");
        assert!(!bound.app_metadata.is_empty());
        let empty = row(String::new()).slice(0, 0);
        let many = bind(statement.clone(), sent(vec![empty; MAX_PARAMETER_BATCHES + 1]).await).await;
        assert!(many.expect_err("too many").to_string().contains("batches"));
        let huge = bind(statement, sent(vec![row("x".repeat(2 * 1024 * 1024))]).await).await;
        assert!(huge.expect_err("too large").to_string().contains("bytes"));
    }

    #[test]
    fn a_malformed_handle_is_a_clear_error() {
        let ticket = TicketStatementQuery { statement_handle: b"not json".to_vec().into() };
        let error = SqlCommand::recognise(&ticket.as_any().encode_to_vec()).expect("recognised").expect_err("invalid");
        assert!(error.to_string().contains("invalid statement handle"), "{error}");
    }
}
