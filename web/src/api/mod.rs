//! The REST API under `/api/v1`: datasets and their rows, policies, views, search, the
//! access log and the federation, as JSON (rows also as CSV, NDJSON, Parquet, Arrow).

mod audit;
mod connectors;
mod dashboards;
pub(crate) mod datasets;
pub(crate) mod encode;
mod federation;
mod geojson;
pub(crate) mod ingest;
mod openapi;
mod policy;
mod read;
mod search;
mod views;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, problem};

/// The routes below `/api/v1`, and `/api/v1/openapi.json` describing them.
pub(crate) fn routes() -> Router<AppState> {
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(datasets::list, datasets::create))
        .routes(routes!(datasets::get, datasets::update, datasets::delete))
        .routes(routes!(read::rows, ingest::rows))
        .routes(routes!(ingest::upload))
        .routes(routes!(geojson::dataset))
        .routes(routes!(policy::get, policy::put))
        .routes(routes!(views::list, views::create))
        .routes(routes!(views::get, views::update, views::delete))
        .routes(routes!(views::rows))
        .routes(routes!(views::status))
        .routes(routes!(geojson::view))
        .routes(routes!(audit::query))
        .routes(routes!(policy::me))
        .routes(routes!(search::search))
        .routes(routes!(federation::status))
        .routes(routes!(federation::invite))
        .routes(routes!(federation::join))
        .routes(routes!(federation::remove))
        .routes(routes!(read::remote_rows))
        .routes(routes!(dashboards::list, dashboards::create))
        .routes(routes!(dashboards::get, dashboards::update, dashboards::delete))
        .routes(routes!(connectors::list, connectors::create))
        .routes(routes!(connectors::get, connectors::update, connectors::delete))
        .split_for_parts();
    router.route("/openapi.json", openapi::serve(&openapi::finish(document))).fallback(problem::not_found)
}
