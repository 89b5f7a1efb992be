//! `ETag` and `If-None-Match` for what changes only with the catalogue: the DCAT export and
//! the dataset pages. A tag is a hash of the catalogue's state (its generation and its
//! views), this process (configuration may change between starts), what was asked for and
//! who asked (with their roles), so a client that has the current answer gets `304 Not
//! Modified` without the node writing it again. The hash shows none of it: not even when
//! the catalogue changed.

use std::fmt::Write;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A weak entity tag for the answer to `parts` at catalogue state `generation`.
pub(crate) fn tag(generation: u64, parts: &[&str]) -> String {
    static STARTED: OnceLock<u128> = OnceLock::new();
    let started = STARTED
        .get_or_init(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    let mut hasher = DefaultHasher::new();
    (started, generation, parts).hash(&mut hasher);
    let mut tag = String::with_capacity(24);
    let _ = write!(tag, "W/\"{:016x}\"", hasher.finish());
    tag
}

/// `304 Not Modified` where the request's `If-None-Match` names `tag` (or `*`).
pub(crate) fn unchanged(headers: &HeaderMap, tag: &str) -> Option<Response> {
    let matches = headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|list| {
        list.split(',')
            .map(str::trim)
            .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag.trim_start_matches("W/"))
    });
    matches.then(|| tagged(StatusCode::NOT_MODIFIED.into_response(), tag))
}

/// `response` with its `ETag`; answers differ per caller, so shared caches keep none.
pub(crate) fn tagged(mut response: Response, tag: &str) -> Response {
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(tag) {
            headers.insert(header::ETAG, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
        headers.append(header::VARY, HeaderValue::from_static("Authorization, Cookie"));
    }
    response
}

/// The state of the catalogue an export shows: its generation and its views' changes
/// (views are not counted in the generation).
pub(crate) fn catalogue_state(catalog: &urbanmesh_catalog::Catalog) -> u64 {
    let mut hasher = DefaultHasher::new();
    catalog.generation().unwrap_or_default().hash(&mut hasher);
    for view in catalog.views().list().unwrap_or_default() {
        (view.id(), view.modified.timestamp_micros()).hash(&mut hasher);
    }
    hasher.finish()
}

/// Who asked, as far as it changes the answer: the subject with its roles.
pub(crate) fn caller(subject: &urbanmesh_policy::Subject) -> String {
    serde_json::to_string(subject).unwrap_or_else(|_| subject.label())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_names_the_generation_and_the_request() {
        let a = tag(7, &["catalog", "ttl", "anonymous"]);
        assert_eq!(a, tag(7, &["catalog", "ttl", "anonymous"]));
        assert_ne!(a, tag(8, &["catalog", "ttl", "anonymous"]));
        assert_ne!(a, tag(7, &["catalog", "jsonld", "anonymous"]));
        assert_ne!(a, tag(7, &["catalog", "ttl", "admin-token"]));
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", {a}")).expect("header"));
        let response = unchanged(&headers, &a).expect("304");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], a.as_str());
        assert!(unchanged(&headers, &tag(8, &["catalog"])).is_none());
    }
}
