//! The access log: one record per read that reached data or was refused, append-only in
//! sled, keyed by time so that queries and retention walk ranges. Anonymous refusals are
//! folded (see [`refusals`]), so that nobody can grow the log at will.

mod refusals;
mod retention;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::PolicyError;
pub use refusals::RefusalLimits;
use refusals::{RefusalFold, is_anonymous_refusal};

/// Most records one query returns.
pub const MAX_QUERY: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub subject: String,
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    pub decision: Outcome,
    /// The rule that applied, or why the read was refused.
    pub reason: String,
    pub rows: u64,
    pub bytes: u64,
    pub interface: Interface,
}

/// Whether a read was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Permit,
    Deny,
}

/// The edge a read came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Interface {
    /// The REST API.
    Rest,
    /// Arrow Flight, from a client.
    Flight,
    /// Arrow Flight, from another member over mutual TLS.
    PeerFlight,
    /// An SQL statement over Flight SQL.
    FlightSql,
    /// The OGC SensorThings API, or a GeoJSON of stations.
    #[serde(rename = "sensorthings")]
    SensorThings,
    /// A page of the public portal.
    Portal,
    /// A regional view reading one of its sources.
    View,
    /// A read this node relayed from a member.
    Relay,
    /// A summary of folded refusals through any edge.
    #[serde(rename = "*")]
    Any,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Deny => "deny",
        }
    }
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Flight => "flight",
            Self::PeerFlight => "peer-flight",
            Self::FlightSql => "flight-sql",
            Self::SensorThings => "sensorthings",
            Self::Portal => "portal",
            Self::View => "view",
            Self::Relay => "relay",
            Self::Any => "*",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A query of the log; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub dataset: Option<String>,
    pub subject: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
    /// The latest records first (and the limit counts from the latest).
    pub newest_first: bool,
}

/// The log. Records are written to sled in batches by a writer thread, so that a request
/// never waits for sled; readers of the log see every record appended before they ask.
#[derive(Clone)]
pub struct AuditLog {
    tree: sled::Tree,
    db: sled::Db,
    pending: Arc<Pending>,
}

/// Records appended but not yet in sled, the writer's alarm, and the anonymous refusals
/// being folded (locked before `records` where both are held).
struct Pending {
    records: Mutex<Vec<([u8; 16], Vec<u8>)>>,
    filled: Condvar,
    refusals: Mutex<RefusalFold>,
}

/// Records held before the appender writes them itself (back-pressure, bounded memory).
const PENDING_MAX: usize = 16_384;
/// Records that wake the writer before its interval is up.
const PENDING_WAKE: usize = 1024;
/// How long a record waits for the writer at most (sled adds its own flush interval).
const WRITE_EVERY: Duration = Duration::from_millis(50);

impl AuditLog {
    pub fn open(db: &sled::Db) -> Result<Self, PolicyError> {
        Self::open_with(db, RefusalLimits::default())
    }

    /// The log, folding anonymous refusals by `limits`.
    pub fn open_with(db: &sled::Db, limits: RefusalLimits) -> Result<Self, PolicyError> {
        let tree = db.open_tree("audit")?;
        let pending = Arc::new(Pending {
            records: Mutex::default(),
            filled: Condvar::new(),
            refusals: Mutex::new(RefusalFold::new(limits)),
        });
        let log = Self { tree, db: db.clone(), pending };
        let writer = log.downgrade();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_pending(&writer))
            .map_err(|e| PolicyError::Corrupt(format!("starting the audit writer: {e}")))?;
        Ok(log)
    }

    /// Appends a record. It reaches sled within [`WRITE_EVERY`]; sled makes it durable
    /// within its flush interval (0.5 s); [`AuditLog::flush`] at shutdown. An anonymous
    /// refusal beyond its kind's burst is only counted, and its window's summary record is
    /// written when the window ends.
    pub fn append(&self, record: &AuditRecord) -> Result<(), PolicyError> {
        if is_anonymous_refusal(record) {
            let mut closed = Vec::new();
            let admitted = self.pending.refusals.lock().unwrap_or_else(PoisonError::into_inner).admit(
                record,
                Instant::now(),
                &mut closed,
            );
            for summary in &closed {
                self.write(summary)?;
            }
            if !admitted {
                return Ok(());
            }
        }
        self.write(record)
    }

    fn write(&self, record: &AuditRecord) -> Result<(), PolicyError> {
        let micros = u64::try_from(record.at.timestamp_micros()).unwrap_or(0);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&micros.to_be_bytes());
        key[8..].copy_from_slice(&self.db.generate_id()?.to_be_bytes());
        let value = serde_json::to_vec(record).map_err(|e| PolicyError::Corrupt(e.to_string()))?;
        let mut records = self.pending.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() >= PENDING_MAX {
            drop(records);
            self.tree.insert(key, value)?;
            return Ok(());
        }
        records.push((key, value));
        if records.len() >= PENDING_WAKE {
            self.pending.filled.notify_one();
        }
        Ok(())
    }

    /// Writes every appended record to sled and flushes it to disk; the summaries of the
    /// refusal windows still open are written first, so that no count is lost at shutdown.
    pub fn flush(&self) -> Result<(), PolicyError> {
        let mut closed = Vec::new();
        self.pending.refusals.lock().unwrap_or_else(PoisonError::into_inner).close_all(&mut closed);
        for summary in &closed {
            self.write(summary)?;
        }
        write_batch(&self.pending, &self.tree)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Records in time order, oldest first unless `query.newest_first`, at most
    /// `query.limit` (bounded by [`MAX_QUERY`]).
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, PolicyError> {
        write_batch(&self.pending, &self.tree)?;
        let start = time_key(query.from.unwrap_or(DateTime::<Utc>::MIN_UTC));
        let end = time_key(query.to.unwrap_or(DateTime::<Utc>::MAX_UTC));
        let limit = query.limit.clamp(1, MAX_QUERY);
        let mut records = Vec::new();
        let range = self.tree.range(start..end);
        let items: Box<dyn Iterator<Item = _>> =
            if query.newest_first { Box::new(range.rev()) } else { Box::new(range) };
        for item in items {
            let (_, value) = item?;
            let record: AuditRecord =
                serde_json::from_slice(&value).map_err(|e| PolicyError::Corrupt(e.to_string()))?;
            if query.dataset.as_ref().is_some_and(|d| *d != record.dataset)
                || query.subject.as_ref().is_some_and(|s| *s != record.subject)
            {
                continue;
            }
            records.push(record);
            if records.len() == limit {
                break;
            }
        }
        Ok(records)
    }

    /// Drops records older than `before`; returns how many.
    pub fn expire(&self, before: DateTime<Utc>) -> Result<usize, PolicyError> {
        write_batch(&self.pending, &self.tree)?;
        let mut removed = 0;
        for item in self.tree.range(..time_key(before)) {
            let (key, _) = item?;
            self.tree.remove(key)?;
            removed += 1;
        }
        Ok(removed)
    }

    fn downgrade(&self) -> WeakLog {
        WeakLog { tree: self.tree.clone(), db: self.db.clone(), pending: Arc::downgrade(&self.pending) }
    }
}

/// The writer thread's handle: the log without keeping it alive.
struct WeakLog {
    tree: sled::Tree,
    db: sled::Db,
    pending: Weak<Pending>,
}

/// The writer thread: batches of pending records into sled, and the summaries of refusal
/// windows that ended, until the log is gone.
fn write_pending(weak: &WeakLog) {
    while let Some(pending) = weak.pending.upgrade() {
        {
            let records = pending.records.lock().unwrap_or_else(PoisonError::into_inner);
            if records.len() < PENDING_WAKE {
                let _ = pending.filled.wait_timeout(records, WRITE_EVERY);
            }
        }
        let mut closed = Vec::new();
        pending.refusals.lock().unwrap_or_else(PoisonError::into_inner).close_expired(Instant::now(), &mut closed);
        let log = AuditLog { tree: weak.tree.clone(), db: weak.db.clone(), pending };
        for summary in &closed {
            if let Err(error) = log.write(summary) {
                tracing::error!(%error, dataset = %summary.dataset, "summary of folded refusals lost");
            }
        }
        if let Err(error) = write_batch(&log.pending, &log.tree) {
            tracing::error!(%error, "audit records not written");
        }
    }
}

fn write_batch(pending: &Pending, tree: &sled::Tree) -> Result<(), PolicyError> {
    let records = std::mem::take(&mut *pending.records.lock().unwrap_or_else(PoisonError::into_inner));
    if records.is_empty() {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    for (key, value) in records {
        batch.insert(&key, value);
    }
    tree.apply_batch(batch)?;
    Ok(())
}

fn time_key(at: DateTime<Utc>) -> [u8; 8] {
    u64::try_from(at.timestamp_micros()).unwrap_or(0).to_be_bytes()
}

/// An allowed read in progress: counts what is served and writes its record when dropped,
/// whether the stream finished or the reader went away.
pub struct AuditEntry {
    log: AuditLog,
    record: Option<AuditRecord>,
    served: Arc<Served>,
}

/// What a stream served so far; shared with the stream that counts.
#[derive(Debug, Default)]
pub struct Served {
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl Served {
    pub fn add(&self, rows: u64, bytes: u64) {
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl AuditEntry {
    pub fn new(log: AuditLog, record: AuditRecord) -> Self {
        Self { log, record: Some(record), served: Arc::default() }
    }

    pub fn served(&self) -> Arc<Served> {
        Arc::clone(&self.served)
    }
}

impl std::fmt::Debug for AuditEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditEntry").field("record", &self.record).field("served", &self.served).finish()
    }
}

impl Drop for AuditEntry {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            record.rows = self.served.rows.load(Ordering::Relaxed);
            record.bytes = self.served.bytes.load(Ordering::Relaxed);
            if let Err(error) = self.log.append(&record) {
                tracing::error!(%error, dataset = %record.dataset, "audit record lost");
            }
        }
    }
}
