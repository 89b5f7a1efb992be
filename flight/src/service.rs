use std::pin::Pin;
use std::time::Instant;

use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse,
    PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};
use urbanmesh_catalog::Dataset;

use crate::get_flight_info::{flight_info, read_request};
use crate::metrics::FlightMetrics;
use crate::{FlightContext, FlightError, auth, do_get, do_put};
use crate::{remote, view};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub struct FlightService {
    context: FlightContext,
    metrics: FlightMetrics,
}

impl FlightService {
    pub(crate) fn new(context: FlightContext, metrics: FlightMetrics) -> Self {
        Self { context, metrics }
    }
}

#[tonic::async_trait]
impl arrow_flight::flight_service_server::FlightService for FlightService {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;
    type DoExchangeStream = BoxStream<FlightData>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        // Callers authenticate per call with `authorization` metadata; nothing to negotiate.
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }

    async fn list_flights(&self, request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        let started = Instant::now();
        let caller = auth::caller(&self.context.identities, &request).await?;
        let datasets = self.context.catalog.list().map_err(FlightError::from)?;
        let mut infos: Vec<Result<FlightInfo, Status>> = Vec::with_capacity(datasets.len());
        for dataset in datasets.iter().filter(|d| self.context.gate.visible(&caller.subject, d)) {
            // A dataset deleted while listing is simply left out.
            if let Ok(info) = listed(&self.context, &caller, dataset).await {
                infos.push(Ok(info));
            }
        }
        for view in self.context.views.list(&caller.subject)? {
            infos.push(Ok(view::flight_info(&view)?));
        }
        self.metrics.observe("ListFlights", started);
        Ok(Response::new(Box::pin(futures::stream::iter(infos))))
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let started = Instant::now();
        let caller = auth::caller(&self.context.identities, &request).await?;
        let descriptor = request.into_inner();
        if let Some(id) = view::view_path(&descriptor) {
            let info = view::flight_info(&self.context.views.get(&caller.subject, &id)?)?;
            self.metrics.observe("GetFlightInfo", started);
            return Ok(Response::new(info));
        }
        if let Some((node, read)) = remote::remote_path(&descriptor) {
            let info = remote::flight_info(&self.context, &caller.subject, node, read, descriptor)?;
            self.metrics.observe("GetFlightInfo", started);
            return Ok(Response::new(info));
        }
        let read = read_request(&descriptor)?;
        let info = flight_info(&self.context, &caller, read, descriptor).await?;
        self.metrics.observe("GetFlightInfo", started);
        Ok(Response::new(info))
    }

    async fn poll_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        // Reads are planned at once, so polling completes on the first call.
        let info = self.get_flight_info(request).await?.into_inner();
        Ok(Response::new(PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        }))
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let started = Instant::now();
        let caller = auth::caller(&self.context.identities, &request).await?;
        let descriptor = request.into_inner();
        if let Some(id) = view::view_path(&descriptor) {
            let info = view::flight_info(&self.context.views.get(&caller.subject, &id)?)?;
            let result = SchemaResult { schema: info.schema };
            self.metrics.observe("GetSchema", started);
            return Ok(Response::new(result));
        }
        let mut read = read_request(&descriptor)?;
        caller.purpose_into(&mut read);
        let (schema, _) =
            self.context.gate.schema(&caller.subject, &read, caller.interface()).await.map_err(FlightError::from)?;
        let result = SchemaResult::try_from(SchemaAsIpc::new(&schema, &IpcWriteOptions::default()))
            .map_err(|e| Status::internal(e.to_string()))?;
        self.metrics.observe("GetSchema", started);
        Ok(Response::new(result))
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let caller = auth::caller(&self.context.identities, &request).await?;
        let stream = do_get::do_get(&self.context, &self.metrics, &caller, request.into_inner()).await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        let caller = auth::caller(&self.context.identities, &request).await?;
        let acks = do_put::do_put(&self.context, &self.metrics, &caller.subject, request.into_inner()).await?;
        Ok(Response::new(Box::pin(acks)))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("DoExchange is not offered; use DoGet and DoPut"))
    }

    async fn do_action(&self, request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        Err(Status::unimplemented(format!("no action `{}`; this node offers none", request.get_ref().r#type)))
    }

    async fn list_actions(&self, _request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(Box::pin(futures::stream::empty())))
    }
}

/// A visible dataset as `ListFlights` shows it: its schema for this caller and a ticket for
/// the whole dataset.
async fn listed(context: &FlightContext, caller: &auth::Caller, dataset: &Dataset) -> Result<FlightInfo, FlightError> {
    let (schema, grant) = context.gate.listed_schema(&caller.subject, dataset).await?;
    let total_records = if grant.is_unrestricted() { context.store.stats(dataset.id())?.rows as i64 } else { -1 };
    let request = urbanmesh_protocol::ReadRequest::whole(dataset.id());
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(FlightDescriptor::new_path(vec![dataset.id().to_owned()]))
        .with_endpoint(arrow_flight::FlightEndpoint::new().with_ticket(Ticket::new(request.encode())))
        .with_total_records(total_records)
        .with_total_bytes(-1))
}
