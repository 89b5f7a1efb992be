use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use urbanmesh_policy::Decision;
use urbanmesh_protocol::ReadRequest;

use crate::AppState;
use crate::auth::Caller;
use crate::encode::{self, OutputFormat};
use crate::problem::Problem;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RowsQuery {
    from: Option<String>,
    to: Option<String>,
    /// Comma-separated column names.
    columns: Option<String>,
    filter: Option<String>,
    limit: Option<usize>,
    format: Option<String>,
}

/// `GET /datasets/{id}/rows`: streamed as JSON, NDJSON, CSV or Parquet.
pub(crate) async fn rows(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    query: Result<Query<RowsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let (format, request) = query.into_request(id)?;
    let dataset = state.catalog.get(&request.dataset)?;
    if let Decision::Deny { reason } = state.authorizer.decide_read(&subject, &dataset, &request) {
        tracing::info!(dataset = %request.dataset, subject = subject.label(), %reason, "read refused");
        return Err(Problem::dataset_not_found(&request.dataset));
    }
    let permit = state.download_permit()?;
    let scan = state.store.scan(&request).await?;
    Ok(streamed(format, scan, permit, &request.dataset))
}

/// `GET /federation/{node}/datasets/{id}/rows`: another member's rows, fetched through
/// this node over the members' mutual-TLS Flight; the origin's policy decides.
pub(crate) async fn remote_rows(
    State(state): State<AppState>,
    Path((node, id)): Path<(String, String)>,
    query: Result<Query<RowsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let (format, request) = query.into_request(id)?;
    let remote = state.remote.as_ref().ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no federation"))?;
    let permit = state.download_permit()?;
    let scan = remote.fetch(&node, &request).await?;
    Ok(streamed(format, scan, permit, &request.dataset))
}

impl RowsQuery {
    fn into_request(self, dataset: String) -> Result<(OutputFormat, ReadRequest), Problem> {
        let format = OutputFormat::parse(self.format.as_deref())?;
        let request = ReadRequest {
            dataset,
            columns: self.columns.map(|c| c.split(',').map(|name| name.trim().to_owned()).collect()),
            from: self.from.as_deref().map(|t| timestamp("from", t)).transpose()?,
            to: self.to.as_deref().map(|t| timestamp("to", t)).transpose()?,
            filter: self.filter.filter(|f| !f.trim().is_empty()),
            limit: self.limit,
        };
        request.validate()?;
        Ok((format, request))
    }
}

fn streamed(
    format: OutputFormat,
    scan: urbanmesh_store::BatchStream,
    permit: tokio::sync::OwnedSemaphorePermit,
    dataset: &str,
) -> Response {
    let mut response = Body::from_stream(encode::stream(format, scan, permit)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(format.media_type()));
    if let Some(extension) = format.download_extension() {
        let disposition = format!("attachment; filename=\"{dataset}.{extension}\"");
        if let Ok(value) = header::HeaderValue::from_str(&disposition) {
            headers.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}

fn timestamp(parameter: &str, text: &str) -> Result<DateTime<Utc>, Problem> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        Problem::bad_request(format!(
            "`{parameter}` must be an RFC 3339 timestamp such as 2026-03-01T00:00:00Z: `{text}`: {e}"
        ))
    })
}
