//! Queries run on the store's query runtime, away from the I/O threads, each in a session
//! of its own within its memory and time budgets ([`crate::QueryLimits`]).

use std::future::Future;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::{BatchStream, Store, StoreError};

/// Batches computed ahead of a slow reader.
const READ_AHEAD: usize = 4;

impl Store {
    /// Plans with `plan` in a session of the query's own, then streams the plan's batches.
    /// Returns once the plan is made, so that a bad request is reported before any data
    /// is streamed; the query's budgets hold from then on.
    pub async fn run<P, F, E>(&self, plan: P) -> Result<BatchStream, E>
    where
        P: FnOnce(SessionContext) -> F + Send + 'static,
        F: Future<Output = Result<Arc<dyn ExecutionPlan>, E>> + Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let session = self.query_session()?;
        let limits = self.query_limits();
        let (planned_tx, planned_rx) = oneshot::channel();
        let (batch_tx, batch_rx) = mpsc::channel(READ_AHEAD);
        self.query_runtime().spawn(async move {
            let plan = match plan(session.clone()).await {
                Ok(plan) => plan,
                Err(e) => {
                    let _ = planned_tx.send(Err(e));
                    return;
                }
            };
            let _ = planned_tx.send(Ok(plan.schema()));
            let batches = match limits.run(plan, session.task_ctx()) {
                Ok(batches) => batches,
                Err(e) => {
                    let _ = batch_tx.send(Err(e)).await;
                    return;
                }
            };
            let mut batches = std::pin::pin!(batches);
            while let Some(batch) = batches.next().await {
                if batch_tx.send(batch).await.is_err() {
                    break; // the reader went away
                }
            }
        });
        let schema: SchemaRef = planned_rx.await.map_err(|_| StoreError::ShuttingDown)??;
        Ok(BatchStream { schema, batches: Box::pin(ReceiverStream::new(batch_rx)) })
    }

    /// Runs `plan` in a session of the query's own on the query runtime, for what only
    /// planning tells (a schema, a statement's parameters).
    pub async fn plan<P, F, T, E>(&self, plan: P) -> Result<T, E>
    where
        P: FnOnce(SessionContext) -> F + Send + 'static,
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let session = self.query_session()?;
        self.query_runtime().spawn(plan(session)).await.map_err(|e| StoreError::from_join(e, "query planning"))?
    }
}
