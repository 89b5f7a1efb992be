//! Immutable Parquet segments: written once, fsynced, renamed into place.

use std::fs::File;
use std::path::Path;

use datafusion::arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

use crate::StoreError;
use crate::failpoint::Failpoints;

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
pub(crate) fn write(dir: &Path, name: &str, batch: &RecordBatch, failpoints: &Failpoints) -> Result<u64, StoreError> {
    if create_dirs(dir, &mut sync_dir)? {
        failpoints.hit("segment-dir-created").map_err(StoreError::io(dir))?;
    }
    let temporary = dir.join(format!(".{name}.tmp"));
    let file = File::create(&temporary).map_err(StoreError::io(&temporary))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties()))?;
    writer.write(batch)?;
    let file = writer.into_inner()?;
    file.sync_all().map_err(StoreError::io(&temporary))?;
    let bytes = file.metadata().map_err(StoreError::io(&temporary))?.len();
    let target = dir.join(name);
    std::fs::rename(&temporary, &target).map_err(StoreError::io(&target))?;
    sync_dir(dir)?;
    Ok(bytes)
}

/// `batch` as a segment's bytes, for object storage.
pub(crate) fn encode(batch: &RecordBatch) -> Result<bytes::Bytes, StoreError> {
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(properties()))?;
    writer.write(batch)?;
    Ok(bytes::Bytes::from(writer.into_inner()?))
}

/// LZ4 and row groups small enough to prune on time.
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// Creates `dir` and whichever of its parents are missing (the first segment also makes
/// `segments/`), one level at a time, and passes each new folder's parent to `sync`: a
/// folder's entry is durable only once its parent is fsynced. Returns whether it created any.
fn create_dirs(dir: &Path, sync: &mut dyn FnMut(&Path) -> Result<(), StoreError>) -> Result<bool, StoreError> {
    let missing: Vec<&Path> =
        dir.ancestors().take_while(|path| !path.as_os_str().is_empty() && !path.exists()).collect();
    for path in missing.iter().rev() {
        match std::fs::create_dir(path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Io { path: path.to_path_buf(), source: e });
            }
            _ => {}
        }
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => sync(parent)?,
            _ => sync(Path::new("."))?,
        }
    }
    Ok(!missing.is_empty())
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(StoreError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_folder_is_made_durable_in_its_parent_top_down() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = root.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let dataset = data.join("segments").join("pegel");
        let mut synced = Vec::new();
        let created = create_dirs(&dataset, &mut |parent| {
            assert!(parent.exists());
            synced.push(parent.to_path_buf());
            Ok(())
        })
        .expect("create");
        assert!(created && dataset.is_dir());
        // `segments/` is new, so the data folder holding its entry is synced first.
        assert_eq!(synced, vec![data.clone(), data.join("segments")]);

        synced.clear();
        let created = create_dirs(&dataset, &mut |parent| {
            synced.push(parent.to_path_buf());
            Ok(())
        })
        .expect("again");
        assert!(!created && synced.is_empty());
    }

    #[test]
    fn a_failing_sync_fails_the_creation() {
        let root = tempfile::tempdir().expect("tempdir");
        let error = create_dirs(&root.path().join("segments/pegel"), &mut |parent| {
            Err(StoreError::Io { path: parent.to_path_buf(), source: std::io::Error::other("disk gone") })
        })
        .expect_err("sync failure");
        assert!(error.to_string().contains("disk gone"), "{error}");
    }
}
