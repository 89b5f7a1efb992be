#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid dataset: field `{field}`: {reason}")]
    InvalidDataset { field: String, reason: String },
    #[error("invalid search: parameter `{parameter}`: {reason}")]
    InvalidSearch { parameter: String, reason: String },
    #[error("dataset `{id}` already exists")]
    AlreadyExists { id: String },
    #[error("dataset `{id}` not found")]
    NotFound { id: String },
    #[error(
        "dataset `{id}`: schema, time_column, series_key and geometry describe stored rows and cannot change; \
         create a new dataset for a new shape"
    )]
    ShapeChanged { id: String },
    #[error("catalogue storage failed: {source}")]
    Storage {
        #[from]
        source: sled::Error,
    },
    #[error("stored record `{id}` is unreadable: {source}")]
    CorruptRecord { id: String, source: serde_json::Error },
    #[error("search index: {reason}")]
    Index { reason: String },
    #[error("writing the catalogue export failed: {source}")]
    Export {
        #[from]
        source: std::io::Error,
    },
}

impl CatalogError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidDataset { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn invalid_search(parameter: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidSearch { parameter: parameter.into(), reason: reason.into() }
    }
}
