//! The members' TLS listener. It accepts only mutually authenticated connections of
//! members, and keeps checking: a connection whose member is removed is closed within
//! [`REVOCATION_CHECK`]. Slow or silent clients cannot hold it: a handshake has
//! [`HANDSHAKE_TIMEOUT`], at most [`MAX_HANDSHAKES`] run at once, and a new connection
//! arriving when all slots are taken evicts the oldest handshake that has not even sent
//! its ClientHello (or else the oldest one), so a flood of idle sockets never locks a
//! member out.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_rustls::LazyConfigAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use urbanmesh_protocol::{Identity, PeerId, tls};

use crate::FlightError;

/// Who is on the other end of a member connection; tonic hands it to every request.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub peer: PeerId,
}

/// Decides whether a PeerId is a member right now. Called per connection, per request,
/// per message of a stream and by the periodic check, so it must be cheap.
pub type MemberCheck = Arc<dyn Fn(&PeerId) -> bool + Send + Sync>;

/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once.
pub const MAX_HANDSHAKES: usize = 64;
/// How often open connections are checked against the membership.
pub const REVOCATION_CHECK: Duration = Duration::from_millis(200);

/// Accepted connections of members, for `Server::serve_with_incoming`.
pub fn member_connections(
    listener: TcpListener,
    identity: &Identity,
    is_member: MemberCheck,
) -> Result<ReceiverStream<io::Result<MemberStream>>, FlightError> {
    let config = tls::server_config(identity).map_err(|e| FlightError::Peer(e.to_string()))?;
    let (sender, receiver) = mpsc::channel(MAX_HANDSHAKES);
    let open: OpenConnections = Arc::default();
    tokio::spawn(check_open_connections(Arc::clone(&open), Arc::clone(&is_member), sender.clone()));
    let handshakes = Arc::new(Mutex::new(Handshakes::default()));
    tokio::spawn(async move {
        loop {
            let (tcp, address) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "member listener: accept failed");
                        continue;
                    }
                },
                () = sender.closed() => return,
            };
            // Small answers (schemas, acknowledgements) must not wait for delayed ACKs.
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, %address, "member listener: TCP_NODELAY not set");
            }
            let id = lock(&handshakes).admit();
            let slot = Slot { id, handshakes: Arc::clone(&handshakes) };
            let config = Arc::clone(&config);
            let (sender, is_member, open) = (sender.clone(), Arc::clone(&is_member), Arc::clone(&open));
            let task = tokio::spawn(async move {
                let handshake = accept(config, tcp, &is_member, &slot);
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                    Ok(Ok(stream)) => {
                        drop(slot);
                        lock(&open).push((stream.peer, Arc::downgrade(&stream.revoked)));
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => tracing::info!(%address, %error, "member connection refused"),
                    Err(_) => tracing::info!(%address, "member connection: TLS handshake timed out"),
                }
            });
            lock(&handshakes).started(id, task.abort_handle());
        }
    });
    Ok(ReceiverStream::new(receiver))
}

async fn accept(
    config: Arc<rustls::ServerConfig>,
    tcp: TcpStream,
    is_member: &MemberCheck,
    slot: &Slot,
) -> Result<MemberStream, FlightError> {
    let tls = |e: io::Error| FlightError::Peer(format!("TLS: {e}"));
    let hello = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await.map_err(tls)?;
    lock(&slot.handshakes).said_hello(slot.id);
    let stream = hello.into_stream(config).await.map_err(tls)?;
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| FlightError::Peer("no client certificate".into()))?;
    let peer = tls::peer_of_certificate(certificate).map_err(|e| FlightError::Peer(e.to_string()))?;
    if !is_member(&peer) {
        return Err(FlightError::Peer(format!("{peer} is not a member")));
    }
    Ok(MemberStream { tls: stream, peer, revoked: Arc::default() })
}

/// Open member connections: whose they are, and how to close them.
type OpenConnections = Arc<Mutex<Vec<(PeerId, Weak<Revocation>)>>>;

/// Closes the connections of peers that are no longer members. Ends once the server is
/// gone and no connection is left.
async fn check_open_connections(
    open: OpenConnections,
    is_member: MemberCheck,
    server: mpsc::Sender<io::Result<MemberStream>>,
) {
    let mut every = tokio::time::interval(REVOCATION_CHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let mut open = lock(&open);
        open.retain(|(peer, revocation)| {
            let Some(revocation) = revocation.upgrade() else { return false };
            if is_member(peer) {
                return true;
            }
            tracing::info!(%peer, "closing the connection of a peer that is no longer a member");
            revocation.revoke();
            false
        });
        if open.is_empty() && server.is_closed() {
            return;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The handshakes in progress, oldest first.
#[derive(Default)]
struct Handshakes {
    next: u64,
    running: BTreeMap<u64, Handshake>,
}

struct Handshake {
    hello: bool,
    /// Set once the task is spawned; [`Handshakes::started`] aborts a task evicted before.
    abort: Option<AbortHandle>,
}

impl Handshakes {
    /// Takes a slot for a new connection, evicting one handshake when all are taken.
    fn admit(&mut self) -> u64 {
        if self.running.len() >= MAX_HANDSHAKES {
            let silent = self.running.iter().find(|(_, h)| !h.hello).map(|(id, _)| *id);
            let victim = silent.or_else(|| self.running.keys().next().copied());
            if let Some(handshake) = victim.and_then(|id| self.running.remove(&id)) {
                tracing::debug!(hello = handshake.hello, "member listener full: evicting the oldest handshake");
                if let Some(abort) = handshake.abort {
                    abort.abort();
                }
            }
        }
        let id = self.next;
        self.next += 1;
        self.running.insert(id, Handshake { hello: false, abort: None });
        id
    }

    fn started(&mut self, id: u64, abort: AbortHandle) {
        match self.running.get_mut(&id) {
            Some(handshake) => handshake.abort = Some(abort),
            // Evicted (or done) before it was recorded as started.
            None => abort.abort(),
        }
    }

    fn said_hello(&mut self, id: u64) {
        if let Some(handshake) = self.running.get_mut(&id) {
            handshake.hello = true;
        }
    }
}

/// A handshake's claim on a slot, given back however the handshake ends.
struct Slot {
    id: u64,
    handshakes: Arc<Mutex<Handshakes>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.handshakes).running.remove(&self.id);
    }
}

/// Set when the member behind a connection is removed; wakes the connection's reader,
/// which then fails and so closes the connection.
#[derive(Default)]
struct Revocation {
    revoked: AtomicBool,
    reader: AtomicWaker,
}

impl Revocation {
    fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
        self.reader.wake();
    }

    fn check(&self) -> io::Result<()> {
        match self.revoked.load(Ordering::Acquire) {
            true => Err(io::Error::new(io::ErrorKind::PermissionDenied, "the peer is no longer a member")),
            false => Ok(()),
        }
    }
}

/// A member's TLS connection, carrying its verified PeerId.
pub struct MemberStream {
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    peer: PeerId,
    revoked: Arc<Revocation>,
}

impl tonic::transport::server::Connected for MemberStream {
    type ConnectInfo = MemberInfo;

    fn connect_info(&self) -> MemberInfo {
        MemberInfo { peer: self.peer }
    }
}

impl AsyncRead for MemberStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.revoked.reader.register(cx.waker());
        self.revoked.check()?;
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for MemberStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.revoked.check()?;
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.revoked.check()?;
        Pin::new(&mut self.tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }
}
