//! The node's Arrow Flight service: datasets listed, described and read by descriptor or
//! ticket, written by `DoPut`. The service only delegates, counts and maps errors; each
//! RPC lives in its own file. Every read passes the sealed read path's [`ReadGate`], which
//! the REST edge uses too.

mod auth;
mod do_get;
mod do_put;
mod error;
mod get_flight_info;
mod get_schema;
mod ipc_guard;
mod list_flights;
mod metrics;
mod peer;
mod remote;
mod service;
mod sql;
mod target;
mod view;

use arrow_flight::flight_service_server::FlightServiceServer;
use prometheus_client::registry::Registry;
use urbanmesh_catalog::Catalog;
use urbanmesh_policy::Identities;
use urbanmesh_store::Store;

pub use auth::{FOR_PUBLIC_HEADER, PURPOSE_HEADER};
pub use do_get::{ATTRIBUTION_KEY, LICENCE_KEY};
pub use error::FlightError;
pub use peer::{
    HANDSHAKE_TIMEOUT, MAX_HANDSHAKES, MemberCheck, MemberGuard, MemberGuardLayer, MemberInfo, MemberStream,
    PeerClient, REVOCATION_CHECK, member_connections,
};
pub use remote::{MemberDirectory, Remote};
pub use service::FlightService;
pub use sql::table_name;
pub use urbanmesh_dataspace::{Opened, ReadGate};
pub use view::{Assembled, Freshness, SourceStatus, ViewRead, Views};

/// Largest message a client may send (one `DoPut` batch).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What the Flight service reads from and writes to.
#[derive(Clone)]
pub struct FlightContext {
    pub catalog: Catalog,
    pub store: Store,
    pub gate: ReadGate,
    pub identities: Identities,
    /// Reads from other members; `None` on a node outside any federation setup.
    pub remote: Option<Remote>,
    /// Regional views, served at `["views", id]`.
    pub views: Views,
}

/// The tonic service, ready to be added to a server.
pub type FlightServer = FlightServiceServer<FlightService>;

/// The Flight service over `context`, its metrics registered in `registry`.
pub fn server(context: FlightContext, registry: &mut Registry) -> FlightServer {
    FlightServiceServer::new(FlightService::new(context, metrics::FlightMetrics::register(registry)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}
