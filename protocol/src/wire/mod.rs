//! The federation protocol's wire format: messages generated from
//! `proto/urbanmesh/federation/v2/federation.proto`, the conversions between them and the
//! types the node works with, and the request-response codec that carries them.
//!
//! A conversion from the wire checks what protobuf cannot: that a message the rules need
//! is present, and that an enum holds a known value.

mod codec;
mod convert;

#[allow(unreachable_pub, clippy::all, clippy::pedantic, missing_docs)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/urbanmesh.federation.v2.rs"));
}

pub(crate) use codec::SyncCodec;
pub use convert::Statement;
