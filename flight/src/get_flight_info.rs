use arrow::datatypes::SchemaRef;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use urbanmesh_catalog::{CatalogError, Dataset};
use urbanmesh_policy::{Decision, Subject};
use urbanmesh_protocol::ReadRequest;

use crate::{FlightContext, FlightError};

/// A descriptor names a dataset by path `[id]`, or carries a JSON [`ReadRequest`] as `cmd`.
pub(crate) fn read_request(descriptor: &FlightDescriptor) -> Result<ReadRequest, FlightError> {
    match DescriptorType::try_from(descriptor.r#type) {
        Ok(DescriptorType::Path) => match descriptor.path.as_slice() {
            [id] => Ok(ReadRequest::whole(id.clone())),
            path => Err(FlightError::Descriptor {
                reason: format!("path must be [dataset id], got {} elements", path.len()),
            }),
        },
        Ok(DescriptorType::Cmd) => Ok(ReadRequest::decode(&descriptor.cmd)?),
        _ => Err(FlightError::Descriptor { reason: "unknown descriptor type".into() }),
    }
}

/// The dataset a read names, if this subject may read it; otherwise "not found",
/// exactly as for a dataset that does not exist.
pub(crate) fn readable(
    context: &FlightContext,
    subject: &Subject,
    request: &ReadRequest,
) -> Result<Dataset, FlightError> {
    let not_found = || FlightError::NotFound { id: request.dataset.clone() };
    let dataset = context.catalog.get(&request.dataset).map_err(|e| match e {
        CatalogError::NotFound { .. } => not_found(),
        other => FlightError::Catalog(other),
    })?;
    match context.authorizer.decide_read(subject, &dataset, request) {
        Decision::Permit => Ok(dataset),
        Decision::Deny { reason } => {
            tracing::info!(dataset = %request.dataset, subject = subject.label(), %reason, "read refused");
            Err(not_found())
        }
    }
}

/// Schema, size and one endpoint whose ticket is the request itself. A request with a
/// projection or filter is planned once here, so that mistakes surface before `DoGet`.
pub(crate) async fn flight_info(
    context: &FlightContext,
    subject: &Subject,
    request: ReadRequest,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, FlightError> {
    let schema = schema(context, subject, &request).await?;
    let total_records = if request.is_whole() { context.store.stats(&request.dataset)?.rows as i64 } else { -1 };
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(request.encode()));
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(descriptor)
        .with_endpoint(endpoint)
        .with_total_records(total_records)
        .with_total_bytes(-1))
}

/// The schema a read will produce, after projection.
pub(crate) async fn schema(
    context: &FlightContext,
    subject: &Subject,
    request: &ReadRequest,
) -> Result<SchemaRef, FlightError> {
    readable(context, subject, request)?;
    if request.is_whole() {
        return Ok(context.store.schema(&request.dataset)?);
    }
    Ok(context.store.check(request).await?)
}
