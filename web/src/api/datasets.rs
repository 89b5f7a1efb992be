use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use urbanmesh_catalog::{Dataset, DatasetSpec, Derived};
use urbanmesh_policy::Subject;

use crate::AppState;
use crate::auth::{Caller, Editor};
use crate::problem::Problem;

/// A dataset record as the API shows it, with what the store knows about its rows.
#[derive(Serialize)]
pub(crate) struct DatasetView {
    #[serde(flatten)]
    dataset: Dataset,
    /// Row count, time extent and last change of the rows, as far as the caller may know
    /// them: a count of all rows would tell what a filtered or aggregated release hides.
    #[serde(flatten)]
    derived: Derived,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<usize>,
}

/// The record as `subject` may see it: the rules of the policy only for staff.
pub(crate) fn view(state: &AppState, subject: &Subject, mut dataset: Dataset) -> Result<DatasetView, Problem> {
    let stats = state.store.stats(dataset.id())?;
    // The store's count is current; the catalogue's follows it within moments.
    let stored = Derived { rows: Some(stats.rows), ..state.catalog.derived(dataset.id())? };
    let derived = stored.known_to(&dataset, subject);
    let segments = derived.rows.is_some().then_some(stats.segments);
    if !subject.is_staff() {
        dataset.policy = dataset.policy.shared();
    }
    Ok(DatasetView { dataset, derived, segments })
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Editor(subject): Editor,
    spec: Result<Json<DatasetSpec>, JsonRejection>,
) -> Result<impl IntoResponse, Problem> {
    let Json(spec) = spec?;
    if spec.policy.is_some() && !subject.is_admin() {
        return Err(Problem::new(StatusCode::FORBIDDEN, "setting a policy needs the admin token or the `admin` role"));
    }
    let dataset = publish(&state, spec).await?;
    let location = format!("/api/v1/datasets/{}", dataset.id());
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view(&state, &subject, dataset)?)))
}

/// Describes a new dataset and makes its table, or neither.
pub(crate) async fn publish(state: &AppState, spec: DatasetSpec) -> Result<Dataset, Problem> {
    Ok(urbanmesh_dataspace::publish(&state.catalog, &state.store, spec).await?)
}

/// `PUT /api/v1/datasets/{id}`: replaces the description; the shape of the rows stays.
pub(crate) async fn update(
    State(state): State<AppState>,
    Editor(subject): Editor,
    Path(id): Path<String>,
    spec: Result<Json<DatasetSpec>, JsonRejection>,
) -> Result<Json<DatasetView>, Problem> {
    let Json(spec) = spec?;
    if spec.policy.is_some() && !subject.is_admin() {
        return Err(Problem::new(StatusCode::FORBIDDEN, "setting a policy needs the admin token or the `admin` role"));
    }
    if spec.id != id {
        return Err(Problem::bad_request(format!("the body describes `{}`, but the path names `{id}`", spec.id)));
    }
    if let Some(policy) = &spec.policy {
        let current = state.catalog.get(&id)?;
        let policy = state.catalog.validate_policy(&id, policy.clone())?;
        urbanmesh_dataspace::check_rules(&state.store, &Dataset { policy, ..current }).await?;
    }
    let dataset = state.catalog.update(spec).await?;
    tracing::info!(dataset = %id, "dataset description updated");
    Ok(Json(view(&state, &subject, dataset)?))
}

pub(crate) async fn list(State(state): State<AppState>, Caller(subject): Caller) -> Result<impl IntoResponse, Problem> {
    let datasets = state
        .catalog
        .list()?
        .into_iter()
        .filter(|dataset| state.gate.visible(&subject, dataset))
        // A dataset being deleted has lost its rows already; it is no longer listed.
        .filter_map(|dataset| view(&state, &subject, dataset).ok())
        .collect::<Vec<_>>();
    Ok(Json(serde_json::json!({ "datasets": datasets })))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let dataset = state.catalog.get(&id)?;
    if !state.gate.visible(&subject, &dataset) {
        return Err(Problem::dataset_not_found(&id));
    }
    Ok(Json(view(&state, &subject, dataset)?))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    urbanmesh_dataspace::delete(&state.catalog, &state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
