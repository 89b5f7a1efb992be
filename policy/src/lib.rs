//! Who is asking, and whether they may read: the one place where read decisions are made.
//!
//! Today the node knows two subjects (anonymous callers and the holder of the admin token)
//! and reads are open to everyone; the usage-policy work fills in [`Authorizer`] with
//! per-dataset rules without changing the edges that call it.

mod admin_token;
mod decision;

pub use admin_token::AdminToken;
pub use decision::{Authorizer, Decision, OpenAccess, Subject};
