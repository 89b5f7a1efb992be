//! Flight between members: a listener that accepts only mutually authenticated TLS
//! connections from members (and keeps checking them), and a client that fetches from a
//! member the same way. Certificates come from the node keys (see
//! `urbanmesh_protocol::tls`), so both ends of a connection are bound to PeerIds.

mod guard;
mod listener;

pub use guard::{MemberGuard, MemberGuardLayer};
pub use listener::{
    HANDSHAKE_TIMEOUT, MAX_HANDSHAKES, MemberCheck, MemberInfo, MemberStream, REVOCATION_CHECK, member_connections,
};

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{FlightClient, FlightData, Ticket};
use futures::{StreamExt, TryStreamExt};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;
use tonic::transport::Channel;
use urbanmesh_protocol::{Identity, PeerId, ReadRequest, tls};
use urbanmesh_store::{BatchStream, StoreError};

use crate::FlightError;

/// Fetches rows from members over mutual TLS, as this node. Connections are kept and
/// shared by later reads (HTTP/2 multiplexes them), so a view over many members pays for
/// the TLS handshakes once; a connection that fails is dropped and dialled afresh.
#[derive(Clone)]
pub struct PeerClient {
    identity: Identity,
    channels: Arc<std::sync::Mutex<HashMap<(PeerId, String), Channel>>>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Member endpoints kept connected at once; beyond, all are dropped and dialled anew.
const MAX_CHANNELS: usize = 1024;

impl PeerClient {
    pub fn new(identity: Identity) -> Self {
        Self { identity, channels: Arc::default() }
    }

    /// Reads `request` from `peer` at its member endpoint (`grpc+tls://host:port`).
    pub async fn fetch(&self, peer: PeerId, endpoint: &str, request: &ReadRequest) -> Result<BatchStream, FlightError> {
        self.rows(peer, endpoint, Ticket { ticket: request.encode().into() }, &[]).await
    }

    /// The member's rows for a ticket, asked with `headers`: its messages as large as ours
    /// may be, none of them compressed (see `ipc_guard`), decoded as they arrive.
    async fn rows(
        &self,
        peer: PeerId,
        endpoint: &str,
        ticket: Ticket,
        headers: &[(&'static str, &str)],
    ) -> Result<BatchStream, FlightError> {
        let mut client = self.service(peer, endpoint).await?;
        let mut request = tonic::Request::new(ticket);
        for (name, value) in headers {
            let value = value.parse().map_err(|_| FlightError::Descriptor { reason: format!("invalid {name}") })?;
            request.metadata_mut().insert(*name, value);
        }
        let answer = client.do_get(request).await.map_err(arrow_flight::error::FlightError::from);
        let answer = answer.inspect_err(|e| self.drop_broken(peer, endpoint, e))?.into_inner();
        let checked = crate::ipc_guard::uncompressed::<_, tonic::Status>(answer);
        let mut stream = FlightRecordBatchStream::new_from_flight_data(checked.map_err(Into::into));
        // The schema arrives with the first message; an empty result still has one.
        let first = stream.try_next().await?;
        let schema = match (&first, stream.schema()) {
            (_, Some(schema)) => Arc::clone(schema),
            (Some(batch), None) => batch.schema(),
            (None, None) => return Err(FlightError::Peer(format!("{peer} sent no schema"))),
        };
        let rest = stream.map_err(remote_error);
        let batches = futures::stream::iter(first.map(Ok)).chain(rest);
        Ok(BatchStream { schema, batches: Box::pin(batches) })
    }

    /// A Flight client of the member that takes messages as large as this node sends.
    async fn service(&self, peer: PeerId, endpoint: &str) -> Result<FlightServiceClient<Channel>, FlightError> {
        Ok(FlightServiceClient::new(self.channel(peer, endpoint).await?)
            .max_decoding_message_size(crate::MAX_MESSAGE_BYTES))
    }
}

impl PeerClient {
    /// The schema the member would send for `request`, without reading (`GetSchema`).
    pub async fn schema(&self, peer: PeerId, endpoint: &str, request: &ReadRequest) -> Result<SchemaRef, FlightError> {
        let mut client = FlightClient::new_from_inner(self.service(peer, endpoint).await?);
        let descriptor = arrow_flight::FlightDescriptor::new_cmd(request.encode());
        let schema = client.get_schema(descriptor).await.inspect_err(|e| self.drop_broken(peer, endpoint, e))?;
        Ok(Arc::new(schema))
    }

    /// The member's answer to an SQL statement (Flight SQL over the members' listener), as
    /// for the public where `for_public`, with the reader's purpose.
    pub async fn sql(
        &self,
        peer: PeerId,
        endpoint: &str,
        statement: &str,
        for_public: bool,
        purpose: Option<&str>,
    ) -> Result<BatchStream, FlightError> {
        let mut client =
            arrow_flight::sql::client::FlightSqlServiceClient::new_from_inner(self.service(peer, endpoint).await?);
        // Both calls carry them: the statement is planned, and run, for whom they say.
        let mut headers = Vec::new();
        if for_public {
            headers.push((crate::auth::FOR_PUBLIC_HEADER, "1"));
        }
        if let Some(purpose) = purpose {
            headers.push((crate::auth::PURPOSE_HEADER, purpose));
        }
        for (name, value) in &headers {
            client.set_header(*name, *value);
        }
        // A member's refusal keeps its code (`FlightError::Stream`).
        let info = client.execute(statement.to_owned(), None).await?;
        let ticket = info
            .endpoint
            .first()
            .and_then(|e| e.ticket.clone())
            .ok_or_else(|| FlightError::Peer(format!("{peer} sent no ticket for the statement")))?;
        self.rows(peer, endpoint, ticket, &headers).await
    }

    /// The member's `DoGet` stream as it arrives, for passing on to a Flight client
    /// without decoding and encoding it again.
    pub async fn relay(
        &self,
        peer: PeerId,
        endpoint: &str,
        request: &ReadRequest,
    ) -> Result<tonic::Streaming<FlightData>, FlightError> {
        let mut client = self.service(peer, endpoint).await?;
        let ticket = Ticket { ticket: request.encode().into() };
        let answer = client.do_get(ticket).await.map_err(arrow_flight::error::FlightError::from);
        Ok(answer.inspect_err(|e| self.drop_broken(peer, endpoint, e))?.into_inner())
    }

    /// The kept connection to the member's endpoint, or a new one.
    async fn channel(&self, peer: PeerId, endpoint: &str) -> Result<Channel, FlightError> {
        let key = (peer, endpoint.to_owned());
        if let Some(channel) = self.channels.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(channel.clone());
        }
        let channel = self.connect(peer, endpoint).await?;
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if channels.len() >= MAX_CHANNELS {
            channels.clear();
        }
        channels.insert(key, channel.clone());
        Ok(channel)
    }

    /// Forgets the connection when the call failed for want of it, not by the member's answer.
    fn drop_broken(&self, peer: PeerId, endpoint: &str, error: &arrow_flight::error::FlightError) {
        let broken = match error {
            arrow_flight::error::FlightError::Tonic(status) => {
                matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled)
            }
            _ => true,
        };
        if broken {
            self.channels.lock().unwrap_or_else(PoisonError::into_inner).remove(&(peer, endpoint.to_owned()));
        }
    }

    async fn connect(&self, peer: PeerId, endpoint: &str) -> Result<Channel, FlightError> {
        let address = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest).trim_end_matches('/').to_owned();
        let config = tls::client_config(&self.identity, peer).map_err(|e| FlightError::Peer(e.to_string()))?;
        let connector = MemberConnector { address: address.clone(), tls: TlsConnector::from(config) };
        tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| FlightError::Peer(e.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect_with_connector(connector)
            .await
            .map_err(|e| FlightError::Peer(format!("connecting to {peer} at {address}: {e}")))
    }
}

/// Dials a member: TCP, then TLS that must prove the expected PeerId.
#[derive(Clone)]
struct MemberConnector {
    address: String,
    tls: TlsConnector,
}

impl tower_service::Service<Uri> for MemberConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let (address, tls) = (self.address.clone(), self.tls.clone());
        Box::pin(async move {
            let tcp = TcpStream::connect(&address).await?;
            tcp.set_nodelay(true)?;
            // The libp2p TLS verifier checks the PeerId, not a host name.
            let name = rustls::pki_types::ServerName::try_from("urbanmesh.member").map_err(io::Error::other)?;
            Ok(TokioIo::new(tls.connect(name, tcp).await?))
        })
    }
}

/// A member's stream failing midway surfaces like a failing local scan.
fn remote_error(error: arrow_flight::error::FlightError) -> StoreError {
    StoreError::Query { source: Box::new(datafusion::error::DataFusionError::External(Box::new(error))) }
}
