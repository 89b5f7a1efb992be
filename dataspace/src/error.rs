use datafusion::error::DataFusionError;
use urbanmesh_catalog::CatalogError;
use urbanmesh_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DataspaceError {
    /// The dataset does not exist, or the subject may not know that it does.
    #[error("dataset `{id}` not found")]
    NotFound { id: String },
    /// The subject may see the dataset but not read it this way; the reason says why.
    #[error("not permitted: {reason}")]
    Forbidden { reason: String },
    #[error("invalid filter `{filter}`: {reason}")]
    InvalidFilter { filter: String, reason: String },
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    /// The owner's policy does not fit the dataset (a row filter naming no column, say).
    #[error("the dataset's policy ({part}) cannot be applied: {reason}")]
    Policy { part: &'static str, reason: String },
    /// A policy rule being written does not fit the dataset; `field` names the rule's part.
    #[error("{field}: {reason}")]
    InvalidRule { field: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl From<DataFusionError> for DataspaceError {
    /// Errors a request's own expressions cause while running are the caller's; the
    /// store tells them apart from the node's own failures.
    fn from(error: DataFusionError) -> Self {
        Self::Store(error.into())
    }
}

impl DataspaceError {
    /// Whether the caller's input caused the error (as opposed to the node failing).
    pub fn is_client_error(&self) -> bool {
        match self {
            Self::InvalidFilter { .. }
            | Self::InvalidRequest { .. }
            | Self::Policy { .. }
            | Self::InvalidRule { .. } => true,
            Self::Store(error) => error.is_client_error(),
            Self::NotFound { .. } | Self::Forbidden { .. } | Self::Catalog(_) => false,
        }
    }
}
