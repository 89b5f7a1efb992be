//! `/api/v1/views`: regional view definitions, their rows and their sources' status.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use urbanmesh_catalog::view::{View, ViewSpec};
use urbanmesh_flight::{SourceStatus, ViewRead};
use urbanmesh_policy::{Interface, Subject};

use super::encode::OutputFormat;
use super::read::{duties, streamed};
use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::{Caller, Editor};
use crate::problem::Problem;

/// The path parameter naming a view.
const ID: &str = "The view's id";

/// `GET /views`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ViewList {
    views: Vec<View>,
}

/// The regional views the caller may see
#[utoipa::path(
    get,
    path = "/views",
    tag = "views",
    responses((status = 200, description = "Visible views", body = ViewList)),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn list(State(state): State<AppState>, Caller(subject): Caller) -> Result<Json<ViewList>, Problem> {
    let views = state.views.list(&subject)?.into_iter().map(|v| shown(&subject, v)).collect();
    Ok(Json(ViewList { views }))
}

/// One regional view's definition
#[utoipa::path(
    get,
    path = "/views/{id}",
    tag = "views",
    params(("id" = String, Path, description = ID)),
    responses(
        (status = 200, description = "The view", body = View),
        (status = 404, description = "No such view, or one the caller may not see", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Json<View>, Problem> {
    Ok(Json(shown(&subject, state.views.get(&subject, &id)?)))
}

/// Define a regional view
#[utoipa::path(
    post,
    path = "/views",
    tag = "views",
    request_body = ViewSpec,
    responses(
        (status = 201, description = "The view", body = View,
         headers(("Location" = String, description = "The view's URL"))),
        (status = 400, description = "The definition is invalid; `field` names what", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role (a policy: `admin`)", body = Problem, content_type = PROBLEM),
        (status = 409, description = "A view with this id exists", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Editor(subject): Editor,
    spec: Result<Json<ViewSpec>, JsonRejection>,
) -> Result<impl IntoResponse, Problem> {
    let Json(spec) = spec?;
    may_set_policy(&subject, &spec)?;
    let view = state.catalog.views().create(spec).await?;
    tracing::info!(view = %view.id(), "view created");
    let location = format!("/api/v1/views/{}", view.id());
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view)))
}

/// Replace a regional view's definition; its policy stays unless one is given
#[utoipa::path(
    put,
    path = "/views/{id}",
    tag = "views",
    params(("id" = String, Path, description = ID)),
    request_body = ViewSpec,
    responses(
        (status = 200, description = "The view as now defined", body = View),
        (status = 400, description = "The definition is invalid; `field` names what", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role (a policy: `admin`)", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such view", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Editor(subject): Editor,
    Path(id): Path<String>,
    spec: Result<Json<ViewSpec>, JsonRejection>,
) -> Result<Json<View>, Problem> {
    let Json(spec) = spec?;
    may_set_policy(&subject, &spec)?;
    if spec.id != id {
        return Err(Problem::bad_request(format!("the body defines `{}`, but the path names `{id}`", spec.id)));
    }
    let view = state.catalog.views().update(spec).await.map_err(not_found_as_view(&id))?;
    state.views.forget(&id);
    tracing::info!(view = %id, "view updated");
    Ok(Json(view))
}

/// Delete a regional view
#[utoipa::path(
    delete,
    path = "/views/{id}",
    tag = "views",
    params(("id" = String, Path, description = ID)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such view", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.catalog.views().delete(&id).await.map_err(not_found_as_view(&id))?;
    state.views.forget(&id);
    tracing::info!(view = %id, "view deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RowsQuery {
    /// `json` (default), `ndjson`, `csv` or `parquet`.
    format: Option<String>,
}

/// A regional view's rows, assembled from its sources
#[utoipa::path(
    get,
    path = "/views/{id}/rows",
    tag = "views",
    params(("id" = String, Path, description = ID), RowsQuery),
    responses(
        (status = 200, description = "The rows, each source read under its owner's policy", content(
            (Vec<Object> = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.apache.parquet"),
        )),
        (status = 400, description = "An unknown format", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such view, or one the caller may not see", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Too many downloads at once; retry in a moment", body = Problem, content_type = PROBLEM),
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
    let format = OutputFormat::parse(query.format.as_deref())?;
    let permit = state.download_permit()?;
    let ViewRead { view, assembled, audit } = state.views.read(&subject, &id, Interface::Rest).await?;
    let batches = futures::stream::iter(assembled.batches.clone().into_iter().map(Ok)).boxed();
    let scan = urbanmesh_store::BatchStream { schema: assembled.schema.clone(), batches };
    let mut response = streamed(format, scan, permit, &id, Some(audit));
    duties(&mut response, view.policy.attribution.as_deref(), view.policy.licence.as_deref());
    Ok(response)
}

/// How the latest assembly went.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Status {
    view: String,
    assembled_at: DateTime<Utc>,
    took_ms: u64,
    rows: usize,
    sources: Vec<SourceStatus>,
}

/// How each source of a regional view fared in its latest assembly
#[utoipa::path(
    get,
    path = "/views/{id}/status",
    tag = "views",
    params(("id" = String, Path, description = ID)),
    responses(
        (status = 200, description = "Each source's freshness", body = Status),
        (status = 404, description = "No such view, or one the caller may not see", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn status(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Json<Status>, Problem> {
    let assembled = state.views.status(&subject, &id).await?;
    Ok(Json(Status {
        view: assembled.view.clone(),
        assembled_at: assembled.assembled_at,
        took_ms: assembled.took_ms,
        rows: assembled.rows(),
        sources: assembled.sources.clone(),
    }))
}

/// The definition as `subject` may see it: the policy's visible part only for staff.
fn shown(subject: &Subject, mut view: View) -> View {
    if !subject.is_staff() {
        view.policy = view.policy.shared();
    }
    view
}

fn may_set_policy(subject: &Subject, spec: &ViewSpec) -> Result<(), Problem> {
    if spec.policy.is_some() && !subject.is_admin() {
        return Err(Problem::new(StatusCode::FORBIDDEN, "setting a policy needs the admin token or the `admin` role"));
    }
    Ok(())
}

fn not_found_as_view(id: &str) -> impl Fn(urbanmesh_catalog::CatalogError) -> Problem + '_ {
    move |error| match error {
        urbanmesh_catalog::CatalogError::NotFound { .. } => {
            Problem::new(StatusCode::NOT_FOUND, format!("view `{id}` not found"))
        }
        other => other.into(),
    }
}
