#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid dataset: field `{field}`: {reason}")]
    InvalidDataset { field: String, reason: String },
    #[error("dataset `{id}` already exists")]
    AlreadyExists { id: String },
    #[error("dataset `{id}` not found")]
    NotFound { id: String },
    #[error("catalogue storage failed: {source}")]
    Storage {
        #[from]
        source: sled::Error,
    },
    #[error("stored record `{id}` is unreadable: {source}")]
    CorruptRecord { id: String, source: serde_json::Error },
}

impl CatalogError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidDataset { field: field.into(), reason: reason.into() }
    }
}
