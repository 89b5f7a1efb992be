use tonic::metadata::MetadataMap;
use urbanmesh_policy::{AdminToken, Subject};

/// The caller: a member when the connection came through the members' TLS listener,
/// else from the `authorization` metadata.
pub(crate) fn subject<T>(token: &AdminToken, request: &tonic::Request<T>) -> Subject {
    if let Some(member) = request.extensions().get::<crate::peer::MemberInfo>() {
        return Subject::Member { peer: member.peer.to_string() };
    }
    subject_of(token, request.metadata())
}

fn subject_of(token: &AdminToken, metadata: &MetadataMap) -> Subject {
    token.subject(metadata.get("authorization").and_then(|value| value.to_str().ok()))
}
