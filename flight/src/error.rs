use tonic::{Code, Status};
use urbanmesh_catalog::CatalogError;
use urbanmesh_dataspace::DataspaceError;
use urbanmesh_protocol::ReadRequestError;
use urbanmesh_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FlightError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A read the sealed path refused or could not plan.
    #[error(transparent)]
    Read(#[from] DataspaceError),
    #[error("invalid ticket or command: {0}")]
    Request(#[from] ReadRequestError),
    #[error("invalid descriptor: {reason}")]
    Descriptor { reason: String },
    #[error("dataset `{id}` not found")]
    NotFound { id: String },
    /// The caller may see the dataset but not read it this way; the reason says why.
    #[error("not permitted: {reason}")]
    Forbidden { reason: String },
    #[error("writing needs the admin token as `authorization: Bearer <token>` metadata")]
    Unauthenticated,
    #[error("invalid Arrow stream: {0}")]
    Stream(#[from] arrow_flight::error::FlightError),
    #[error(
        "batch {batch} rejected; the {stored_batches} batches before it ({stored_rows} rows) were stored: {source}"
    )]
    BatchRejected { batch: usize, stored_batches: usize, stored_rows: usize, source: Box<FlightError> },
    /// An SQL statement that cannot be planned: the parser's or planner's reason, which
    /// names the line and column where it can.
    #[error("invalid SQL: {reason}")]
    Sql { reason: String },
    /// A statement or command that would change something: this node answers queries only.
    #[error("read-only: {what} is not allowed; only queries (SELECT, WITH, VALUES) are answered")]
    ReadOnly { what: String },
    /// Talking to another member failed (connection, TLS, membership).
    #[error("member connection: {0}")]
    Peer(String),
}

impl From<FlightError> for Status {
    /// The code the error calls for, a message with its whole chain of causes, and the error
    /// itself as the status's source for whoever handles it in this process.
    fn from(error: FlightError) -> Self {
        let code = code(&error);
        let message = chain(&error);
        if code == Code::Internal {
            tracing::error!(error = %message, "flight request failed");
        }
        let mut status = Status::new(code, message);
        status.set_source(std::sync::Arc::new(error));
        status
    }
}

/// The error's message followed by each cause it does not already say.
fn chain(error: &FlightError) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn code(error: &FlightError) -> Code {
    match error {
        FlightError::BatchRejected { source, .. } => code(source),
        FlightError::Peer(_) => Code::Unavailable,
        FlightError::Store(e) => store_code(e),
        FlightError::Read(e) => read_code(e),
        FlightError::Catalog(e) => catalog_code(e),
        // A member's refusal is passed on as the member said it.
        FlightError::Stream(arrow_flight::error::FlightError::Tonic(status)) => status.code(),
        FlightError::Stream(_) | FlightError::Request(_) | FlightError::Descriptor { .. } => Code::InvalidArgument,
        FlightError::Sql { .. } | FlightError::ReadOnly { .. } => Code::InvalidArgument,
        FlightError::NotFound { .. } => Code::NotFound,
        FlightError::Forbidden { .. } => Code::PermissionDenied,
        FlightError::Unauthenticated => Code::Unauthenticated,
    }
}

fn read_code(error: &DataspaceError) -> Code {
    match error {
        DataspaceError::NotFound { .. } => Code::NotFound,
        DataspaceError::Forbidden { .. } => Code::PermissionDenied,
        DataspaceError::InvalidFilter { .. }
        | DataspaceError::InvalidRequest { .. }
        | DataspaceError::Policy { .. }
        | DataspaceError::InvalidRule { .. } => Code::InvalidArgument,
        DataspaceError::Store(e) => store_code(e),
        DataspaceError::Catalog(e) => catalog_code(e),
    }
}

fn catalog_code(error: &CatalogError) -> Code {
    match error {
        CatalogError::NotFound { .. } => Code::NotFound,
        CatalogError::InvalidDataset { .. } | CatalogError::InvalidSearch { .. } => Code::InvalidArgument,
        CatalogError::AlreadyExists { .. } => Code::AlreadyExists,
        CatalogError::ShapeChanged { .. } => Code::FailedPrecondition,
        CatalogError::Storage { .. }
        | CatalogError::CorruptRecord { .. }
        | CatalogError::Index { .. }
        | CatalogError::Export { .. } => Code::Internal,
    }
}

fn store_code(error: &StoreError) -> Code {
    match error {
        StoreError::UnknownTable { .. } => Code::NotFound,
        StoreError::InvalidRows { .. }
        | StoreError::Malformed { .. }
        | StoreError::Empty
        | StoreError::LimitExceeded { .. }
        | StoreError::InvalidRequest { .. } => Code::InvalidArgument,
        StoreError::ShuttingDown
        | StoreError::Flush { .. }
        | StoreError::FlushInDoubt { .. }
        | StoreError::WritesStopped { .. } => Code::Unavailable,
        StoreError::Query { source } => query_code(source),
        StoreError::QueryMemory { .. } | StoreError::DiskFull { .. } => Code::ResourceExhausted,
        StoreError::QueryTimeout { .. } => Code::DeadlineExceeded,
        StoreError::ReaderGone => Code::Cancelled,
        StoreError::Wal { .. }
        | StoreError::Io { .. }
        | StoreError::Arrow { .. }
        | StoreError::Parquet { .. }
        | StoreError::Corrupt { .. } => Code::Internal,
    }
}

/// A query that failed inside the node (the store has already told the reader's own
/// failing expressions apart as invalid requests): for want of memory, or otherwise.
fn query_code(error: &datafusion::error::DataFusionError) -> Code {
    match error.find_root() {
        datafusion::error::DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        _ => Code::Internal,
    }
}
