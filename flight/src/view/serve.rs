//! Views over Flight: descriptor path `["views", id]`, ticket `{"view": id}`.

use arrow_flight::{FlightDescriptor, FlightEndpoint, FlightInfo, Ticket};
use serde::{Deserialize, Serialize};
use urbanmesh_catalog::view::View;

use crate::FlightError;

/// The ticket of a view's rows.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViewTicket {
    pub(crate) view: String,
}

impl ViewTicket {
    pub(crate) fn decode(ticket: &[u8]) -> Option<Self> {
        ticket.starts_with(br#"{"view""#).then(|| serde_json::from_slice(ticket).ok()).flatten()
    }
}

/// `["views", id]`, if the descriptor is one.
pub(crate) fn view_path(descriptor: &FlightDescriptor) -> Option<String> {
    match descriptor.path.as_slice() {
        [kind, id] if kind == "views" => Some(id.clone()),
        _ => None,
    }
}

/// Describes a view without assembling it: its result schema and a ticket for its rows.
pub(crate) fn flight_info(view: &View) -> Result<FlightInfo, FlightError> {
    let schema = view.described().arrow_schema()?;
    let ticket = serde_json::to_vec(&ViewTicket { view: view.id().to_owned() })
        .map_err(|e| FlightError::Descriptor { reason: e.to_string() })?;
    Ok(FlightInfo::new()
        .try_with_schema(&schema)
        .map_err(arrow_flight::error::FlightError::from)?
        .with_descriptor(FlightDescriptor::new_path(vec!["views".into(), view.id().to_owned()]))
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_total_records(-1)
        .with_total_bytes(-1))
}
