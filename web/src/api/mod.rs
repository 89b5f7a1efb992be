//! The REST API under `/api/v1`: datasets and their rows, policies, views, search, the
//! access log and the federation, as JSON (rows also as CSV, NDJSON, Parquet, Arrow).

mod audit;
pub(crate) mod datasets;
pub(crate) mod encode;
mod federation;
mod geojson;
pub(crate) mod ingest;
mod policy;
mod read;
mod search;
mod views;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::{AppState, problem};

/// The routes below `/api/v1`.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/datasets", get(datasets::list).post(datasets::create))
        .route("/datasets/{id}", get(datasets::get).put(datasets::update).delete(datasets::delete))
        .route("/datasets/{id}/rows", post(ingest::rows).get(read::rows))
        .route("/datasets/{id}/upload", post(ingest::upload))
        .route("/datasets/{id}/latest.geojson", get(geojson::dataset))
        .route("/datasets/{id}/policy", get(policy::get).put(policy::put))
        .route("/views", get(views::list).post(views::create))
        .route("/views/{id}", get(views::get).put(views::update).delete(views::delete))
        .route("/views/{id}/rows", get(views::rows))
        .route("/views/{id}/status", get(views::status))
        .route("/views/{id}/latest.geojson", get(geojson::view))
        .route("/audit", get(audit::query))
        .route("/me", get(policy::me))
        .route("/search", get(search::search))
        .route("/federation", get(federation::status))
        .route("/federation/invitations", post(federation::invite))
        .route("/federation/join", post(federation::join))
        .route("/federation/members/{peer}", delete(federation::remove))
        .route("/federation/{node}/datasets/{id}/rows", get(read::remote_rows))
        .fallback(problem::not_found)
}
