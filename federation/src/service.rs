//! The federation as this node takes part in it: membership, invitations, and the
//! replication of catalogue entries between members.

use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{Mutex, mpsc};
use urbanmesh_catalog::{Catalog, Origin};
use urbanmesh_protocol::federation::{
    Gossip, Invitation, JoinConsent, MemberRecord, MemberStatus, Request, Response, decode_invitation,
    encode_invitation, topic,
};
use urbanmesh_protocol::membership::{Change, Membership, check_name};
use urbanmesh_protocol::{Identity, Multiaddr, NetworkClient, NetworkEvent, PeerId, ProtocolError, Signed};

use crate::FederationError;
use crate::state::{FederationStore, IssuedInvitation};

/// How this node presents itself to members.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    /// libp2p listen addresses, each ending in `/p2p/<peer id>`.
    pub addresses: Vec<String>,
    pub http: Option<String>,
    pub flight: Option<String>,
    /// The mutual-TLS Flight endpoint other members read from.
    pub peer_flight: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FederationStatus {
    /// PeerId of this node.
    pub me: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation: Option<FederationInfo>,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Serialize)]
pub struct FederationInfo {
    pub id: String,
    pub name: String,
    pub founder: String,
}

#[derive(Debug, Serialize)]
pub struct MemberView {
    pub peer: String,
    pub name: String,
    /// `admitted` or `removed`.
    pub status: MemberStatus,
    /// Whether this node has a connection to it right now (always true for itself).
    pub connected: bool,
    pub sponsor: String,
    /// When the latest statement about the member was made (ms since the epoch).
    pub since: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flight: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_flight: Option<String>,
    pub addresses: Vec<String>,
}

/// Attempts, and the pause between them, for a request whose dial failed.
const DIAL_TRIES: u32 = 3;
const DIAL_PAUSE: Duration = Duration::from_millis(200);
/// How long a removal waits to tell the removed member directly.
const TELL_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Federation {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) identity: Identity,
    pub(crate) me: String,
    profile: Profile,
    pub(crate) store: FederationStore,
    pub(crate) catalog: Catalog,
    pub(crate) client: NetworkClient,
    pub(crate) membership: RwLock<Membership>,
    /// One membership change at a time: apply, persist, tell the network.
    changing: Mutex<()>,
}

impl Federation {
    /// Loads the federation state and starts following the network and the catalogue.
    pub async fn start(
        db: sled::Db,
        identity: Identity,
        catalog: Catalog,
        client: NetworkClient,
        events: mpsc::Receiver<NetworkEvent>,
        profile: Profile,
    ) -> Result<Self, FederationError> {
        let store = FederationStore::open(db)?;
        let mut membership = Membership::default();
        membership.apply_all(&store.records()?);
        let me = identity.peer_id().to_string();
        let federation = Self {
            inner: Arc::new(Inner {
                identity,
                me,
                profile,
                store,
                catalog,
                client,
                membership: RwLock::new(membership),
                changing: Mutex::new(()),
            }),
        };
        if federation.is_member() {
            federation.network_follows_membership().await?;
            federation.publish_presence().await?;
        }
        tokio::spawn(federation.clone().follow_network(events));
        tokio::spawn(federation.clone().follow_catalog());
        tokio::spawn(federation.clone().repair());
        if let Some(invitation) = federation.inner.store.pending_join()? {
            let joining = federation.clone();
            tokio::spawn(async move {
                match joining.join(&invitation).await {
                    Ok(_) => tracing::info!("joined the federation with the stored invitation"),
                    Err(error) => tracing::warn!(%error, "the stored invitation could not be redeemed"),
                }
                let _ = joining.inner.store.set_pending_join(None);
            });
        }
        Ok(federation)
    }

    pub(crate) fn is_member(&self) -> bool {
        self.membership().is_member(&self.inner.me)
    }

    /// Dials peers at these addresses (multiaddrs with `/p2p/`); members among them are
    /// synced once connected, which also teaches both sides each other's current addresses.
    pub async fn dial(&self, addresses: &[String]) -> Result<(), FederationError> {
        Ok(self.inner.client.dial(multiaddrs(addresses)).await?)
    }

    /// How a member's replicas name it, from its latest membership record.
    pub(crate) fn origin(&self, peer: &str) -> Option<Origin> {
        self.membership().get(peer).map(|member| origin_of(&member.record))
    }

    /// Whether `peer` is an admitted member right now.
    pub fn admits(&self, peer: &PeerId) -> bool {
        self.membership().is_member(&peer.to_string())
    }

    /// A member by PeerId or by name (compared normalised; names are unique among
    /// admitted members): its PeerId and member Flight endpoint.
    pub fn locate(&self, node: &str) -> Option<(PeerId, String)> {
        let membership = self.membership();
        let member = match membership.get(node).filter(|m| m.is_admitted()) {
            Some(member) => member,
            None => membership.holder_of(node)?,
        };
        if member.record.member == self.inner.me {
            return None;
        }
        Some((member.record.member.parse().ok()?, member.record.peer_flight.clone()?))
    }

    pub(crate) fn membership(&self) -> std::sync::RwLockReadGuard<'_, Membership> {
        self.inner.membership.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub async fn status(&self) -> FederationStatus {
        let connected: HashSet<String> =
            self.inner.client.connected().await.unwrap_or_default().iter().map(ToString::to_string).collect();
        let membership = self.membership();
        let federation = membership.federation().map(|(id, name)| FederationInfo {
            id: id.to_owned(),
            name: name.to_owned(),
            founder: membership.founder().unwrap_or_default().to_owned(),
        });
        let members = membership
            .all()
            .map(|m| MemberView {
                peer: m.record.member.clone(),
                name: m.record.name.clone(),
                status: m.record.status,
                connected: m.record.member == self.inner.me || connected.contains(&m.record.member),
                sponsor: m.sponsor.clone(),
                since: m.record.at,
                http: m.record.http.clone(),
                flight: m.record.flight.clone(),
                peer_flight: m.record.peer_flight.clone(),
                addresses: m.record.addresses.clone(),
            })
            .collect();
        FederationStatus { me: self.inner.me.clone(), federation, members }
    }

    /// Issues a single-use invitation, founding a federation named `federation_name`
    /// first if this node is in none.
    pub async fn invite(
        &self,
        federation_name: Option<&str>,
        invitee: Option<String>,
        ttl: Duration,
    ) -> Result<String, FederationError> {
        if !self.is_member() {
            self.found(federation_name.unwrap_or(&format!("Verbund {}", self.inner.profile.name))).await?;
        }
        let (id, name) = {
            let membership = self.membership();
            let (id, name) = membership.federation().ok_or(FederationError::NotMember)?;
            (id.to_owned(), name.to_owned())
        };
        let expires = Utc::now().timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let invitation = Invitation {
            federation: id,
            federation_name: name,
            inviter: self.inner.me.clone(),
            inviter_name: self.inner.profile.name.clone(),
            addresses: self.inner.profile.addresses.clone(),
            invitee: invitee.clone(),
            nonce: random_hex(16),
            expires,
        };
        self.inner.store.issue(&invitation.nonce, &IssuedInvitation { invitee, expires, redeemed_by: None })?;
        self.inner.store.flush().await?;
        Ok(encode_invitation(&self.inner.identity.sign(&invitation)?)?)
    }

    async fn found(&self, name: &str) -> Result<(), FederationError> {
        let record = self.own_record(&random_hex(8), name, MemberStatus::Admitted)?;
        let signed = self.inner.identity.sign(&record)?;
        refused_first(self.apply_records(&[signed]).await?)?;
        tracing::info!(federation = %name, "founded a federation");
        Ok(())
    }

    /// A statement about this node, dated after every earlier one about it (even when the
    /// clock went back since), so that it is never stale.
    fn own_record(
        &self,
        federation: &str,
        federation_name: &str,
        status: MemberStatus,
    ) -> Result<MemberRecord, FederationError> {
        let profile = &self.inner.profile;
        let at = self.next_time(&self.inner.me)?;
        Ok(MemberRecord {
            federation: federation.to_owned(),
            federation_name: federation_name.to_owned(),
            member: self.inner.me.clone(),
            name: profile.name.clone(),
            status,
            by: self.inner.me.clone(),
            at,
            addresses: profile.addresses.clone(),
            http: profile.http.clone(),
            flight: profile.flight.clone(),
            peer_flight: profile.peer_flight.clone(),
            consent: None,
        })
    }

    /// The time for a new statement about `member`: now, or just after the latest one.
    pub(crate) fn next_time(&self, member: &str) -> Result<i64, FederationError> {
        let now = Utc::now().timestamp_millis();
        let Some(latest) = self.membership().get(member).map(|m| m.record.at) else { return Ok(now) };
        let after = latest.checked_add(1).ok_or_else(|| FederationError::Corrupt(format!("time of {member}")))?;
        Ok(now.max(after))
    }

    /// Redeems an invitation at its inviter and becomes a member.
    pub async fn join(&self, text: &str) -> Result<FederationStatus, FederationError> {
        let (inviter, invitation) = check_invitation(text)?;
        if let Some((id, _)) = self.membership().federation()
            && self.membership().is_member(&self.inner.me)
        {
            return Err(FederationError::AlreadyMember(id.to_owned()));
        }
        let profile = &self.inner.profile;
        check_name(&profile.name).map_err(|e| FederationError::Refused(e.to_string()))?;
        let addresses = multiaddrs(&invitation.addresses);
        let consent = self.inner.identity.sign(&JoinConsent {
            federation: invitation.federation.clone(),
            member: self.inner.me.clone(),
            inviter: invitation.inviter.clone(),
            nonce: invitation.nonce.clone(),
            at: Utc::now().timestamp_millis(),
        })?;
        let request = Request::Join {
            invitation: decode_invitation(text)?,
            consent,
            name: profile.name.clone(),
            addresses: profile.addresses.clone(),
            http: profile.http.clone(),
            flight: profile.flight.clone(),
            peer_flight: profile.peer_flight.clone(),
        };
        let members = match self.request_with_retries(inviter, addresses, request).await? {
            Response::Joined { members } => members,
            Response::Refused { reason } => return Err(FederationError::Invitation(reason)),
            Response::NameTaken { name } => {
                return Err(FederationError::NameTaken { name, federation: invitation.federation_name });
            }
            other => return Err(FederationError::Refused(format!("unexpected answer {other:?}"))),
        };
        let mut candidate = Membership::default();
        candidate.apply_all(&members);
        if candidate.federation().map(|(id, _)| id) != Some(invitation.federation.as_str())
            || !candidate.is_member(&self.inner.me)
        {
            return Err(FederationError::Refused("the inviter's answer does not make this node a member".into()));
        }
        self.apply_records(&members).await?;
        tracing::info!(federation = %invitation.federation_name, inviter = %invitation.inviter_name, "joined");
        let peers: Vec<String> = self.membership().admitted().map(|m| m.record.member.clone()).collect();
        for peer in peers.into_iter().filter(|p| *p != self.inner.me) {
            tokio::spawn(self.clone().sync_with(peer));
        }
        Ok(self.status().await)
    }

    /// A request that survives a failed dial or two (a simultaneous dial from the other
    /// side, a listener that is just coming up).
    async fn request_with_retries(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        request: Request,
    ) -> Result<Response, FederationError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.inner.client.request(peer, addresses.clone(), request.clone()).await {
                Err(ProtocolError::Unreachable { .. }) if tries < DIAL_TRIES => {
                    tokio::time::sleep(DIAL_PAUSE).await;
                }
                answer => return Ok(answer?),
            }
        }
    }

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
    async fn network_follows_membership(&self) -> Result<(), FederationError> {
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
    async fn publish_presence(&self) -> Result<(), FederationError> {
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

    pub(crate) async fn gossip(&self, message: &Gossip) {
        let Some(topic_name) = self.membership().federation().map(|(id, _)| topic(id)) else { return };
        match serde_json::to_vec(message) {
            Ok(data) => {
                if let Err(error) = self.inner.client.publish(topic_name, data).await {
                    tracing::warn!(%error, "gossip not sent");
                }
            }
            Err(error) => tracing::warn!(%error, "gossip not encoded"),
        }
    }
}

/// Decodes an invitation and checks its signature and expiry (not its single use,
/// which only the inviter knows).
pub fn check_invitation(text: &str) -> Result<(PeerId, Invitation), FederationError> {
    let signed = decode_invitation(text).map_err(|e| FederationError::Invitation(e.to_string()))?;
    let (signer, invitation): (PeerId, Invitation) =
        signed.open().map_err(|e| FederationError::Invitation(e.to_string()))?;
    if signer.to_string() != invitation.inviter {
        return Err(FederationError::Invitation("it is not signed by the inviter it names".into()));
    }
    if invitation.expires < Utc::now().timestamp() {
        return Err(FederationError::Invitation("it has expired".into()));
    }
    Ok((signer, invitation))
}

/// Keeps an invitation to be redeemed when the node next starts (`urbanmesh join` on a
/// stopped node).
pub fn join_on_next_start(db: sled::Db, text: &str) -> Result<Invitation, FederationError> {
    let (_, invitation) = check_invitation(text)?;
    let store = FederationStore::open(db)?;
    store.set_pending_join(Some(text.trim()))?;
    Ok(invitation)
}

/// How replicas name and reach the member a record is about.
pub(crate) fn origin_of(record: &MemberRecord) -> Origin {
    Origin {
        peer: record.member.clone(),
        name: record.name.clone(),
        http: record.http.clone(),
        flight: record.flight.clone(),
    }
}

/// The first refusal as the error, for a caller that applied one record and must know.
pub(crate) fn refused_first(refused: Vec<ProtocolError>) -> Result<(), FederationError> {
    match refused.into_iter().next() {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

pub(crate) fn multiaddrs(addresses: &[String]) -> Vec<Multiaddr> {
    addresses.iter().filter_map(|a| a.parse().ok()).collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // The OS random source does not fail on the platforms we run on; a zero nonce
    // would still be single-use through the issued-invitation record.
    let _ = getrandom::fill(&mut buffer);
    hex::encode(buffer)
}
