//! `/api/v1/dashboards`: the dashboards staff build (`catalog::dashboard`), for scripts and
//! for moving them between nodes; the workspace builds the same records from forms.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use urbanmesh_catalog::dashboard::Dashboard;

use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::{Caller, Editor};
use crate::portal::dashboard_visible;
use crate::problem::Problem;

/// `GET /dashboards`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DashboardList {
    dashboards: Vec<Dashboard>,
}

/// The dashboards the caller may see
#[utoipa::path(
    get,
    path = "/dashboards",
    tag = "dashboards",
    responses((status = 200, description = "Public dashboards; for staff, all", body = DashboardList)),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(subject): Caller,
) -> Result<Json<DashboardList>, Problem> {
    let dashboards =
        state.catalog.dashboards().list()?.into_iter().filter(|d| dashboard_visible(&subject, d)).collect();
    Ok(Json(DashboardList { dashboards }))
}

/// One dashboard
#[utoipa::path(
    get,
    path = "/dashboards/{id}",
    tag = "dashboards",
    params(("id" = String, Path, description = "The dashboard's id")),
    responses(
        (status = 200, description = "The dashboard", body = Dashboard),
        (status = 404, description = "No such dashboard, or one the caller may not see", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Json<Dashboard>, Problem> {
    match state.catalog.dashboards().get(&id) {
        Ok(dashboard) if dashboard_visible(&subject, &dashboard) => Ok(Json(dashboard)),
        _ => Err(not_found(&id)),
    }
}

/// Create a dashboard
#[utoipa::path(
    post,
    path = "/dashboards",
    tag = "dashboards",
    request_body = Dashboard,
    responses(
        (status = 201, description = "Stored", body = Dashboard, headers(("Location" = String, description = "The dashboard's URL"))),
        (status = 400, description = "Invalid; `field` names the tile and key", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 409, description = "A dashboard with this id exists", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    _editor: Editor,
    body: Result<Json<Dashboard>, JsonRejection>,
) -> Result<impl IntoResponse, Problem> {
    let Json(dashboard) = body?;
    state.catalog.check_dashboard(&dashboard)?;
    state.catalog.dashboards().put(&dashboard, true).await?;
    let location = format!("/api/v1/dashboards/{}", dashboard.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(dashboard)))
}

/// Replace a dashboard
#[utoipa::path(
    put,
    path = "/dashboards/{id}",
    tag = "dashboards",
    params(("id" = String, Path, description = "The dashboard's id")),
    request_body = Dashboard,
    responses(
        (status = 200, description = "Stored", body = Dashboard),
        (status = 400, description = "Invalid; `field` names the tile and key", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dashboard", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
    body: Result<Json<Dashboard>, JsonRejection>,
) -> Result<Json<Dashboard>, Problem> {
    let Json(dashboard) = body?;
    if dashboard.id != id {
        return Err(Problem::bad_request(format!(
            "the body is dashboard `{}`, but the path names `{id}`",
            dashboard.id
        )));
    }
    state.catalog.check_dashboard(&dashboard)?;
    state.catalog.dashboards().put(&dashboard, false).await.map_err(|e| refused(e, &id))?;
    Ok(Json(dashboard))
}

/// Delete a dashboard
#[utoipa::path(
    delete,
    path = "/dashboards/{id}",
    tag = "dashboards",
    params(("id" = String, Path, description = "The dashboard's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dashboard", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.catalog.dashboards().delete(&id).await.map_err(|e| refused(e, &id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A dashboard that is not there is said as one; any other failure as what it is.
fn refused(error: urbanmesh_catalog::CatalogError, id: &str) -> Problem {
    match error {
        urbanmesh_catalog::CatalogError::NotFound { .. } => not_found(id),
        other => other.into(),
    }
}

fn not_found(id: &str) -> Problem {
    Problem::new(StatusCode::NOT_FOUND, format!("dashboard `{id}` not found"))
}
