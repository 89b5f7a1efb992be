use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use crate::StoreError;
use crate::compaction::Thresholds;
use crate::extent::TimeExtent;
use crate::latest::LatestRows;
use crate::location::Segments;
use crate::manifest::{Manifest, Manifests, Segment};
use crate::wal::Wal;

/// One dataset's rows: immutable segments plus the durable tail of the write-ahead log.
pub(crate) struct Table {
    pub(crate) id: String,
    pub(crate) schema: SchemaRef,
    pub(crate) time_column: Option<String>,
    time_index: Option<usize>,
    pub(crate) series_key: Option<String>,
    /// Columns segments are sorted by: time, then series key.
    pub(crate) sort_columns: Vec<usize>,
    /// Where its segments live.
    pub(crate) segments: Segments,
    /// Whether leftover segments in object storage are still to be removed: listing them
    /// needs the network, so it is done by the first maintenance, not at open.
    orphans_unchecked: AtomicBool,
    pub(crate) wal: Wal,
    /// Guards the next sequence number; held while an append is staged and queued.
    pub(crate) append_lock: tokio::sync::Mutex<u64>,
    /// One compaction or coalescing at a time.
    pub(crate) maintenance_lock: tokio::sync::Mutex<()>,
    /// Set by delete while it holds both locks; appends and compaction check it after
    /// taking theirs, so nothing touches a deleted table's storage again.
    deleted: AtomicBool,
    thresholds: Thresholds,
    state: Mutex<TableState>,
}

struct TableState {
    manifest: Manifest,
    tail: Vec<TailEntry>,
    tail_rows: usize,
    tail_bytes: usize,
    oldest: Option<Instant>,
    extent: Option<TimeExtent>,
    /// The latest row of each series, once a reader asked for it; kept up to date by
    /// every publish from then on.
    latest: Option<LatestRows>,
    /// Files of merged segments, and since when no manifest names them.
    retired: Vec<(String, Instant)>,
    /// Publishes so far: a latest-rows index built from a snapshot is taken only if none
    /// happened while it was built.
    publishes: u64,
}

/// A durable batch not yet in a segment, with the last sequence number it covers.
#[derive(Clone)]
pub(crate) struct TailEntry {
    pub(crate) last_seq: u64,
    pub(crate) batch: RecordBatch,
}

/// What a reader sees: a consistent cut of segments and tail.
pub(crate) struct Snapshot {
    /// Where the query engine reads each segment (a path or an `s3://` URL).
    pub(crate) segments: Vec<String>,
    pub(crate) tail: Vec<RecordBatch>,
}

pub(crate) struct TailView {
    pub(crate) entries: Vec<TailEntry>,
    pub(crate) rows: usize,
    pub(crate) bytes: usize,
    pub(crate) oldest: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStats {
    pub rows: u64,
    /// Span of the time column, when the table has one and rows.
    pub extent: Option<TimeExtent>,
    pub segments: usize,
    pub segment_bytes: u64,
    pub tail_rows: usize,
}

fn measure(tail: &[TailEntry]) -> (usize, usize) {
    tail.iter().fold((0, 0), |(rows, bytes), e| (rows + e.batch.num_rows(), bytes + e.batch.get_array_memory_size()))
}

pub(crate) struct TableSpec<'a> {
    pub(crate) id: &'a str,
    pub(crate) schema: SchemaRef,
    pub(crate) time_column: Option<&'a str>,
    pub(crate) series_key: Option<&'a str>,
}

impl Table {
    /// Loads the manifest, replays the write-ahead log and removes orphaned segment files.
    pub(crate) fn open(
        db: &sled::Db,
        manifests: &Manifests,
        spec: TableSpec<'_>,
        segments: Segments,
        thresholds: Thresholds,
    ) -> Result<Self, StoreError> {
        let manifest = manifests.load(spec.id)?;
        let wal = Wal::open(db, spec.id)?;
        let replayed = wal.replay(&spec.schema, manifest.compacted_seq)?;
        if segments.is_local() {
            let keep: HashSet<&str> = manifest.segments.iter().map(|s| s.file.as_str()).collect();
            segments.remove_orphans(&keep)?;
        }
        let orphans_unchecked = AtomicBool::new(!segments.is_local());
        let next_seq = replayed.last().map_or(manifest.compacted_seq, |(seq, _)| *seq) + 1;
        let tail: Vec<TailEntry> =
            replayed.into_iter().map(|(last_seq, batch)| TailEntry { last_seq, batch }).collect();
        let (tail_rows, tail_bytes) = measure(&tail);
        let time_index = spec.time_column.and_then(|name| spec.schema.index_of(name).ok());
        let extent = manifest
            .segments
            .iter()
            .map(|s| s.extent)
            .chain(tail.iter().map(|e| time_index.and_then(|i| TimeExtent::of(&e.batch, i))))
            .fold(None, TimeExtent::union);
        let sort_columns = [spec.time_column, spec.series_key]
            .into_iter()
            .flatten()
            .filter_map(|name| spec.schema.index_of(name).ok())
            .collect();
        Ok(Self {
            id: spec.id.to_owned(),
            time_column: spec.time_column.map(str::to_owned),
            time_index,
            series_key: spec.series_key.map(str::to_owned),
            schema: spec.schema,
            sort_columns,
            segments,
            orphans_unchecked,
            wal,
            append_lock: tokio::sync::Mutex::new(next_seq),
            maintenance_lock: tokio::sync::Mutex::new(()),
            deleted: AtomicBool::new(false),
            thresholds,
            state: Mutex::new(TableState {
                oldest: (!tail.is_empty()).then(Instant::now),
                manifest,
                tail,
                tail_rows,
                tail_bytes,
                extent,
                latest: None,
                publishes: 0,
                retired: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, TableState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes a durable append visible. Returns whether the tail wants maintenance.
    pub(crate) fn publish(&self, seq: u64, batch: RecordBatch) -> bool {
        let extent = self.extent_of(&batch);
        let mut state = self.state();
        state.extent = TimeExtent::union(state.extent, extent);
        state.tail_rows += batch.num_rows();
        state.tail_bytes += batch.get_array_memory_size();
        state.publishes += 1;
        if let Some(latest) = &mut state.latest
            && let Err(e) = latest.fold(&batch)
        {
            tracing::warn!(dataset = %self.id, error = %e, "latest rows dropped; the next read rebuilds them");
            state.latest = None;
        }
        state.tail.push(TailEntry { last_seq: seq, batch });
        state.oldest.get_or_insert_with(Instant::now);
        state.tail_rows >= self.thresholds.segment_rows
            || state.tail_bytes >= self.thresholds.segment_bytes
            || state.tail.len() >= self.thresholds.coalesce_entries
    }

    /// The span of the time column in `batch`.
    pub(crate) fn extent_of(&self, batch: &RecordBatch) -> Option<TimeExtent> {
        self.time_index.and_then(|index| TimeExtent::of(batch, index))
    }

    /// Called by delete while it holds both locks.
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
        let mut state = self.state();
        state.tail.clear();
        (state.tail_rows, state.tail_bytes) = (0, 0);
    }

    /// Whether the leftovers in object storage are still to be removed; true once.
    pub(crate) fn take_orphan_check(&self) -> bool {
        self.orphans_unchecked.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let state = self.state();
        Snapshot {
            segments: state.manifest.segments.iter().map(|s| self.segments.url(&s.file)).collect(),
            tail: state.tail.iter().map(|e| e.batch.clone()).collect(),
        }
    }

    /// The latest row of each series if known, else the publish count to build them at.
    pub(crate) fn latest(&self) -> Result<RecordBatch, u64> {
        let state = self.state();
        state.latest.as_ref().map(|l| l.rows().clone()).ok_or(state.publishes)
    }

    /// Keeps `latest`, built from a snapshot taken at `publishes`, unless rows were
    /// published since.
    pub(crate) fn keep_latest(&self, publishes: u64, latest: LatestRows) {
        let mut state = self.state();
        if state.publishes == publishes && !self.is_deleted() {
            state.latest = Some(latest);
        }
    }

    pub(crate) fn tail_view(&self) -> TailView {
        let state = self.state();
        TailView { entries: state.tail.clone(), rows: state.tail_rows, bytes: state.tail_bytes, oldest: state.oldest }
    }

    pub(crate) fn manifest(&self) -> Manifest {
        self.state().manifest.clone()
    }

    /// Replaces the tail entries `range` by one coalesced entry.
    pub(crate) fn coalesced(&self, range: std::ops::Range<usize>, entry: TailEntry) {
        let mut state = self.state();
        if range.end <= state.tail.len() {
            state.tail.splice(range, [entry]);
        }
    }

    /// Drops the first `count` tail entries, which `manifest` now holds in a segment.
    pub(crate) fn compacted(&self, count: usize, manifest: Manifest) {
        let mut state = self.state();
        let count = count.min(state.tail.len());
        state.tail.drain(..count);
        (state.tail_rows, state.tail_bytes) = measure(&state.tail);
        state.oldest = (!state.tail.is_empty()).then(Instant::now);
        state.manifest = manifest;
    }

    /// Takes `manifest`, in which one merged segment replaced the segments whose files
    /// are `files`; those files are retired.
    pub(crate) fn merged(&self, manifest: Manifest, files: Vec<String>) {
        let mut state = self.state();
        state.manifest = manifest;
        let now = Instant::now();
        state.retired.extend(files.into_iter().map(|file| (file, now)));
    }

    /// The retired files retired at `cutoff` or before, no longer kept.
    pub(crate) fn retired_before(&self, cutoff: Instant) -> Vec<String> {
        let mut state = self.state();
        let (old, young): (Vec<_>, Vec<_>) =
            std::mem::take(&mut state.retired).into_iter().partition(|(_, at)| *at <= cutoff);
        state.retired = young;
        old.into_iter().map(|(file, _)| file).collect()
    }

    pub(crate) fn stats(&self) -> TableStats {
        let state = self.state();
        let segment_rows: u64 = state.manifest.segments.iter().map(|s| s.rows).sum();
        TableStats {
            rows: segment_rows + state.tail_rows as u64,
            extent: state.extent,
            segments: state.manifest.segments.len(),
            segment_bytes: state.manifest.segments.iter().map(|s: &Segment| s.bytes).sum(),
            tail_rows: state.tail_rows,
        }
    }
}
