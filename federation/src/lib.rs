//! A node's part in its federation: membership under signed records, single-use
//! invitations, and the replication of catalogue entries between members. The wire
//! types and the network loop live in `urbanmesh-protocol`; this crate holds the rules'
//! state (in sled) and reacts to what the network and the catalogue report.

mod error;
mod follow;
mod joining;
mod records;
mod replication;
mod service;
mod state;

pub use error::FederationError;
pub use joining::{check_invitation, join_on_next_start};
pub use service::{Federation, FederationInfo, FederationStatus, MemberView, Profile};

/// An invitation's lifetime as written on the command line or in the API: `90s`, `30m`,
/// `24h`, `7d` (the one duration grammar, [`urbanmesh_policy::parse_duration`]), between a
/// second and 365 days.
pub fn parse_ttl(text: &str) -> Result<std::time::Duration, FederationError> {
    let text = text.trim();
    let ttl = urbanmesh_policy::parse_duration(text)
        .ok_or_else(|| FederationError::Refused(format!("`{text}` is not a duration such as 30m, 24h or 7d")))?;
    if ttl < std::time::Duration::from_secs(1) || ttl > std::time::Duration::from_secs(365 * 86_400) {
        return Err(FederationError::Refused("an invitation lives between 1 s and 365 days".into()));
    }
    Ok(ttl)
}
