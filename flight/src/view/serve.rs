//! Views over Flight: descriptor path `["views", id]`, ticket `{"view": id}` (see
//! [`crate::target`]).

use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo};
use urbanmesh_catalog::view::View;

use crate::FlightError;
use crate::target::Target;

/// Describes a view without assembling it: its result schema and a ticket for its rows.
pub(crate) fn flight_info(view: &View) -> Result<FlightInfo, FlightError> {
    let schema = view.described().arrow_schema();
    let ticket = Target::View(view.id().to_owned()).ticket()?;
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(FlightDescriptor::new_path(vec!["views".into(), view.id().to_owned()]))
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_total_records(-1)
        .with_total_bytes(-1))
}
