//! `GET/PUT /api/v1/datasets/{id}/policy` and `GET /api/v1/me`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use urbanmesh_catalog::Dataset;
use urbanmesh_policy::{Policy, Subject};

use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::{Admin, Caller};
use crate::problem::Problem;

/// A dataset's policy, and the purposes policies on this node may require.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct PolicyView {
    dataset: String,
    #[serde(flatten)]
    policy: Policy,
    /// The purposes this node's policies may require.
    purposes: Vec<String>,
}

/// A dataset's usage policy
#[utoipa::path(
    get,
    path = "/datasets/{id}/policy",
    tag = "policies",
    params(("id" = String, Path, description = "The dataset's id")),
    responses(
        (status = 200, description = "The policy with its rules", body = PolicyView),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the admin token or the `admin` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dataset", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<PolicyView>, Problem> {
    let dataset = state.catalog.get(&id)?;
    Ok(Json(PolicyView { dataset: id, policy: dataset.policy, purposes: state.catalog.purposes().to_vec() }))
}

/// Replace a dataset's usage policy
///
/// `{"visibility": "public"}` alone is a complete policy. With rules, only the rules grant
/// reads; the first rule whose assignee, validity and purpose fit a request applies.
#[utoipa::path(
    put,
    path = "/datasets/{id}/policy",
    tag = "policies",
    params(("id" = String, Path, description = "The dataset's id")),
    request_body = Policy,
    responses(
        (status = 200, description = "The policy now in force", body = PolicyView),
        (status = 400, description = "The policy is invalid; `field` names the rule and key", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the admin token or the `admin` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dataset", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn put(
    State(state): State<AppState>,
    Admin(subject): Admin,
    Path(id): Path<String>,
    policy: Result<Json<Policy>, JsonRejection>,
) -> Result<Json<PolicyView>, Problem> {
    let Json(policy) = policy.map_err(|e| Problem::from(e).within("policy"))?;
    let policy = state.catalog.validate_policy(&id, policy)?;
    let current = state.catalog.get(&id)?;
    urbanmesh_dataspace::check_rules(&state.store, &Dataset { policy: policy.clone(), ..current }).await?;
    let dataset = state.catalog.set_policy(&id, policy).await?;
    tracing::info!(dataset = %id, by = %subject.label(), visibility = ?dataset.policy.visibility, "policy set");
    Ok(Json(PolicyView { dataset: id, policy: dataset.policy, purposes: state.catalog.purposes().to_vec() }))
}

/// Who the node takes the caller for
///
/// With a session, also its CSRF token for changes.
#[utoipa::path(
    get,
    path = "/me",
    tag = "session",
    responses((status = 200, description = "The caller and what it may do", body = Me)),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Caller(subject): Caller,
) -> Json<Me> {
    // A bearer token decides who the caller is; the session's token only goes with the session.
    let by_session = !headers.contains_key(axum::http::header::AUTHORIZATION);
    let csrf = by_session
        .then(|| crate::session::of_request(&headers, &state.sessions))
        .flatten()
        .map(|(_, session)| session.csrf);
    Json(Me { staff: subject.is_staff(), admin: subject.is_admin(), editor: subject.may_edit(), csrf, subject })
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Me {
    #[serde(flatten)]
    subject: Subject,
    /// Staff of this municipality: sees policies and the rows' details.
    staff: bool,
    /// May describe datasets and write rows.
    editor: bool,
    /// May set policies and read the access log.
    admin: bool,
    /// The session's token for changes, sent back in `X-CSRF-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf: Option<String>,
}
