//! Wire types shared by every edge of a node: what a reader asks for.
//!
//! A [`ReadRequest`] travels as JSON in a Flight descriptor `cmd` and, unchanged, in the
//! ticket that `GetFlightInfo` hands back, so a ticket is self-describing and stateless.

mod read_request;

pub use read_request::{ReadRequest, ReadRequestError};
