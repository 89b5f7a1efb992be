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
    /// is streamed. Planning (which may ask a member) and running each have the query's
    /// time budget; at most `query_concurrency` queries run at once, the others wait for
    /// their turn within their time budget.
    pub async fn run<P, F, E>(&self, plan: P) -> Result<BatchStream, E>
    where
        P: FnOnce(SessionContext) -> F + Send + 'static,
        F: Future<Output = Result<Arc<dyn ExecutionPlan>, E>> + Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let limits = self.query_limits();
        let session = self.query_session()?;
        let store = self.clone();
        let (planned_tx, planned_rx) = oneshot::channel();
        let (batch_tx, batch_rx) = mpsc::channel(READ_AHEAD);
        self.query_runtime().spawn(async move {
            let planned = tokio::time::timeout(limits.time, plan(session.clone())).await;
            let plan = match planned {
                Ok(Ok(plan)) => plan,
                Ok(Err(e)) => {
                    let _ = planned_tx.send(Err(e));
                    return;
                }
                Err(_) => {
                    let _ = planned_tx.send(Err(StoreError::QueryTimeout { secs: limits.time.as_secs() }.into()));
                    return;
                }
            };
            if planned_tx.send(Ok(plan.schema())).is_err() {
                return; // the reader went away while it was planned
            }
            // The turn is taken to run, not to plan: planning may read other queries' rows
            // (a view's sources), which take turns of their own.
            let _turn = match store.turn(limits).await {
                Ok(turn) => turn,
                Err(e) => {
                    let _ = batch_tx.send(Err(e)).await;
                    return;
                }
            };
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
        let limits = self.query_limits();
        let session = self.query_session()?;
        let planned = self.query_runtime().spawn(tokio::time::timeout(limits.time, plan(session)));
        match planned.await.map_err(|e| StoreError::from_join(e, "query planning"))? {
            Ok(result) => result,
            Err(_) => Err(StoreError::QueryTimeout { secs: limits.time.as_secs() }.into()),
        }
    }

    /// A turn to run a query: one of `query_concurrency`, waited for within the query's
    /// time budget.
    async fn turn(&self, limits: crate::QueryLimits) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        let waiting = self.query_turns().acquire_owned();
        match tokio::time::timeout(limits.time, waiting).await {
            Ok(Ok(turn)) => Ok(turn),
            Ok(Err(_)) => Err(StoreError::ShuttingDown),
            Err(_) => Err(StoreError::QueryTimeout { secs: limits.time.as_secs() }),
        }
    }
}
