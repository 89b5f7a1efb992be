use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use prometheus_client::registry::Registry;
use tokio::sync::{Notify, broadcast, oneshot, watch};
use urbanmesh_catalog::Dataset;

use crate::commit::{Committer, GroupCommit, Pending, Refusal, WriteStop};
use crate::compaction::{Compactor, Thresholds};
use crate::failpoint::Failpoints;
use crate::limits::QueryLimits;
use crate::location::SegmentRoot;
use crate::manifest::Manifests;
use crate::metrics::StoreMetrics;
use crate::query::{self, Stored, TimeRange};
use crate::removal::Removal;
use crate::space::DiskSpace;
pub use crate::table::TableStats;
use crate::table::{Table, TableSpec};
use crate::withdrawal::Withdrawals;
use crate::{StoreError, wal};

/// Bytes of tail (in memory) that make a segment; keeps every column far below the
/// 2 GiB a 32-bit-offset string array can hold.
const SEGMENT_BYTES: usize = 256 * 1024 * 1024;
/// Log entries above this size are written with the runtime told that the thread blocks.
const LARGE_ENTRY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Where Parquet segments live, one folder per dataset.
    pub segments_dir: PathBuf,
    pub segment_rows: usize,
    pub max_tail_age: Duration,
    /// How long the files of merged segments stay for readers that still use them.
    pub retired_grace: Duration,
    /// Writes are refused while the store's disk has less free space than this (0: never).
    pub min_free_bytes: u64,
    /// Segments in S3-compatible object storage (`s3://bucket/prefix`) instead of
    /// `segments_dir`; credentials and endpoint from the `AWS_…` variables.
    pub segments_url: Option<String>,
    /// Rows per batch the query engine produces.
    pub batch_rows: usize,
    /// Threads of the query runtime, used to split scans.
    pub query_partitions: usize,
    /// Memory and time each query may take.
    pub query_limits: QueryLimits,
    /// Where log entries withdrawn after a failed flush are recorded, outside the log;
    /// beside `segments_dir` by default.
    pub withdrawals_file: PathBuf,
    /// Test builds only: where to fail on purpose ([`Failpoints::from_env`] by default).
    pub failpoints: Failpoints,
}

impl StoreConfig {
    pub fn new(segments_dir: impl Into<PathBuf>) -> Self {
        let segments_dir = segments_dir.into();
        Self {
            withdrawals_file: segments_dir.with_file_name("wal-withdrawn.jsonl"),
            failpoints: Failpoints::from_env(),
            segments_dir,
            segment_rows: 1_000_000,
            max_tail_age: Duration::from_secs(600),
            retired_grace: crate::merging::RETIRED_GRACE,
            min_free_bytes: 0,
            segments_url: None,
            batch_rows: 128 * 1024,
            query_partitions: 2,
            query_limits: QueryLimits::default(),
        }
    }
}

/// A durable append: how many rows, and the sequence number of their log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub rows: usize,
    pub seq: u64,
}

/// A staged append waiting for its fsync.
pub struct StagedAppend {
    store: Store,
    dataset: String,
    appended: Appended,
    durable: oneshot::Receiver<Result<(), Refusal>>,
}

impl StagedAppend {
    pub async fn durable(self) -> Result<Appended, StoreError> {
        self.durable.await.map_err(|_| StoreError::ShuttingDown)??;
        self.store.inner.metrics.ingested(&self.dataset, self.appended.rows);
        Ok(self.appended)
    }
}

/// All tables of a node. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    config: StoreConfig,
    manifests: Manifests,
    tables: RwLock<HashMap<String, Arc<Table>>>,
    commit: GroupCommit,
    compactor: Compactor,
    maintenance: Arc<Notify>,
    /// Tells the maintenance task to end.
    stopped: watch::Sender<bool>,
    ctx: SessionContext,
    query_runtime: tokio::runtime::Handle,
    metrics: StoreMetrics,
    /// Set by the first failed flush; no writes after it.
    stop: Arc<WriteStop>,
    /// Ids of tables whose rows changed, after each group commit.
    changes: broadcast::Sender<String>,
    /// Turns to run a query (`query_concurrency`).
    queries: Arc<tokio::sync::Semaphore>,
    /// The free-space floor writes must stay above.
    space: Arc<DiskSpace>,
    /// Where tables' segments live.
    root: SegmentRoot,
}

/// Change notices buffered per listener before it lags.
const CHANGES: usize = 1024;

impl Store {
    /// Opens the store on `db` and starts its committer and compactor on the current runtime.
    /// Queries run on `query_runtime`, away from the I/O threads.
    pub fn open(
        db: sled::Db,
        config: StoreConfig,
        query_runtime: tokio::runtime::Handle,
        registry: &mut Registry,
    ) -> Result<Self, StoreError> {
        let metrics = StoreMetrics::register(registry);
        let maintenance = Arc::new(Notify::new());
        let manifests = Manifests::open(&db)?;
        // Entries whose flush failed last time leave the log before any table replays it.
        let withdrawals = Arc::new(Withdrawals::new(config.withdrawals_file.clone()));
        let withdrawn = withdrawals.apply(&db)?;
        if withdrawn > 0 {
            tracing::warn!(entries = withdrawn, "removed log entries whose flush failed before the restart");
        }
        let stop = Arc::new(WriteStop::default());
        let thresholds = Thresholds {
            segment_rows: config.segment_rows,
            segment_bytes: SEGMENT_BYTES,
            max_tail_age: config.max_tail_age,
            coalesce_entries: 64,
            retired_grace: config.retired_grace,
        };
        // No round-robin repartitioning: it would spread one segment's batches over
        // partitions only to merge them again (a filtered read paid 15 % for it on 2 cores)
        // and hand out a time series' rows out of their stored order.
        let session = SessionConfig::new()
            .with_target_partitions(config.query_partitions)
            .with_batch_size(config.batch_rows)
            .with_round_robin_repartition(false)
            .with_information_schema(false);
        let (changes, _) = broadcast::channel(CHANGES);
        // The log lives beside the segments' folder, in the data directory.
        let data_dir = config.segments_dir.parent().unwrap_or(&config.segments_dir).to_owned();
        let space = Arc::new(DiskSpace::new(&data_dir, config.min_free_bytes));
        let root = SegmentRoot::new(config.segments_dir.clone(), config.segments_url.as_deref())?;
        let queries = Arc::new(tokio::sync::Semaphore::new(config.query_limits.concurrency.max(1)));
        let inner = Arc::new(Inner {
            commit: GroupCommit::start(Committer {
                db: db.clone(),
                maintenance: Arc::clone(&maintenance),
                metrics: metrics.clone(),
                changes: changes.clone(),
                stop: Arc::clone(&stop),
                withdrawals,
                failpoints: config.failpoints.clone(),
            }),
            changes,
            compactor: Compactor {
                db: db.clone(),
                manifests: manifests.clone(),
                metrics: metrics.clone(),
                thresholds,
                stop: Arc::clone(&stop),
                failpoints: config.failpoints.clone(),
                space: Arc::clone(&space),
            },
            space,
            stop,
            db,
            config,
            manifests,
            tables: RwLock::new(HashMap::new()),
            maintenance,
            stopped: watch::Sender::new(false),
            queries,
            ctx: {
                let ctx = SessionContext::new_with_config(session);
                if let Some((url, store)) = root.object_store() {
                    ctx.register_object_store(url, store);
                }
                ctx
            },
            root,
            query_runtime,
            metrics,
        });
        tokio::spawn(maintain(Arc::clone(&inner)));
        Ok(Self { inner })
    }

    /// Registers the metrics that name datasets in `registry`, which only staff may scrape.
    pub fn register_dataset_metrics(&self, registry: &mut Registry) {
        self.inner.metrics.register_by_dataset(registry);
    }

    /// Creates the table of a new dataset, clearing whatever an earlier dataset of the same
    /// id may have left behind (a delete cut short by a crash).
    pub async fn create(&self, dataset: &Dataset) -> Result<(), StoreError> {
        self.remove_storage(dataset.id()).await?;
        self.attach(dataset)
    }

    /// Removes stored tables that no catalogued dataset owns any more; run at start-up.
    pub async fn forget_all_but(&self, datasets: &[Dataset]) -> Result<(), StoreError> {
        let known: std::collections::HashSet<&str> = datasets.iter().map(Dataset::id).collect();
        let mut stored: std::collections::BTreeSet<String> = self.inner.manifests.ids()?.into_iter().collect();
        for name in self.inner.db.tree_names() {
            if let Some(id) = String::from_utf8_lossy(&name).strip_prefix(wal::Wal::TREE_PREFIX) {
                stored.insert(id.to_owned());
            }
        }
        stored.extend(self.inner.root.local_tables());
        for id in stored.iter().filter(|id| !known.contains(id.as_str())) {
            tracing::info!(dataset = %id, "removing storage of a dataset deleted before a crash");
            self.remove_storage(id).await?;
        }
        Ok(())
    }

    /// Finishes a removal a crash cut short, if `id` has a tombstone (in object storage
    /// from a thread the runtime lets block).
    fn finish_removal(&self, id: &str, segments: &crate::location::Segments) -> Result<bool, StoreError> {
        if segments.is_local() {
            self.inner.removal().finish(id, segments)
        } else {
            tokio::task::block_in_place(|| self.inner.removal().finish(id, segments))
        }
    }

    /// Makes a catalogued dataset's table available, replaying its write-ahead log.
    pub fn attach(&self, dataset: &Dataset) -> Result<(), StoreError> {
        let schema = dataset.arrow_schema();
        let spec = TableSpec {
            id: dataset.id(),
            schema,
            time_column: dataset.spec.time_column.as_deref(),
            series_key: dataset.spec.series_key.as_deref(),
        };
        let segments = self.inner.root.table(dataset.id(), &self.inner.query_runtime);
        // A delete cut short by a crash has passed its commit point: finish it.
        self.finish_removal(dataset.id(), &segments)?;
        let table =
            Table::open(&self.inner.db, &self.inner.manifests, spec, segments, self.inner.compactor.thresholds)?;
        self.write_tables().insert(dataset.id().to_owned(), Arc::new(table));
        Ok(())
    }

    /// Removes a table with its log, manifest and segments: all of them or, if the node
    /// crashes before the removal is durable, none (see [`crate::removal`]).
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.inner.stop.check()?;
        let table = self.write_tables().remove(id).ok_or_else(|| unknown(id))?;
        let _maintenance = table.maintenance_lock.lock().await;
        let _appends = table.append_lock.lock().await;
        table.mark_deleted();
        self.remove_storage(id).await
    }

    async fn remove_storage(&self, id: &str) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || {
            let segments = inner.root.table(&id, &inner.query_runtime);
            inner.removal().remove(&id, &segments)
        })
        .await
        .map_err(|e| StoreError::from_join(e, "removing a table"))?
    }

    /// Appends one batch, which must already have the table's schema (see [`crate::conform`]
    /// and [`crate::decode`]). Returns once the batch is on disk and visible to readers.
    pub async fn append(&self, id: &str, batch: RecordBatch) -> Result<Appended, StoreError> {
        self.stage(id, batch).await?.durable().await
    }

    /// Stages one batch in the write-ahead log and queues it for the next group commit.
    /// Batches staged one after another get increasing sequence numbers; the returned
    /// [`StagedAppend`] resolves once the batch is durable.
    pub async fn stage(&self, id: &str, batch: RecordBatch) -> Result<StagedAppend, StoreError> {
        let table = self.table(id)?;
        if batch.schema() != table.schema {
            return Err(StoreError::Malformed { reason: format!("batch schema does not match dataset `{id}`") });
        }
        let rows = batch.num_rows();
        if rows == 0 {
            return Err(StoreError::Empty);
        }
        self.inner.space.check()?;
        let entry = if batch.get_array_memory_size() > LARGE_ENTRY_BYTES {
            let encoded = batch.clone();
            tokio::task::spawn_blocking(move || wal::encode(&encoded))
                .await
                .map_err(|e| StoreError::Corrupt { reason: format!("encoding task failed: {e}") })??
        } else {
            wal::encode(&batch)?
        };
        let (done, durable) = oneshot::channel();
        let mut next_seq = table.append_lock.lock().await;
        if table.is_deleted() {
            return Err(unknown(id));
        }
        self.inner.stop.check()?;
        let permit = self.inner.commit.reserve().await?;
        // From here on nothing awaits: the entry is staged and queued, or neither.
        let seq = *next_seq;
        if entry.len() > LARGE_ENTRY_BYTES {
            tokio::task::block_in_place(|| table.wal.insert(seq, entry))?;
        } else {
            table.wal.insert(seq, entry)?;
        }
        *next_seq += 1;
        permit.send(Pending { table: Arc::clone(&table), seq, batch, done });
        Ok(StagedAppend { store: self.clone(), dataset: id.to_owned(), appended: Appended { rows, seq }, durable })
    }

    /// A consistent cut of the table's rows within `range`, for a read path to plan on.
    pub fn stored(&self, id: &str, range: TimeRange) -> Result<Stored, StoreError> {
        let table = self.table(id)?;
        query::stored(&self.inner.ctx, &table, range)
    }

    /// The runtime queries run on, away from the I/O threads.
    pub fn query_runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.query_runtime
    }

    /// The store's DataFusion session: its batch size and partitions. Plan on it; run
    /// plans in a [`Store::query_session`], which bounds their memory.
    pub fn session(&self) -> &SessionContext {
        &self.inner.ctx
    }

    /// A session for one query: the store's configuration, with a memory pool of the
    /// query's own (`[limits] query_memory_bytes`).
    pub fn query_session(&self) -> Result<SessionContext, StoreError> {
        self.inner.config.query_limits.session(&self.inner.ctx)
    }

    /// Turns to run a query, `query_concurrency` of them.
    pub(crate) fn query_turns(&self) -> Arc<tokio::sync::Semaphore> {
        Arc::clone(&self.inner.queries)
    }

    /// The memory and time each query may take.
    pub fn query_limits(&self) -> QueryLimits {
        self.inner.config.query_limits
    }

    pub fn schema(&self, id: &str) -> Result<SchemaRef, StoreError> {
        Ok(self.table(id)?.schema.clone())
    }

    /// Ids of datasets whose rows changed, each sent once its rows are durable and
    /// visible. A listener that falls behind receives `Lagged` and should look at all.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.inner.changes.subscribe()
    }

    pub fn stats(&self, id: &str) -> Result<TableStats, StoreError> {
        Ok(self.table(id)?.stats())
    }

    /// Whether the store takes writes; not after a failed flush, until restart.
    pub fn writable(&self) -> Result<(), StoreError> {
        self.inner.stop.check()
    }

    /// Stops background work and flushes everything to disk (nothing, after a failed
    /// flush: the next start settles the log).
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        self.inner.stopped.send_replace(true);
        if self.inner.stop.is_stopped() {
            tracing::warn!("shutting down with writes stopped after a failed flush");
            return Ok(());
        }
        self.inner.db.flush_async().await?;
        Ok(())
    }

    pub(crate) fn table(&self, id: &str) -> Result<Arc<Table>, StoreError> {
        let tables = self.inner.tables.read().unwrap_or_else(PoisonError::into_inner);
        tables.get(id).cloned().ok_or_else(|| unknown(id))
    }

    fn write_tables(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Table>>> {
        self.inner.tables.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn removal(&self) -> Removal<'_> {
        Removal { db: &self.db, manifests: &self.manifests, stop: &self.stop, failpoints: &self.config.failpoints }
    }
}

fn unknown(id: &str) -> StoreError {
    StoreError::UnknownTable { id: id.to_owned() }
}

/// Compacts tables when woken by an append or once a second, until the store stops.
async fn maintain(inner: Arc<Inner>) {
    let mut stop = inner.stopped.subscribe();
    loop {
        tokio::select! {
            _ = inner.maintenance.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let tables: Vec<Arc<Table>> =
            inner.tables.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for table in tables {
            if let Err(error) = inner.compactor.maintain(&table).await {
                tracing::error!(dataset = %table.id, %error, "compaction failed; the tail stays in the log");
            }
        }
    }
}
