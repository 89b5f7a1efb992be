//! Group commit: every append waits for one shared fsync, then becomes visible.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::StoreError;
use crate::metrics::StoreMetrics;
use crate::table::Table;

/// Appends waiting for the next flush; also bounds how many one flush covers.
const QUEUE_DEPTH: usize = 4096;

/// An append staged in the write-ahead log, waiting to be made durable.
pub(crate) struct Pending {
    pub(crate) table: Arc<Table>,
    pub(crate) seq: u64,
    pub(crate) batch: RecordBatch,
    pub(crate) done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the committer task; it ends when every handle is dropped.
    pub(crate) fn start(db: sled::Db, maintenance: Arc<Notify>, metrics: StoreMetrics) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(db, pending, maintenance, metrics));
        Self { queue }
    }

    /// Queues a staged append. Callers hold their table's append lock, so each table's
    /// entries reach the committer, and so its visible tail, in sequence order.
    pub(crate) async fn enqueue(&self, pending: Pending) -> Result<(), StoreError> {
        self.queue
            .send(pending)
            .await
            .map_err(|_| StoreError::ShuttingDown)
    }
}

async fn run(
    db: sled::Db,
    mut queue: mpsc::Receiver<Pending>,
    maintenance: Arc<Notify>,
    metrics: StoreMetrics,
) {
    let mut group = Vec::with_capacity(64);
    while queue.recv_many(&mut group, QUEUE_DEPTH).await > 0 {
        let flushed = db.flush_async().await.map(drop).map_err(|e| e.to_string());
        metrics.flushes.inc();
        let mut wake = false;
        for pending in group.drain(..) {
            if flushed.is_ok() {
                wake |= pending.table.publish(pending.seq, pending.batch);
            }
            // The appender may have gone away (client disconnected); the write stands.
            let _ = pending.done.send(flushed.clone());
        }
        if wake {
            maintenance.notify_one();
        }
    }
}
