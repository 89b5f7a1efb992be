use std::path::PathBuf;

use datafusion::error::DataFusionError;

use crate::RowError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{} rejected: {}", rows_summary(*total, *rejected), first_errors(errors))]
    InvalidRows {
        errors: Vec<RowError>,
        rejected: usize,
        total: usize,
    },
    #[error("{reason}")]
    Malformed { reason: String },
    #[error("no rows: the request contained no data rows")]
    Empty,
    #[error("dataset `{id}` not found")]
    UnknownTable { id: String },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    #[error("invalid filter `{filter}`: {reason}")]
    InvalidFilter { filter: String, reason: String },
    #[error("write-ahead log failed: {source}")]
    Wal {
        #[from]
        source: sled::Error,
    },
    #[error("fsync of the write-ahead log failed: {reason}")]
    Flush { reason: String },
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("arrow: {source}")]
    Arrow {
        #[from]
        source: datafusion::arrow::error::ArrowError,
    },
    #[error("parquet: {source}")]
    Parquet {
        #[from]
        source: datafusion::parquet::errors::ParquetError,
    },
    #[error("query failed: {source}")]
    Query { source: Box<DataFusionError> },
    #[error("stored state is inconsistent: {reason}")]
    Corrupt { reason: String },
    #[error("the store is shutting down")]
    ShuttingDown,
}

impl From<DataFusionError> for StoreError {
    fn from(source: DataFusionError) -> Self {
        Self::Query {
            source: Box::new(source),
        }
    }
}

impl StoreError {
    /// Whether the caller's input caused the error (as opposed to the node failing).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::InvalidRows { .. }
                | Self::Malformed { .. }
                | Self::Empty
                | Self::InvalidRequest { .. }
                | Self::InvalidFilter { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

fn rows_summary(total: usize, rejected: usize) -> String {
    format!("{rejected} of {total} rows")
}

fn first_errors(errors: &[RowError]) -> String {
    let shown: Vec<String> = errors.iter().take(3).map(ToString::to_string).collect();
    let more = errors.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{}; and {more} more", shown.join("; "))
    } else {
        shown.join("; ")
    }
}
