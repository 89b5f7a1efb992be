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
use crate::auth::{Caller, Editor};
use crate::problem::Problem;

pub(crate) async fn list(State(state): State<AppState>, Caller(subject): Caller) -> Result<impl IntoResponse, Problem> {
    let views: Vec<View> = state.views.list(&subject)?.into_iter().map(|v| shown(&subject, v)).collect();
    Ok(Json(serde_json::json!({ "views": views })))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Json<View>, Problem> {
    Ok(Json(shown(&subject, state.views.get(&subject, &id)?)))
}

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

/// `PUT /api/v1/views/{id}`: replaces the definition; the policy stays unless one is given.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RowsQuery {
    format: Option<String>,
}

/// `GET /api/v1/views/{id}/rows?format=json|ndjson|csv|parquet`.
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

#[derive(Serialize)]
pub(crate) struct Status {
    view: String,
    assembled_at: DateTime<Utc>,
    took_ms: u64,
    rows: usize,
    sources: Vec<SourceStatus>,
}

/// `GET /api/v1/views/{id}/status`: how each source fared in the latest assembly.
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
