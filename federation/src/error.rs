use urbanmesh_catalog::CatalogError;
use urbanmesh_protocol::ProtocolError;

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    Catalog(#[from] CatalogError),
    #[error("federation storage failed: {0}")]
    Storage(#[from] sled::Error),
    #[error("stored federation state is unreadable: {0}")]
    Corrupt(String),
    /// The invitation cannot be used; the reason says why (expired, used, forged …).
    #[error("invitation refused: {0}")]
    Invitation(String),
    #[error("this node is not a member of a federation")]
    NotMember,
    #[error("this node is already a member of federation `{0}`; leave it first")]
    AlreadyMember(String),
    #[error("{0}")]
    Refused(String),
    #[error("member `{0}` not found")]
    UnknownMember(String),
    /// A join under a name another member holds; the invitation stays valid.
    #[error(
        "the name `{name}` is taken in federation `{federation}`: join under another name (the invitation stays valid)"
    )]
    NameTaken { name: String, federation: String },
}

impl FederationError {
    /// Whether the caller's input is at fault (an HTTP 4xx).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::Invitation(_)
                | Self::NotMember
                | Self::AlreadyMember(_)
                | Self::Refused(_)
                | Self::UnknownMember(_)
                | Self::NameTaken { .. }
        ) || matches!(
            self,
            Self::Protocol(ProtocolError::Malformed(_) | ProtocolError::Forged(_) | ProtocolError::Refused(_))
        )
    }
}
