//! Who belongs to a federation, derived from signed membership records.
//!
//! Rules (see docs/decisions/006 and 010): the founder admits itself first; any member may
//! admit a newcomer that asked to join (its signed consent is in the admission), once, and
//! becomes its sponsor; only a member itself may change its record (addresses, endpoints,
//! name); a member may be removed by itself (leaving), by its sponsor, or by the founder.
//! Names are unique among admitted members, compared normalised. Later statements (by
//! `at`) about a member replace earlier ones; stale ones are ignored; statements dated
//! more than [`MAX_CLOCK_AHEAD_MS`] ahead of the local clock are refused.

use std::collections::BTreeMap;

use crate::federation::{JoinConsent, MemberRecord, MemberStatus};
use crate::{ProtocolError, Signed};

/// How far ahead of the local clock a statement may be dated (clock skew between nodes).
/// Without a bound, one record dated in the far future would make every later statement
/// about that member stale, its removal included.
pub const MAX_CLOCK_AHEAD_MS: i64 = 5 * 60 * 1000;
/// Longest member name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

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

/// What applying a batch of records did: the changes, and the records refused.
#[derive(Debug, Default)]
pub struct Applied {
    pub changes: Vec<Change>,
    pub refused: Vec<ProtocolError>,
}

/// The form in which two names count as the same: case, surrounding and repeated
/// whitespace do not tell names apart ("Herford" and "herford " collide).
pub fn name_key(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// A member name must be readable and tell members apart: not empty, at most
/// [`MAX_NAME_CHARS`] characters, no control or invisible characters.
pub fn check_name(name: &str) -> Result<(), ProtocolError> {
    let invisible = |c: char| c.is_control() || matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}');
    if name.trim().is_empty() {
        return Err(ProtocolError::Refused("a member name must not be empty".into()));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ProtocolError::Refused(format!("a member name has at most {MAX_NAME_CHARS} characters")));
    }
    if name.chars().any(invisible) {
        return Err(ProtocolError::Refused("a member name must not contain control or invisible characters".into()));
    }
    Ok(())
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

    /// The admitted member that holds `name` (compared by [`name_key`]).
    pub fn holder_of(&self, name: &str) -> Option<&Member> {
        let key = name_key(name);
        self.admitted().find(|m| name_key(&m.record.name) == key)
    }

    /// Checks a signed record against the rules and applies it, at the local clock.
    pub fn apply(&mut self, signed: &Signed) -> Result<Change, ProtocolError> {
        self.apply_at(signed, chrono::Utc::now().timestamp_millis())
    }

    /// [`Membership::apply`] with the local clock at `now` (ms since the epoch).
    pub fn apply_at(&mut self, signed: &Signed, now: i64) -> Result<Change, ProtocolError> {
        let (signer, record): (_, MemberRecord) = signed.open()?;
        if signer.to_string() != record.by {
            return Err(ProtocolError::Forged(format!("record says it is by {} but is signed by {signer}", record.by)));
        }
        if let Some((id, _)) = &self.federation
            && *id != record.federation
        {
            return Err(ProtocolError::Refused(format!("record of federation {}, not {id}", record.federation)));
        }
        check_time(record.at, now)?;
        let current = self.members.get(&record.member);
        if current.is_some_and(|c| c.record.at >= record.at) {
            return Ok(Change::Stale);
        }
        let self_signed = record.by == record.member;
        let (change, sponsor) = match record.status {
            MemberStatus::Admitted if self_signed && self.founder.is_none() && self.members.is_empty() => {
                check_name(&record.name)?;
                self.founder = Some(record.member.clone());
                self.federation = Some((record.federation.clone(), record.federation_name.clone()));
                (Change::Admitted(record.member.clone()), record.member.clone())
            }
            // Only a member itself changes its record: addresses, endpoints, its name.
            MemberStatus::Admitted if self_signed => match current {
                Some(c) if c.is_admitted() => {
                    self.check_name_free(&record)?;
                    (Change::Updated(record.member.clone()), c.sponsor.clone())
                }
                _ => return Err(ProtocolError::Refused(format!("{} is not a member to update itself", record.member))),
            },
            MemberStatus::Admitted => {
                if !self.is_member(&record.by) {
                    return Err(ProtocolError::Refused(format!("{} may not admit: not a member", record.by)));
                }
                if current.is_some_and(Member::is_admitted) {
                    return Err(ProtocolError::Refused(format!(
                        "{} may not admit {}: it is a member already, and only it may change its record",
                        record.by, record.member
                    )));
                }
                check_consent(&record, current.map(|c| c.record.at))?;
                self.check_name_free(&record)?;
                (Change::Admitted(record.member.clone()), record.by.clone())
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

    /// The record's name is valid and held by no other admitted member.
    fn check_name_free(&self, record: &MemberRecord) -> Result<(), ProtocolError> {
        check_name(&record.name)?;
        match self.holder_of(&record.name) {
            Some(holder) if holder.record.member != record.member => Err(ProtocolError::Refused(format!(
                "the name `{}` is taken by member {} ({})",
                record.name.trim(),
                holder.record.member,
                holder.record.name
            ))),
            _ => Ok(()),
        }
    }

    /// Applies records in any order, retrying those that depend on later ones. Records
    /// refused in the end are logged and reported; they change nothing.
    pub fn apply_all(&mut self, records: &[Signed]) -> Applied {
        let mut pending: Vec<&Signed> = records.iter().collect();
        let mut applied = Applied::default();
        loop {
            let before = pending.len();
            pending.retain(|signed| match self.apply(signed) {
                Ok(change) => {
                    applied.changes.push(change);
                    false
                }
                Err(ProtocolError::Refused(_)) => true,
                Err(error) => {
                    tracing::warn!(%error, signer = %signed.signer, "membership record refused");
                    applied.refused.push(error);
                    false
                }
            });
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        for signed in pending {
            if let Err(error) = self.apply(signed) {
                tracing::warn!(%error, signer = %signed.signer, "membership record refused");
                applied.refused.push(error);
            }
        }
        applied
    }
}

/// A statement's time: not before the epoch, not further ahead than the clock allows.
fn check_time(at: i64, now: i64) -> Result<(), ProtocolError> {
    if at < 0 {
        return Err(ProtocolError::Malformed(format!("record dated {at}, before 1970")));
    }
    let latest =
        now.checked_add(MAX_CLOCK_AHEAD_MS).ok_or_else(|| ProtocolError::Malformed("clock overflow".into()))?;
    if at > latest {
        return Err(ProtocolError::Refused(format!(
            "record dated {} s ahead of this node's clock (at most {} s allowed)",
            (at - now) / 1000,
            MAX_CLOCK_AHEAD_MS / 1000
        )));
    }
    Ok(())
}

/// An admission carries the newcomer's own consent to this admission: signed by the
/// newcomer, naming this federation and this sponsor, made after everything known about
/// the newcomer (so an old consent cannot admit it again after a removal), and before the
/// admission itself.
fn check_consent(record: &MemberRecord, known_since: Option<i64>) -> Result<(), ProtocolError> {
    let refused = |why: &str| ProtocolError::Refused(format!("admission of {} by {}: {why}", record.member, record.by));
    let signed = record.consent.as_ref().ok_or_else(|| refused("the newcomer's consent is missing"))?;
    let (signer, consent): (_, JoinConsent) = signed.open().map_err(|e| refused(&format!("consent: {e}")))?;
    if signer.to_string() != record.member || consent.member != record.member {
        return Err(refused("the consent is not the newcomer's"));
    }
    if consent.inviter != record.by || consent.federation != record.federation {
        return Err(refused("the consent is for another sponsor or federation"));
    }
    if known_since.is_some_and(|since| consent.at <= since) {
        return Err(refused("the consent is older than the newcomer's last record"));
    }
    if consent.at > record.at {
        return Err(refused("the consent is dated after the admission"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    const NOW: i64 = 1_800_000_000_000;

    fn named(by: &Identity, member: &Identity, status: MemberStatus, at: i64, name: &str) -> Signed {
        let consent = (status == MemberStatus::Admitted && by.peer_id() != member.peer_id()).then(|| {
            member
                .sign(&JoinConsent {
                    federation: "f".into(),
                    member: member.peer_id().to_string(),
                    inviter: by.peer_id().to_string(),
                    nonce: "n".into(),
                    at: at - 1,
                })
                .expect("sign")
        });
        by.sign(&MemberRecord {
            federation: "f".into(),
            federation_name: "OWL".into(),
            member: member.peer_id().to_string(),
            name: name.into(),
            status,
            by: by.peer_id().to_string(),
            at,
            addresses: vec![],
            http: None,
            flight: None,
            peer_flight: None,
            consent,
        })
        .expect("sign")
    }

    fn record(by: &Identity, member: &Identity, status: MemberStatus, at: i64) -> Signed {
        named(by, member, status, at, &member.peer_id().to_string())
    }

    fn apply(membership: &mut Membership, signed: &Signed) -> Result<Change, ProtocolError> {
        membership.apply_at(signed, NOW)
    }

    #[test]
    fn admission_chains_back_to_the_founder_and_removal_follows_the_rule() {
        let [a, b, c, d] = [1u8, 2, 3, 4].map(|i| Identity::from_secret([i; 32]).expect("key"));
        let mut membership = Membership::default();
        // Out of order: b's admission by a comes before a's founding record.
        let records = [record(&a, &b, MemberStatus::Admitted, 2), record(&a, &a, MemberStatus::Admitted, 1)];
        let applied = membership.apply_all(&records);
        assert!(applied.refused.is_empty(), "{:?}", applied.refused);
        assert!(membership.is_member(&b.peer_id().to_string()));
        assert!(matches!(
            apply(&mut membership, &record(&d, &c, MemberStatus::Admitted, 3)),
            Err(ProtocolError::Refused(_))
        ));
        apply(&mut membership, &record(&b, &c, MemberStatus::Admitted, 4)).expect("b admits c");
        // d is nobody; b may not remove a (not its sponsor, not the founder).
        assert!(apply(&mut membership, &record(&b, &a, MemberStatus::Removed, 5)).is_err());
        assert_eq!(
            apply(&mut membership, &record(&b, &c, MemberStatus::Removed, 6)).expect("sponsor removes"),
            Change::Removed(c.peer_id().to_string())
        );
        assert!(!membership.is_member(&c.peer_id().to_string()));
        assert_eq!(apply(&mut membership, &record(&b, &c, MemberStatus::Admitted, 4)).expect("old"), Change::Stale);
        let forged = Signed { signer: a.peer_id().to_string(), ..record(&d, &d, MemberStatus::Admitted, 9) };
        assert!(matches!(apply(&mut membership, &forged), Err(ProtocolError::Forged(_))));
    }

    #[test]
    fn only_a_member_itself_changes_its_record() {
        let [a, b, c] = [1u8, 2, 3].map(|i| Identity::from_secret([i; 32]).expect("key"));
        let mut membership = Membership::default();
        let applied = membership.apply_all(&[
            record(&a, &a, MemberStatus::Admitted, 1),
            record(&a, &b, MemberStatus::Admitted, 2),
            record(&a, &c, MemberStatus::Admitted, 3),
        ]);
        assert!(applied.refused.is_empty(), "{:?}", applied.refused);
        // b "admits" c again, or "updates" c in c's name: refused, c's record is untouched.
        let before = membership.get(&c.peer_id().to_string()).expect("c").signed.clone();
        assert!(matches!(
            apply(&mut membership, &record(&b, &c, MemberStatus::Admitted, 10)),
            Err(ProtocolError::Refused(_))
        ));
        let mut claims_c = record(&b, &c, MemberStatus::Admitted, 11);
        claims_c.signer = c.peer_id().to_string();
        assert!(matches!(apply(&mut membership, &claims_c), Err(ProtocolError::Forged(_))));
        assert_eq!(membership.get(&c.peer_id().to_string()).expect("c").signed, before);
        // c itself may.
        assert_eq!(
            apply(&mut membership, &record(&c, &c, MemberStatus::Admitted, 12)).expect("own"),
            Change::Updated(c.peer_id().to_string())
        );
    }

    #[test]
    fn an_admission_needs_the_newcomers_fresh_consent() {
        let [a, b, c] = [1u8, 2, 3].map(|i| Identity::from_secret([i; 32]).expect("key"));
        let mut membership = Membership::default();
        apply(&mut membership, &record(&a, &a, MemberStatus::Admitted, 1)).expect("found");
        let admission = |consent: Option<Signed>, at| {
            a.sign(&MemberRecord {
                federation: "f".into(),
                federation_name: "OWL".into(),
                member: b.peer_id().to_string(),
                name: "Herford".into(),
                status: MemberStatus::Admitted,
                by: a.peer_id().to_string(),
                at,
                addresses: vec![],
                http: None,
                flight: None,
                peer_flight: None,
                consent,
            })
            .expect("sign")
        };
        let consent = |signer: &Identity, at| {
            signer
                .sign(&JoinConsent {
                    federation: "f".into(),
                    member: b.peer_id().to_string(),
                    inviter: a.peer_id().to_string(),
                    nonce: "n".into(),
                    at,
                })
                .expect("sign")
        };
        assert!(apply(&mut membership, &admission(None, 5)).is_err(), "no consent");
        assert!(apply(&mut membership, &admission(Some(consent(&c, 4)), 5)).is_err(), "someone else's consent");
        apply(&mut membership, &admission(Some(consent(&b, 4)), 5)).expect("admitted");
        apply(&mut membership, &record(&a, &b, MemberStatus::Removed, 6)).expect("removed");
        // The old consent does not bring b back, even in a newer admission.
        assert!(apply(&mut membership, &admission(Some(consent(&b, 4)), 7)).is_err(), "replayed consent");
        apply(&mut membership, &admission(Some(consent(&b, 8)), 9)).expect("b asked again");
    }

    #[test]
    fn names_are_unique_whatever_their_case_and_spacing() {
        let [a, b, c] = [1u8, 2, 3].map(|i| Identity::from_secret([i; 32]).expect("key"));
        let mut membership = Membership::default();
        apply(&mut membership, &named(&a, &a, MemberStatus::Admitted, 1, "Detmold")).expect("found");
        apply(&mut membership, &named(&a, &b, MemberStatus::Admitted, 2, "Herford")).expect("b");
        for taken in ["herford ", " HERFORD", "Detmold", "  herford  "] {
            let refused = apply(&mut membership, &named(&a, &c, MemberStatus::Admitted, 3, taken));
            assert!(
                matches!(refused, Err(ProtocolError::Refused(ref why)) if why.contains("taken")),
                "{taken}: {refused:?}"
            );
        }
        for bad in ["", "   ", "Her\u{200B}ford", "a\nb"] {
            assert!(apply(&mut membership, &named(&a, &c, MemberStatus::Admitted, 3, bad)).is_err(), "{bad:?}");
        }
        // b may not rename itself into a's name; c takes a free name; a removed member's name is free again.
        assert!(apply(&mut membership, &named(&b, &b, MemberStatus::Admitted, 4, "DETMOLD")).is_err());
        apply(&mut membership, &named(&a, &c, MemberStatus::Admitted, 5, "Lemgo")).expect("c");
        apply(&mut membership, &named(&a, &b, MemberStatus::Removed, 6, "Herford")).expect("b removed");
        apply(&mut membership, &named(&c, &c, MemberStatus::Admitted, 7, "herford")).expect("renamed");
        assert_eq!(membership.holder_of("Herford").map(|m| m.record.member.clone()), Some(c.peer_id().to_string()));
    }

    #[test]
    fn a_record_from_the_future_is_refused_and_nothing_overflows() {
        let [a, b] = [1u8, 2].map(|i| Identity::from_secret([i; 32]).expect("key"));
        let mut membership = Membership::default();
        apply(&mut membership, &record(&a, &a, MemberStatus::Admitted, 1)).expect("found");
        apply(&mut membership, &record(&a, &b, MemberStatus::Admitted, 2)).expect("b");
        for at in [i64::MAX, NOW + MAX_CLOCK_AHEAD_MS + 1] {
            assert!(
                matches!(
                    apply(&mut membership, &record(&b, &b, MemberStatus::Admitted, at)),
                    Err(ProtocolError::Refused(_))
                ),
                "{at}"
            );
        }
        assert!(matches!(
            apply(&mut membership, &record(&b, &b, MemberStatus::Admitted, -1)),
            Err(ProtocolError::Malformed(_))
        ));
        assert!(
            membership.apply_at(&record(&b, &b, MemberStatus::Admitted, 3), i64::MAX).is_err(),
            "a clock at the end of time"
        );
        assert_eq!(membership.get(&b.peer_id().to_string()).expect("b").record.at, 2);
        // Within the allowed skew it is taken, and the sponsor can still remove b after it.
        apply(&mut membership, &record(&b, &b, MemberStatus::Admitted, NOW + MAX_CLOCK_AHEAD_MS)).expect("skew");
        let removal = record(&a, &b, MemberStatus::Removed, NOW + MAX_CLOCK_AHEAD_MS + 1);
        assert!(membership.apply_at(&removal, NOW + 1).is_ok());
    }
}
