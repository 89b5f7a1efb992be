//! Group commit: every append waits for one shared fsync, then becomes visible.
//!
//! A failed fsync is fatal for the log, as in PostgreSQL since "fsyncgate": the kernel may
//! have dropped the pages it could not write, so neither a retried fsync nor anything
//! written after it can be trusted. The store stops taking writes until the node restarts
//! ([`WriteStop`]), records the unacknowledged entries outside the log ([`Withdrawals`])
//! and only then tells their writers that nothing was stored. Start-up removes them.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use crate::StoreError;
use crate::failpoint::Failpoints;
use crate::metrics::StoreMetrics;
use crate::table::Table;
use crate::withdrawal::Withdrawals;

/// Appends waiting for the next flush; also bounds how many one flush covers.
const QUEUE_DEPTH: usize = 4096;

/// An append staged in the write-ahead log, waiting to be made durable.
pub(crate) struct Pending {
    pub(crate) table: Arc<Table>,
    pub(crate) seq: u64,
    pub(crate) batch: RecordBatch,
    pub(crate) done: oneshot::Sender<Result<(), Refusal>>,
}

/// Why an append was not acknowledged.
#[derive(Debug, Clone)]
pub(crate) enum Refusal {
    /// The entry is withdrawn durably: it never appears.
    NotStored(String),
    /// Not even the withdrawal could be recorded: the next start decides, as after a crash.
    InDoubt(String),
}

impl From<Refusal> for StoreError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotStored(reason) => Self::Flush { reason },
            Refusal::InDoubt(reason) => Self::FlushInDoubt { reason },
        }
    }
}

/// Set by the first failed flush of the database; from then on the store writes nothing
/// (no append, compaction or delete) until the node restarts and recovery has run.
#[derive(Debug, Default)]
pub(crate) struct WriteStop {
    reason: OnceLock<String>,
}

impl WriteStop {
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match self.reason.get() {
            Some(reason) => Err(StoreError::WritesStopped { reason: reason.clone() }),
            None => Ok(()),
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.reason.get().is_some()
    }

    fn stop(&self, reason: &str) {
        if self.reason.set(reason.to_owned()).is_ok() {
            tracing::error!(%reason, "a flush of the write-ahead log failed; writes are stopped until restart");
        }
    }

    /// Flushes the database unless writes are stopped; a failure stops them.
    pub(crate) async fn flush(&self, db: &sled::Db) -> Result<(), StoreError> {
        self.check()?;
        db.flush_async().await.map(drop).map_err(|e| self.failed(&e.to_string()))
    }

    /// [`Self::flush`] for blocking threads.
    pub(crate) fn flush_now(&self, db: &sled::Db) -> Result<(), StoreError> {
        self.check()?;
        db.flush().map(drop).map_err(|e| self.failed(&e.to_string()))
    }

    fn failed(&self, reason: &str) -> StoreError {
        self.stop(reason);
        StoreError::WritesStopped { reason: reason.to_owned() }
    }
}

/// What the committer needs besides its queue.
pub(crate) struct Committer {
    pub(crate) db: sled::Db,
    pub(crate) maintenance: Arc<Notify>,
    pub(crate) metrics: StoreMetrics,
    pub(crate) changes: broadcast::Sender<String>,
    pub(crate) stop: Arc<WriteStop>,
    pub(crate) withdrawals: Arc<Withdrawals>,
    pub(crate) failpoints: Failpoints,
}

#[derive(Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the committer task; it ends when every handle is dropped.
    pub(crate) fn start(committer: Committer) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(committer, pending));
        Self { queue }
    }

    /// A place in the queue, taken before an entry is staged so that queuing it cannot
    /// fail or wait afterwards. Callers hold their table's append lock while they stage and
    /// send, so each table's entries reach the committer, and its visible tail, in order.
    pub(crate) async fn reserve(&self) -> Result<mpsc::Permit<'_, Pending>, StoreError> {
        self.queue.reserve().await.map_err(|_| StoreError::ShuttingDown)
    }
}

async fn run(committer: Committer, mut queue: mpsc::Receiver<Pending>) {
    let mut group = Vec::with_capacity(64);
    let mut changed: Vec<String> = Vec::new();
    while queue.recv_many(&mut group, QUEUE_DEPTH).await > 0 {
        if let Err(reason) = committer.flush().await {
            committer.withdraw(&mut group, reason).await;
            continue;
        }
        let mut wake = false;
        for pending in group.drain(..) {
            wake |= pending.table.publish(pending.seq, pending.batch);
            if !changed.contains(&pending.table.id) {
                changed.push(pending.table.id.clone());
            }
            // The appender may have gone away (client disconnected); the write stands.
            let _ = pending.done.send(Ok(()));
        }
        if wake {
            committer.maintenance.notify_one();
        }
        for id in changed.drain(..) {
            // Nobody listening is fine; a listener that lags hears so and catches up.
            let _ = committer.changes.send(id);
        }
    }
}

impl Committer {
    /// The group's one fsync; never tried again once one has failed.
    async fn flush(&self) -> Result<(), String> {
        if let Some(reason) = self.stop.reason.get() {
            return Err(format!("writes are stopped since an earlier flush failed: {reason}"));
        }
        self.metrics.flushes.inc();
        let flushed = match self.db.flush_async().await {
            Ok(_) => self.failpoints.hit("wal-flush").map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(reason) = &flushed {
            self.stop.stop(reason);
        }
        flushed
    }

    /// Takes a group that was not made durable back: records its entries outside the log,
    /// then answers its writers. The entries are removed from the log in memory too, but
    /// that removal cannot be made durable any more.
    async fn withdraw(&self, group: &mut Vec<Pending>, reason: String) {
        let entries: Vec<(String, u64)> = group.iter().map(|p| (p.table.id.clone(), p.seq)).collect();
        for pending in group.iter() {
            if let Err(error) = pending.table.wal.remove(pending.seq) {
                tracing::debug!(%error, seq = pending.seq, "the log refuses the withdrawal too");
            }
        }
        let withdrawals = Arc::clone(&self.withdrawals);
        let recorded = tokio::task::spawn_blocking(move || withdrawals.record(entries))
            .await
            .map_err(|e| StoreError::from_join(e, "recording withdrawn entries"))
            .and_then(|recorded| recorded);
        let refusal = match recorded {
            Ok(()) => Refusal::NotStored(reason),
            Err(error) => {
                tracing::error!(%error, "cannot record the withdrawn log entries; they are in doubt until restart");
                Refusal::InDoubt(format!("{reason}; recording the withdrawal failed too: {error}"))
            }
        };
        for pending in group.drain(..) {
            let _ = pending.done.send(Err(refusal.clone()));
        }
    }
}
