//! `GetFlightInfo` (and `PollFlightInfo`, complete at once): schema, size and the ticket of a
//! target. A dataset's read is planned here, so that mistakes surface before `DoGet`.

use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, PollInfo};
use urbanmesh_protocol::ReadRequest;

use crate::auth::Caller;
use crate::target::Target;
use crate::{FlightContext, FlightError, remote, sql, view};

pub(crate) async fn get_flight_info(
    context: &FlightContext,
    caller: &Caller,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, FlightError> {
    match Target::of_descriptor(&descriptor)? {
        Target::Dataset(read) => dataset_info(context, caller, read, descriptor).await,
        Target::View(id) => view::flight_info(&context.views.get(&caller.reader(), &id)?),
        Target::Sql(command) => sql::flight_info(context, caller, command, descriptor).await,
        Target::Remote { member, mut read } => {
            caller.purpose_into(&mut read);
            remote::flight_info(context, &caller.subject, member, read, descriptor)
        }
    }
}

/// Reads are planned at once, so polling completes on the first call.
pub(crate) async fn poll_flight_info(
    context: &FlightContext,
    caller: &Caller,
    descriptor: FlightDescriptor,
) -> Result<PollInfo, FlightError> {
    let info = get_flight_info(context, caller, descriptor).await?;
    Ok(PollInfo { info: Some(info), flight_descriptor: None, progress: Some(1.0), expiration_time: None })
}

/// One endpoint whose ticket is the request itself (with the caller's purpose).
async fn dataset_info(
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
    let endpoint = FlightEndpoint::new().with_ticket(Target::Dataset(request).ticket()?);
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(descriptor)
        .with_endpoint(endpoint)
        .with_total_records(total_records)
        .with_total_bytes(-1))
}
