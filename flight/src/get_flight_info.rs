use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use urbanmesh_protocol::ReadRequest;

use crate::auth::Caller;
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

/// Schema, size and one endpoint whose ticket is the request itself (with the caller's
/// purpose). The read is planned once here, so that mistakes surface before `DoGet`.
pub(crate) async fn flight_info(
    context: &FlightContext,
    caller: &Caller,
    mut request: ReadRequest,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, FlightError> {
    caller.purpose_into(&mut request);
    let (schema, grant) = context.gate.schema(&caller.subject, &request, caller.interface()).await?;
    let total_records = if request.is_whole() && grant.is_unrestricted() {
        context.store.stats(&request.dataset)?.rows as i64
    } else {
        -1
    };
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(request.encode()));
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(descriptor)
        .with_endpoint(endpoint)
        .with_total_records(total_records)
        .with_total_bytes(-1))
}
