//! Who belongs to a federation, derived from signed membership records.
//!
//! Rules (see docs/decisions/006): the founder admits itself first; any member may admit
//! a newcomer (it becomes the newcomer's sponsor); a member may update its own addresses;
//! a member may be removed by itself (leaving), by its sponsor, or by the founder. Later
//! statements (by `at`) about a member replace earlier ones; stale ones are ignored.

use std::collections::BTreeMap;

use crate::federation::{MemberRecord, MemberStatus};
use crate::{ProtocolError, Signed};

#[derive(Debug, Clone)]
pub struct Member {
    pub record: MemberRecord,
    pub signed: Signed,
    /// Who admitted the member (itself for the founder).
    pub sponsor: String,
}

impl Member {
    pub fn is_admitted(&self) -> bool {
        self.record.status == MemberStatus::Admitted
    }
}

#[derive(Debug, Clone, Default)]
pub struct Membership {
    federation: Option<(String, String)>,
    founder: Option<String>,
    members: BTreeMap<String, Member>,
}

/// What applying a record did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Admitted(String),
    Updated(String),
    Removed(String),
    /// Already known or older than what is known.
    Stale,
}

impl Membership {
    /// The federation's id and name, once known.
    pub fn federation(&self) -> Option<(&str, &str)> {
        self.federation.as_ref().map(|(id, name)| (id.as_str(), name.as_str()))
    }

    pub fn founder(&self) -> Option<&str> {
        self.founder.as_deref()
    }

    pub fn is_member(&self, peer: &str) -> bool {
        self.members.get(peer).is_some_and(Member::is_admitted)
    }

    /// Every member ever known, removed ones included.
    pub fn all(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn admitted(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| m.is_admitted())
    }

    pub fn get(&self, peer: &str) -> Option<&Member> {
        self.members.get(peer)
    }

    /// Checks a signed record against the rules and applies it.
    pub fn apply(&mut self, signed: &Signed) -> Result<Change, ProtocolError> {
        let (signer, record): (_, MemberRecord) = signed.open()?;
        if signer.to_string() != record.by {
            return Err(ProtocolError::Forged(format!("record says it is by {} but is signed by {signer}", record.by)));
        }
        if let Some((id, _)) = &self.federation
            && *id != record.federation
        {
            return Err(ProtocolError::Refused(format!("record of federation {}, not {id}", record.federation)));
        }
        let current = self.members.get(&record.member);
        if current.is_some_and(|c| c.record.at >= record.at) {
            return Ok(Change::Stale);
        }
        let self_signed = record.by == record.member;
        let (change, sponsor) = match record.status {
            MemberStatus::Admitted if self_signed && self.founder.is_none() && self.members.is_empty() => {
                self.founder = Some(record.member.clone());
                self.federation = Some((record.federation.clone(), record.federation_name.clone()));
                (Change::Admitted(record.member.clone()), record.member.clone())
            }
            MemberStatus::Admitted if self_signed => match current {
                Some(c) if c.is_admitted() => (Change::Updated(record.member.clone()), c.sponsor.clone()),
                _ => return Err(ProtocolError::Refused(format!("{} is not a member to update itself", record.member))),
            },
            MemberStatus::Admitted => {
                if !self.is_member(&record.by) {
                    return Err(ProtocolError::Refused(format!("{} may not admit: not a member", record.by)));
                }
                // A second admission of a member changes its details, not its sponsor.
                match current {
                    Some(c) if c.is_admitted() => (Change::Updated(record.member.clone()), c.sponsor.clone()),
                    _ => (Change::Admitted(record.member.clone()), record.by.clone()),
                }
            }
            MemberStatus::Removed => {
                let Some(current) = current.filter(|c| c.is_admitted()) else {
                    return Ok(Change::Stale);
                };
                let allowed = self_signed || record.by == current.sponsor || Some(&record.by) == self.founder.as_ref();
                if !allowed || !(self_signed || self.is_member(&record.by)) {
                    return Err(ProtocolError::Refused(format!(
                        "{} may not remove {}: only the member itself, its sponsor or the founder may",
                        record.by, record.member
                    )));
                }
                (Change::Removed(record.member.clone()), current.sponsor.clone())
            }
        };
        self.members.insert(record.member.clone(), Member { record, signed: signed.clone(), sponsor });
        Ok(change)
    }

    /// Applies records in any order, retrying those that depend on later ones.
    pub fn apply_all(&mut self, records: &[Signed]) -> Vec<Change> {
        let mut pending: Vec<&Signed> = records.iter().collect();
        let mut changes = Vec::new();
        loop {
            let before = pending.len();
            pending.retain(|signed| match self.apply(signed) {
                Ok(change) => {
                    changes.push(change);
                    false
                }
                Err(ProtocolError::Refused(_)) => true,
                Err(error) => {
                    tracing::warn!(%error, "dropping an invalid membership record");
                    false
                }
            });
            if pending.is_empty() || pending.len() == before {
                return changes;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    fn record(by: &Identity, member: &Identity, status: MemberStatus, at: i64) -> Signed {
        by.sign(&MemberRecord {
            federation: "f".into(),
            federation_name: "OWL".into(),
            member: member.peer_id().to_string(),
            name: "x".into(),
            status,
            by: by.peer_id().to_string(),
            at,
            addresses: vec![],
            http: None,
            flight: None,
            peer_flight: None,
        })
        .expect("sign")
    }

    #[test]
    fn admission_chains_back_to_the_founder_and_removal_follows_the_rule() {
        let [a, b, c, d] = [1u8, 2, 3, 4].map(|i| Identity::from_secret([i; 32]).expect("key"));
        let mut membership = Membership::default();
        // Out of order: b's admission by a comes before a's founding record.
        let records = [record(&a, &b, MemberStatus::Admitted, 2), record(&a, &a, MemberStatus::Admitted, 1)];
        membership.apply_all(&records);
        assert!(membership.is_member(&b.peer_id().to_string()));
        assert!(matches!(membership.apply(&record(&d, &c, MemberStatus::Admitted, 3)), Err(ProtocolError::Refused(_))));
        membership.apply(&record(&b, &c, MemberStatus::Admitted, 4)).expect("b admits c");
        // d is nobody; b may not remove a (not its sponsor, not the founder).
        assert!(membership.apply(&record(&b, &a, MemberStatus::Removed, 5)).is_err());
        assert_eq!(
            membership.apply(&record(&b, &c, MemberStatus::Removed, 6)).expect("sponsor removes"),
            Change::Removed(c.peer_id().to_string())
        );
        assert!(!membership.is_member(&c.peer_id().to_string()));
        assert_eq!(membership.apply(&record(&b, &c, MemberStatus::Admitted, 4)).expect("old"), Change::Stale);
        let forged = Signed { signer: a.peer_id().to_string(), ..record(&d, &d, MemberStatus::Admitted, 9) };
        assert!(matches!(membership.apply(&forged), Err(ProtocolError::Forged(_))));
    }
}
