use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use urbanmesh_catalog::{Dataset, DatasetSpec, Derived};
use urbanmesh_policy::Subject;

use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::{Caller, Editor};
use crate::problem::Problem;

/// The path parameter naming a dataset.
const ID: &str = "The dataset's id";

/// A dataset record as the API shows it, with what the store knows about its rows.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DatasetView {
    #[serde(flatten)]
    dataset: Dataset,
    /// Row count, time extent and last change of the rows, as far as the caller may know
    /// them: a count of all rows would tell what a filtered or aggregated release hides.
    #[serde(flatten)]
    derived: Derived,
    /// Files the rows are stored in (for staff).
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<usize>,
}

/// `GET /datasets`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DatasetList {
    datasets: Vec<DatasetView>,
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

/// Describe a new dataset and make its table
#[utoipa::path(
    post,
    path = "/datasets",
    tag = "datasets",
    request_body = DatasetSpec,
    responses(
        (status = 201, description = "The dataset, described and ready for rows", body = DatasetView,
         headers(("Location" = String, description = "The dataset's URL"))),
        (status = 400, description = "The description is invalid; `field` names what", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role (a policy: `admin`)", body = Problem, content_type = PROBLEM),
        (status = 409, description = "A dataset with this id exists", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
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

/// Replace a dataset's description; the shape of its rows stays
#[utoipa::path(
    put,
    path = "/datasets/{id}",
    tag = "datasets",
    params(("id" = String, Path, description = ID)),
    request_body = DatasetSpec,
    responses(
        (status = 200, description = "The dataset as now described", body = DatasetView),
        (status = 400, description = "The description is invalid, or changes the shape of the rows", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role (a policy: `admin`)", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dataset", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
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

/// The datasets the caller may see
#[utoipa::path(
    get,
    path = "/datasets",
    tag = "datasets",
    responses((status = 200, description = "Visible datasets, with what the caller may know of their rows", body = DatasetList)),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn list(State(state): State<AppState>, Caller(subject): Caller) -> Result<Json<DatasetList>, Problem> {
    let datasets = state
        .catalog
        .list()?
        .into_iter()
        .filter(|dataset| state.gate.visible(&subject, dataset))
        // A dataset being deleted has lost its rows already; it is no longer listed.
        .filter_map(|dataset| view(&state, &subject, dataset).ok())
        .collect::<Vec<_>>();
    Ok(Json(DatasetList { datasets }))
}

/// One dataset's description
#[utoipa::path(
    get,
    path = "/datasets/{id}",
    tag = "datasets",
    params(("id" = String, Path, description = ID)),
    responses(
        (status = 200, description = "The dataset, with what the caller may know of its rows", body = DatasetView),
        (status = 404, description = "No such dataset, or one the caller may not see", body = Problem, content_type = PROBLEM),
    ),
    security((), ("bearer" = []), ("session" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(subject): Caller,
    Path(id): Path<String>,
) -> Result<Json<DatasetView>, Problem> {
    let dataset = state.catalog.get(&id)?;
    if !state.gate.visible(&subject, &dataset) {
        return Err(Problem::dataset_not_found(&id));
    }
    Ok(Json(view(&state, &subject, dataset)?))
}

/// Delete a dataset with its rows
#[utoipa::path(
    delete,
    path = "/datasets/{id}",
    tag = "datasets",
    params(("id" = String, Path, description = ID)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such dataset", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    urbanmesh_dataspace::delete(&state.catalog, &state.store, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
