//! The node's HTTP interface, three faces and what they share: the REST API under
//! `/api/v1` (`api/`), the public portal (`portal/`) and the staff workspace
//! (`workspace/`), beside the DCAT export, login and the operations endpoints. Handlers
//! translate HTTP to calls on the dataspace, catalogue, store and policy crates and back;
//! the rules live in those crates.

mod api;
mod auth;
mod body;
mod dcat;
mod etag;
mod expiring;
mod limits;
pub mod login;
mod metrics;
mod ops;
mod portal;
mod problem;
mod process;
pub mod session;
mod sta;
mod state;
mod workspace;
mod write_deadline;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use limits::Limits;
pub use metrics::HttpMetrics;
pub use portal::PageCache;
pub use problem::Problem;
pub use process::register_process_metrics;
pub use state::{AppState, MAX_DOWNLOADS};
pub use write_deadline::WriteDeadline;

/// The complete router. `http_metrics` must be registered in the registry that
/// `state.registry` holds.
pub fn router(state: AppState, http_metrics: metrics::HttpMetrics) -> Router {
    Router::new()
        .nest("/api/v1", api::routes())
        .route("/catalog", get(dcat::catalog_negotiated))
        .route("/catalog.ttl", get(dcat::catalog_turtle))
        .route("/catalog.jsonld", get(dcat::catalog_jsonld))
        .route("/catalog.rdf", get(dcat::catalog_rdfxml))
        .route("/datasets/{file}", get(dcat::dataset))
        .route("/views/{file}", get(dcat::view))
        .merge(
            Router::new()
                .route("/sta/v1.1", get(sta::root))
                .route("/sta/v1.1/", get(sta::root))
                .route("/sta/v1.1/{*path}", get(sta::resource))
                .layer(axum::middleware::map_response(sta::open_to_any_origin)),
        )
        .merge(portal::routes())
        // Text (pages, JSON, CSV, RDF) and Arrow streams, gzipped for clients that ask.
        // Not the workspace and login below: their pages carry CSRF tokens beside what the
        // visitor typed, which compression would let an observer guess by size (BREACH).
        .layer(tower_http::compression::CompressionLayer::new())
        .merge(workspace::routes())
        .route("/auth/login", get(login::login))
        .route("/auth/callback", get(login::callback))
        .route("/auth/token", post(login::token))
        .route("/auth/logout", post(login::logout))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(portal::not_found)
        // Bodies are bounded per route by `limits::bound_body`, not by axum's default.
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::bound_body))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(http_metrics, metrics::observe))
        .with_state(state)
}
