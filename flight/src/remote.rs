//! Reading another member's dataset through this node: descriptor path
//! `["remote", node, dataset]`, fetched over the members' mutual-TLS Flight.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo};
use urbanmesh_protocol::{PeerId, ReadRequest};
use urbanmesh_store::BatchStream;

use urbanmesh_policy::Subject;

use crate::peer::PeerClient;
use crate::target::Target;
use crate::{FlightContext, FlightError, ReadGate};

/// Where the federation's members are: a member (by name or PeerId) to its PeerId and
/// member Flight endpoint.
pub trait MemberDirectory: Send + Sync {
    fn locate(&self, node: &str) -> Option<(PeerId, String)>;
}

/// Fetches from members, as this node.
#[derive(Clone)]
pub struct Remote {
    pub client: PeerClient,
    pub directory: Arc<dyn MemberDirectory>,
}

impl Remote {
    /// A member's rows, fetched as this node on behalf of `subject` (who must be allowed to
    /// read through this node; the member's policy decides for this node).
    pub async fn fetch(
        &self,
        gate: &ReadGate,
        subject: &Subject,
        node: &str,
        request: &ReadRequest,
    ) -> Result<BatchStream, FlightError> {
        let (peer, endpoint, asked) = self.asked(gate, subject, node, request)?;
        self.client.fetch(peer, &endpoint, &asked).await
    }

    /// The schema the member releases for `request` to `subject` through this node.
    pub async fn schema(
        &self,
        gate: &ReadGate,
        subject: &Subject,
        node: &str,
        request: &ReadRequest,
    ) -> Result<SchemaRef, FlightError> {
        let (peer, endpoint, asked) = self.asked(gate, subject, node, request)?;
        self.client.schema(peer, &endpoint, &asked).await
    }

    /// The member's answer to an SQL statement over its own dataset `whole.dataset`, asked
    /// for `subject` through this node: as this node for its staff, else as for the public.
    pub async fn sql(
        &self,
        gate: &ReadGate,
        subject: &Subject,
        node: &str,
        whole: &ReadRequest,
        statement: &str,
    ) -> Result<BatchStream, FlightError> {
        let (peer, endpoint, asked) = self.asked(gate, subject, node, whole)?;
        self.client.sql(peer, &endpoint, statement, asked.for_public, asked.purpose.as_deref()).await
    }

    /// The member's Flight stream, passed on as it comes.
    pub(crate) async fn relay(
        &self,
        gate: &ReadGate,
        subject: &Subject,
        node: &str,
        request: &ReadRequest,
    ) -> Result<tonic::Streaming<arrow_flight::FlightData>, FlightError> {
        let (peer, endpoint, asked) = self.asked(gate, subject, node, request)?;
        self.client.relay(peer, &endpoint, &asked).await
    }

    /// Where the member is, and the read as it is to receive it, if `subject` may read
    /// the member's dataset through this node.
    fn asked(
        &self,
        gate: &ReadGate,
        subject: &Subject,
        node: &str,
        request: &ReadRequest,
    ) -> Result<(PeerId, String, ReadRequest), FlightError> {
        let (peer, endpoint) = self.locate(node)?;
        gate.may_relay(subject, &peer.to_string(), &request.dataset)?;
        Ok((peer, endpoint, on_behalf(subject, request)))
    }

    fn locate(&self, node: &str) -> Result<(PeerId, String), FlightError> {
        self.directory.locate(node).ok_or_else(|| FlightError::NotFound { id: format!("member {node}") })
    }
}

/// The read as the member receives it: for this node's staff as this node, for anyone else
/// as for the public, so that a relay never lends this node's grants to its callers.
fn on_behalf(subject: &Subject, request: &ReadRequest) -> ReadRequest {
    ReadRequest { for_public: request.for_public || !subject.is_staff(), ..request.clone() }
}

/// Describes a remote read from the replicated catalogue entry; no network round trip.
pub(crate) fn flight_info(
    context: &FlightContext,
    subject: &Subject,
    node: String,
    read: ReadRequest,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, FlightError> {
    let remote = context.remote.as_ref().ok_or_else(|| FlightError::NotFound { id: format!("member {node}") })?;
    let not_found = || FlightError::NotFound { id: format!("{node}/{}", read.dataset) };
    let (peer, _) = remote.directory.locate(&node).ok_or_else(not_found)?;
    context.gate.may_relay(subject, &peer.to_string(), &read.dataset)?;
    let replica = context.catalog.replica(&peer.to_string(), &read.dataset).map_err(|_| not_found())?;
    let schema = replica.entry.dataset.arrow_schema();
    let ticket = Target::Remote { member: node, read }.ticket()?;
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(descriptor)
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_total_records(replica.entry.derived.rows.map_or(-1, |rows| rows as i64))
        .with_total_bytes(-1))
}
