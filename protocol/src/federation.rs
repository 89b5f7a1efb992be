//! What members of a federation say to each other: invitations, membership records,
//! catalogue announcements, and the request-response and gossip messages carrying them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::{ProtocolError, Signed};

/// Request-response protocol between members (join, membership and catalogue sync), its
/// messages in protobuf (`proto/urbanmesh/federation/v2/federation.proto`).
pub const SYNC_PROTOCOL: &str = "/urbanmesh/sync/2";
/// Kademlia protocol name, so that our DHT never mixes with a public one.
pub const KAD_PROTOCOL: &str = "/urbanmesh/kad/1";

/// The gossip topic of a federation.
pub fn topic(federation: &str) -> String {
    format!("/urbanmesh/fed/{federation}/2")
}

/// An invitation: signed by the inviting member, single use, expiring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub federation: String,
    pub federation_name: String,
    pub inviter: String,
    pub inviter_name: String,
    /// Where the inviter listens (multiaddrs ending in `/p2p/<peer id>`).
    pub addresses: Vec<String>,
    /// Whom the invitation is meant for, as the inviter wrote it.
    pub invitee: Option<String>,
    pub nonce: String,
    /// Unix seconds after which the invitation is void.
    pub expires: i64,
}

const INVITATION_PREFIX: &str = "urbanmesh-invitation:";

/// One line of text that carries a signed invitation.
pub fn encode_invitation(signed: &Signed) -> Result<String, ProtocolError> {
    Ok(format!("{INVITATION_PREFIX}{}", URL_SAFE_NO_PAD.encode(signed.to_bytes())))
}

pub fn decode_invitation(text: &str) -> Result<Signed, ProtocolError> {
    let encoded = text
        .trim()
        .strip_prefix(INVITATION_PREFIX)
        .ok_or_else(|| ProtocolError::Malformed(format!("an invitation starts with `{INVITATION_PREFIX}`")))?;
    if encoded.len() > 64 * 1024 {
        return Err(ProtocolError::Malformed("the invitation is too long".into()));
    }
    let bytes =
        URL_SAFE_NO_PAD.decode(encoded).map_err(|_| ProtocolError::Malformed("the invitation is damaged".into()))?;
    Signed::from_bytes(&bytes).map_err(|_| ProtocolError::Malformed("the invitation is damaged".into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    Admitted,
    Removed,
}

/// A statement about one member, signed by `by`: its admission (by a member), an update
/// of its addresses (by itself), or its removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub federation: String,
    pub federation_name: String,
    pub member: String,
    pub name: String,
    pub status: MemberStatus,
    pub by: String,
    /// Milliseconds since the epoch; later statements about a member replace earlier ones.
    pub at: i64,
    pub addresses: Vec<String>,
    /// The member's public HTTP base URL (portal, API).
    pub http: Option<String>,
    /// The member's public Flight endpoint (for analysts).
    pub flight: Option<String>,
    /// The member's Flight endpoint for other members (mutual TLS).
    pub peer_flight: Option<String>,
    /// In an admission: the newcomer's signed [`JoinConsent`], so that every member can
    /// check that the newcomer asked to join with this invitation.
    pub consent: Option<Signed>,
}

/// A newcomer's own statement that it redeems an invitation, signed by the newcomer. It
/// travels in the `Join` request and then in the admission record: no member can admit a
/// node that did not ask, nor admit it again with an old statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinConsent {
    pub federation: String,
    /// The newcomer's PeerId (the signer).
    pub member: String,
    /// The member whose invitation it redeems, and that invitation's nonce.
    pub inviter: String,
    pub nonce: String,
    /// Milliseconds since the epoch.
    pub at: i64,
}

/// A catalogue entry that `origin` shares with the federation, or its withdrawal
/// (`entry` absent). Versions only grow; an older version is stale. Gossiped, it tells
/// what every member may know; addressed to one `member` (by request-response), what that
/// member may know, which at the same version supersedes the gossiped one there only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub federation: String,
    pub origin: String,
    pub dataset: String,
    pub version: u64,
    pub member: Option<String>,
    /// The shared catalogue entry, a JSON document the catalogue reads (see
    /// docs/protocol.md, section 5).
    pub entry: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A newcomer redeems its invitation, telling how to reach it.
    Join {
        invitation: Signed,
        /// The newcomer's signed [`JoinConsent`] for this invitation.
        consent: Signed,
        name: String,
        addresses: Vec<String>,
        http: Option<String>,
        flight: Option<String>,
        peer_flight: Option<String>,
    },
    /// A membership record handed directly to the member it is about (its removal,
    /// which it would not hear by gossip once disconnected).
    Member { record: Signed },
    /// Every membership record the peer holds.
    Members,
    /// Every announcement of the peer's own shared datasets.
    Catalog,
    /// The sender's own announcements, pushed to a member that just became reachable by
    /// gossip (what was gossiped before that moment did not reach it).
    Announce { announcements: Vec<Signed> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Joined {
        members: Vec<Signed>,
    },
    Members {
        members: Vec<Signed>,
    },
    Catalog {
        announcements: Vec<Signed>,
    },
    Accepted,
    Refused {
        reason: String,
    },
    /// A join refused because another member holds the name (compared normalised).
    NameTaken {
        name: String,
    },
}

/// What members gossip on the federation's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gossip {
    Member(Signed),
    Announcement(Signed),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn invitations_survive_one_line_of_text_and_nothing_else() {
        let inviter = Identity::from_secret([1; 32]).expect("key");
        let invitation = Invitation {
            federation: "f1".into(),
            federation_name: "OWL".into(),
            inviter: inviter.peer_id().to_string(),
            inviter_name: "Gütersloh".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
            invitee: Some("Bielefeld".into()),
            nonce: "abc".into(),
            expires: 1,
        };
        let line = encode_invitation(&inviter.sign(&invitation).expect("sign")).expect("encode");
        assert!(!line.contains('\n'));
        let (signer, decoded): (libp2p::PeerId, Invitation) =
            decode_invitation(&line).expect("decode").open().expect("open");
        assert_eq!((signer, decoded), (inviter.peer_id(), invitation));
        assert!(decode_invitation("urbanmesh-invitation:!!!").is_err());
        assert!(decode_invitation("hello").is_err());
    }
}
