use std::collections::VecDeque;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::{FlightData, PutResult};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::Streaming;
use urbanmesh_policy::Subject;
use urbanmesh_store::{StagedAppend, Store, StoreError, conform::conform};

use crate::metrics::FlightMetrics;
use crate::sql::{self, SqlCommand};
use crate::target::Target;
use crate::{FlightContext, FlightError};

/// Batches staged while earlier ones wait for their fsync, so that one flush covers several.
const IN_FLIGHT_BATCHES: usize = 4;

/// Acknowledgements sent ahead of a client that reads them slowly.
const ACKS_AHEAD: usize = 16;

pub(crate) type Acks = ReceiverStream<Result<PutResult, Status>>;

/// Appends every batch of the stream, in stream order, to the dataset named by the first
/// message's descriptor path `[id]`. Each batch is one all-or-nothing write, acknowledged
/// by a `PutResult` with `{"rows": N, "seq": S}` as soon as it is durable. The first bad
/// batch ends the call with an error that says what was stored before it.
pub(crate) async fn do_put(
    context: &FlightContext,
    metrics: &FlightMetrics,
    subject: &Subject,
    input: Streaming<FlightData>,
) -> Result<Acks, FlightError> {
    let mut input = input.peekable();
    let descriptor = match std::pin::Pin::new(&mut input).peek().await {
        Some(Ok(first)) => first.flight_descriptor.clone(),
        Some(Err(status)) => return Err(FlightError::Descriptor { reason: status.message().to_owned() }),
        None => return Err(FlightError::Store(StoreError::Empty)),
    };
    let descriptor = descriptor.ok_or_else(|| FlightError::Descriptor {
        reason: "the first message must carry a descriptor with path [dataset id]".into(),
    })?;
    let target = Target::of_descriptor(&descriptor)?;
    // Binding a prepared statement's parameters writes nothing; anyone may.
    if let Target::Sql(command) = target {
        let (acks, receiver) = mpsc::channel(1);
        let _ = acks.try_send(match command {
            SqlCommand::Statement(statement) => sql::bind(statement, input).await.map_err(Status::from),
            SqlCommand::Metadata(_) | SqlCommand::Refused(_) => {
                Err(Status::from(FlightError::ReadOnly { what: "writing through Flight SQL".into() }))
            }
        });
        return Ok(ReceiverStream::new(receiver));
    }
    if !subject.may_edit() {
        return Err(FlightError::Unauthenticated);
    }
    let id = match target {
        Target::Dataset(read) if read.is_whole() => read.dataset,
        Target::Dataset(_) | Target::View(_) | Target::Remote { .. } | Target::Sql(_) => {
            return Err(FlightError::Descriptor {
                reason: "rows are written to one of this node's datasets: path [dataset id]".into(),
            });
        }
    };
    context.catalog.get(&id)?;
    let schema = context.store.schema(&id)?;
    let input = crate::ipc_guard::uncompressed::<_, Status>(input);
    let batches = FlightRecordBatchStream::new_from_flight_data(input.map_err(Into::into));
    let (acks, receiver) = mpsc::channel(ACKS_AHEAD);
    let (store, metrics) = (context.store.clone(), metrics.clone());
    tokio::spawn(async move {
        let started = Instant::now();
        let mut put = Put { store, id, schema, acks, stored_batches: 0, stored_rows: 0 };
        if let Some(error) = put.run(batches).await {
            let _ = put.acks.send(Err(Status::from(error))).await;
        }
        metrics.observe("DoPut", started);
        tracing::info!(dataset = %put.id, rows = put.stored_rows, batches = put.stored_batches, "DoPut stored");
    });
    Ok(ReceiverStream::new(receiver))
}

struct Put {
    store: Store,
    id: String,
    schema: SchemaRef,
    acks: mpsc::Sender<Result<PutResult, Status>>,
    stored_batches: usize,
    stored_rows: usize,
}

impl Put {
    /// Stores the stream; returns why it stopped early, if it did.
    async fn run(&mut self, mut batches: FlightRecordBatchStream) -> Option<FlightError> {
        let mut staged: VecDeque<StagedAppend> = VecDeque::new();
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
            let appended = match conform(&batch, &self.schema) {
                Ok(batch) => self.store.stage(&self.id, batch).await,
                Err(e) => Err(e),
            };
            match appended {
                Ok(append) => staged.push_back(append),
                Err(e) => failure = Some((received, FlightError::Store(e))),
            }
            if staged.len() >= IN_FLIGHT_BATCHES {
                if let Some(append) = staged.pop_front() {
                    if let Err(e) = self.settle(append).await {
                        failure = failure.or(Some((self.stored_batches + 1, e)));
                    }
                }
            }
        }
        // Every staged batch is settled before answering, so the counts below are exact.
        while let Some(append) = staged.pop_front() {
            if let Err(e) = self.settle(append).await {
                failure = failure.or(Some((self.stored_batches + 1, e)));
            }
        }
        failure.map(|(batch, error)| FlightError::BatchRejected {
            batch,
            stored_batches: self.stored_batches,
            stored_rows: self.stored_rows,
            source: Box::new(error),
        })
    }

    async fn settle(&mut self, append: StagedAppend) -> Result<(), FlightError> {
        let appended = append.durable().await?;
        self.stored_batches += 1;
        self.stored_rows += appended.rows;
        let ack = serde_json::json!({"rows": appended.rows, "seq": appended.seq}).to_string();
        // A client that went away still had its batch stored; nothing else to do.
        let _ = self.acks.send(Ok(PutResult { app_metadata: Bytes::from(ack) })).await;
        Ok(())
    }
}
