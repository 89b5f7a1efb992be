//! What a request may send, in one place. Rows and uploaded files may be large (`[limits]
//! max_body_bytes`); every other body is a small JSON document or form (policies, views,
//! dataset descriptions, federation requests), held to `max_json_body_bytes`. A body
//! declared too large is refused before a byte of it is read; one sent without a length
//! is cut off at the limit.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use urbanmesh_store::decode::DecodeLimits;

use crate::AppState;
use crate::problem::Problem;

/// The node's input bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rows and uploaded files.
    pub max_body_bytes: usize,
    /// Every other request body.
    pub max_json_body_bytes: usize,
    /// What an uploaded workbook may unpack to.
    pub decode: DecodeLimits,
    /// A response whose reader takes no bytes for this long is ended (see
    /// [`crate::WriteDeadline`]).
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024 * 1024,
            max_json_body_bytes: 1024 * 1024,
            decode: DecodeLimits::default(),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Routes whose bodies are rows or files.
const BULK_ROUTES: [&str; 3] =
    ["/api/v1/datasets/{id}/rows", "/api/v1/datasets/{id}/upload", "/admin/datasets/{id}/upload"];

impl Limits {
    /// The limit of a route, with its name in `config.toml`.
    fn of_route(&self, route: Option<&str>) -> (&'static str, usize) {
        if route.is_some_and(|route| BULK_ROUTES.contains(&route)) {
            ("max_body_bytes", self.max_body_bytes)
        } else {
            ("max_json_body_bytes", self.max_json_body_bytes)
        }
    }
}

/// Router middleware: bounds the request body by the route's limit.
pub(crate) async fn bound_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let (name, maximum) = state.limits.of_route(route);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > maximum as u64) {
        return too_large(name, maximum).into_response();
    }
    let (parts, body) = request.into_parts();
    let body = Body::new(http_body_util::Limited::new(body, maximum));
    next.run(Request::from_parts(parts, body)).await
}

pub(crate) fn too_large(name: &'static str, maximum: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than the limit `{name}` = {maximum} bytes of this node; \
             split it into several requests"
        ),
    )
    .naming_limit(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_uploads_take_the_large_limit_everything_else_the_small_one() {
        let limits = Limits { max_body_bytes: 100, max_json_body_bytes: 10, ..Limits::default() };
        for route in BULK_ROUTES {
            assert_eq!(limits.of_route(Some(route)), ("max_body_bytes", 100));
        }
        for route in [Some("/api/v1/datasets/{id}/policy"), Some("/api/v1/views"), Some("/api/v1/datasets"), None] {
            assert_eq!(limits.of_route(route), ("max_json_body_bytes", 10));
        }
    }
}
