use std::collections::VecDeque;
use std::time::Instant;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::{FlightData, PutResult};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tonic::Streaming;
use urbanmesh_policy::Subject;
use urbanmesh_store::{Appended, Store, StoreError, conform::conform};

use crate::get_flight_info::read_request;
use crate::metrics::FlightMetrics;
use crate::{FlightContext, FlightError};

/// Batches staged while earlier ones wait for their fsync, so that one flush covers several.
const IN_FLIGHT_BATCHES: usize = 4;

/// Appends every batch of the stream to the dataset named by the first message's
/// descriptor path `[id]`. Each batch is one all-or-nothing write, acknowledged by a
/// `PutResult` with `{"rows": N, "seq": S}` once durable. The first bad batch ends the
/// call with an error saying what was already stored.
pub(crate) async fn do_put(
    context: &FlightContext,
    metrics: &FlightMetrics,
    subject: &Subject,
    input: Streaming<FlightData>,
) -> Result<Vec<PutResult>, FlightError> {
    let started = Instant::now();
    if !subject.is_admin() {
        return Err(FlightError::Unauthenticated);
    }
    let mut input = input.peekable();
    let descriptor = match std::pin::Pin::new(&mut input).peek().await {
        Some(Ok(first)) => first.flight_descriptor.clone(),
        Some(Err(status)) => return Err(FlightError::Descriptor { reason: status.message().to_owned() }),
        None => return Err(FlightError::Store(StoreError::Empty)),
    };
    let descriptor = descriptor.ok_or_else(|| FlightError::Descriptor {
        reason: "the first message must carry a descriptor with path [dataset id]".into(),
    })?;
    let id = read_request(&descriptor)?.dataset;
    let schema = context
        .catalog
        .get(&id)
        .map_err(|_| FlightError::NotFound { id: id.clone() })
        .and_then(|_| Ok(context.store.schema(&id)?))?;

    let mut batches = FlightRecordBatchStream::new_from_flight_data(input.map_err(Into::into));
    let mut pending = VecDeque::new();
    let mut acks = Vec::new();
    let mut stored_rows = 0;
    let mut received = 0;
    let outcome = loop {
        let batch = match batches.try_next().await {
            Ok(Some(batch)) => batch,
            Ok(None) => break Ok(()),
            Err(e) => break Err(FlightError::Stream(e)),
        };
        received += 1;
        if batch.num_rows() == 0 {
            continue;
        }
        let batch = match conform(&batch, &schema) {
            Ok(batch) => batch,
            Err(source) => break Err(rejected(received, &acks, stored_rows, source)),
        };
        pending.push_back(spawn_append(&context.store, &id, batch));
        if pending.len() >= IN_FLIGHT_BATCHES {
            if let Err(e) = settle(pending.pop_front(), &mut acks, &mut stored_rows, received).await {
                break Err(e);
            }
        }
    };
    // Whatever happened, every staged batch is settled before answering.
    let mut settled = outcome;
    while let Some(next) = pending.pop_front() {
        let result = settle(Some(next), &mut acks, &mut stored_rows, received).await;
        if settled.is_ok() {
            settled = result;
        }
    }
    settled?;
    metrics.observe("DoPut", started);
    tracing::info!(dataset = %id, rows = stored_rows, batches = acks.len(), "DoPut stored");
    Ok(acks)
}

type AppendTask = tokio::task::JoinHandle<Result<Appended, StoreError>>;

fn spawn_append(store: &Store, id: &str, batch: arrow::record_batch::RecordBatch) -> AppendTask {
    let store = store.clone();
    let id = id.to_owned();
    tokio::spawn(async move { store.append(&id, batch).await })
}

async fn settle(
    task: Option<AppendTask>,
    acks: &mut Vec<PutResult>,
    stored_rows: &mut usize,
    received: usize,
) -> Result<(), FlightError> {
    let Some(task) = task else { return Ok(()) };
    let appended = task
        .await
        .map_err(|e| StoreError::Corrupt { reason: format!("append task failed: {e}") })
        .and_then(|result| result)
        .map_err(|source| rejected(received, acks, *stored_rows, source))?;
    *stored_rows += appended.rows;
    let ack = serde_json::json!({"rows": appended.rows, "seq": appended.seq}).to_string();
    acks.push(PutResult { app_metadata: Bytes::from(ack) });
    Ok(())
}

fn rejected(batch: usize, acks: &[PutResult], stored_rows: usize, source: StoreError) -> FlightError {
    FlightError::BatchRejected { batch, stored_batches: acks.len(), stored_rows, source }
}
