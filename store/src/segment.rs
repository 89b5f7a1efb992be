//! Immutable Parquet segments: written once, fsynced, renamed into place.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use datafusion::arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use crate::StoreError;

const ROW_GROUP_ROWS: usize = 256 * 1024;

/// Concatenates `batches` and sorts them by `sort_columns` (time, then series key),
/// so that segments prune well on time ranges.
pub(crate) fn merge_sorted(batches: &[RecordBatch], sort_columns: &[usize]) -> Result<RecordBatch, StoreError> {
    let first = batches.first().ok_or_else(|| StoreError::Corrupt { reason: "no batches to merge".into() })?;
    let merged = concat_batches(&first.schema(), batches)?;
    if sort_columns.is_empty() {
        return Ok(merged);
    }
    let keys: Vec<SortColumn> =
        sort_columns.iter().map(|&index| SortColumn { values: merged.column(index).clone(), options: None }).collect();
    let indices = lexsort_to_indices(&keys, None)?;
    Ok(take_record_batch(&merged, &indices)?)
}

/// Writes `batch` to `dir/name` durably: temporary file, fsync, rename, fsync of the directory.
/// Returns the file's size.
pub(crate) fn write(dir: &Path, name: &str, batch: &RecordBatch) -> Result<u64, StoreError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
        // The new folder's entry in its parent must be durable too.
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    let temporary = dir.join(format!(".{name}.tmp"));
    let file = File::create(&temporary).map_err(StoreError::io(&temporary))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    let file = writer.into_inner()?;
    file.sync_all().map_err(StoreError::io(&temporary))?;
    let bytes = file.metadata().map_err(StoreError::io(&temporary))?.len();
    let target = dir.join(name);
    std::fs::rename(&temporary, &target).map_err(StoreError::io(&target))?;
    sync_dir(dir)?;
    Ok(bytes)
}

/// Deletes files in `dir` that no manifest names: leftovers of a compaction cut short.
pub(crate) fn remove_orphans(dir: &Path, keep: &HashSet<&str>) -> Result<usize, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(StoreError::Io { path: dir.to_owned(), source: e });
        }
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(StoreError::io(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !keep.contains(name) {
            std::fs::remove_file(&path).map_err(StoreError::io(&path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io(dir))
}
