use std::path::PathBuf;

use datafusion::error::DataFusionError;

use crate::RowError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{} rejected: {}", rows_summary(*total, *rejected), first_errors(errors))]
    InvalidRows { errors: Vec<RowError>, rejected: usize, total: usize },
    #[error("{reason}")]
    Malformed { reason: String },
    #[error("no rows: the request contained no data rows")]
    Empty,
    /// The input is larger than a configured bound; `limit` is its name in `[limits]`.
    #[error("{found}, over the limit `{limit}` = {maximum}")]
    LimitExceeded { limit: &'static str, maximum: u64, found: String },
    #[error("dataset `{id}` not found")]
    UnknownTable { id: String },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    #[error("write-ahead log failed: {source}")]
    Wal {
        #[from]
        source: sled::Error,
    },
    #[error(
        "the write-ahead log could not be flushed ({reason}); nothing was stored, and the node takes no \
         writes until it restarts"
    )]
    Flush { reason: String },
    #[error(
        "the write-ahead log could not be flushed ({reason}); whether the batch is stored is known only after \
         the node restarts"
    )]
    FlushInDoubt { reason: String },
    #[error("writes are stopped until the node restarts, since a flush of the write-ahead log failed: {reason}")]
    WritesStopped { reason: String },
    #[error("I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
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
    /// A query needed more memory than its pool holds.
    #[error("the query needs more memory than `[limits] query_memory_bytes` allows: {reason}")]
    QueryMemory { reason: String },
    /// A query computed for longer than it may.
    #[error("the query ran longer than `[limits] query_timeout_secs` = {secs} allows")]
    QueryTimeout { secs: u64 },
    /// The reader of a query went away before it ended.
    #[error("the reader went away")]
    ReaderGone,
    /// The disk holding the store has less free space than the floor.
    #[error(
        "the node's disk is nearly full ({free} bytes free, below `[storage] min_free_bytes` = {floor}); \
         nothing was stored, and writes resume once space is freed"
    )]
    DiskFull { free: u64, floor: u64 },
}

impl From<DataFusionError> for StoreError {
    /// Errors a request's own expressions cause while running (a cast that fails, a
    /// division by zero) are the caller's; everything else is the node's.
    fn from(source: DataFusionError) -> Self {
        use datafusion::arrow::error::ArrowError;
        match source.find_root() {
            DataFusionError::ResourcesExhausted(reason) => return Self::QueryMemory { reason: reason.clone() },
            // The query's own budget ended it (see `limits`).
            DataFusionError::External(inner) => match inner.downcast_ref::<Self>() {
                Some(Self::QueryTimeout { secs }) => return Self::QueryTimeout { secs: *secs },
                Some(Self::ReaderGone) => return Self::ReaderGone,
                _ => {}
            },
            _ => {}
        }
        if let DataFusionError::ArrowError(error, _) = source.find_root() {
            if matches!(
                error.as_ref(),
                ArrowError::CastError(_)
                    | ArrowError::DivideByZero
                    | ArrowError::ArithmeticOverflow(_)
                    | ArrowError::ParseError(_)
                    | ArrowError::InvalidArgumentError(_)
            ) {
                return Self::InvalidRequest { reason: error.to_string() };
            }
        }
        Self::Query { source: Box::new(source) }
    }
}

impl StoreError {
    /// A task of ours that ended without an answer: a panic is a bug, anything else shutdown.
    pub fn from_join(error: tokio::task::JoinError, what: &str) -> Self {
        if error.is_panic() { Self::Corrupt { reason: format!("{what} panicked") } } else { Self::ShuttingDown }
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
                | Self::LimitExceeded { .. }
                | Self::InvalidRequest { .. }
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
    if more > 0 { format!("{}; and {more} more", shown.join("; ")) } else { shown.join("; ") }
}
