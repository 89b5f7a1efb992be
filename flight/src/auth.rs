use tonic::Status;
use urbanmesh_policy::{Identities, Interface, Subject};

/// Flight metadata a reader states its purpose in (also accepted inside the ticket).
pub const PURPOSE_HEADER: &str = "x-urbanmesh-purpose";

/// Flight metadata asking to be answered as the public would be, whoever calls: what a
/// member sets when it asks on behalf of someone who is not its staff. It can only narrow
/// what the caller may read.
pub const FOR_PUBLIC_HEADER: &str = "x-urbanmesh-for-public";

/// Who calls, and why.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) subject: Subject,
    pub(crate) purpose: Option<String>,
    /// Answered as the public would be ([`FOR_PUBLIC_HEADER`]).
    pub(crate) for_public: bool,
}

impl Caller {
    /// The edge a read came through, for the audit log.
    pub(crate) fn interface(&self) -> Interface {
        if matches!(self.subject, Subject::Member { .. }) { Interface::PeerFlight } else { Interface::Flight }
    }

    /// Fills the request's purpose from the metadata when the ticket states none, and
    /// asks for the public's answer where the metadata does.
    pub(crate) fn purpose_into(&self, request: &mut urbanmesh_protocol::ReadRequest) {
        if request.purpose.is_none() {
            request.purpose.clone_from(&self.purpose);
        }
        request.for_public |= self.for_public;
    }

    /// Whose view of the catalogue the caller gets: the public's where it asked for it.
    pub(crate) fn reader(&self) -> Subject {
        if self.for_public { Subject::Anonymous } else { self.subject.clone() }
    }
}

/// The caller: a member when the connection came through the members' TLS listener,
/// else from the `authorization` metadata (admin token or a bearer JWT).
pub(crate) async fn caller<T>(identities: &Identities, request: &tonic::Request<T>) -> Result<Caller, Status> {
    let metadata = request.metadata();
    let purpose = metadata
        .get(PURPOSE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    let for_public = metadata.get(FOR_PUBLIC_HEADER).is_some_and(|v| v.as_bytes() != b"0");
    if let Some(member) = request.extensions().get::<crate::peer::MemberInfo>() {
        return Ok(Caller { subject: Subject::Member { peer: member.peer.to_string() }, purpose, for_public });
    }
    let authorization = metadata.get("authorization").and_then(|value| value.to_str().ok());
    let subject = identities.subject(authorization).await.map_err(|e| Status::unauthenticated(e.to_string()))?;
    Ok(Caller { subject, purpose, for_public })
}
