//! The access log: one record per read that reached data or was refused, append-only in
//! sled, keyed by time so that queries and retention walk ranges.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::PolicyError;

/// Most records one query returns.
pub const MAX_QUERY: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub subject: String,
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// `permit` or `deny`.
    pub decision: String,
    /// The rule that applied, or why the read was refused.
    pub reason: String,
    pub rows: u64,
    pub bytes: u64,
    /// `rest`, `flight`, `peer-flight`, `view`, ...
    pub interface: String,
}

/// A query of the log; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub dataset: Option<String>,
    pub subject: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
}

#[derive(Clone)]
pub struct AuditLog {
    tree: sled::Tree,
    db: sled::Db,
}

impl AuditLog {
    pub fn open(db: &sled::Db) -> Result<Self, PolicyError> {
        Ok(Self { tree: db.open_tree("audit")?, db: db.clone() })
    }

    /// Appends a record. sled makes it durable within its flush interval (0.5 s).
    pub fn append(&self, record: &AuditRecord) -> Result<(), PolicyError> {
        let micros = u64::try_from(record.at.timestamp_micros()).unwrap_or(0);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&micros.to_be_bytes());
        key[8..].copy_from_slice(&self.db.generate_id()?.to_be_bytes());
        let value = serde_json::to_vec(record).map_err(|e| PolicyError::Corrupt(e.to_string()))?;
        self.tree.insert(key, value)?;
        Ok(())
    }

    /// Records in time order, oldest first, at most `query.limit` (bounded by [`MAX_QUERY`]).
    pub fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, PolicyError> {
        let start = time_key(query.from.unwrap_or(DateTime::<Utc>::MIN_UTC));
        let end = time_key(query.to.unwrap_or(DateTime::<Utc>::MAX_UTC));
        let limit = query.limit.clamp(1, MAX_QUERY);
        let mut records = Vec::new();
        for item in self.tree.range(start..end) {
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
        let mut removed = 0;
        for item in self.tree.range(..time_key(before)) {
            let (key, _) = item?;
            self.tree.remove(key)?;
            removed += 1;
        }
        Ok(removed)
    }
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
