use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use urbanmesh_catalog::{Catalog, Endpoints};
use urbanmesh_federation::{Federation, Profile};
use urbanmesh_flight::{
    FlightContext, FlightServer, MemberCheck, MemberDirectory, MemberGuardLayer, PeerClient, ReadGate, Remote, Views,
    member_connections,
};
use urbanmesh_policy::{AdminToken, AuditLog, Identities, TokenVerifier};
use urbanmesh_protocol::{Identity, Network, NetworkConfig, PeerId};
use urbanmesh_store::{Store, StoreConfig};
use urbanmesh_web::login::Login;
use urbanmesh_web::{AppState, HttpMetrics};

use crate::config::Config;
use crate::init::{KEY_FILE, TOKEN_FILE};

const SLED_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// How long in-flight requests may take to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The addresses a running node bound, written to `addresses.json` for tools and tests.
#[derive(Debug, Clone, Serialize)]
pub struct Addresses {
    pub http: String,
    pub flight: String,
    /// Flight for other members, over mutual TLS.
    pub peer_flight: String,
    /// Peer-to-peer listen addresses, each ending in `/p2p/<peer id>`.
    pub p2p: Vec<String>,
}

/// A node whose listeners are up.
pub struct RunningNode {
    pub addresses: Addresses,
    pub catalog: Catalog,
    pub store: Store,
    pub federation: Federation,
    /// Every read of a dataset passes here.
    pub gate: ReadGate,
    /// The regional views this node defines, assembled on read.
    pub views: Views,
    /// The operator's admin token.
    pub admin_token: String,
    /// Live sources writing into datasets.
    pub connectors: urbanmesh_live::Connectors,
    data_dir: PathBuf,
    ready: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<anyhow::Result<()>>>,
    network: Network,
    db: sled::Db,
    audit: AuditLog,
}

/// `urbanmesh run`: start, serve until SIGTERM or Ctrl-C, shut down cleanly.
pub async fn run(data_dir: &Path, config: Config, query: tokio::runtime::Handle) -> anyhow::Result<()> {
    let stop = shutdown_signal();
    let node = start(data_dir, config, query).await?;
    stop.await;
    node.stop().await
}

/// What the node keeps on disk, opened, with the followers that keep it consistent.
struct Storage {
    db: sled::Db,
    store: Store,
    catalog: Catalog,
    audit: AuditLog,
    gate: ReadGate,
    /// Series that name datasets: `/metrics` shows them to staff only.
    staff_registry: Registry,
}

impl Storage {
    async fn open(
        data_dir: &Path,
        config: &Config,
        query: tokio::runtime::Handle,
        registry: &mut Registry,
    ) -> anyhow::Result<Self> {
        crate::ballast::settle(data_dir, config.storage.min_free_bytes, config.storage.ballast_bytes)?;
        // sled caches up to 1 GiB by default; the tail lives in memory already.
        let db = sled::Config::new()
            .path(data_dir.join("meta"))
            .cache_capacity(SLED_CACHE_BYTES)
            .open()
            .with_context(|| format!("opening {}", data_dir.join("meta").display()))?;
        let mut store_config = StoreConfig::new(data_dir.join("segments"));
        store_config.segment_rows = config.storage.segment_rows;
        store_config.max_tail_age = Duration::from_secs(config.storage.max_tail_age_secs);
        store_config.min_free_bytes = config.storage.min_free_bytes;
        store_config.segments_url = config.storage.segments.clone();
        store_config.query_limits = config.limits.query();
        // A merged segment's files stay while any read that began before could still run.
        store_config.retired_grace = store_config.retired_grace.max(store_config.query_limits.time * 2);
        let store = Store::open(db.clone(), store_config, query, registry)?;
        let mut staff_registry = Registry::default();
        store.register_dataset_metrics(&mut staff_registry);
        let catalog = Catalog::open(db.clone(), config.catalog_info()?, &data_dir.join("index"))?
            .with_purposes(config.policy.purposes.clone());
        let datasets = catalog.list()?;
        store.forget_all_but(&datasets).await?;
        for dataset in &datasets {
            store.attach(dataset).with_context(|| format!("opening dataset `{}`", dataset.id()))?;
        }
        urbanmesh_dataspace::refresh_all(&catalog, &store, false).await?;
        tokio::spawn(urbanmesh_dataspace::follow(catalog.clone(), store.clone()));
        let audit = AuditLog::open(&db)?;
        tokio::spawn(audit.clone().keep_within(config.audit.retention_days));
        let gate = ReadGate::new(catalog.clone(), store.clone(), audit.clone());
        Ok(Self { db, store, catalog, audit, gate, staff_registry })
    }
}

/// Who a request's credentials name: the admin token, and the OpenID provider's tokens.
fn identities(config: &Config, admin_token: &str) -> anyhow::Result<(Identities, Option<Arc<TokenVerifier>>)> {
    if config.oidc.as_ref().is_some_and(|oidc| oidc.tenant_claim.is_none()) {
        tracing::warn!(
            "[oidc] has no tenant_claim: every person of the provider counts as staff of this municipality \
             by their roles; set tenant_claim if the realm is shared with other municipalities"
        );
    }
    let verifier = match &config.oidc {
        Some(oidc) => Some(Arc::new(TokenVerifier::new(oidc.settings(&config.node.name))?)),
        None => None,
    };
    Ok((Identities::new(AdminToken::new(admin_token.to_owned()), verifier.clone()), verifier))
}

/// The node's three listeners, bound before anything is announced.
struct Listeners {
    http: TcpListener,
    flight: TcpListener,
    peer_flight: TcpListener,
}

impl Listeners {
    async fn bind(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            http: bind(config.http.listen, "HTTP").await?,
            flight: bind(config.flight.listen, "Flight").await?,
            peer_flight: bind(config.peer_flight.listen, "member Flight").await?,
        })
    }
}

/// Starts a node from its data directory and configuration: storage, the network and
/// the federation, then the Flight and HTTP servers. Returns once every listener is up.
pub async fn start(data_dir: &Path, config: Config, query: tokio::runtime::Handle) -> anyhow::Result<RunningNode> {
    let data_dir = data_dir.to_path_buf();
    let token_path = data_dir.join(TOKEN_FILE);
    let admin_token = std::fs::read_to_string(&token_path)
        .with_context(|| format!("reading {}", token_path.display()))?
        .trim()
        .to_owned();
    let mut registry = Registry::default();
    let Storage { db, store, catalog, audit, gate, staff_registry } =
        Storage::open(&data_dir, &config, query, &mut registry).await?;
    let (identities, verifier) = identities(&config, &admin_token)?;
    let http_metrics = HttpMetrics::register(&mut registry);
    urbanmesh_web::register_process_metrics(&mut registry);

    let identity = Identity::from_secret(read_node_key(&data_dir)?)?;
    let network_config = NetworkConfig {
        listen: config.p2p.listen.clone(),
        bootstrap: config.p2p.bootstrap.clone(),
        mdns: config.p2p.mdns,
    };
    let (network, network_events) = Network::start(&identity, &network_config).await?;
    let listeners = Listeners::bind(&config).await?;
    let addresses = Addresses {
        http: format!("http://{}", listeners.http.local_addr()?),
        flight: format!("grpc://{}", listeners.flight.local_addr()?),
        peer_flight: format!("grpc+tls://{}", listeners.peer_flight.local_addr()?),
        p2p: network.listen_addresses.iter().map(ToString::to_string).collect(),
    };
    let endpoints = Endpoints {
        http: config.http.public_url.clone().unwrap_or_else(|| addresses.http.clone()).trim_end_matches('/').into(),
        flight: config.flight.public_url.clone().unwrap_or_else(|| addresses.flight.clone()),
    };
    let profile = Profile {
        name: config.node.name.clone(),
        addresses: addresses.p2p.clone(),
        http: Some(endpoints.http.clone()),
        flight: Some(endpoints.flight.clone()),
        peer_flight: Some(config.peer_flight.public_url.clone().unwrap_or_else(|| addresses.peer_flight.clone())),
    };
    let federation =
        Federation::start(db.clone(), identity.clone(), catalog.clone(), network.client(), network_events, profile)
            .await?;
    let remote = Remote { client: PeerClient::new(identity.clone()), directory: Arc::new(Members(federation.clone())) };
    let views =
        Views::new(catalog.clone(), store.clone(), gate.clone(), Some(remote.clone()), network.peer_id.to_string());
    let flight_context = FlightContext {
        catalog: catalog.clone(),
        store: store.clone(),
        gate: gate.clone(),
        identities: identities.clone(),
        remote: Some(remote.clone()),
        views: views.clone(),
    };
    let flight = urbanmesh_flight::server(flight_context, &mut registry);
    let mut staff_registry = staff_registry;
    let connectors = urbanmesh_live::Connectors::open(
        &db,
        catalog.clone(),
        store.clone(),
        &config.node.name,
        config.limits.connectors(),
        &mut staff_registry,
    )?;
    connectors.declare(config.connectors.clone()).await.context("a connector of the config file")?;

    let ready = Arc::new(AtomicBool::new(false));
    let login = match (&config.oidc, verifier) {
        (Some(oidc), Some(verifier)) => Some(Arc::new(
            Login::new(
                oidc.issuer.clone(),
                oidc.client_id.clone(),
                oidc.client_secret.clone(),
                endpoints.http.clone(),
                verifier,
                &db,
            )
            .map_err(|e| anyhow::anyhow!("OpenID login: {e}"))?,
        )),
        _ => None,
    };
    let state = AppState {
        pages: Arc::default(),
        login,
        sessions: Arc::new(urbanmesh_web::session::Sessions::new(
            db.open_tree("sessions")?,
            config.oidc.is_none().then_some(admin_token.as_str()),
        )),
        catalog: catalog.clone(),
        federation: federation.clone(),
        remote: Some(remote),
        views: views.clone(),
        endpoints,
        store: store.clone(),
        connectors: connectors.clone(),
        gate: gate.clone(),
        identities,
        ready: Arc::clone(&ready),
        registry: Arc::new(registry),
        staff_registry: Arc::new(staff_registry),
        limits: config.limits.web(),
        downloads: Arc::new(tokio::sync::Semaphore::new(urbanmesh_web::MAX_DOWNLOADS)),
    };

    let (stop, stopped) = watch::channel(false);
    let members_only: MemberCheck = {
        let admits = federation.clone();
        Arc::new(move |peer| admits.admits(peer))
    };
    let Listeners { http: http_listener, flight: flight_listener, peer_flight: peer_flight_listener } = listeners;
    let servers = vec![
        serve_http(http_listener, state, http_metrics, stopped.clone()),
        serve_flight(flight_listener, flight.clone(), stopped.clone()),
        serve_member_flight(peer_flight_listener, &identity, members_only, flight, stopped)?,
    ];
    write_addresses(&data_dir, &addresses)?;
    ready.store(true, Ordering::Release);
    tracing::info!(
        node = %config.node.name,
        peer_id = %network.peer_id,
        http = %addresses.http,
        flight = %addresses.flight,
        "node ready"
    );
    Ok(RunningNode {
        addresses,
        catalog,
        federation,
        gate,
        views,
        admin_token,
        network,
        data_dir,
        ready,
        stop,
        servers,
        store,
        connectors,
        db,
        audit,
    })
}

type Server = JoinHandle<anyhow::Result<()>>;

/// The REST API, portal, workspace and operations endpoints.
fn serve_http(listener: TcpListener, state: AppState, metrics: HttpMetrics, stopped: watch::Receiver<bool>) -> Server {
    let write_timeout = state.limits.write_timeout;
    let app = urbanmesh_web::router(state, metrics);
    tokio::spawn(async move {
        axum::serve(urbanmesh_web::WriteDeadline::new(listener, write_timeout), app)
            .with_graceful_shutdown(wait_for_stop(stopped))
            .await
            .context("HTTP server")
    })
}

/// Arrow Flight for clients. Small answers (a schema, a prepared statement, a short
/// result) are sent at once, not held back for delayed ACKs (TCP_NODELAY): without it,
/// every call waited about 40 ms.
fn serve_flight(listener: TcpListener, flight: FlightServer, stopped: watch::Receiver<bool>) -> Server {
    tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(flight)
            .serve_with_incoming_shutdown(incoming, wait_for_stop(stopped))
            .await
            .context("Flight server")
    })
}

/// Arrow Flight for members, over mutual TLS. Membership is checked at the handshake,
/// per request and per message, and open connections of a removed member are closed.
fn serve_member_flight(
    listener: TcpListener,
    identity: &Identity,
    members_only: MemberCheck,
    flight: FlightServer,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<Server> {
    let guard = MemberGuardLayer::new(Arc::clone(&members_only));
    let connections = member_connections(listener, identity, members_only)?;
    Ok(tokio::spawn(async move {
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .layer(guard)
            .add_service(flight)
            .serve_with_incoming_shutdown(connections, wait_for_stop(stopped))
            .await
            .context("member Flight server")
    }))
}

impl RunningNode {
    /// Stops accepting, lets in-flight requests finish, flushes and closes storage.
    pub async fn stop(self) -> anyhow::Result<()> {
        tracing::info!("shutting down");
        self.ready.store(false, Ordering::Release);
        self.stop.send_replace(true);
        for server in self.servers {
            match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
                Ok(joined) => joined.context("server task")??,
                Err(_) => {
                    tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}")
                }
            }
        }
        self.connectors.stop().await;
        self.network.stop().await;
        self.catalog.sync_index().await?;
        self.store.shutdown().await?;
        let audit = self.audit.clone();
        tokio::task::spawn_blocking(move || audit.flush()).await??;
        self.db.flush_async().await?;
        let _ = std::fs::remove_file(self.data_dir.join("addresses.json"));
        tracing::info!("stopped");
        Ok(())
    }
}

fn read_node_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = data_dir.join(KEY_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("{} is not a 32-byte ed25519 secret key", path.display()))
}

async fn bind(address: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("binding the {what} listener to {address}"))
}

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Written atomically, so a reader never sees half a file.
fn write_addresses(data_dir: &Path, addresses: &Addresses) -> anyhow::Result<()> {
    let temporary = data_dir.join(".addresses.json.tmp");
    std::fs::write(&temporary, serde_json::to_vec_pretty(addresses)?)?;
    std::fs::rename(&temporary, data_dir.join("addresses.json"))?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not
/// when it is first awaited, so a signal that arrives while the node starts is not lost
/// (and does not kill the process before it could shut down cleanly).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for {name}");
            None
        }
    };
    let (mut terminate, mut interrupt) =
        (listen(SignalKind::terminate(), "SIGTERM"), listen(SignalKind::interrupt(), "SIGINT"));
    async move {
        tokio::select! {
            () = received(terminate.as_mut()) => {}
            () = received(interrupt.as_mut()) => {}
        }
    }
}

async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => drop(signal.recv().await),
        None => std::future::pending::<()>().await,
    }
}

/// The federation as the Flight client's directory of members.
struct Members(Federation);

impl MemberDirectory for Members {
    fn locate(&self, node: &str) -> Option<(PeerId, String)> {
        self.0.locate(node)
    }
}
