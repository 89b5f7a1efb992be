//! Group commit: every append waits for one shared fsync, then becomes visible.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

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
    pub(crate) fn start(
        db: sled::Db,
        maintenance: Arc<Notify>,
        metrics: StoreMetrics,
        changes: broadcast::Sender<String>,
    ) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(db, pending, maintenance, metrics, changes));
        Self { queue }
    }

    /// A place in the queue, taken before an entry is staged so that queuing it cannot
    /// fail or wait afterwards. Callers hold their table's append lock while they stage and
    /// send, so each table's entries reach the committer, and its visible tail, in order.
    pub(crate) async fn reserve(&self) -> Result<mpsc::Permit<'_, Pending>, StoreError> {
        self.queue.reserve().await.map_err(|_| StoreError::ShuttingDown)
    }
}

async fn run(
    db: sled::Db,
    mut queue: mpsc::Receiver<Pending>,
    maintenance: Arc<Notify>,
    metrics: StoreMetrics,
    changes: broadcast::Sender<String>,
) {
    let mut group = Vec::with_capacity(64);
    let mut changed: Vec<String> = Vec::new();
    while queue.recv_many(&mut group, QUEUE_DEPTH).await > 0 {
        let flushed = db.flush_async().await.map(drop).map_err(|e| e.to_string());
        metrics.flushes.inc();
        let mut wake = false;
        for pending in group.drain(..) {
            if flushed.is_ok() {
                wake |= pending.table.publish(pending.seq, pending.batch);
                if !changed.contains(&pending.table.id) {
                    changed.push(pending.table.id.clone());
                }
            } else if let Err(error) = pending.table.wal.remove(pending.seq) {
                // The caller hears of the failure; the entry must not resurface later.
                tracing::error!(%error, seq = pending.seq, "cannot withdraw an unflushed log entry");
            }
            // The appender may have gone away (client disconnected); the write stands.
            let _ = pending.done.send(flushed.clone());
        }
        if wake {
            maintenance.notify_one();
        }
        for id in changed.drain(..) {
            // Nobody listening is fine; a listener that lags hears so and catches up.
            let _ = changes.send(id);
        }
    }
}
