//! Merging small segments. A trickle-fed dataset is compacted when its tail is old enough,
//! so it gains one small segment every `max_tail_age`: thousands over months, each opened
//! by every read. A run of small neighbouring segments is merged into one, crash-safely:
//! the merged segment is written and synced, the manifest naming it instead of the run is
//! made durable, and only then are the run's files retired. A crash before the manifest
//! swap leaves the merged file an orphan, removed at the next start; after it, the run's
//! files are. Readers that took a snapshot before the swap still read the run's files:
//! they are removed only once they have been out of the manifest longer than any read runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::StoreError;
use crate::compaction::Compactor;
use crate::extent::TimeExtent;
use crate::manifest::Segment;
use crate::segment;
use crate::table::Table;

/// Segments merged at once, at least: fewer are not worth the rewrite.
const MIN_RUN: usize = 4;
/// A segment is small below this share of a full one.
const SMALL_SHARE: usize = 4;
/// How long a retired segment's file is kept for readers that still use it: longer than
/// any read may run (`[limits] query_timeout_secs`).
pub(crate) const RETIRED_GRACE: Duration = Duration::from_secs(15 * 60);

impl Compactor {
    /// Merges the first run of small neighbouring segments, if there is one worth merging.
    /// Called with the table's maintenance lock held.
    pub(crate) async fn merge_small(&self, table: &Arc<Table>) -> Result<bool, StoreError> {
        let manifest = table.manifest();
        let Some(run) = self.small_run(&manifest.segments) else { return Ok(false) };
        let merged: Vec<Segment> = manifest.segments[run.clone()].to_vec();
        let last = merged.last().map(|s| s.file.trim_end_matches(".parquet").to_owned()).unwrap_or_default();
        let name = format!("{last}-m{}.parquet", merged.len());
        let reader = Arc::clone(table);
        let (files, file, failpoints) = (merged.clone(), name.clone(), self.failpoints.clone());
        let (rows, bytes) = tokio::task::spawn_blocking(move || {
            let mut batches = Vec::new();
            for segment in &files {
                batches.extend(reader.segments.read(&segment.file)?);
            }
            let merged = segment::merge_sorted(&batches, &reader.sort_columns)?;
            let bytes = reader.segments.write(&file, &merged, &failpoints)?;
            Ok::<_, StoreError>((merged.num_rows() as u64, bytes))
        })
        .await
        .map_err(|e| StoreError::from_join(e, "merging"))??;
        if rows != merged.iter().map(|s| s.rows).sum::<u64>() {
            return Err(StoreError::Corrupt { reason: format!("merging into {name} changed the number of rows") });
        }
        self.failpoints.hit("merge-written").map_err(StoreError::io(table.segments.url(&name)))?;
        let extent = merged.iter().map(|s| s.extent).fold(None, TimeExtent::union);
        let mut manifest = manifest;
        manifest.segments.splice(run, [Segment { file: name, rows, bytes, extent }]);
        self.manifests.store(&table.id, &manifest)?;
        self.stop.flush(&self.db).await?;
        self.failpoints.hit("merge-swapped").map_err(StoreError::io(table.segments.to_string()))?;
        table.merged(manifest, merged.iter().map(|s| s.file.clone()).collect());
        self.metrics.segments_written.inc();
        tracing::debug!(dataset = %table.id, segments = merged.len(), rows, "merged small segments");
        Ok(true)
    }

    /// The first run of at least [`MIN_RUN`] neighbouring small segments whose rows and
    /// bytes together fit one segment.
    fn small_run(&self, segments: &[Segment]) -> Option<std::ops::Range<usize>> {
        let small = |s: &Segment| (s.rows as usize) < self.thresholds.segment_rows / SMALL_SHARE;
        let mut start = 0;
        while start < segments.len() {
            if !small(&segments[start]) {
                start += 1;
                continue;
            }
            let (mut rows, mut bytes, mut end) = (0usize, 0usize, start);
            while end < segments.len() && small(&segments[end]) {
                let (next_rows, next_bytes) =
                    (rows + segments[end].rows as usize, bytes + segments[end].bytes as usize);
                // A segment's bytes on disk are compressed; its rows in memory are bounded
                // by the same limit as a compaction's.
                if next_rows > self.thresholds.segment_rows || next_bytes > self.thresholds.segment_bytes / 4 {
                    break;
                }
                (rows, bytes, end) = (next_rows, next_bytes, end + 1);
            }
            if end - start >= MIN_RUN {
                return Some(start..end);
            }
            start = end.max(start + 1);
        }
        None
    }

    /// Removes the files of merged segments that no reader can still be using.
    pub(crate) async fn remove_retired(&self, table: &Arc<Table>) {
        let Some(cutoff) = Instant::now().checked_sub(self.thresholds.retired_grace) else { return };
        let files = table.retired_before(cutoff);
        if files.is_empty() {
            return;
        }
        let table = Arc::clone(table);
        let removed = tokio::task::spawn_blocking(move || {
            for file in files {
                if let Err(error) = table.segments.remove(&file) {
                    tracing::warn!(%file, %error, "a merged segment's file stays until the next start");
                }
            }
        })
        .await;
        if let Err(error) = removed {
            tracing::warn!(%error, "removing merged segments' files failed");
        }
    }
}
