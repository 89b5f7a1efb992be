//! `ListFlights`: every dataset and view the caller may see, each with its schema for this
//! caller and the ticket of a whole read.

use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo};
use urbanmesh_catalog::Dataset;
use urbanmesh_protocol::ReadRequest;

use crate::auth::Caller;
use crate::target::Target;
use crate::{FlightContext, FlightError, view};

pub(crate) async fn list_flights(context: &FlightContext, caller: &Caller) -> Result<Vec<FlightInfo>, FlightError> {
    let reader = caller.reader();
    let datasets = context.catalog.list()?;
    let mut infos = Vec::with_capacity(datasets.len());
    for dataset in datasets.iter().filter(|d| context.gate.visible(&reader, d)) {
        // A dataset deleted while listing is simply left out.
        if let Ok(info) = listed(context, caller, dataset).await {
            infos.push(info);
        }
    }
    for view in context.views.list(&reader)? {
        infos.push(view::flight_info(&view)?);
    }
    Ok(infos)
}

async fn listed(context: &FlightContext, caller: &Caller, dataset: &Dataset) -> Result<FlightInfo, FlightError> {
    let (schema, grant) = context.gate.listed_schema(&caller.reader(), dataset).await?;
    let total_records = if grant.is_unrestricted() { context.store.stats(dataset.id())?.rows as i64 } else { -1 };
    let ticket = Target::Dataset(ReadRequest::whole(dataset.id())).ticket()?;
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(FlightDescriptor::new_path(vec![dataset.id().to_owned()]))
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_total_records(total_records)
        .with_total_bytes(-1))
}
