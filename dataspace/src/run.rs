//! Sealed reads run on the store's query runtime, away from the I/O threads.

use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::execute_stream;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use urbanmesh_policy::Grant;
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::{BatchStream, Store, StoreError};

use crate::DataspaceError;
use crate::sealed::plan;

/// Batches computed ahead of a slow reader.
const READ_AHEAD: usize = 4;

/// Streams the rows `request` asks for out of what `grant` releases. Returns once the
/// plan is valid, so that a bad filter or column is reported before any data is streamed.
pub async fn scan(store: &Store, request: &ReadRequest, grant: &Grant) -> Result<BatchStream, DataspaceError> {
    let (planned_tx, planned_rx) = oneshot::channel();
    let (batch_tx, batch_rx) = mpsc::channel(READ_AHEAD);
    let (store, request, grant) = (store.clone(), request.clone(), grant.clone());
    store.query_runtime().clone().spawn(async move {
        let plan = match plan(&store, &request, &grant).await {
            Ok(plan) => {
                let _ = planned_tx.send(Ok(plan.schema()));
                plan
            }
            Err(e) => {
                let _ = planned_tx.send(Err(e));
                return;
            }
        };
        let mut stream = match execute_stream(plan, store.session().task_ctx()) {
            Ok(stream) => stream,
            Err(e) => {
                let _ = batch_tx.send(Err(e.into())).await;
                return;
            }
        };
        while let Some(batch) = stream.next().await {
            if batch_tx.send(batch.map_err(StoreError::from)).await.is_err() {
                break; // the reader went away
            }
        }
    });
    let schema = planned_rx.await.map_err(|_| StoreError::ShuttingDown)??;
    Ok(BatchStream { schema, batches: Box::pin(ReceiverStream::new(batch_rx)) })
}

/// The schema `request` would produce under `grant`, or why it is invalid (unknown
/// column, bad filter, a policy that cannot be applied), without reading.
pub async fn check(store: &Store, request: &ReadRequest, grant: &Grant) -> Result<SchemaRef, DataspaceError> {
    let (store, request, grant) = (store.clone(), request.clone(), grant.clone());
    store
        .query_runtime()
        .clone()
        .spawn(async move { plan(&store, &request, &grant).await.map(|plan| plan.schema()) })
        .await
        .map_err(|e| StoreError::from_join(e, "query planning"))?
}
