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
/// `24h`, `7d`.
pub fn parse_ttl(text: &str) -> Result<std::time::Duration, FederationError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| FederationError::Refused(format!("`{text}` is not a duration such as 30m, 24h or 7d")))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" | "" => 3600,
        "d" => 86_400,
        _ => return Err(FederationError::Refused(format!("`{text}` is not a duration such as 30m, 24h or 7d"))),
    };
    let total = number.saturating_mul(seconds);
    if total == 0 || total > 365 * 86_400 {
        return Err(FederationError::Refused("an invitation lives between 1 s and 365 days".into()));
    }
    Ok(std::time::Duration::from_secs(total))
}
