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
    /// Talking to another member failed (connection, TLS, membership).
    #[error("member connection: {0}")]
    Peer(String),
}

impl From<FlightError> for Status {
    fn from(error: FlightError) -> Self {
        let code = code(&error);
        if code == Code::Internal {
            tracing::error!(%error, "flight request failed");
        }
        Status::new(code, error.to_string())
    }
}

fn code(error: &FlightError) -> Code {
    match error {
        FlightError::BatchRejected { source, .. } => code(source),
        FlightError::Peer(_) => Code::Unavailable,
        FlightError::Store(e) => store_code(e),
        FlightError::Read(e) => read_code(e),
        FlightError::Catalog(CatalogError::NotFound { .. }) => Code::NotFound,
        FlightError::Catalog(CatalogError::InvalidDataset { .. }) => Code::InvalidArgument,
        FlightError::Catalog(CatalogError::AlreadyExists { .. }) => Code::AlreadyExists,
        FlightError::Catalog(_) => Code::Internal,
        // A member's refusal is passed on as the member said it.
        FlightError::Stream(arrow_flight::error::FlightError::Tonic(status)) => status.code(),
        FlightError::Request(_) | FlightError::Descriptor { .. } | FlightError::Stream(_) => Code::InvalidArgument,
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
        DataspaceError::Catalog(CatalogError::NotFound { .. }) => Code::NotFound,
        DataspaceError::Catalog(_) => Code::Internal,
    }
}

fn store_code(error: &StoreError) -> Code {
    match error {
        StoreError::UnknownTable { .. } => Code::NotFound,
        StoreError::ShuttingDown
        | StoreError::Flush { .. }
        | StoreError::FlushInDoubt { .. }
        | StoreError::WritesStopped { .. } => Code::Unavailable,
        e if e.is_client_error() => Code::InvalidArgument,
        _ => Code::Internal,
    }
}
