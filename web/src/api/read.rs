use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use urbanmesh_flight::Opened;
use urbanmesh_policy::{AuditEntry, Interface};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::BatchStream;

use super::encode::{self, OutputFormat};
use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::Caller;
use crate::problem::Problem;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RowsQuery {
    /// Rows at or after this date or RFC 3339 time (of the time column).
    from: Option<String>,
    /// Rows before this date or RFC 3339 time.
    to: Option<String>,
    /// Comma-separated column names.
    columns: Option<String>,
    /// An SQL predicate over the columns, such as `value > 250`.
    filter: Option<String>,
    /// At most this many rows.
    limit: Option<usize>,
    /// `json` (default), `ndjson`, `csv` or `parquet`.
    format: Option<String>,
    /// Why the rows are read, where the dataset's policy asks.
    purpose: Option<String>,
}

/// A dataset's rows, as its policy releases them to the caller
///
/// Streamed as JSON, NDJSON, CSV or Parquet. The duties travel as headers.
#[utoipa::path(
    get,
    path = "/datasets/{id}/rows",
    tag = "rows",
    params(("id" = String, Path, description = "The dataset's id"), RowsQuery),
    responses(
        (status = 200, description = "The released rows", content(
            (Vec<Object> = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.parquet"),
        ),
         headers(
            ("x-urbanmesh-attribution" = String, description = "The attribution readers must show"),
            ("x-urbanmesh-licence" = String, description = "The licence the rows are used under"),
         )),
        (status = 400, description = "A bad parameter; `field` names it", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The policy grants no read for this request (e.g. a purpose is missing)", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dataset, or one the caller may not see", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Too many downloads at once, or the query's memory or time ran out", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn rows(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
    query: Result<Query<RowsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let (format, request) = query.into_request(id)?;
    let permit = state.download_permit()?;
    let Opened { scan, grant, audit } = state.gate.open(&subject, &request, Interface::Rest).await?;
    let scan = first_batch_checked(scan).await?;
    let mut response = streamed(format, scan, permit, &request.dataset, Some(audit));
    duties(&mut response, grant.attribution.as_deref(), grant.licence.as_deref());
    Ok(response)
}

/// Waits for the first batch before the response starts, so that a read that fails at
/// once (a filter that divides by zero or casts what cannot be cast, on released rows) is
/// answered with its error instead of a 200 whose body breaks off.
async fn first_batch_checked(scan: BatchStream) -> Result<BatchStream, Problem> {
    let BatchStream { schema, mut batches } = scan;
    let batches = match batches.next().await {
        Some(Err(error)) => return Err(error.into()),
        Some(Ok(first)) => futures::stream::once(async move { Ok(first) }).chain(batches).boxed(),
        None => futures::stream::empty().boxed(),
    };
    Ok(BatchStream { schema, batches })
}

/// The duties (attribution text, licence) as response headers.
pub(crate) fn duties(response: &mut Response, attribution: Option<&str>, licence: Option<&str>) {
    for (name, value) in [(ATTRIBUTION_HEADER, attribution), (LICENCE_HEADER, licence)] {
        if let Some(value) = value.and_then(|v| header::HeaderValue::from_str(v).ok()) {
            response.headers_mut().insert(name, value);
        }
    }
}

const ATTRIBUTION_HEADER: &str = "x-urbanmesh-attribution";
const LICENCE_HEADER: &str = "x-urbanmesh-licence";

/// Another member's rows, fetched through this node
///
/// Over the members' mutual-TLS Flight; the member's policy decides what it releases.
#[utoipa::path(
    get,
    path = "/federation/{node}/datasets/{id}/rows",
    tag = "federation",
    params(
        ("node" = String, Path, description = "The member's name or PeerId"),
        ("id" = String, Path, description = "The dataset's id at the member"),
        RowsQuery,
    ),
    responses(
        (status = 200, description = "The rows the member released", content(
            (Vec<Object> = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.parquet"),
        )),
        (status = 400, description = "A bad parameter; `field` names it", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The member's policy grants no read", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such member or dataset", body = Problem, content_type = PROBLEM),
        (status = 502, description = "The member did not answer, or broke off", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Too many downloads at once", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn remote_rows(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path((node, id)): Path<(String, String)>,
    query: Result<Query<RowsQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query?;
    let (format, request) = query.into_request(id)?;
    let remote = state.remote.as_ref().ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no federation"))?;
    let permit = state.download_permit()?;
    let scan = remote.fetch(&state.gate, &subject, &node, &request).await?;
    let audit = state.gate.relay_entry(&subject, &node, &request, Interface::Relay);
    let counter = audit.served();
    let scan = BatchStream {
        schema: scan.schema,
        batches: scan
            .batches
            .inspect(move |batch| {
                if let Ok(batch) = batch {
                    counter.add(batch.num_rows() as u64, 0);
                }
            })
            .boxed(),
    };
    // The member's duties travel in the schema's metadata.
    let metadata = scan.schema.metadata().clone();
    let mut response = streamed(format, scan, permit, &request.dataset, Some(audit));
    let duty = |key: &str| metadata.get(key).map(String::as_str);
    duties(&mut response, duty(urbanmesh_flight::ATTRIBUTION_KEY), duty(urbanmesh_flight::LICENCE_KEY));
    Ok(response)
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
            purpose: self.purpose.filter(|p| !p.trim().is_empty()),
            for_public: false,
        };
        request.validate()?;
        Ok((format, request))
    }
}

pub(crate) fn streamed(
    format: OutputFormat,
    scan: BatchStream,
    permit: tokio::sync::OwnedSemaphorePermit,
    dataset: &str,
    audit: Option<AuditEntry>,
) -> Response {
    // The audit entry lives as long as the body, so it is written once the last byte is out.
    let body = encode::stream(format, scan, permit).inspect(move |chunk| {
        if let (Some(audit), Ok(bytes)) = (&audit, chunk) {
            audit.served().add(0, bytes.len() as u64);
        }
    });
    let mut response = Body::from_stream(body).into_response();
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
