use thiserror::Error;

#[derive(Debug, Error)]
pub enum LiveError {
    /// A definition that cannot be used; `field` names the part at fault.
    #[error("`{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("connector `{id}` not found")]
    NotFound { id: String },
    #[error("connector `{id}` exists already")]
    Exists { id: String },
    #[error(transparent)]
    Store(#[from] urbanmesh_store::StoreError),
    #[error(transparent)]
    Catalog(#[from] urbanmesh_catalog::CatalogError),
    #[error("connector database: {0}")]
    Database(#[from] sled::Error),
    #[error("a stored connector cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error(transparent)]
    Query(#[from] datafusion::error::DataFusionError),
    #[error("a connector task failed: {0}")]
    Task(String),
}
