//! How a node follows its federation: answering members' requests, hearing their
//! gossip, catching up with a member that connects, and announcing its own changes.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{broadcast, mpsc};
use urbanmesh_protocol::federation::{Gossip, Invitation, JoinConsent, MemberRecord, MemberStatus, Request, Response};
use urbanmesh_protocol::membership::{MAX_CLOCK_AHEAD_MS, check_name};
use urbanmesh_protocol::{Multiaddr, NetworkEvent, PeerId, Signed};

use crate::FederationError;
use crate::replication;
use crate::service::{Federation, multiaddrs, refused_first};

/// How often a node catches up with every connected member anyway, so that a gossip
/// message lost on the way costs at most this long.
const REPAIR_INTERVAL: Duration = Duration::from_secs(3);

/// Tries, and the pause between them, when a newly admitted member is not ready yet.
const SYNC_TRIES: u32 = 20;
const SYNC_PAUSE: Duration = Duration::from_millis(150);
/// Addresses kept from a newcomer's join.
const MAX_ADDRESSES: usize = 16;

/// What a newcomer's `Join` request carries.
struct Joining {
    invitation: Signed,
    consent: Signed,
    name: String,
    addresses: Vec<String>,
    http: Option<String>,
    flight: Option<String>,
    peer_flight: Option<String>,
}

impl Federation {
    pub(crate) async fn follow_network(self, mut events: mpsc::Receiver<NetworkEvent>) {
        while let Some(event) = events.recv().await {
            match event {
                NetworkEvent::Request { peer, request, channel } => {
                    let response = self.answer(peer, request).await;
                    if let Err(error) = self.inner.client.respond(channel, response).await {
                        tracing::debug!(%error, "answer not sent");
                    }
                }
                NetworkEvent::Gossip { author, data } => {
                    if let Err(error) = self.heard(author, &data).await {
                        tracing::warn!(?author, %error, "gossip refused");
                    }
                }
                NetworkEvent::MemberConnected(peer) => {
                    tokio::spawn(self.clone().sync_with(peer.to_string()));
                }
                NetworkEvent::MemberSubscribed(peer) => {
                    tokio::spawn(self.clone().push_catalog(peer));
                }
            }
        }
    }

    async fn answer(&self, peer: PeerId, request: Request) -> Response {
        let answer = match request {
            Request::Join { invitation, consent, name, addresses, http, flight, peer_flight } => {
                let joining = Joining { invitation, consent, name, addresses, http, flight, peer_flight };
                self.admit(peer, joining).await.map(|members| Response::Joined { members })
            }
            Request::Member { record } => {
                let refused = self.apply_records(std::slice::from_ref(&record)).await;
                refused.and_then(refused_first).map(|()| Response::Accepted)
            }
            Request::Announce { announcements } => {
                for signed in &announcements {
                    if let Err(error) = replication::accept(&self.inner, signed, Some(&peer.to_string())).await {
                        tracing::warn!(%peer, %error, "announcement refused");
                    }
                }
                Ok(Response::Accepted)
            }
            Request::Members => {
                Ok(Response::Members { members: self.membership().all().map(|m| m.signed.clone()).collect() })
            }
            Request::Catalog => replication::own_announcements(&self.inner, &peer.to_string())
                .map(|announcements| Response::Catalog { announcements }),
        };
        answer.unwrap_or_else(|error| {
            tracing::warn!(%peer, %error, "request refused");
            match error {
                FederationError::NameTaken { name, .. } => Response::NameTaken { name },
                error => Response::Refused { reason: error.to_string() },
            }
        })
    }

    /// The inviter's side of a join: checks the invitation, the newcomer's consent and its
    /// name, and admits the peer that presented them (its PeerId comes from the
    /// authenticated connection). A taken name leaves the invitation unused.
    async fn admit(&self, peer: PeerId, joining: Joining) -> Result<Vec<Signed>, FederationError> {
        let (signer, invitation): (PeerId, Invitation) =
            joining.invitation.open().map_err(|e| FederationError::Invitation(e.to_string()))?;
        if signer.to_string() != self.inner.me || invitation.inviter != self.inner.me {
            return Err(FederationError::Invitation("it was not issued by this node".into()));
        }
        let federation = self.membership().federation().map(|(id, name)| (id.to_owned(), name.to_owned()));
        let Some((id, federation_name)) = federation.filter(|(id, _)| *id == invitation.federation) else {
            return Err(FederationError::Invitation("it is for another federation".into()));
        };
        if invitation.expires < Utc::now().timestamp() {
            return Err(FederationError::Invitation("it has expired".into()));
        }
        if self.membership().is_member(&peer.to_string()) {
            return Err(FederationError::Invitation("this peer is a member already".into()));
        }
        let (consenting, consent): (PeerId, JoinConsent) = joining.consent.open()?;
        let now = Utc::now().timestamp_millis();
        if consenting != peer
            || consent.member != peer.to_string()
            || consent.inviter != self.inner.me
            || consent.federation != id
            || consent.nonce != invitation.nonce
        {
            return Err(FederationError::Refused(
                "the join consent is not the joining node's for this invitation".into(),
            ));
        }
        if consent.at > now.saturating_add(MAX_CLOCK_AHEAD_MS) {
            return Err(FederationError::Refused("the join consent is dated in the future".into()));
        }
        check_name(&joining.name).map_err(|e| FederationError::Refused(e.to_string()))?;
        if self.membership().holder_of(&joining.name).is_some() {
            return Err(FederationError::NameTaken {
                name: joining.name.trim().to_owned(),
                federation: federation_name,
            });
        }
        self.inner.store.redeem(&invitation.nonce, &peer.to_string())?;
        self.inner.store.flush().await?;
        let record = MemberRecord {
            federation: id,
            federation_name,
            member: peer.to_string(),
            name: joining.name,
            status: MemberStatus::Admitted,
            by: self.inner.me.clone(),
            // Never before the consent, nor before what is known of the peer (a removal).
            at: self.next_time(&peer.to_string())?.max(consent.at),
            addresses: joining.addresses.into_iter().take(MAX_ADDRESSES).collect(),
            http: joining.http,
            flight: joining.flight,
            peer_flight: joining.peer_flight,
            consent: Some(joining.consent),
        };
        let signed = self.inner.identity.sign(&record)?;
        refused_first(self.apply_records(std::slice::from_ref(&signed)).await?)?;
        self.gossip(&Gossip::Member(signed)).await;
        tokio::spawn(self.clone().sync_with(peer.to_string()));
        Ok(self.membership().all().map(|m| m.signed.clone()).collect())
    }

    async fn heard(&self, author: Option<PeerId>, data: &[u8]) -> Result<(), FederationError> {
        match Gossip::decode(data)? {
            Gossip::Member(signed) => refused_first(self.apply_records(std::slice::from_ref(&signed)).await?),
            Gossip::Announcement(signed) => {
                replication::accept(&self.inner, &signed, author.map(|a| a.to_string()).as_deref()).await.map(drop)
            }
        }
    }

    /// Catches up with a member: its view of the membership, then its catalogue.
    /// Boxed with `Send` spelled out: syncing applies records, which may start syncing
    /// with another member, and the compiler cannot see through that cycle by itself.
    pub(crate) fn sync_with(self, peer: String) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let Ok(peer_id) = peer.parse::<PeerId>() else { return };
            for attempt in 0..SYNC_TRIES {
                let addresses =
                    self.membership().get(&peer).map(|m| multiaddrs(&m.record.addresses)).unwrap_or_default();
                match self.sync_once(peer_id, &peer, addresses).await {
                    Ok(()) => return,
                    Err(error) if attempt + 1 < SYNC_TRIES => {
                        tracing::debug!(%peer, %error, "sync failed; retrying");
                        tokio::time::sleep(SYNC_PAUSE).await;
                    }
                    Err(error) => tracing::warn!(%peer, %error, "sync failed"),
                }
                if !self.membership().is_member(&peer) {
                    return;
                }
            }
        })
    }

    /// Anti-entropy: every [`REPAIR_INTERVAL`], sync with each connected member.
    pub(crate) async fn repair(self) {
        let mut every = tokio::time::interval(REPAIR_INTERVAL);
        every.tick().await;
        loop {
            every.tick().await;
            if !self.is_member() {
                continue;
            }
            let Ok(connected) = self.inner.client.connected().await else { return };
            // Members we lost (or never reached) are dialled again; the next round syncs them.
            let unreached: Vec<Multiaddr> = self
                .membership()
                .admitted()
                .filter(|m| m.record.member != self.inner.me)
                .filter(|m| !connected.iter().any(|c| c.to_string() == m.record.member))
                .flat_map(|m| multiaddrs(&m.record.addresses))
                .collect();
            if !unreached.is_empty() && self.inner.client.dial(unreached).await.is_err() {
                return;
            }
            for peer in connected.into_iter().map(|p| p.to_string()) {
                if peer != self.inner.me && self.membership().is_member(&peer) {
                    // One try: the next round retries anyway.
                    let _ = self.clone().sync_once_logged(peer).await;
                }
            }
        }
    }

    async fn sync_once_logged(self, peer: String) -> Result<(), FederationError> {
        let Ok(peer_id) = peer.parse::<PeerId>() else { return Ok(()) };
        let addresses = self.membership().get(&peer).map(|m| multiaddrs(&m.record.addresses)).unwrap_or_default();
        let result = self.sync_once(peer_id, &peer, addresses).await;
        if let Err(error) = &result {
            tracing::debug!(%peer, %error, "repair sync failed");
        }
        result
    }

    /// Tells each member that may know more of a changed dataset than its gossip says what
    /// it may know, by request-response to that member alone. One that is not reached now
    /// hears it when it next catches up.
    async fn tell_narrower(&self, id: &str) {
        let addressed = match replication::narrower(&self.inner, id) {
            Ok(addressed) => addressed,
            Err(error) => return tracing::warn!(dataset = %id, %error, "members not told"),
        };
        for (member, signed) in addressed {
            let Ok(peer) = member.parse::<PeerId>() else { continue };
            let addresses = self.membership().get(&member).map(|m| multiaddrs(&m.record.addresses)).unwrap_or_default();
            let request = Request::Announce { announcements: vec![signed] };
            if let Err(error) = self.inner.client.request(peer, addresses, request).await {
                tracing::debug!(%member, %error, "entry not told");
            }
        }
    }

    /// Pushes every own announcement to a member that can hear our gossip from now on.
    async fn push_catalog(self, peer: PeerId) {
        let announcements = match replication::own_announcements(&self.inner, &peer.to_string()) {
            Ok(announcements) if !announcements.is_empty() => announcements,
            Ok(_) => return,
            Err(error) => return tracing::warn!(%error, "catalogue not pushed"),
        };
        let addresses =
            self.membership().get(&peer.to_string()).map(|m| multiaddrs(&m.record.addresses)).unwrap_or_default();
        if let Err(error) = self.inner.client.request(peer, addresses, Request::Announce { announcements }).await {
            tracing::debug!(%peer, %error, "catalogue not pushed");
        }
    }

    async fn sync_once(&self, peer_id: PeerId, peer: &str, addresses: Vec<Multiaddr>) -> Result<(), FederationError> {
        match self.inner.client.request(peer_id, addresses.clone(), Request::Members).await? {
            Response::Members { members } => drop(self.apply_records(&members).await?),
            Response::Refused { reason } => return Err(FederationError::Refused(reason)),
            other => return Err(FederationError::Refused(format!("unexpected answer {other:?}"))),
        }
        match self.inner.client.request(peer_id, addresses, Request::Catalog).await? {
            Response::Catalog { announcements } => replication::catch_up(&self.inner, peer, &announcements).await,
            Response::Refused { reason } => Err(FederationError::Refused(reason)),
            other => Err(FederationError::Refused(format!("unexpected answer {other:?}"))),
        }
    }

    /// Announces every change of a local dataset to the federation.
    pub(crate) async fn follow_catalog(self) {
        let mut changes = self.inner.catalog.subscribe();
        loop {
            let ids = match changes.recv().await {
                Ok(id) => vec![id],
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.inner.catalog.iter().filter_map(|d| d.ok().map(|d| d.id().to_owned())).collect()
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            for id in ids {
                match replication::change(&self.inner, &id) {
                    Ok(Some(signed)) => {
                        self.gossip(&Gossip::Announcement(signed)).await;
                        self.tell_narrower(&id).await;
                    }
                    Ok(None) => {}
                    Err(error) => tracing::warn!(dataset = %id, %error, "not announced"),
                }
            }
        }
    }
}
