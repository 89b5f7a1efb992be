//! Membership records: applying signed records, removing members, and keeping the
//! network's view of who may connect in step with the membership.

use std::collections::HashSet;
use std::sync::PoisonError;
use std::time::Duration;

use chrono::Utc;
use urbanmesh_protocol::federation::{Gossip, MemberRecord, MemberStatus, Request, Response, topic};
use urbanmesh_protocol::membership::{Change, Membership};
use urbanmesh_protocol::{Multiaddr, PeerId, ProtocolError, Signed};

use crate::FederationError;
use crate::service::{Federation, multiaddrs, refused_first};

/// How long a removal waits to tell the removed member directly.
const TELL_TIMEOUT: Duration = Duration::from_secs(2);

impl Federation {
    /// Removes a member (this node itself to leave) under the federation's rules.
    pub async fn remove(&self, member: &str) -> Result<(), FederationError> {
        let record = {
            let membership = self.membership();
            let (id, name) = membership.federation().ok_or(FederationError::NotMember)?;
            let current = membership.get(member).filter(|m| m.is_admitted());
            let current = current.ok_or_else(|| FederationError::UnknownMember(member.to_owned()))?;
            MemberRecord {
                federation: id.to_owned(),
                federation_name: name.to_owned(),
                status: MemberStatus::Removed,
                by: self.inner.me.clone(),
                at: Utc::now().timestamp_millis().max(
                    current
                        .record
                        .at
                        .checked_add(1)
                        .ok_or_else(|| FederationError::Corrupt(format!("time of {member}")))?,
                ),
                ..current.record.clone()
            }
        };
        let signed = self.inner.identity.sign(&record)?;
        // Check against the rules first, so that a refusal reaches the caller.
        self.membership().clone().apply(&signed).map_err(|e| FederationError::Refused(e.to_string()))?;
        // Those who would not hear it by gossip once the connection is gone are told
        // directly: the removed member, or everyone when this node leaves.
        let leaving = member == self.inner.me;
        let told: Vec<String> = match leaving {
            true => {
                self.membership().admitted().map(|m| m.record.member.clone()).filter(|p| *p != self.inner.me).collect()
            }
            false => vec![member.to_owned()],
        };
        self.gossip(&Gossip::Member(signed.clone())).await;
        futures::future::join_all(told.iter().map(|peer| self.tell(peer, &signed))).await;
        refused_first(self.apply_records(std::slice::from_ref(&signed)).await?)?;
        Ok(())
    }

    /// Hands a membership record to one member directly; a member that is offline learns
    /// nothing and is refused when it comes back.
    async fn tell(&self, member: &str, signed: &Signed) {
        let Ok(peer) = member.parse::<PeerId>() else { return };
        let addresses = self.membership().get(member).map(|m| multiaddrs(&m.record.addresses)).unwrap_or_default();
        let request = Request::Member { record: signed.clone() };
        let told = tokio::time::timeout(TELL_TIMEOUT, self.inner.client.request(peer, addresses, request)).await;
        if !matches!(told, Ok(Ok(Response::Accepted))) {
            tracing::info!(%member, "a member could not be told of a membership change directly");
        }
    }

    /// Applies membership records, persists what changed and follows up on the network.
    /// Records the rules refuse change nothing; they are logged and returned.
    pub(crate) async fn apply_records(&self, records: &[Signed]) -> Result<Vec<ProtocolError>, FederationError> {
        let _changing = self.inner.changing.lock().await;
        let applied = self.inner.membership.write().unwrap_or_else(PoisonError::into_inner).apply_all(records);
        let changes = applied.changes;
        let mut admitted = Vec::new();
        let mut removed = Vec::new();
        let mut updated = Vec::new();
        for change in &changes {
            let peer = match change {
                Change::Admitted(peer) | Change::Updated(peer) => peer,
                Change::Removed(peer) => peer,
                Change::Stale => continue,
            };
            let signed = self.membership().get(peer).map(|m| m.signed.clone());
            if let Some(signed) = signed {
                self.inner.store.put_record(peer, &signed)?;
            }
            match change {
                Change::Admitted(peer) => admitted.push(peer.clone()),
                Change::Removed(peer) => removed.push(peer.clone()),
                Change::Updated(peer) => updated.push(peer.clone()),
                Change::Stale => {}
            }
        }
        if changes.iter().all(|c| *c == Change::Stale) {
            return Ok(applied.refused);
        }
        self.inner.store.flush().await?;
        if removed.iter().any(|peer| *peer == self.inner.me) {
            self.forget_federation().await?;
            return Ok(applied.refused);
        }
        for peer in &removed {
            let forgotten = self.inner.catalog.forget_origin(peer).await?;
            tracing::info!(%peer, entries = forgotten, "member removed");
        }
        self.network_follows_membership().await?;
        for peer in updated.iter().filter(|p| **p != self.inner.me) {
            if let Some(origin) = self.origin(peer) {
                self.inner.catalog.set_origin(origin).await?;
            }
        }
        for peer in admitted.into_iter().filter(|p| *p != self.inner.me) {
            tracing::info!(%peer, "member admitted");
            // It may be connected already (it joined through us, or dialled first); an
            // established connection reports nothing new, so catch up with it now.
            tokio::spawn(self.clone().sync_with(peer));
        }
        Ok(applied.refused)
    }

    /// This node left: it forgets the federation and everything replicated from it.
    async fn forget_federation(&self) -> Result<(), FederationError> {
        let peers: Vec<String> = self.membership().all().map(|m| m.record.member.clone()).collect();
        for peer in peers.iter().filter(|p| **p != self.inner.me) {
            self.inner.catalog.forget_origin(peer).await?;
        }
        self.inner.store.clear()?;
        self.inner.store.flush().await?;
        *self.inner.membership.write().unwrap_or_else(PoisonError::into_inner) = Membership::default();
        self.inner.client.set_members(HashSet::new()).await?;
        tracing::info!("left the federation");
        Ok(())
    }

    /// Tells the network loop who the members are, joins the topic and dials them.
    pub(crate) async fn network_follows_membership(&self) -> Result<(), FederationError> {
        let (members, topic_name, addresses) = {
            let membership = self.membership();
            let members: HashSet<PeerId> = membership.admitted().filter_map(|m| m.record.member.parse().ok()).collect();
            let addresses: Vec<Multiaddr> = membership
                .admitted()
                .filter(|m| m.record.member != self.inner.me)
                .flat_map(|m| multiaddrs(&m.record.addresses))
                .collect();
            (members, membership.federation().map(|(id, _)| topic(id)), addresses)
        };
        self.inner.client.set_members(members).await?;
        if let Some(topic_name) = topic_name {
            self.inner.client.subscribe(topic_name).await?;
        }
        self.inner.client.dial(addresses).await?;
        Ok(())
    }

    /// States this node's current addresses to the federation.
    pub(crate) async fn publish_presence(&self) -> Result<(), FederationError> {
        let (id, name) = {
            let membership = self.membership();
            let (id, name) = membership.federation().ok_or(FederationError::NotMember)?;
            (id.to_owned(), name.to_owned())
        };
        let signed = self.inner.identity.sign(&self.own_record(&id, &name, MemberStatus::Admitted)?)?;
        self.apply_records(std::slice::from_ref(&signed)).await?;
        self.gossip(&Gossip::Member(signed)).await;
        Ok(())
    }
}
