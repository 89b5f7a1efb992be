//! The node's HTTP interface: REST API under `/api/v1` and operations endpoints.
//! Handlers translate HTTP to calls on the catalogue, store and policy crates and back;
//! the rules live in those crates.

mod audit;
mod auth;
mod body;
mod datasets;
mod dcat;
mod encode;
mod federation;
mod ingest;
mod limits;
pub mod login;
mod metrics;
mod ops;
mod policy;
mod portal;
mod problem;
mod read;
mod search;
mod session;
mod views;
mod workspace;
mod write_deadline;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use urbanmesh_catalog::{Catalog, Endpoints};
use urbanmesh_policy::Identities;
use urbanmesh_store::Store;

pub use limits::Limits;
pub use metrics::HttpMetrics;
pub use portal::PageCache;
pub use problem::Problem;
pub use write_deadline::WriteDeadline;

/// Everything the handlers need, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Catalog,
    /// Where the node is reached from outside; the DCAT export's IRIs start here.
    pub endpoints: Endpoints,
    pub store: Store,
    pub federation: urbanmesh_federation::Federation,
    /// Reads from other members over their mutual-TLS Flight.
    pub remote: Option<urbanmesh_flight::Remote>,
    /// Regional views and their cached assemblies.
    pub views: urbanmesh_flight::Views,
    /// Every read of a dataset passes here (policy, shaping, audit).
    pub gate: urbanmesh_flight::ReadGate,
    /// Who a request's credentials name.
    pub identities: Identities,
    /// Portal pages rendered for anonymous visitors.
    pub pages: Arc<portal::PageCache>,
    /// Workspace login at the OpenID provider; `None` without `[oidc]`.
    pub login: Option<Arc<login::Login>>,
    /// Set once every listener is up; cleared when shutdown begins.
    pub ready: Arc<AtomicBool>,
    /// Rendered by `/metrics`; registration is finished before the router is built. Names
    /// no dataset.
    pub registry: Arc<Registry>,
    /// Series that name datasets, rendered by `/metrics` for staff only.
    pub staff_registry: Arc<Registry>,
    /// What requests may send and how long a response waits for its reader.
    pub limits: Limits,
    /// Result streams being encoded at once; each holds a blocking thread while its
    /// client reads, so their number is bounded ([`MAX_DOWNLOADS`] in the node).
    pub downloads: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A place among the downloads running at once, or 503 when all are taken.
    pub(crate) fn download_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Problem> {
        Arc::clone(&self.downloads).try_acquire_owned().map_err(|_| {
            Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too many downloads are running; retry in a moment",
            )
        })
    }
}

/// Concurrent result downloads per node.
pub const MAX_DOWNLOADS: usize = 64;

/// The complete router. `http_metrics` must be registered in the registry that
/// `state.registry` holds.
pub fn router(state: AppState, http_metrics: metrics::HttpMetrics) -> Router {
    let api = Router::new()
        .route("/datasets", get(datasets::list).post(datasets::create))
        .route("/datasets/{id}", get(datasets::get).put(datasets::update).delete(datasets::delete))
        .route("/datasets/{id}/rows", post(ingest::rows).get(read::rows))
        .route("/datasets/{id}/upload", post(ingest::upload))
        .route("/datasets/{id}/policy", get(policy::get).put(policy::put))
        .route("/views", get(views::list).post(views::create))
        .route("/views/{id}", get(views::get).put(views::update).delete(views::delete))
        .route("/views/{id}/rows", get(views::rows))
        .route("/views/{id}/status", get(views::status))
        .route("/audit", get(audit::query))
        .route("/me", get(policy::me))
        .route("/search", get(search::search))
        .route("/federation", get(federation::status))
        .route("/federation/invitations", post(federation::invite))
        .route("/federation/join", post(federation::join))
        .route("/federation/members/{peer}", axum::routing::delete(federation::remove))
        .route("/federation/{node}/datasets/{id}/rows", get(read::remote_rows))
        .fallback(problem::not_found);
    Router::new()
        .nest("/api/v1", api)
        .route("/catalog", get(dcat::catalog_negotiated))
        .route("/catalog.ttl", get(dcat::catalog_turtle))
        .route("/catalog.jsonld", get(dcat::catalog_jsonld))
        .route("/catalog.rdf", get(dcat::catalog_rdfxml))
        .route("/datasets/{file}", get(dcat::dataset))
        .route("/views/{file}", get(dcat::view))
        .merge(portal::routes())
        .merge(workspace::routes())
        .route("/auth/login", get(login::login))
        .route("/auth/callback", get(login::callback))
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
