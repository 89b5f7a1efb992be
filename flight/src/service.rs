use std::pin::Pin;
use std::time::Instant;

use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse,
    PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::metrics::FlightMetrics;
use crate::{FlightContext, auth, do_get, do_put, get_flight_info, get_schema, list_flights, sql};

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
        let infos = list_flights::list_flights(&self.context, &caller).await?;
        self.metrics.observe("ListFlights", started);
        Ok(Response::new(Box::pin(futures::stream::iter(infos.into_iter().map(Ok)))))
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let started = Instant::now();
        let caller = auth::caller(&self.context.identities, &request).await?;
        let info = get_flight_info::get_flight_info(&self.context, &caller, request.into_inner()).await?;
        self.metrics.observe("GetFlightInfo", started);
        Ok(Response::new(info))
    }

    async fn poll_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        let started = Instant::now();
        let caller = auth::caller(&self.context.identities, &request).await?;
        let info = get_flight_info::poll_flight_info(&self.context, &caller, request.into_inner()).await?;
        self.metrics.observe("PollFlightInfo", started);
        Ok(Response::new(info))
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let started = Instant::now();
        let caller = auth::caller(&self.context.identities, &request).await?;
        let schema = get_schema::get_schema(&self.context, &caller, request.into_inner()).await?;
        self.metrics.observe("GetSchema", started);
        Ok(Response::new(schema))
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
        let started = Instant::now();
        let caller = auth::caller(&self.context.identities, &request).await?;
        let action = request.into_inner();
        let Some(answer) = sql::do_action(&self.context, caller, &action).await else {
            return Err(Status::unimplemented(format!(
                "no action `{}`; this node offers those of Flight SQL's prepared statements",
                action.r#type
            )));
        };
        let results = answer?;
        self.metrics.observe("DoAction", started);
        Ok(Response::new(Box::pin(futures::stream::iter(results.into_iter().map(Ok)))))
    }

    async fn list_actions(&self, _request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(Box::pin(futures::stream::iter(sql::actions().into_iter().map(Ok)))))
    }
}
