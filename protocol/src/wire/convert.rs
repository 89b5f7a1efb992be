//! Between the generated wire messages and the node's own types.

use prost::Message;

use super::pb;
use crate::federation::{Announcement, Gossip, Invitation, JoinConsent, MemberRecord, MemberStatus, Request, Response};
use crate::{ProtocolError, Signed};

/// A kind of statement a node signs (docs/protocol.md, section 2). Its body is an encoded
/// `Statement` that names the kind, so no signature made for one kind opens as another.
pub trait Statement: Sized + sealed::Sealed {
    /// The exact bytes to sign.
    fn to_body(&self) -> Vec<u8>;
    /// Reads a signed body, refusing one of another kind.
    fn from_body(body: &[u8]) -> Result<Self, ProtocolError>;
}

mod sealed {
    pub trait Sealed {}
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, ProtocolError> {
    M::decode(bytes).map_err(|e| ProtocolError::Malformed(format!("{what}: {e}")))
}

fn required<T>(value: Option<T>, what: &str) -> Result<T, ProtocolError> {
    value.ok_or_else(|| ProtocolError::Malformed(format!("{what} is missing")))
}

macro_rules! statement {
    ($type:ident, $kind:ident, $what:literal) => {
        impl sealed::Sealed for $type {}

        impl Statement for $type {
            fn to_body(&self) -> Vec<u8> {
                pb::Statement { kind: Some(pb::statement::Kind::$kind(self.clone().into())) }.encode_to_vec()
            }

            fn from_body(body: &[u8]) -> Result<Self, ProtocolError> {
                match decode::<pb::Statement>(body, "statement")?.kind {
                    Some(pb::statement::Kind::$kind(statement)) => Self::try_from(statement),
                    _ => Err(ProtocolError::Malformed(concat!("the statement is not ", $what).into())),
                }
            }
        }
    };
}

statement!(Invitation, Invitation, "an invitation");
statement!(JoinConsent, Consent, "a join consent");
statement!(MemberRecord, Member, "a membership record");
statement!(Announcement, Announcement, "an announcement");

impl Signed {
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::Signed::from(self.clone()).encode_to_vec()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        Ok(decode::<pb::Signed>(bytes, "signed statement")?.into())
    }
}

impl From<Signed> for pb::Signed {
    fn from(s: Signed) -> Self {
        Self { body: s.body, signer: s.signer, signature: s.signature }
    }
}

/// A signed statement as it came; [`Signed::open`] checks it.
impl From<pb::Signed> for Signed {
    fn from(s: pb::Signed) -> Self {
        Self { body: s.body, signer: s.signer, signature: s.signature }
    }
}

fn signed_all(list: Vec<pb::Signed>) -> Vec<Signed> {
    list.into_iter().map(Signed::from).collect()
}

fn wire_all(list: Vec<Signed>) -> Vec<pb::Signed> {
    list.into_iter().map(pb::Signed::from).collect()
}

impl From<Invitation> for pb::Invitation {
    fn from(i: Invitation) -> Self {
        Self {
            federation: i.federation,
            federation_name: i.federation_name,
            inviter: i.inviter,
            inviter_name: i.inviter_name,
            addresses: i.addresses,
            invitee: i.invitee,
            nonce: i.nonce,
            expires: i.expires,
        }
    }
}

impl TryFrom<pb::Invitation> for Invitation {
    type Error = ProtocolError;

    fn try_from(i: pb::Invitation) -> Result<Self, ProtocolError> {
        Ok(Self {
            federation: i.federation,
            federation_name: i.federation_name,
            inviter: i.inviter,
            inviter_name: i.inviter_name,
            addresses: i.addresses,
            invitee: i.invitee,
            nonce: i.nonce,
            expires: i.expires,
        })
    }
}

impl From<JoinConsent> for pb::JoinConsent {
    fn from(c: JoinConsent) -> Self {
        Self { federation: c.federation, member: c.member, inviter: c.inviter, nonce: c.nonce, at: c.at }
    }
}

impl TryFrom<pb::JoinConsent> for JoinConsent {
    type Error = ProtocolError;

    fn try_from(c: pb::JoinConsent) -> Result<Self, ProtocolError> {
        Ok(Self { federation: c.federation, member: c.member, inviter: c.inviter, nonce: c.nonce, at: c.at })
    }
}

impl From<MemberRecord> for pb::MemberRecord {
    fn from(r: MemberRecord) -> Self {
        let status = match r.status {
            MemberStatus::Admitted => pb::MemberStatus::Admitted,
            MemberStatus::Removed => pb::MemberStatus::Removed,
        };
        Self {
            federation: r.federation,
            federation_name: r.federation_name,
            member: r.member,
            name: r.name,
            status: status.into(),
            by: r.by,
            at: r.at,
            addresses: r.addresses,
            http: r.http,
            flight: r.flight,
            peer_flight: r.peer_flight,
            consent: r.consent.map(pb::Signed::from),
        }
    }
}

impl TryFrom<pb::MemberRecord> for MemberRecord {
    type Error = ProtocolError;

    fn try_from(r: pb::MemberRecord) -> Result<Self, ProtocolError> {
        let status = match pb::MemberStatus::try_from(r.status) {
            Ok(pb::MemberStatus::Admitted) => MemberStatus::Admitted,
            Ok(pb::MemberStatus::Removed) => MemberStatus::Removed,
            Ok(pb::MemberStatus::Unspecified) | Err(_) => {
                return Err(ProtocolError::Malformed(format!("membership record: unknown status {}", r.status)));
            }
        };
        Ok(Self {
            federation: r.federation,
            federation_name: r.federation_name,
            member: r.member,
            name: r.name,
            status,
            by: r.by,
            at: r.at,
            addresses: r.addresses,
            http: r.http,
            flight: r.flight,
            peer_flight: r.peer_flight,
            consent: r.consent.map(Signed::from),
        })
    }
}

impl From<Announcement> for pb::Announcement {
    fn from(a: Announcement) -> Self {
        Self {
            federation: a.federation,
            origin: a.origin,
            dataset: a.dataset,
            version: a.version,
            member: a.member,
            entry: a.entry,
        }
    }
}

impl TryFrom<pb::Announcement> for Announcement {
    type Error = ProtocolError;

    fn try_from(a: pb::Announcement) -> Result<Self, ProtocolError> {
        Ok(Self {
            federation: a.federation,
            origin: a.origin,
            dataset: a.dataset,
            version: a.version,
            member: a.member,
            entry: a.entry,
        })
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        use pb::request::Kind;
        let kind = match self.clone() {
            Request::Join { invitation, consent, name, addresses, http, flight, peer_flight } => Kind::Join(pb::Join {
                invitation: Some(invitation.into()),
                consent: Some(consent.into()),
                name,
                addresses,
                http,
                flight,
                peer_flight,
            }),
            Request::Member { record } => Kind::Member(record.into()),
            Request::Members => Kind::Members(pb::Empty {}),
            Request::Catalog => Kind::Catalog(pb::Empty {}),
            Request::Announce { announcements } => {
                Kind::Announce(pb::Announcements { announcements: wire_all(announcements) })
            }
        };
        pb::Request { kind: Some(kind) }.encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        use pb::request::Kind;
        Ok(match required(decode::<pb::Request>(bytes, "request")?.kind, "the request's kind")? {
            Kind::Join(join) => Request::Join {
                invitation: required(join.invitation, "join: invitation")?.into(),
                consent: required(join.consent, "join: consent")?.into(),
                name: join.name,
                addresses: join.addresses,
                http: join.http,
                flight: join.flight,
                peer_flight: join.peer_flight,
            },
            Kind::Member(record) => Request::Member { record: record.into() },
            Kind::Members(pb::Empty {}) => Request::Members,
            Kind::Catalog(pb::Empty {}) => Request::Catalog,
            Kind::Announce(list) => Request::Announce { announcements: signed_all(list.announcements) },
        })
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        use pb::response::Kind;
        let kind = match self.clone() {
            Response::Joined { members } => Kind::Joined(pb::Records { records: wire_all(members) }),
            Response::Members { members } => Kind::Members(pb::Records { records: wire_all(members) }),
            Response::Catalog { announcements } => {
                Kind::Catalog(pb::Announcements { announcements: wire_all(announcements) })
            }
            Response::Accepted => Kind::Accepted(pb::Empty {}),
            Response::Refused { reason } => Kind::Refused(pb::Reason { reason }),
            Response::NameTaken { name } => Kind::NameTaken(pb::Name { name }),
        };
        pb::Response { kind: Some(kind) }.encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        use pb::response::Kind;
        Ok(match required(decode::<pb::Response>(bytes, "response")?.kind, "the response's kind")? {
            Kind::Joined(list) => Response::Joined { members: signed_all(list.records) },
            Kind::Members(list) => Response::Members { members: signed_all(list.records) },
            Kind::Catalog(list) => Response::Catalog { announcements: signed_all(list.announcements) },
            Kind::Accepted(pb::Empty {}) => Response::Accepted,
            Kind::Refused(pb::Reason { reason }) => Response::Refused { reason },
            Kind::NameTaken(pb::Name { name }) => Response::NameTaken { name },
        })
    }
}

impl Gossip {
    pub fn encode(&self) -> Vec<u8> {
        use pb::gossip::Kind;
        let kind = match self.clone() {
            Gossip::Member(signed) => Kind::Member(signed.into()),
            Gossip::Announcement(signed) => Kind::Announcement(signed.into()),
        };
        pb::Gossip { kind: Some(kind) }.encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        use pb::gossip::Kind;
        Ok(match required(decode::<pb::Gossip>(bytes, "gossip")?.kind, "the gossip's kind")? {
            Kind::Member(signed) => Gossip::Member(signed.into()),
            Kind::Announcement(signed) => Gossip::Announcement(signed.into()),
        })
    }
}
