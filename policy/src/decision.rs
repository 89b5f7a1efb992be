use urbanmesh_catalog::Dataset;
use urbanmesh_protocol::ReadRequest;

/// The caller of a request, as established by the edge it came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Anonymous,
    /// Holder of the node's admin token.
    Admin,
    /// Another member of the federation, authenticated by mutual TLS (its PeerId).
    Member {
        peer: String,
    },
}

impl Subject {
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin)
    }

    /// A short label for logs and audit records.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Admin => "admin",
            Self::Member { .. } => "member",
        }
    }
}

/// The outcome of a read decision. A denial is reported by the edges exactly like a
/// dataset that does not exist, so it carries its reason only for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Permit,
    Deny { reason: String },
}

/// Decides every read, at every edge (REST, Flight, listings).
pub trait Authorizer: Send + Sync + 'static {
    fn decide_read(&self, subject: &Subject, dataset: &Dataset, request: &ReadRequest) -> Decision;

    /// Whether the dataset may appear in listings for this subject.
    fn may_list(&self, subject: &Subject, dataset: &Dataset) -> bool {
        self.decide_read(subject, dataset, &ReadRequest::whole(dataset.id())) == Decision::Permit
    }
}

/// Every dataset readable by everyone: the behaviour until usage policies exist.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpenAccess;

impl Authorizer for OpenAccess {
    fn decide_read(&self, _subject: &Subject, _dataset: &Dataset, _request: &ReadRequest) -> Decision {
        Decision::Permit
    }
}
