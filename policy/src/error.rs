/// Errors of the policy crate: policies that cannot be stored, tokens that are not
/// accepted, and audit log storage.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid policy: `{field}` {reason}")]
    Invalid { field: String, reason: String },
    #[error("token refused: {0}")]
    Token(String),
    #[error("the OpenID provider could not be reached or answered badly: {0}")]
    Provider(String),
    #[error("audit log storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("corrupt audit record: {0}")]
    Corrupt(String),
}

impl PolicyError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), reason: reason.into() }
    }
}
