use tonic::metadata::MetadataMap;
use urbanmesh_policy::{AdminToken, Subject};

/// The caller, from the `authorization` metadata.
pub(crate) fn subject(token: &AdminToken, metadata: &MetadataMap) -> Subject {
    token.subject(metadata.get("authorization").and_then(|value| value.to_str().ok()))
}
