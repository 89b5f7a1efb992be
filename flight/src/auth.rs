use tonic::Status;
use urbanmesh_policy::{Identities, Interface, Subject};

/// Flight metadata a reader states its purpose in (also accepted inside the ticket).
pub const PURPOSE_HEADER: &str = "x-urbanmesh-purpose";

/// Who calls, and why.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) subject: Subject,
    pub(crate) purpose: Option<String>,
}

impl Caller {
    /// The edge a read came through, for the audit log.
    pub(crate) fn interface(&self) -> Interface {
        if matches!(self.subject, Subject::Member { .. }) { Interface::PeerFlight } else { Interface::Flight }
    }

    /// Fills the request's purpose from the metadata when the ticket states none.
    pub(crate) fn purpose_into(&self, request: &mut urbanmesh_protocol::ReadRequest) {
        if request.purpose.is_none() {
            request.purpose.clone_from(&self.purpose);
        }
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
    if let Some(member) = request.extensions().get::<crate::peer::MemberInfo>() {
        return Ok(Caller { subject: Subject::Member { peer: member.peer.to_string() }, purpose });
    }
    let authorization = metadata.get("authorization").and_then(|value| value.to_str().ok());
    let subject = identities.subject(authorization).await.map_err(|e| Status::unauthenticated(e.to_string()))?;
    Ok(Caller { subject, purpose })
}
