//! Wire types shared by every edge of a node, and the node's peer-to-peer endpoint.
//!
//! A [`ReadRequest`] travels as JSON in a Flight descriptor `cmd` and, unchanged, in the
//! ticket that `GetFlightInfo` hands back, so a ticket is self-describing and stateless.

mod network;
mod read_request;

pub use network::{IDENTIFY_PROTOCOL, Network, NetworkError};
pub use read_request::{ReadRequest, ReadRequestError};
