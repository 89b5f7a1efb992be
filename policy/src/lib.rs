//! Who is asking, what they may read, and the record of it: usage policies and their one
//! decision point, the subjects (anonymous callers, the admin token, people from the OpenID
//! provider, member nodes) and the audit log.

mod admin_token;
pub mod audience;
mod audit;
mod decide;
mod duration;
mod error;
mod identities;
mod jwks;
mod model;
mod oidc;
mod subject;
mod validate;

pub use admin_token::{AdminToken, constant_time_eq};
pub use audit::{AuditEntry, AuditLog, AuditQuery, AuditRecord, Interface, MAX_QUERY, Outcome, RefusalLimits, Served};
pub use decide::{Access, Decision, Denial, Grant};
pub use duration::{MAX_DURATION, NotASpan, Span, parse_duration};
pub use error::PolicyError;
pub use identities::Identities;
pub use model::{Action, Aggregate, Assignee, Buckets, Policy, Rule, Visibility};
pub use oidc::{ACCESS_TOKEN_TYPE, OidcSettings, TokenVerifier};
pub use subject::{Person, STAFF_ROLES, Subject};
pub use validate::Shape;
