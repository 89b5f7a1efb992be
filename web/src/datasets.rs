use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use urbanmesh_catalog::{Dataset, DatasetSpec, Derived};

use crate::AppState;
use crate::auth::{Admin, Caller};
use crate::problem::Problem;

/// A dataset record as the API shows it, with what the store knows about its rows.
#[derive(Serialize)]
pub(crate) struct DatasetView {
    #[serde(flatten)]
    dataset: Dataset,
    /// Row count, time extent and last change of the rows.
    #[serde(flatten)]
    derived: Derived,
    segments: usize,
}

fn view(state: &AppState, dataset: Dataset) -> Result<DatasetView, Problem> {
    let stats = state.store.stats(dataset.id())?;
    let derived = Derived { rows: stats.rows, ..state.catalog.derived(dataset.id())? };
    Ok(DatasetView { dataset, derived, segments: stats.segments })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    spec: Result<Json<DatasetSpec>, JsonRejection>,
) -> Result<impl IntoResponse, Problem> {
    let Json(spec) = spec?;
    let dataset = state.catalog.create(spec).await?;
    if let Err(error) = state.store.create(&dataset).await {
        // Without its table the record would describe nothing; take it back.
        state.catalog.delete(dataset.id()).await?;
        return Err(error.into());
    }
    let location = format!("/api/v1/datasets/{}", dataset.id());
    tracing::info!(dataset = %dataset.id(), "dataset created");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view(&state, dataset)?)))
}

/// `PUT /api/v1/datasets/{id}`: replaces the description; the shape of the rows stays.
pub(crate) async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    spec: Result<Json<DatasetSpec>, JsonRejection>,
) -> Result<Json<DatasetView>, Problem> {
    let Json(spec) = spec?;
    if spec.id != id {
        return Err(Problem::bad_request(format!("the body describes `{}`, but the path names `{id}`", spec.id)));
    }
    let dataset = state.catalog.update(spec).await?;
    tracing::info!(dataset = %id, "dataset description updated");
    Ok(Json(view(&state, dataset)?))
}

pub(crate) async fn list(State(state): State<AppState>, Caller(subject): Caller) -> Result<impl IntoResponse, Problem> {
    let datasets = state
        .catalog
        .list()?
        .into_iter()
        .filter(|dataset| state.authorizer.may_list(&subject, dataset))
        // A dataset being deleted has lost its rows already; it is no longer listed.
        .filter_map(|dataset| view(&state, dataset).ok())
        .collect::<Vec<_>>();
    Ok(Json(serde_json::json!({ "datasets": datasets })))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let dataset = state.catalog.get(&id)?;
    if !state.authorizer.may_list(&subject, &dataset) {
        return Err(Problem::dataset_not_found(&id));
    }
    Ok(Json(view(&state, dataset)?))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    // Rows first: a crash in between leaves an empty dataset, never orphaned rows that a
    // later dataset of the same id would inherit (start-up removes such leftovers too).
    state.catalog.get(&id)?;
    state.store.delete(&id).await?;
    state.catalog.delete(&id).await?;
    tracing::info!(dataset = %id, "dataset deleted");
    Ok(StatusCode::NO_CONTENT)
}
