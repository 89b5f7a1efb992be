//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus_client::registry::Registry;
use urbanmesh_catalog::{Catalog, Endpoints};
use urbanmesh_policy::Identities;
use urbanmesh_store::Store;

use crate::{Limits, Problem, login, portal};

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
    /// MQTT subscriptions and pulls that write into datasets.
    pub connectors: urbanmesh_live::Connectors,
    /// Who a request's credentials name.
    pub identities: Identities,
    /// Portal pages rendered for anonymous visitors.
    pub pages: Arc<portal::PageCache>,
    /// Workspace login at the OpenID provider; `None` without `[oidc]`.
    pub login: Option<Arc<login::Login>>,
    /// Signed-in people (and the admin token's holder) of the workspace.
    pub sessions: Arc<crate::session::Sessions>,
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
