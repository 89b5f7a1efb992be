//! `/api/v1/connectors`: live sources staff define (`urbanmesh_live`): MQTT subscriptions
//! and pulls, each with its status and its latest refused messages. Staff only: a
//! definition names brokers and accounts.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use urbanmesh_live::{Connector, ConnectorSpec};

use crate::AppState;
use crate::api::openapi::PROBLEM;
use crate::auth::Editor;
use crate::problem::Problem;

/// `GET /connectors`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ConnectorList {
    connectors: Vec<Connector>,
}

/// The connectors, with their status
#[utoipa::path(
    get,
    path = "/connectors",
    tag = "connectors",
    responses(
        (status = 200, description = "Every connector, by id", body = ConnectorList),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn list(State(state): State<AppState>, _editor: Editor) -> Json<ConnectorList> {
    Json(ConnectorList { connectors: state.connectors.list() })
}

/// One connector: its definition, state, counts and latest refused messages
#[utoipa::path(
    get,
    path = "/connectors/{id}",
    tag = "connectors",
    params(("id" = String, Path, description = "The connector's id")),
    responses(
        (status = 200, description = "The connector", body = Connector),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such connector", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
) -> Result<Json<Connector>, Problem> {
    Ok(Json(state.connectors.get(&id)?))
}

/// Define a connector and start it
#[utoipa::path(
    post,
    path = "/connectors",
    tag = "connectors",
    request_body = ConnectorSpec,
    responses(
        (status = 201, description = "Stored and started", body = Connector, headers(("Location" = String, description = "The connector's URL"))),
        (status = 400, description = "Invalid; `field` names the field, and nothing is stored", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 409, description = "A connector with this id exists", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    _editor: Editor,
    body: Result<Json<ConnectorSpec>, JsonRejection>,
) -> Result<impl IntoResponse, Problem> {
    let Json(spec) = body?;
    let connector = state.connectors.create(spec).await?;
    let location = format!("/api/v1/connectors/{}", connector.spec.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(connector)))
}

/// Replace a connector and restart it; a password left out stays as it was
#[utoipa::path(
    put,
    path = "/connectors/{id}",
    tag = "connectors",
    params(("id" = String, Path, description = "The connector's id")),
    request_body = ConnectorSpec,
    responses(
        (status = 200, description = "Stored and restarted", body = Connector),
        (status = 400, description = "Invalid; `field` names the field, and nothing is stored", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such connector", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
    body: Result<Json<ConnectorSpec>, JsonRejection>,
) -> Result<Json<Connector>, Problem> {
    let Json(spec) = body?;
    if spec.id != id {
        return Err(Problem::invalid_field("id", format!("is `{}`, but the path names `{id}`", spec.id)));
    }
    Ok(Json(state.connectors.replace(spec).await?))
}

/// Delete a connector; it stops, and the rows it stored stay
#[utoipa::path(
    delete,
    path = "/connectors/{id}",
    tag = "connectors",
    params(("id" = String, Path, description = "The connector's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid credentials", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Needs the `editor` role", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such connector", body = Problem, content_type = PROBLEM),
    ),
    security(("bearer" = []), ("session" = []))
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    _editor: Editor,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.connectors.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
