use std::time::Instant;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError as ArrowFlightError;
use arrow_flight::{FlightData, Ticket};
use futures::future::Either;
use futures::{Stream, StreamExt, TryStreamExt};
use std::sync::Arc;
use tonic::Status;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use urbanmesh_policy::{AuditEntry, Grant, Interface};
use urbanmesh_store::StoreError;

use crate::auth::Caller;
use crate::metrics::FlightMetrics;
use crate::target::Target;
use crate::{FlightContext, FlightError, Opened, ViewRead};

/// Flight messages up to this size; larger batches are split by the encoder.
pub(crate) const MAX_FLIGHT_DATA_BYTES: usize = 16 * 1024 * 1024;

pub(crate) async fn do_get(
    context: &FlightContext,
    metrics: &FlightMetrics,
    caller: &Caller,
    ticket: Ticket,
) -> Result<impl Stream<Item = Result<FlightData, Status>> + Send + 'static, FlightError> {
    let started = Instant::now();
    match Target::of_ticket(&ticket)? {
        Target::Remote { member, mut read } => {
            let members = context.remote.as_ref().ok_or_else(|| FlightError::NotFound { id: member.clone() })?;
            caller.purpose_into(&mut read);
            let relayed = members.relay(&context.gate, &caller.subject, &member, &read).await?;
            let audit = context.gate.relay_entry(&caller.subject, &member, &read, Interface::Relay);
            let bytes = metrics.bytes_sent.clone();
            let counted = relayed.inspect_ok(move |data| {
                let sent = (data.data_body.len() + data.data_header.len()) as u64;
                bytes.inc_by(sent);
                audit.served().add(0, sent);
            });
            Ok(Either::Left(counted))
        }
        Target::View(id) => {
            let read = context.views.read(&caller.reader(), &id, caller.interface()).await?;
            Ok(Either::Right(Either::Left(Either::Left(view_rows(read, metrics, started)))))
        }
        Target::Sql(command) => {
            let rows = crate::sql::do_get(context, metrics, caller.clone(), command).await?;
            Ok(Either::Right(Either::Left(Either::Right(rows))))
        }
        Target::Dataset(mut request) => {
            caller.purpose_into(&mut request);
            if let Some(read) = context.views.read_named(&caller.subject, &request, caller.interface()).await? {
                return Ok(Either::Right(Either::Left(Either::Left(view_rows(read, metrics, started)))));
            }
            let Opened { scan, grant, audit } =
                context.gate.open(&caller.subject, &request, caller.interface()).await?;
            let batches = scan.batches.map_err(|e| ArrowFlightError::ExternalError(Box::new(e)));
            Ok(Either::Right(Either::Right(encoded(
                with_duties(scan.schema, &grant),
                batches,
                metrics,
                audit,
                started,
            ))))
        }
    }
}

/// A view's assembled rows, with its duties in the schema.
fn view_rows(
    read: ViewRead,
    metrics: &FlightMetrics,
    started: Instant,
) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
    let ViewRead { view, assembled, audit } = read;
    let duties = Grant { attribution: view.policy.attribution, licence: view.policy.licence, ..Grant::owner() };
    let schema = with_duties(Arc::clone(&assembled.schema), &duties);
    let batches = futures::stream::iter(assembled.batches.clone().into_iter().map(Ok));
    encoded(schema, batches, metrics, audit, started)
}

/// The rows as Flight messages, counted in the metrics and the read's audit entry.
fn encoded(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch, ArrowFlightError>> + Send + 'static,
    metrics: &FlightMetrics,
    audit: AuditEntry,
    started: Instant,
) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
    let rows = metrics.rows_sent.clone();
    let batches = batches.inspect_ok(move |batch| {
        rows.inc_by(batch.num_rows() as u64);
    });
    let bytes = metrics.bytes_sent.clone();
    let metrics = metrics.clone();
    let mut finished = false;
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(MAX_FLIGHT_DATA_BYTES)
        .build(batches)
        .inspect(move |item| {
            if let Ok(data) = item {
                let sent = (data.data_body.len() + data.data_header.len()) as u64;
                bytes.inc_by(sent);
                audit.served().add(0, sent);
            }
        })
        .chain(futures::stream::poll_fn(move |_| {
            if !finished {
                finished = true;
                metrics.observe("DoGet", started);
            }
            std::task::Poll::Ready(None)
        }))
        .map_err(status_of)
}

/// A failure while streaming rows: the store's errors with their own codes (a query's
/// budget ran out, a bad cast), anything else as internal.
pub(crate) fn status_of(error: ArrowFlightError) -> Status {
    match error {
        ArrowFlightError::ExternalError(source) => match source.downcast::<StoreError>() {
            Ok(store) => Status::from(FlightError::Store(*store)),
            Err(other) => Status::internal(other.to_string()),
        },
        other => Status::internal(other.to_string()),
    }
}

/// Schema metadata keys of the duties.
pub const ATTRIBUTION_KEY: &str = "urbanmesh:attribution";
pub const LICENCE_KEY: &str = "urbanmesh:licence";

/// The grant's duties (attribution, licence) as schema metadata, so that they travel with
/// the data into the reader's table.
fn with_duties(schema: SchemaRef, grant: &Grant) -> SchemaRef {
    let duties: Vec<(String, String)> = [(ATTRIBUTION_KEY, &grant.attribution), (LICENCE_KEY, &grant.licence)]
        .into_iter()
        .filter_map(|(key, value)| value.clone().map(|v| (key.to_owned(), v)))
        .collect();
    if duties.is_empty() {
        return schema;
    }
    let mut metadata = schema.metadata().clone();
    metadata.extend(duties);
    Arc::new(schema.as_ref().clone().with_metadata(metadata))
}
