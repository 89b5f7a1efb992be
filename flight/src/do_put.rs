use std::collections::VecDeque;
use std::time::Instant;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::{FlightData, PutResult};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tonic::Streaming;
use urbanmesh_policy::Subject;
use urbanmesh_store::{StagedAppend, StoreError, conform::conform};

use crate::get_flight_info::read_request;
use crate::metrics::FlightMetrics;
use crate::{FlightContext, FlightError};

/// Batches staged while earlier ones wait for their fsync, so that one flush covers several.
const IN_FLIGHT_BATCHES: usize = 4;

/// What a `DoPut` stored, and why it stopped early if it did.
pub(crate) struct PutOutcome {
    pub(crate) acks: Vec<PutResult>,
    pub(crate) error: Option<FlightError>,
}

/// Appends every batch of the stream, in stream order, to the dataset named by the first
/// message's descriptor path `[id]`. Each batch is one all-or-nothing write, acknowledged
/// by a `PutResult` with `{"rows": N, "seq": S}` once durable. The first bad batch ends
/// the call: the acknowledgements of the batches before it are sent, then the error.
pub(crate) async fn do_put(
    context: &FlightContext,
    metrics: &FlightMetrics,
    subject: &Subject,
    input: Streaming<FlightData>,
) -> Result<PutOutcome, FlightError> {
    let started = Instant::now();
    if !subject.is_admin() {
        return Err(FlightError::Unauthenticated);
    }
    let mut input = input.peekable();
    let descriptor = match std::pin::Pin::new(&mut input).peek().await {
        Some(Ok(first)) => first.flight_descriptor.clone(),
        Some(Err(status)) => {
            return Err(FlightError::Descriptor {
                reason: status.message().to_owned(),
            });
        }
        None => return Err(FlightError::Store(StoreError::Empty)),
    };
    let descriptor = descriptor.ok_or_else(|| FlightError::Descriptor {
        reason: "the first message must carry a descriptor with path [dataset id]".into(),
    })?;
    let id = read_request(&descriptor)?.dataset;
    context
        .catalog
        .get(&id)
        .map_err(|_| FlightError::NotFound { id: id.clone() })?;
    let schema = context.store.schema(&id)?;

    let mut batches = FlightRecordBatchStream::new_from_flight_data(input.map_err(Into::into));
    let mut staged: VecDeque<StagedAppend> = VecDeque::new();
    let mut stored = Stored::default();
    let mut received = 0;
    let mut failure = None;
    while failure.is_none() {
        let batch = match batches.try_next().await {
            Ok(Some(batch)) if batch.num_rows() == 0 => continue,
            Ok(Some(batch)) => batch,
            Ok(None) => break,
            Err(e) => {
                failure = Some((received + 1, FlightError::Stream(e)));
                break;
            }
        };
        received += 1;
        let appended = match conform(&batch, &schema) {
            Ok(batch) => context.store.stage(&id, batch).await,
            Err(e) => Err(e),
        };
        match appended {
            Ok(append) => staged.push_back(append),
            Err(e) => failure = Some((received, FlightError::Store(e))),
        }
        if staged.len() >= IN_FLIGHT_BATCHES {
            if let Some(append) = staged.pop_front() {
                if let Err(e) = stored.settle(append).await {
                    failure = failure.or(Some((stored.acks.len() + 1, e)));
                }
            }
        }
    }
    // Every staged batch is settled before answering, so the counts below are exact.
    while let Some(append) = staged.pop_front() {
        if let Err(e) = stored.settle(append).await {
            failure = failure.or(Some((stored.acks.len() + 1, e)));
        }
    }
    metrics.observe("DoPut", started);
    tracing::info!(dataset = %id, rows = stored.rows, batches = stored.acks.len(), "DoPut stored");
    let error = failure.map(|(batch, error)| FlightError::BatchRejected {
        batch,
        stored_batches: stored.acks.len(),
        stored_rows: stored.rows,
        source: Box::new(error),
    });
    Ok(PutOutcome {
        acks: stored.acks,
        error,
    })
}

#[derive(Default)]
struct Stored {
    acks: Vec<PutResult>,
    rows: usize,
}

impl Stored {
    async fn settle(&mut self, append: StagedAppend) -> Result<(), FlightError> {
        let appended = append.durable().await?;
        self.rows += appended.rows;
        let ack = serde_json::json!({"rows": appended.rows, "seq": appended.seq}).to_string();
        self.acks.push(PutResult {
            app_metadata: Bytes::from(ack),
        });
        Ok(())
    }
}
