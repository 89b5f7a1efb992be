//! Catalogue replication: announcing this node's shared entries, and verifying and
//! storing the entries other members announce.

use std::collections::HashSet;
use std::sync::PoisonError;

use urbanmesh_catalog::{CatalogError, Replica, SharedEntry};
use urbanmesh_protocol::federation::Announcement;
use urbanmesh_protocol::{PeerId, ProtocolError, Signed};

use crate::FederationError;
use crate::service::{Inner, origin_of};

/// The signed announcement of local dataset `id`: its entry, or its withdrawal. For
/// `member`, with what that member may know of the rows; else with what every member may.
pub(crate) fn announcement(inner: &Inner, id: &str, member: Option<&str>) -> Result<Signed, FederationError> {
    let federation = federation_id(inner)?;
    let version = inner.catalog.generation()?;
    let entry = match inner.catalog.shared_entry(id, member) {
        Ok(entry) => Some(serde_json::to_vec(&entry).map_err(|e| FederationError::Corrupt(e.to_string()))?),
        Err(CatalogError::NotFound { .. }) => None,
        Err(error) => return Err(error.into()),
    };
    let announcement = Announcement {
        federation,
        origin: inner.me.clone(),
        dataset: id.to_owned(),
        version,
        member: member.map(str::to_owned),
        entry,
    };
    Ok(inner.identity.sign(&announcement)?)
}

/// Announcements of every entry this node shares, addressed to `member`, for it to catch
/// up. Datasets kept inside the node are not mentioned at all: a member drops what the
/// list no longer holds.
pub(crate) fn own_announcements(inner: &Inner, member: &str) -> Result<Vec<Signed>, FederationError> {
    let mut announcements = Vec::new();
    for dataset in inner.catalog.iter() {
        let dataset = dataset?;
        if dataset.policy.is_shared() {
            announcements.push(announcement(inner, dataset.id(), Some(member))?);
        }
    }
    for view in inner.catalog.views().list()? {
        if view.policy.is_shared() {
            announcements.push(announcement(inner, view.id(), Some(member))?);
        }
    }
    Ok(announcements)
}

/// The members that may know more of dataset `id` than its gossiped entry tells, each with
/// the announcement addressed to it.
pub(crate) fn narrower(inner: &Inner, id: &str) -> Result<Vec<(String, Signed)>, FederationError> {
    let members: Vec<String> = {
        let membership = inner.membership.read().unwrap_or_else(PoisonError::into_inner);
        membership.admitted().map(|m| m.record.member.clone()).filter(|m| *m != inner.me).collect()
    };
    let knowing_more = match inner.catalog.members_knowing_more(id, &members) {
        Ok(members) => members,
        Err(CatalogError::NotFound { .. }) => return Ok(Vec::new()),
        Err(error) => return Err(error.into()),
    };
    knowing_more
        .into_iter()
        .map(|member| announcement(inner, id, Some(&member)).map(|signed| (member, signed)))
        .collect()
}

/// What the federation hears of a change to a local dataset or view: its entry while it is
/// shared, one withdrawal when it stops being shared or is deleted, nothing for internal ones.
pub(crate) fn change(inner: &Inner, id: &str) -> Result<Option<Signed>, FederationError> {
    let shared = match inner.catalog.get(id) {
        Ok(dataset) => dataset.policy.is_shared(),
        Err(CatalogError::NotFound { .. }) => match inner.catalog.views().get(id) {
            Ok(view) => view.policy.is_shared(),
            Err(CatalogError::NotFound { .. }) => false,
            Err(error) => return Err(error.into()),
        },
        Err(error) => return Err(error.into()),
    };
    // Tracked even outside a federation, so that a later withdrawal is announced once there
    // are members to tell.
    let tell = inner.store.mark_shared(id, shared)?;
    if !tell || federation_id(inner).is_err() {
        return Ok(None);
    }
    announcement(inner, id, None).map(Some)
}

/// Verifies an announcement and applies it to the replicas. Returns the dataset it is
/// about when it is genuine (applied, or older than what is known).
pub(crate) async fn accept(
    inner: &Inner,
    signed: &Signed,
    relayed_by: Option<&str>,
) -> Result<Option<String>, FederationError> {
    let (signer, announcement): (PeerId, Announcement) = signed.open()?;
    let origin = signer.to_string();
    if announcement.origin != origin {
        return Err(ProtocolError::Forged(format!("announcement of {} signed by {origin}", announcement.origin)).into());
    }
    if origin == inner.me {
        return Ok(None);
    }
    let personal = match &announcement.member {
        None => false,
        Some(member) if *member == inner.me => true,
        // Signed by its origin, but for another member: relayed to the wrong node.
        Some(member) => {
            return Err(FederationError::Refused(format!(
                "announcement of {origin} addressed to {member} (relayed by {relayed_by:?})"
            )));
        }
    };
    let member = {
        let membership = inner.membership.read().unwrap_or_else(PoisonError::into_inner);
        if membership.federation().map(|(id, _)| id) != Some(announcement.federation.as_str()) {
            return Err(FederationError::Refused("announcement for another federation".into()));
        }
        membership.get(&origin).filter(|m| m.is_admitted()).map(|m| m.record.clone())
    };
    let Some(member) = member else {
        return Err(FederationError::Refused(format!("{origin} is not a member (relayed by {relayed_by:?})")));
    };
    let dataset = announcement.dataset.clone();
    if !inner.store.advance(&format!("{origin}/{dataset}"), (announcement.version, personal))? {
        return Ok(Some(dataset));
    }
    match announcement.entry {
        Some(json) => {
            let mut entry: SharedEntry =
                serde_json::from_slice(&json).map_err(|e| ProtocolError::Malformed(format!("entry: {e}")))?;
            // Only the shared part of a member's policy is kept, whatever the member sent.
            entry.dataset.policy = entry.dataset.policy.shared();
            if entry.dataset.id() != dataset {
                return Err(ProtocolError::Malformed("entry and announcement name different datasets".into()).into());
            }
            entry.dataset.spec.validate().map_err(|e| ProtocolError::Malformed(e.to_string()))?;
            if entry.dataset.policy.is_for_member(&inner.me) {
                let origin = origin_of(&member);
                let replica = Replica { origin, version: announcement.version, personal, entry };
                inner.catalog.put_replica(replica).await?;
            } else {
                inner.catalog.remove_replica(&origin, &dataset, Some(announcement.version)).await?;
            }
        }
        None => {
            inner.catalog.remove_replica(&origin, &dataset, Some(announcement.version)).await?;
        }
    }
    Ok(Some(dataset))
}

/// Applies a member's full list of shared entries; whatever it no longer lists is gone.
pub(crate) async fn catch_up(inner: &Inner, peer: &str, announcements: &[Signed]) -> Result<(), FederationError> {
    let mut listed = HashSet::new();
    for signed in announcements {
        match accept(inner, signed, Some(peer)).await {
            Ok(Some(dataset)) => {
                listed.insert(dataset);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%peer, %error, "announcement refused"),
        }
    }
    for replica in inner.catalog.replicas_of(peer)? {
        if !listed.contains(replica.entry.dataset.id()) {
            inner.catalog.remove_replica(peer, replica.entry.dataset.id(), None).await?;
        }
    }
    Ok(())
}

fn federation_id(inner: &Inner) -> Result<String, FederationError> {
    let membership = inner.membership.read().unwrap_or_else(PoisonError::into_inner);
    membership.federation().map(|(id, _)| id.to_owned()).ok_or(FederationError::NotMember)
}
