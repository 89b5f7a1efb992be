//! Every error an HTTP client sees, as `application/problem+json` (RFC 9457).

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use urbanmesh_catalog::CatalogError;
use urbanmesh_dataspace::DataspaceError;
use urbanmesh_federation::FederationError;
use urbanmesh_protocol::ReadRequestError;
use urbanmesh_store::{RowError, StoreError};

/// An error as RFC 9457 describes it: `title` and `status` from the HTTP status, `detail`
/// saying what was refused and why, and where it applies the field, rows or limit at fault.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(skip)]
    status: StatusCode,
    /// The HTTP status's reason phrase.
    title: &'static str,
    /// The HTTP status code.
    #[serde(rename = "status")]
    code: u16,
    detail: String,
    /// Row-level reasons for a rejected batch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<RowError>,
    /// Of a rejected batch: the rows rejected and all rows (none of them were stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_rows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_rows: Option<usize>,
    /// The request field, parameter or option at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// The `[limits]` setting a refused input exceeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            title: status.canonical_reason().unwrap_or("Error"),
            code: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            rejected_rows: None,
            total_rows: None,
            field: None,
            limit: None,
        }
    }

    /// The same problem, naming the `[limits]` setting that the input exceeds.
    pub(crate) fn naming_limit(self, limit: &'static str) -> Self {
        Self { limit: Some(limit), ..self }
    }

    /// Its status and detail, for interfaces whose standard prescribes another error body.
    pub(crate) fn into_parts(self) -> (StatusCode, String) {
        (self.status, self.detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        tracing::error!(detail = %Into::<String>::into(detail), "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "the node failed to handle the request; see its log")
    }

    /// A 400 that names the field at fault.
    pub(crate) fn invalid_field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let field = field.into();
        Self { field: Some(field.clone()), ..Self::bad_request(format!("`{field}` {}", reason.into())) }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    pub(crate) fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The rows at fault, for a rejected batch.
    pub(crate) fn errors(&self) -> &[RowError] {
        &self.errors
    }

    pub(crate) fn dataset_not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("dataset `{id}` not found"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
        response
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidRows { errors, rejected, total } => {
                let detail = StoreError::InvalidRows { errors: Vec::new(), rejected, total }.to_string();
                let detail = format!("{}; nothing was stored", detail.trim_end_matches(": "));
                Self { errors, rejected_rows: Some(rejected), total_rows: Some(total), ..Self::bad_request(detail) }
            }
            StoreError::UnknownTable { id } => Self::dataset_not_found(&id),
            e @ StoreError::LimitExceeded { limit, .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, format!("{e}; nothing was stored")).naming_limit(limit)
            }
            StoreError::ShuttingDown => Self::new(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
            e @ StoreError::DiskFull { .. } => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, e.to_string()).naming_limit("min_free_bytes")
            }
            // A query over its budget: the node is fine, this read is too large for it.
            e @ StoreError::QueryMemory { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).naming_limit("query_memory_bytes")
            }
            e @ StoreError::QueryTimeout { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()).naming_limit("query_timeout_secs")
            }
            // The writer must learn whether its batch is stored; the node takes no writes until restarted.
            e @ (StoreError::Flush { .. } | StoreError::FlushInDoubt { .. } | StoreError::WritesStopped { .. }) => {
                tracing::error!(error = %e, "write refused");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            e @ (StoreError::Malformed { .. } | StoreError::Empty) => {
                Self::bad_request(format!("{e}; nothing was stored"))
            }
            e if e.is_client_error() => Self::bad_request(e.to_string()),
            e => Self::internal(e.to_string()),
        }
    }
}

impl From<CatalogError> for Problem {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::InvalidDataset { ref field, .. } => {
                Self { field: Some(field.clone()), ..Self::bad_request(error.to_string()) }
            }
            CatalogError::InvalidSearch { ref parameter, .. } => {
                Self { field: Some(parameter.clone()), ..Self::bad_request(error.to_string()) }
            }
            CatalogError::AlreadyExists { .. } | CatalogError::ShapeChanged { .. } => {
                Self::new(StatusCode::CONFLICT, error.to_string())
            }
            CatalogError::NotFound { id } => Self::dataset_not_found(&id),
            e => Self::internal(e.to_string()),
        }
    }
}

impl From<urbanmesh_live::LiveError> for Problem {
    fn from(error: urbanmesh_live::LiveError) -> Self {
        use urbanmesh_live::LiveError;
        match error {
            LiveError::Invalid { field, reason } => Self::invalid_field(field, reason),
            e @ LiveError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            e @ LiveError::Exists { .. } => Self::new(StatusCode::CONFLICT, e.to_string()),
            LiveError::Store(e) => e.into(),
            e => Self::internal(e.to_string()),
        }
    }
}

impl From<FederationError> for Problem {
    fn from(error: FederationError) -> Self {
        let status = match &error {
            FederationError::AlreadyMember(_) | FederationError::NameTaken { .. } => StatusCode::CONFLICT,
            FederationError::UnknownMember(_) => StatusCode::NOT_FOUND,
            FederationError::Invitation(_) | FederationError::Refused(_) => StatusCode::FORBIDDEN,
            e if e.is_client_error() => StatusCode::BAD_REQUEST,
            FederationError::Protocol(urbanmesh_protocol::ProtocolError::Unreachable { .. }) => StatusCode::BAD_GATEWAY,
            e => return Self::internal(e.to_string()),
        };
        Self::new(status, error.to_string())
    }
}

impl From<DataspaceError> for Problem {
    fn from(error: DataspaceError) -> Self {
        match error {
            e @ DataspaceError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            e @ DataspaceError::Forbidden { .. } => Self::new(StatusCode::FORBIDDEN, e.to_string()),
            e @ (DataspaceError::InvalidFilter { .. }
            | DataspaceError::InvalidRequest { .. }
            | DataspaceError::Policy { .. }) => Self::bad_request(e.to_string()),
            DataspaceError::InvalidRule { field, reason } => Self::invalid_field(field, reason),
            DataspaceError::Store(e) => e.into(),
            DataspaceError::Catalog(e) => e.into(),
        }
    }
}

impl From<urbanmesh_flight::FlightError> for Problem {
    fn from(error: urbanmesh_flight::FlightError) -> Self {
        match error {
            e @ urbanmesh_flight::FlightError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            urbanmesh_flight::FlightError::Forbidden { reason } => {
                Self::new(StatusCode::FORBIDDEN, format!("not permitted: {reason}"))
            }
            urbanmesh_flight::FlightError::Store(e) => e.into(),
            urbanmesh_flight::FlightError::Read(e) => e.into(),
            urbanmesh_flight::FlightError::Catalog(e) => e.into(),
            urbanmesh_flight::FlightError::Peer(reason) => Self::new(StatusCode::BAD_GATEWAY, reason),
            urbanmesh_flight::FlightError::Stream(arrow_flight::error::FlightError::Tonic(status)) => {
                let code = match status.code() {
                    tonic::Code::NotFound => StatusCode::NOT_FOUND,
                    tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
                    tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
                    _ => StatusCode::BAD_GATEWAY,
                };
                Self::new(code, format!("the member answered: {}", status.message()))
            }
            urbanmesh_flight::FlightError::Stream(e) => {
                Self::new(StatusCode::BAD_GATEWAY, format!("the member's answer broke off: {e}"))
            }
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<ReadRequestError> for Problem {
    fn from(error: ReadRequestError) -> Self {
        Self::bad_request(error.to_string())
    }
}

impl From<JsonRejection> for Problem {
    /// A body that does not fit the type (a misspelt or unknown field, a wrong value) is a
    /// 400 naming the field, like every other invalid input.
    fn from(rejection: JsonRejection) -> Self {
        let detail = rejection.body_text();
        match rejection {
            JsonRejection::JsonDataError(_) => Self { field: field_of(&detail), ..Self::bad_request(detail) },
            other => body_problem(other.status(), detail),
        }
    }
}

/// The field serde names in a data error: `rules[0].purpose` from
/// "…target type: rules[0].purpose: unknown field `purpose`, expected …".
fn field_of(detail: &str) -> Option<String> {
    let message = detail.split_once("target type: ").map_or(detail, |(_, m)| m);
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_owned());
    match message.split_once(": ") {
        Some((path, _)) if !path.contains(' ') => Some(path.to_owned()),
        _ => named,
    }
}

impl Problem {
    /// The same problem with its field placed under `prefix` (`policy` for a policy body).
    pub(crate) fn within(mut self, prefix: &str) -> Self {
        self.field = Some(self.field.map_or_else(|| prefix.to_owned(), |f| format!("{prefix}.{f}")));
        self
    }
}

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<BytesRejection> for Problem {
    fn from(rejection: BytesRejection) -> Self {
        body_problem(rejection.status(), rejection.body_text())
    }
}

/// Not a multipart form at all (no `Content-Type`, or no boundary).
impl From<MultipartRejection> for Problem {
    fn from(error: MultipartRejection) -> Self {
        Problem::new(error.status(), error.body_text())
    }
}

impl From<MultipartError> for Problem {
    fn from(error: MultipartError) -> Self {
        body_problem(error.status(), error.body_text())
    }
}

fn body_problem(status: StatusCode, text: String) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // Reached only by a body sent without a length (one with a length is refused
        // up front, naming its limit), so the route's limit is not known here.
        Problem::new(
            status,
            "the request body is larger than this route accepts: `[limits] max_body_bytes` for rows and \
             uploads, `max_json_body_bytes` for every other body; split it into several requests",
        )
    } else {
        Problem::new(status, text)
    }
}

pub(crate) async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The membership rules live in the federation crate and are tested there and in the
    /// node's sandbox; this is what each refusal becomes on the HTTP API.
    #[test]
    fn federation_refusals_keep_their_http_status() {
        let cases = [
            (FederationError::NameTaken { name: "Herford".into(), federation: "OWL".into() }, StatusCode::CONFLICT),
            (FederationError::AlreadyMember("OWL".into()), StatusCode::CONFLICT),
            (FederationError::UnknownMember("x".into()), StatusCode::NOT_FOUND),
            (FederationError::Refused("not the sponsor".into()), StatusCode::FORBIDDEN),
            (FederationError::Invitation("expired".into()), StatusCode::FORBIDDEN),
            (FederationError::NotMember, StatusCode::BAD_REQUEST),
            (FederationError::Corrupt("x".into()), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, status) in cases {
            let text = error.to_string();
            let problem = Problem::from(error);
            assert_eq!(problem.status, status, "{text}");
        }
    }
}
