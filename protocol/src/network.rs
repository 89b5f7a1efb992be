//! The node's peer-to-peer endpoint: a libp2p swarm (TCP, Noise, Yamux) with identify
//! and ping, owned by one event-loop task. Federation protocols build on this loop.

use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, noise, ping, tcp, yamux};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Versioned name under which nodes identify themselves.
pub const IDENTIFY_PROTOCOL: &str = "/urbanmesh/id/1";
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
const LISTEN_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("the node key is not a valid ed25519 secret key: {0}")]
    Key(String),
    #[error("invalid listen address `{address}`: {reason}")]
    Address { address: String, reason: String },
    #[error("building the peer-to-peer transport failed: {0}")]
    Transport(String),
    #[error("listening on `{address}` failed: {reason}")]
    Listen { address: String, reason: String },
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// A running swarm: its identity and the addresses it listens on.
pub struct Network {
    pub peer_id: PeerId,
    pub listen_addresses: Vec<Multiaddr>,
    stop: oneshot::Sender<()>,
    event_loop: JoinHandle<()>,
}

impl Network {
    /// Starts listening on every address (port 0 allowed) and returns once each listener
    /// reported its bound address.
    pub async fn start(node_key: [u8; 32], listen: &[String]) -> Result<Self, NetworkError> {
        let mut secret = node_key;
        let keypair = Keypair::ed25519_from_bytes(&mut secret).map_err(|e| NetworkError::Key(e.to_string()))?;
        let peer_id = keypair.public().to_peer_id();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
            .map_err(|e| NetworkError::Transport(e.to_string()))?
            .with_behaviour(|key| Behaviour {
                identify: identify::Behaviour::new(identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())),
                ping: ping::Behaviour::default(),
            })
            .map_err(|e| NetworkError::Transport(e.to_string()))?
            .with_swarm_config(|config| config.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();
        for address in listen {
            let parsed: Multiaddr = address.parse().map_err(|e: libp2p::multiaddr::Error| NetworkError::Address {
                address: address.clone(),
                reason: e.to_string(),
            })?;
            swarm
                .listen_on(parsed)
                .map_err(|e| NetworkError::Listen { address: address.clone(), reason: e.to_string() })?;
        }
        let listen_addresses = bound_addresses(&mut swarm, listen.len(), peer_id).await?;
        let (stop, stopped) = oneshot::channel();
        let event_loop = tokio::spawn(run(swarm, stopped));
        Ok(Self { peer_id, listen_addresses, stop, event_loop })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.event_loop.await;
    }
}

/// Waits until `listeners` listeners have each reported an address.
async fn bound_addresses(
    swarm: &mut Swarm<Behaviour>,
    listeners: usize,
    peer_id: PeerId,
) -> Result<Vec<Multiaddr>, NetworkError> {
    let mut addresses = Vec::new();
    let mut reported = std::collections::HashSet::new();
    let collect = async {
        while reported.len() < listeners {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    reported.insert(listener_id);
                    addresses.push(address.with_p2p(peer_id).unwrap_or_else(|address| address));
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(NetworkError::Listen { address: "?".into(), reason: error.to_string() });
                }
                _ => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(LISTEN_DEADLINE, collect)
        .await
        .map_err(|_| NetworkError::Listen { address: "all".into(), reason: "no address within 10 s".into() })??;
    Ok(addresses)
}

/// The event loop: polls the swarm until stopped. It never awaits application work.
async fn run(mut swarm: Swarm<Behaviour>, mut stopped: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                    tracing::debug!(%peer_id, address = %endpoint.get_remote_address(), "peer connected");
                }
                SwarmEvent::ConnectionClosed { peer_id, .. } => tracing::debug!(%peer_id, "peer disconnected"),
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                    tracing::debug!(%peer_id, agent = %info.agent_version, "peer identified");
                }
                _ => {}
            },
        }
    }
}
