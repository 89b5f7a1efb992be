//! Wire types shared by every edge of a node, the node's peer-to-peer endpoint and the
//! rules of federation membership. What members say to each other travels in protobuf
//! (`proto/`, specified in `docs/protocol.md`).
//!
//! A [`ReadRequest`] travels as JSON in a Flight descriptor `cmd` and, unchanged, in the
//! ticket that `GetFlightInfo` hands back, so a ticket is self-describing and stateless.

mod error;
pub mod federation;
mod identity;
pub mod membership;
mod network;
mod read_request;
pub mod tls;
mod wire;

pub use error::ProtocolError;
pub use identity::{Identity, MAX_SIGNED_BODY, Signed, public_key};
pub use libp2p::request_response::ResponseChannel;
pub use libp2p::{Multiaddr, PeerId};
pub use network::{IDENTIFY_PROTOCOL, MAX_GOSSIP_BYTES, Network, NetworkClient, NetworkConfig, NetworkEvent, peer_of};
pub use read_request::{ReadRequest, ReadRequestError};
pub use wire::Statement;
