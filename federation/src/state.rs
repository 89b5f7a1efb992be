//! The federation's state in sled: which federation, its membership records (their
//! protobuf wire bytes), the invitations this node issued, the highest announcement
//! version seen per entry, and an invitation waiting to be redeemed at the next start.

use serde::{Deserialize, Serialize};
use urbanmesh_protocol::Signed;

use crate::FederationError;

#[derive(Clone)]
pub(crate) struct FederationStore {
    db: sled::Db,
    meta: sled::Tree,
    members: sled::Tree,
    invitations: sled::Tree,
    versions: sled::Tree,
    /// Ids of local datasets the federation was last told are shared.
    announced: sled::Tree,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IssuedInvitation {
    pub(crate) invitee: Option<String>,
    pub(crate) expires: i64,
    /// The PeerId that redeemed it; `None` while unused.
    pub(crate) redeemed_by: Option<String>,
}

const PENDING_JOIN: &str = "pending_join";

impl FederationStore {
    pub(crate) fn open(db: sled::Db) -> Result<Self, FederationError> {
        Ok(Self {
            meta: db.open_tree("federation")?,
            members: db.open_tree("federation_members")?,
            invitations: db.open_tree("federation_invitations")?,
            versions: db.open_tree("federation_versions")?,
            announced: db.open_tree("federation_announced")?,
            db,
        })
    }

    pub(crate) fn records(&self) -> Result<Vec<Signed>, FederationError> {
        self.members
            .iter()
            .values()
            .map(|bytes| Signed::from_bytes(&bytes?).map_err(|e| FederationError::Corrupt(e.to_string())))
            .collect()
    }

    pub(crate) fn put_record(&self, member: &str, signed: &Signed) -> Result<(), FederationError> {
        self.members.insert(member, signed.to_bytes())?;
        Ok(())
    }

    pub(crate) fn issue(&self, nonce: &str, invitation: &IssuedInvitation) -> Result<(), FederationError> {
        self.invitations.insert(nonce, encode(invitation)?)?;
        Ok(())
    }

    /// Marks an issued invitation used by `peer`; fails when unknown or used before.
    pub(crate) fn redeem(&self, nonce: &str, peer: &str) -> Result<IssuedInvitation, FederationError> {
        let current = self
            .invitations
            .get(nonce)?
            .ok_or_else(|| FederationError::Invitation("this node did not issue it, or it was withdrawn".into()))?;
        let issued: IssuedInvitation = decode(&current)?;
        if issued.redeemed_by.is_some() {
            return Err(FederationError::Invitation("it has been used already".into()));
        }
        let used = IssuedInvitation { redeemed_by: Some(peer.to_owned()), ..issued };
        self.invitations
            .compare_and_swap(nonce, Some(current), Some(encode(&used)?))?
            .map_err(|_| FederationError::Invitation("it has been used already".into()))?;
        Ok(used)
    }

    /// Records `version` for an entry if it is newer than every version seen before.
    /// Records `rank` (version, and whether addressed to this node) for `key`; returns
    /// whether it is newer than every rank seen before.
    pub(crate) fn advance(&self, key: &str, rank: (u64, bool)) -> Result<bool, FederationError> {
        let mut newer = false;
        self.versions.fetch_and_update(key, |old| {
            let old = old.and_then(decode_rank);
            newer = old.is_none_or(|old| rank > old);
            let kept = old.map_or(rank, |old| old.max(rank));
            let mut bytes = kept.0.to_be_bytes().to_vec();
            bytes.push(u8::from(kept.1));
            Some(bytes)
        })?;
        Ok(newer)
    }

    pub(crate) fn pending_join(&self) -> Result<Option<String>, FederationError> {
        Ok(self.meta.get(PENDING_JOIN)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    pub(crate) fn set_pending_join(&self, invitation: Option<&str>) -> Result<(), FederationError> {
        match invitation {
            Some(text) => self.meta.insert(PENDING_JOIN, text.as_bytes()).map(drop)?,
            None => self.meta.remove(PENDING_JOIN).map(drop)?,
        }
        Ok(())
    }

    /// Records whether a local dataset is now shared; returns whether the federation must
    /// hear of the change (it is shared, or it was and no longer is).
    pub(crate) fn mark_shared(&self, id: &str, shared: bool) -> Result<bool, FederationError> {
        if shared {
            self.announced.insert(id, &[])?;
            Ok(true)
        } else {
            Ok(self.announced.remove(id)?.is_some())
        }
    }

    /// Forgets the federation entirely (this node left).
    pub(crate) fn clear(&self) -> Result<(), FederationError> {
        self.members.clear()?;
        self.invitations.clear()?;
        self.versions.clear()?;
        self.announced.clear()?;
        Ok(())
    }

    pub(crate) async fn flush(&self) -> Result<(), FederationError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, FederationError> {
    serde_json::to_vec(value).map_err(|e| FederationError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, FederationError> {
    serde_json::from_slice(bytes).map_err(|e| FederationError::Corrupt(e.to_string()))
}

/// A stored rank: the version, then one byte telling whether it was addressed to this
/// node (absent in records written before announcements could be).
fn decode_rank(bytes: &[u8]) -> Option<(u64, bool)> {
    let version = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    Some((version, bytes.get(8).is_some_and(|b| *b == 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_advance_so_replays_and_stale_copies_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FederationStore::open(sled::open(dir.path()).expect("sled")).expect("store");
        assert!(store.advance("peer/pegel", (5, false)).expect("first"));
        assert!(!store.advance("peer/pegel", (5, false)).expect("replay"));
        assert!(!store.advance("peer/pegel", (4, true)).expect("stale"));
        assert!(store.advance("peer/pegel", (6, false)).expect("newer"));
        assert!(store.advance("peer/luft", (1, false)).expect("another entry"));
    }

    #[test]
    fn an_entry_addressed_to_this_node_supersedes_the_gossiped_one_of_its_version_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FederationStore::open(sled::open(dir.path()).expect("sled")).expect("store");
        assert!(store.advance("peer/pegel", (5, false)).expect("gossiped"));
        assert!(store.advance("peer/pegel", (5, true)).expect("addressed"));
        assert!(!store.advance("peer/pegel", (5, false)).expect("the gossiped copy again"));
        assert!(!store.advance("peer/pegel", (5, true)).expect("the addressed copy again"));
        assert!(store.advance("peer/pegel", (6, false)).expect("the next version"));
    }

    #[test]
    fn an_invitation_is_redeemed_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FederationStore::open(sled::open(dir.path()).expect("sled")).expect("store");
        store.issue("n1", &IssuedInvitation { invitee: None, expires: i64::MAX, redeemed_by: None }).expect("issue");
        store.redeem("n1", "peer-a").expect("first use");
        assert!(matches!(store.redeem("n1", "peer-b"), Err(FederationError::Invitation(_))));
        assert!(matches!(store.redeem("unknown", "peer-b"), Err(FederationError::Invitation(_))));
    }
}
