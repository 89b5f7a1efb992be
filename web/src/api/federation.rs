//! `/api/v1/federation`: membership status, invitations, joining, removing members.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use urbanmesh_federation::{FederationStatus, parse_ttl};

use crate::AppState;
use crate::auth::Admin;
use crate::problem::Problem;

pub(crate) async fn status(State(state): State<AppState>) -> Json<FederationStatus> {
    Json(state.federation.status().await)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteRequest {
    /// Whom the invitation is for (shown to the inviter's staff).
    #[serde(default)]
    name: Option<String>,
    /// Lifetime such as `24h` (default) or `7d`.
    #[serde(default)]
    ttl: Option<String>,
    /// Name of the federation, when this invitation founds it.
    #[serde(default)]
    federation: Option<String>,
}

pub(crate) async fn invite(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Json<InviteRequest>, JsonRejection>,
) -> Result<impl IntoResponse, Problem> {
    let Json(request) = body?;
    let ttl = parse_ttl(request.ttl.as_deref().unwrap_or("24h"))?;
    let invitation = state.federation.invite(request.federation.as_deref(), request.name, ttl).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "invitation": invitation, "ttl_seconds": ttl.as_secs() }))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinRequest {
    invitation: String,
}

pub(crate) async fn join(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Json<JoinRequest>, JsonRejection>,
) -> Result<Json<FederationStatus>, Problem> {
    let Json(request) = body?;
    Ok(Json(state.federation.join(&request.invitation).await?))
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    Path(peer): Path<String>,
) -> Result<StatusCode, Problem> {
    state.federation.remove(&peer).await?;
    Ok(StatusCode::NO_CONTENT)
}
