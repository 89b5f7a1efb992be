//! `/api/v1/federation`: membership status, invitations, joining, removing members.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use urbanmesh_federation::{FederationStatus, parse_ttl};

use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::Admin;
use crate::problem::Problem;

/// This node's federation and its members
#[utoipa::path(
    get,
    path = "/federation",
    tag = "federation",
    responses((status = 200, description = "The federation, if any, and its members", body = FederationStatus)),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn status(State(state): State<AppState>) -> Json<FederationStatus> {
    Json(state.federation.status().await)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

/// An invitation that is good once.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Invitation {
    /// The signed invitation; the invited node's staff pass it to `POST /federation/join`.
    invitation: String,
    ttl_seconds: u64,
}

/// Invite a node into the federation (or found one)
#[utoipa::path(
    post,
    path = "/federation/invitations",
    tag = "federation",
    request_body = InviteRequest,
    responses(
        (status = 201, description = "The invitation", body = Invitation),
        (status = 400, description = "A bad lifetime or name", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the admin token or the `admin` role", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn invite(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Json<InviteRequest>, JsonRejection>,
) -> Result<impl IntoResponse, Problem> {
    let Json(request) = body?;
    let ttl = parse_ttl(request.ttl.as_deref().unwrap_or("24h"))?;
    let invitation = state.federation.invite(request.federation.as_deref(), request.name, ttl).await?;
    Ok((StatusCode::CREATED, Json(Invitation { invitation, ttl_seconds: ttl.as_secs() })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinRequest {
    /// The invitation a member issued (`POST /federation/invitations` there).
    invitation: String,
}

/// Join a federation with an invitation
#[utoipa::path(
    post,
    path = "/federation/join",
    tag = "federation",
    request_body = JoinRequest,
    responses(
        (status = 200, description = "The federation joined", body = FederationStatus),
        (status = 400, description = "Not an invitation", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The invitation is expired, used or forged; or needs `admin`", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Already a member, or the name is taken", body = Problem, content_type = PROBLEM),
        (status = 502, description = "The inviting member did not answer", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn join(
    State(state): State<AppState>,
    _admin: Admin,
    body: Result<Json<JoinRequest>, JsonRejection>,
) -> Result<Json<FederationStatus>, Problem> {
    let Json(request) = body?;
    Ok(Json(state.federation.join(&request.invitation).await?))
}

/// Remove a member from the federation
#[utoipa::path(
    delete,
    path = "/federation/members/{peer}",
    tag = "federation",
    params(("peer" = String, Path, description = "The member's PeerId")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs `admin`, and only the member's sponsor may remove it", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such member", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    _admin: Admin,
    Path(peer): Path<String>,
) -> Result<StatusCode, Problem> {
    state.federation.remove(&peer).await?;
    Ok(StatusCode::NO_CONTENT)
}
