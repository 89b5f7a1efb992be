//! The federation as this node takes part in it: membership, invitations, and the
//! replication of catalogue entries between members.

use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::{Mutex, mpsc};
use urbanmesh_catalog::{Catalog, Origin};
use urbanmesh_protocol::federation::{Gossip, MemberRecord, MemberStatus, topic};
use urbanmesh_protocol::membership::Membership;
use urbanmesh_protocol::{Identity, Multiaddr, NetworkClient, NetworkEvent, PeerId, ProtocolError};

use crate::FederationError;
use crate::state::FederationStore;

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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FederationStatus {
    /// PeerId of this node.
    pub me: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federation: Option<FederationInfo>,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FederationInfo {
    pub id: String,
    pub name: String,
    pub founder: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Clone)]
pub struct Federation {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) identity: Identity,
    pub(crate) me: String,
    pub(crate) profile: Profile,
    pub(crate) store: FederationStore,
    pub(crate) catalog: Catalog,
    pub(crate) client: NetworkClient,
    pub(crate) membership: RwLock<Membership>,
    /// One membership change at a time: apply, persist, tell the network.
    pub(crate) changing: Mutex<()>,
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

    pub(crate) async fn gossip(&self, message: &Gossip) {
        let Some(topic_name) = self.membership().federation().map(|(id, _)| topic(id)) else { return };
        if let Err(error) = self.inner.client.publish(topic_name, message.encode()).await {
            tracing::warn!(%error, "gossip not sent");
        }
    }
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
