//! `GET /api/v1/audit?dataset=&subject=&from=&to=&limit=`: the access log, for the data owner.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use urbanmesh_policy::{AuditQuery, AuditRecord, MAX_QUERY};

use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::Admin;
use crate::problem::Problem;

const DEFAULT_LIMIT: usize = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// Only reads of this dataset.
    dataset: Option<String>,
    /// Only reads by this subject (as the records name it).
    subject: Option<String>,
    /// Records at or after this RFC 3339 time.
    from: Option<String>,
    /// Records before this RFC 3339 time.
    to: Option<String>,
    /// At most this many records (1 to 10000; 1000 by default).
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AuditPage {
    records: Vec<AuditRecord>,
    /// Whether the limit cut the answer short; ask again from the last record's time.
    truncated: bool,
}

/// The access log: who read which dataset, when, under which rule
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "Records, oldest first", body = AuditPage),
        (status = 400, description = "A bad parameter; `field` names it", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the admin token or the `admin` role", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn query(
    State(state): State<AppState>,
    _admin: Admin,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, Problem> {
    let Query(params) = params?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_QUERY {
        return Err(Problem::invalid_field("limit", format!("must be between 1 and {MAX_QUERY}")));
    }
    let query = AuditQuery {
        dataset: params.dataset.filter(|d| !d.is_empty()),
        subject: params.subject.filter(|s| !s.is_empty()),
        from: params.from.as_deref().map(|t| time("from", t)).transpose()?,
        to: params.to.as_deref().map(|t| time("to", t)).transpose()?,
        limit,
        newest_first: false,
    };
    let log = state.gate.audit().clone();
    let records = tokio::task::spawn_blocking(move || log.query(&query))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok(Json(AuditPage { truncated: records.len() == limit, records }))
}

fn time(parameter: &str, text: &str) -> Result<DateTime<Utc>, Problem> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Problem::invalid_field(parameter, format!("`{text}` is not an RFC 3339 time: {e}")))
}
