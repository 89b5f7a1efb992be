//! Moving the write-ahead log tail into Parquet segments, and keeping the tail compact.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::compute::concat_batches;

use crate::StoreError;
use crate::commit::WriteStop;
use crate::failpoint::Failpoints;
use crate::manifest::{Manifests, Segment};
use crate::metrics::StoreMetrics;
use crate::segment;
use crate::space::DiskSpace;
use crate::table::{Table, TailEntry};

/// Tail batches smaller than this are merged with their neighbours.
const COALESCED_ROWS: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Thresholds {
    /// Compact once the tail holds this many rows, or this many bytes in memory; a
    /// segment is written from at most that much, so that no column outgrows 32-bit offsets.
    pub(crate) segment_rows: usize,
    pub(crate) segment_bytes: usize,
    /// Compact a smaller tail once its oldest row waited this long.
    pub(crate) max_tail_age: Duration,
    /// Merge small tail batches in memory once there are this many.
    pub(crate) coalesce_entries: usize,
    /// How long the files of merged segments stay for readers (see [`crate::merging`]).
    pub(crate) retired_grace: Duration,
}

pub(crate) struct Compactor {
    pub(crate) db: sled::Db,
    pub(crate) manifests: Manifests,
    pub(crate) metrics: StoreMetrics,
    pub(crate) thresholds: Thresholds,
    pub(crate) stop: Arc<WriteStop>,
    pub(crate) failpoints: Failpoints,
    /// Below the free-space floor, segments are not written: they need room of their own.
    pub(crate) space: Arc<DiskSpace>,
}

impl Compactor {
    /// Does whatever the table's tail needs now, if anything.
    pub(crate) async fn maintain(&self, table: &Arc<Table>) -> Result<(), StoreError> {
        let _running = table.maintenance_lock.lock().await;
        // After a failed flush nothing is written, segments included: the log is settled at restart.
        if table.is_deleted() || self.stop.is_stopped() {
            return Ok(());
        }
        if table.take_orphan_check() {
            self.remove_orphans(table).await?;
        }
        self.remove_retired(table).await;
        // A local segment needs room of its own; one in object storage frees the log's.
        if table.segments.is_local() && self.space.check().is_err() {
            return Ok(());
        }
        let view = table.tail_view();
        let aged = view.oldest.is_some_and(|t| t.elapsed() >= self.thresholds.max_tail_age);
        let full = view.rows >= self.thresholds.segment_rows || view.bytes >= self.thresholds.segment_bytes;
        if full || (aged && view.rows > 0) {
            let entries = self.segment_prefix(view.entries);
            self.compact(table, entries).await
        } else if view.entries.len() >= self.thresholds.coalesce_entries {
            self.coalesce(table, view.entries).await
        } else {
            self.merge_small(table).await.map(drop)
        }
    }

    /// The leading tail entries that fit one segment (always at least one).
    fn segment_prefix(&self, mut entries: Vec<TailEntry>) -> Vec<TailEntry> {
        let (mut rows, mut bytes) = (0, 0);
        let fits = entries
            .iter()
            .take_while(|e| {
                rows += e.batch.num_rows();
                bytes += e.batch.get_array_memory_size();
                rows <= self.thresholds.segment_rows && bytes <= self.thresholds.segment_bytes
            })
            .count();
        entries.truncate(fits.max(1));
        entries
    }

    /// Writes the tail into a sorted segment, swaps the manifest, then trims the log.
    async fn compact(&self, table: &Arc<Table>, entries: Vec<TailEntry>) -> Result<(), StoreError> {
        let Some(last_seq) = entries.last().map(|e| e.last_seq) else {
            return Ok(());
        };
        let count = entries.len();
        let name = format!("seg-{last_seq:020}.parquet");
        let writer = Arc::clone(table);
        let file = name.clone();
        let failpoints = self.failpoints.clone();
        let (rows, bytes, extent) = tokio::task::spawn_blocking(move || {
            let batches: Vec<_> = entries.into_iter().map(|e| e.batch).collect();
            let merged = segment::merge_sorted(&batches, &writer.sort_columns)?;
            let bytes = writer.segments.write(&file, &merged, &failpoints)?;
            Ok::<_, StoreError>((merged.num_rows() as u64, bytes, writer.extent_of(&merged)))
        })
        .await
        .map_err(|e| StoreError::Corrupt { reason: format!("compaction task failed: {e}") })??;

        let mut manifest = table.manifest();
        manifest.segments.push(Segment { file: name, rows, bytes, extent });
        manifest.compacted_seq = last_seq;
        self.manifests.store(&table.id, &manifest)?;
        self.stop.flush(&self.db).await?;
        table.compacted(count, manifest);
        // Only now may the log forget these entries; a crash before this point replays
        // nothing twice, because the manifest already says they are compacted.
        let trimmer = Arc::clone(table);
        tokio::task::spawn_blocking(move || trimmer.wal.trim(last_seq))
            .await
            .map_err(|e| StoreError::Corrupt { reason: format!("trimming task failed: {e}") })??;
        self.metrics.segments_written.inc();
        tracing::debug!(dataset = %table.id, rows, bytes, "compacted tail into a segment");
        Ok(())
    }

    /// Removes segments in object storage that no manifest names (leftovers of a crash).
    async fn remove_orphans(&self, table: &Arc<Table>) -> Result<(), StoreError> {
        let table = Arc::clone(table);
        let removed = tokio::task::spawn_blocking(move || {
            let manifest = table.manifest();
            let keep: std::collections::HashSet<&str> = manifest.segments.iter().map(|s| s.file.as_str()).collect();
            table.segments.remove_orphans(&keep)
        })
        .await
        .map_err(|e| StoreError::from_join(e, "removing leftover segments"))??;
        if removed > 0 {
            tracing::info!(removed, "removed leftover segments from object storage");
        }
        Ok(())
    }

    /// Merges the small batches at the end of the tail into one, in memory only, so that
    /// reads stay fast. Batches already large are left alone, which bounds the copying.
    async fn coalesce(&self, table: &Arc<Table>, mut entries: Vec<TailEntry>) -> Result<(), StoreError> {
        let small = entries.iter().rev().take_while(|e| e.batch.num_rows() < COALESCED_ROWS).count();
        let first = entries.len() - small;
        let entries = entries.split_off(first);
        let Some(last_seq) = entries.last().map(|e| e.last_seq).filter(|_| entries.len() > 1) else {
            return Ok(());
        };
        let range = first..first + entries.len();
        let schema = table.schema.clone();
        let batch = tokio::task::spawn_blocking(move || {
            let batches: Vec<_> = entries.into_iter().map(|e| e.batch).collect();
            concat_batches(&schema, &batches)
        })
        .await
        .map_err(|e| StoreError::Corrupt { reason: format!("coalescing task failed: {e}") })??;
        table.coalesced(range, TailEntry { last_seq, batch });
        Ok(())
    }
}
