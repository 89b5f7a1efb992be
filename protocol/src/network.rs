//! The node's peer-to-peer endpoint: a libp2p swarm (TCP and QUIC, Noise, Yamux) with
//! identify, ping, Kademlia, gossipsub, request-response and optional mDNS, owned by one
//! event-loop task. The application talks to it through a [`NetworkClient`] and hears
//! from it through a bounded event channel; the loop itself never awaits application work.
//!
//! The loop gates by membership: a peer that is not a member may only send `Join`;
//! everything else is refused, and gossipsub neither sends to nor accepts from it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, kad, mdns, noise, ping, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::federation::{KAD_PROTOCOL, Request, Response, SYNC_PROTOCOL};
use crate::wire::SyncCodec;
use crate::{Identity, ProtocolError};

/// Versioned name under which nodes identify themselves.
pub const IDENTIFY_PROTOCOL: &str = "/urbanmesh/id/2";
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Commands and events queued between the loop and the application.
const QUEUE: usize = 1024;
/// Largest gossip message.
pub const MAX_GOSSIP_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Default)]
pub struct NetworkConfig {
    pub listen: Vec<String>,
    /// Peers to dial and seed the DHT with at start (multiaddrs with `/p2p/<id>`).
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network (off by default).
    pub mdns: bool,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

/// What the loop tells the application.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A request the application must answer with [`NetworkClient::respond`].
    Request { peer: PeerId, request: Request, channel: ResponseChannel<Response> },
    /// A gossip message from a member.
    Gossip { author: Option<PeerId>, data: Vec<u8> },
    /// A connection to a member came up.
    MemberConnected(PeerId),
    /// A member's subscription to a topic arrived: from now on it hears our gossip there.
    MemberSubscribed(PeerId),
}

enum Command {
    Request {
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        request: Request,
        reply: oneshot::Sender<Result<Response, ProtocolError>>,
    },
    Respond {
        channel: ResponseChannel<Response>,
        response: Response,
    },
    Subscribe(String),
    Publish {
        topic: String,
        data: Vec<u8>,
    },
    Members(HashSet<PeerId>),
    Dial(Vec<Multiaddr>),
    Connected(oneshot::Sender<Vec<PeerId>>),
}

/// A handle on the running loop; cheap to clone.
#[derive(Clone)]
pub struct NetworkClient {
    commands: mpsc::Sender<Command>,
}

impl NetworkClient {
    /// Sends a request (dialling `addresses` if needed) and waits for the answer.
    pub async fn request(
        &self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        request: Request,
    ) -> Result<Response, ProtocolError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request { peer, addresses, request, reply }).await?;
        answer.await.map_err(|_| ProtocolError::Stopped)?
    }

    pub async fn respond(&self, channel: ResponseChannel<Response>, response: Response) -> Result<(), ProtocolError> {
        self.send(Command::Respond { channel, response }).await
    }

    pub async fn subscribe(&self, topic: String) -> Result<(), ProtocolError> {
        self.send(Command::Subscribe(topic)).await
    }

    pub async fn publish(&self, topic: String, data: Vec<u8>) -> Result<(), ProtocolError> {
        self.send(Command::Publish { topic, data }).await
    }

    /// The peers that count as members from now on.
    pub async fn set_members(&self, members: HashSet<PeerId>) -> Result<(), ProtocolError> {
        self.send(Command::Members(members)).await
    }

    pub async fn dial(&self, addresses: Vec<Multiaddr>) -> Result<(), ProtocolError> {
        self.send(Command::Dial(addresses)).await
    }

    /// Peers with an open connection.
    pub async fn connected(&self) -> Result<Vec<PeerId>, ProtocolError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Connected(reply)).await?;
        answer.await.map_err(|_| ProtocolError::Stopped)
    }

    async fn send(&self, command: Command) -> Result<(), ProtocolError> {
        self.commands.send(command).await.map_err(|_| ProtocolError::Stopped)
    }
}

/// A running swarm: its identity and the addresses it listens on.
pub struct Network {
    pub peer_id: PeerId,
    pub listen_addresses: Vec<Multiaddr>,
    client: NetworkClient,
    stop: oneshot::Sender<()>,
    event_loop: JoinHandle<()>,
}

impl Network {
    /// Starts listening on every address (port 0 allowed) and returns once each listener
    /// reported its bound address, with the channel on which the loop reports events.
    pub async fn start(
        identity: &Identity,
        config: &NetworkConfig,
    ) -> Result<(Self, mpsc::Receiver<NetworkEvent>), ProtocolError> {
        let keypair = identity.keypair().clone();
        let peer_id = keypair.public().to_peer_id();
        let transport = |e: &dyn std::fmt::Display| ProtocolError::Transport(e.to_string());
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
            .map_err(|e| transport(&e))?
            .with_quic()
            .with_behaviour(|key| {
                let gossip_config = gossipsub::ConfigBuilder::default()
                    .heartbeat_interval(Duration::from_millis(500))
                    .validation_mode(ValidationMode::Strict)
                    .max_transmit_size(MAX_GOSSIP_BYTES)
                    // Content-addressed: one signed record or announcement is one message,
                    // however many members pass it on or publish it again.
                    .message_id_fn(content_id)
                    .build()
                    .map_err(|e| e.to_string())?;
                let gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)?;
                let mut kad = kad::Behaviour::with_config(
                    peer_id,
                    kad::store::MemoryStore::new(peer_id),
                    kad::Config::new(StreamProtocol::new(KAD_PROTOCOL)),
                );
                kad.set_mode(Some(kad::Mode::Server));
                let sync = request_response::Behaviour::with_codec(
                    SyncCodec,
                    [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
                    request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT),
                );
                let mdns = match config.mdns {
                    true => Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?),
                    false => None,
                };
                Ok(Behaviour {
                    identify: identify::Behaviour::new(identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())),
                    ping: ping::Behaviour::default(),
                    kad,
                    gossipsub,
                    sync,
                    mdns: mdns.into(),
                })
            })
            .map_err(|e| transport(&e))?
            .with_swarm_config(|config| config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();
        for address in &config.listen {
            swarm
                .listen_on(parse(address)?)
                .map_err(|e| ProtocolError::Listen { address: address.clone(), reason: e.to_string() })?;
        }
        let listen_addresses = bound_addresses(&mut swarm, config.listen.len(), peer_id).await?;
        for address in &config.bootstrap {
            let address = parse(address)?;
            if let Some(peer) = peer_of(&address) {
                swarm.behaviour_mut().kad.add_address(&peer, address.clone());
            }
            if let Err(error) = swarm.dial(address.clone()) {
                tracing::warn!(%address, %error, "cannot dial a bootstrap peer");
            }
        }
        let (commands, queue) = mpsc::channel(QUEUE);
        let (events, heard) = mpsc::channel(QUEUE);
        let (stop, stopped) = oneshot::channel();
        let event_loop = tokio::spawn(EventLoop::new(swarm, queue, events).run(stopped));
        let client = NetworkClient { commands };
        Ok((Self { peer_id, listen_addresses, client, stop, event_loop }, heard))
    }

    pub fn client(&self) -> NetworkClient {
        self.client.clone()
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.event_loop.await;
    }
}

fn parse(address: &str) -> Result<Multiaddr, ProtocolError> {
    address.parse().map_err(|e: libp2p::multiaddr::Error| ProtocolError::Address {
        address: address.to_owned(),
        reason: e.to_string(),
    })
}

/// The peer a multiaddr names in its `/p2p/` part.
pub fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    address.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// Waits until `listeners` listeners have each reported an address.
async fn bound_addresses(
    swarm: &mut Swarm<Behaviour>,
    listeners: usize,
    peer_id: PeerId,
) -> Result<Vec<Multiaddr>, ProtocolError> {
    let mut addresses = Vec::new();
    let mut reported = HashSet::new();
    let collect = async {
        while reported.len() < listeners {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    reported.insert(listener_id);
                    addresses.push(address.with_p2p(peer_id).unwrap_or_else(|address| address));
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(ProtocolError::Listen { address: "?".into(), reason: error.to_string() });
                }
                _ => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(LISTEN_DEADLINE, collect)
        .await
        .map_err(|_| ProtocolError::Listen { address: "all".into(), reason: "no address within 10 s".into() })??;
    Ok(addresses)
}

struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    members: HashSet<PeerId>,
    pending: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, ProtocolError>>>,
    topics: Vec<String>,
}

impl EventLoop {
    fn new(swarm: Swarm<Behaviour>, commands: mpsc::Receiver<Command>, events: mpsc::Sender<NetworkEvent>) -> Self {
        Self { swarm, commands, events, members: HashSet::new(), pending: HashMap::new(), topics: Vec::new() }
    }

    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Request { peer, addresses, request, reply } => {
                for address in addresses {
                    self.swarm.add_peer_address(peer, address);
                }
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending.insert(id, reply);
            }
            Command::Respond { channel, response } => {
                if self.swarm.behaviour_mut().sync.send_response(channel, response).is_err() {
                    tracing::debug!("a peer went away before its answer");
                }
            }
            Command::Subscribe(topic) => {
                if let Err(error) = self.swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(topic.clone())) {
                    tracing::warn!(%error, "cannot subscribe");
                }
                if !self.topics.contains(&topic) {
                    self.topics.push(topic);
                }
            }
            Command::Publish { topic, data } => {
                // No peer in the topic yet is normal for a lone member.
                if let Err(error) = self.swarm.behaviour_mut().gossipsub.publish(IdentTopic::new(topic), data) {
                    tracing::debug!(%error, "gossip not sent");
                }
            }
            Command::Members(members) => {
                let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                let welcomed = connected.iter().any(|p| members.contains(p) && !self.members.contains(p));
                for peer in connected {
                    let gossip = &mut self.swarm.behaviour_mut().gossipsub;
                    match members.contains(&peer) {
                        true => gossip.remove_blacklisted_peer(&peer),
                        false => {
                            gossip.blacklist_peer(&peer);
                            if self.members.contains(&peer) {
                                let _ = self.swarm.disconnect_peer_id(peer);
                            }
                        }
                    }
                }
                self.members = members;
                if welcomed {
                    self.announce_subscriptions();
                }
            }
            Command::Dial(addresses) => {
                for address in addresses {
                    if let Some(peer) = peer_of(&address) {
                        if self.swarm.is_connected(&peer) {
                            continue;
                        }
                        self.swarm.behaviour_mut().kad.add_address(&peer, address.clone());
                    }
                    if let Err(error) = self.swarm.dial(address.clone()) {
                        tracing::debug!(%address, %error, "dial failed");
                    }
                }
            }
            Command::Connected(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
        }
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                tracing::debug!(%peer_id, address = %endpoint.get_remote_address(), "peer connected");
                match self.members.contains(&peer_id) {
                    true => {
                        self.swarm.behaviour_mut().gossipsub.remove_blacklisted_peer(&peer_id);
                        if num_established.get() == 1 {
                            self.emit(NetworkEvent::MemberConnected(peer_id));
                        }
                    }
                    false => self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer_id),
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => tracing::debug!(%peer_id, "peer disconnected"),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                if self.members.contains(&peer_id) {
                    for address in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, address);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    self.swarm.behaviour_mut().kad.add_address(&peer, address);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { message, .. })) => {
                let member = message.source.is_some_and(|source| self.members.contains(&source));
                if member && message.data.len() <= MAX_GOSSIP_BYTES {
                    self.emit(NetworkEvent::Gossip { author: message.source, data: message.data });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. })) => {
                if self.members.contains(&peer_id) {
                    self.emit(NetworkEvent::MemberSubscribed(peer_id));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.sync_event(event),
            _ => {}
        }
    }

    fn sync_event(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let allowed = self.members.contains(&peer) || matches!(request, Request::Join { .. });
                    if allowed {
                        self.emit(NetworkEvent::Request { peer, request, channel });
                    } else {
                        let refused = Response::Refused { reason: "not a member of this federation".into() };
                        let _ = self.swarm.behaviour_mut().sync.send_response(channel, refused);
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some(reply) = self.pending.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply
                        .send(Err(ProtocolError::Unreachable { peer: peer.to_string(), reason: error.to_string() }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "a peer's request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Gossipsub ignores what a blacklisted peer said about its subscriptions, and only
    /// says ours once per connection. A peer that became a member while connected was
    /// blacklisted until now, so both sides state their subscriptions again.
    fn announce_subscriptions(&mut self) {
        let gossip = &mut self.swarm.behaviour_mut().gossipsub;
        for topic in &self.topics {
            let topic = IdentTopic::new(topic.clone());
            gossip.unsubscribe(&topic);
            if let Err(error) = gossip.subscribe(&topic) {
                tracing::warn!(%error, "cannot subscribe again");
            }
        }
    }

    /// Hands an event to the application without waiting: when it is behind, the event
    /// is dropped (a request then times out at its sender, gossip is caught up by sync).
    fn emit(&self, event: NetworkEvent) {
        if let Err(error) = self.events.try_send(event) {
            tracing::warn!(%error, "the application is behind; a network event was dropped");
        }
    }
}

/// A gossip message's id: the SHA-256 of what it carries.
fn content_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    use sha2::Digest;
    gossipsub::MessageId::from(sha2::Sha256::digest(&message.data).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(source: Option<PeerId>, sequence_number: u64, data: &[u8]) -> gossipsub::Message {
        gossipsub::Message {
            source,
            data: data.to_vec(),
            sequence_number: Some(sequence_number),
            topic: IdentTopic::new("owl").hash(),
        }
    }

    #[test]
    fn one_payload_is_one_message_whoever_publishes_it() {
        let (a, b) = (Some(PeerId::random()), Some(PeerId::random()));
        assert_eq!(content_id(&message(a, 1, b"record")), content_id(&message(b, 7, b"record")));
        assert_ne!(content_id(&message(a, 1, b"record")), content_id(&message(a, 1, b"record2")));
    }
}
