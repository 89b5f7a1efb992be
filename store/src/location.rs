//! Where a table's segments live: a folder on local disk, or a prefix in S3-compatible
//! object storage (`[storage] segments = "s3://bucket/prefix"`, credentials and endpoint
//! from the usual `AWS_…` variables). The write-ahead log and the manifests stay on local
//! disk either way; a segment is named by the manifest only once it is durable where it
//! lives (a local file synced and renamed, an object whose upload completed).
//!
//! Every method blocks; call them off the async threads (compaction, merging and removal
//! run in `spawn_blocking`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::StoreError;
use crate::failpoint::Failpoints;
use crate::segment;

/// Where all tables' segments live.
#[derive(Clone)]
pub(crate) enum SegmentRoot {
    Local(PathBuf),
    Object { store: Arc<dyn ObjectStore>, url: url::Url, prefix: ObjectPath },
}

/// Where one table's segments live.
#[derive(Clone)]
pub(crate) enum Segments {
    Local(PathBuf),
    Object { store: Arc<dyn ObjectStore>, url: String, prefix: ObjectPath, runtime: tokio::runtime::Handle },
}

impl SegmentRoot {
    /// `url` (`s3://bucket/prefix`) with the environment's credentials, or the local folder.
    pub(crate) fn new(local: PathBuf, url: Option<&str>) -> Result<Self, StoreError> {
        let Some(url) = url else { return Ok(Self::Local(local)) };
        let parsed = url::Url::parse(url)
            .map_err(|e| StoreError::InvalidRequest { reason: format!("[storage] segments: `{url}`: {e}") })?;
        if parsed.scheme() != "s3" {
            return Err(StoreError::InvalidRequest {
                reason: format!("[storage] segments: `{url}` is neither a local folder nor s3://bucket/prefix"),
            });
        }
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_url(url)
            .build()
            .map_err(|e| StoreError::InvalidRequest { reason: format!("[storage] segments: `{url}`: {e}") })?;
        let prefix = ObjectPath::from(parsed.path().trim_matches('/'));
        let mut bucket = parsed.clone();
        bucket.set_path("");
        Ok(Self::Object { store: Arc::new(store), url: bucket, prefix })
    }

    /// The object store to register with the query engine, and the URL it answers for.
    pub(crate) fn object_store(&self) -> Option<(&url::Url, Arc<dyn ObjectStore>)> {
        match self {
            Self::Local(_) => None,
            Self::Object { store, url, .. } => Some((url, Arc::clone(store))),
        }
    }

    pub(crate) fn table(&self, id: &str, runtime: &tokio::runtime::Handle) -> Segments {
        match self {
            Self::Local(dir) => Segments::Local(dir.join(id)),
            Self::Object { store, url, prefix } => {
                let prefix = prefix.clone().join(id);
                Segments::Object {
                    store: Arc::clone(store),
                    url: format!("{}{}", url.as_str().trim_end_matches('/'), format_args!("/{prefix}")),
                    prefix,
                    runtime: runtime.clone(),
                }
            }
        }
    }

    /// The tables with a folder of segments on local disk (object storage is not listed).
    pub(crate) fn local_tables(&self) -> Vec<String> {
        match self {
            Self::Local(dir) => std::fs::read_dir(dir)
                .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default(),
            Self::Object { .. } => Vec::new(),
        }
    }
}

impl Segments {
    /// What the query engine reads `file` at: a path, or an `s3://` URL.
    pub(crate) fn url(&self, file: &str) -> String {
        match self {
            Self::Local(dir) => dir.join(file).to_string_lossy().into_owned(),
            Self::Object { url, .. } => format!("{url}/{file}"),
        }
    }

    pub(crate) fn is_local(&self) -> bool {
        matches!(self, Self::Local(_))
    }

    /// Writes `batch` as segment `file` durably; returns its size.
    pub(crate) fn write(&self, file: &str, batch: &RecordBatch, failpoints: &Failpoints) -> Result<u64, StoreError> {
        match self {
            Self::Local(dir) => segment::write(dir, file, batch, failpoints),
            Self::Object { store, prefix, runtime, .. } => {
                let bytes = segment::encode(batch)?;
                let size = bytes.len() as u64;
                let path = prefix.clone().join(file);
                runtime.block_on(store.put(&path, bytes.into())).map_err(|e| object_error(&path, &e))?;
                Ok(size)
            }
        }
    }

    pub(crate) fn read(&self, file: &str) -> Result<Vec<RecordBatch>, StoreError> {
        let bytes = match self {
            Self::Local(dir) => {
                let path = dir.join(file);
                bytes::Bytes::from(std::fs::read(&path).map_err(StoreError::io(&path))?)
            }
            Self::Object { store, prefix, runtime, .. } => {
                let path = prefix.clone().join(file);
                runtime
                    .block_on(async { store.get(&path).await?.bytes().await })
                    .map_err(|e| object_error(&path, &e))?
            }
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        Ok(reader.collect::<Result<Vec<_>, _>>()?)
    }

    /// Removes segment `file`; one already gone is fine.
    pub(crate) fn remove(&self, file: &str) -> Result<(), StoreError> {
        match self {
            Self::Local(dir) => match std::fs::remove_file(dir.join(file)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(StoreError::Io { path: dir.join(file), source: e })
                }
                _ => Ok(()),
            },
            Self::Object { store, prefix, runtime, .. } => {
                let path = prefix.clone().join(file);
                match runtime.block_on(store.delete(&path)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(object_error(&path, &e)),
                }
            }
        }
    }

    /// The segment files stored, whatever a manifest names.
    fn files(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Local(dir) => match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .map(|entry| Ok(entry.map_err(StoreError::io(dir))?.file_name().to_string_lossy().into_owned()))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(StoreError::Io { path: dir.clone(), source: e }),
            },
            Self::Object { store, prefix, runtime, .. } => {
                let listed: Vec<_> = runtime
                    .block_on(store.list(Some(prefix)).try_collect::<Vec<_>>())
                    .map_err(|e| object_error(prefix, &e))?;
                Ok(listed.into_iter().filter_map(|meta| meta.location.filename().map(str::to_owned)).collect())
            }
        }
    }

    /// Removes stored files no manifest names: leftovers of a compaction or merge cut short.
    pub(crate) fn remove_orphans(&self, keep: &HashSet<&str>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for file in self.files()? {
            if !keep.contains(file.as_str()) {
                self.remove(&file)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Whether anything of the table is stored here.
    pub(crate) fn exists(&self) -> Result<bool, StoreError> {
        match self {
            Self::Local(dir) => Ok(dir.exists()),
            Self::Object { .. } => Ok(!self.files()?.is_empty()),
        }
    }

    /// Removes all of the table's segments (the folder, on local disk, made durable in its parent).
    pub(crate) fn remove_all(&self) -> Result<(), StoreError> {
        match self {
            Self::Local(dir) => {
                match std::fs::remove_dir_all(dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(StoreError::Io { path: dir.clone(), source: e });
                    }
                    _ => {}
                }
                if let Some(parent) = dir.parent().filter(|parent| parent.exists()) {
                    segment::sync_dir(parent)?;
                }
                Ok(())
            }
            Self::Object { .. } => {
                for file in self.files()? {
                    self.remove(&file)?;
                }
                Ok(())
            }
        }
    }
}

impl std::fmt::Display for Segments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "{}", dir.display()),
            Self::Object { url, .. } => f.write_str(url),
        }
    }
}

fn object_error(path: &ObjectPath, error: &object_store::Error) -> StoreError {
    StoreError::Corrupt { reason: format!("object storage, {path}: {error}") }
}
