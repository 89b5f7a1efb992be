//! What a Flight call is about, decoded once from its descriptor or ticket and matched
//! exhaustively by every RPC.
//!
//! - descriptor path `[dataset]`, `["views", view]` or `["remote", member, dataset]`;
//! - descriptor command or ticket, JSON: a [`ReadRequest`] (`{"dataset": …}`),
//!   `{"view": view}` or `{"remote": member, "read": ReadRequest}`;
//! - descriptor command or ticket, a protobuf `Any` of a Flight SQL message ([`SqlCommand`]).

use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::{FlightDescriptor, Ticket};
use serde::{Deserialize, Serialize};
use urbanmesh_protocol::ReadRequest;

use crate::FlightError;
use crate::sql::SqlCommand;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// One of this node's datasets, or a view named like one (read whole).
    Dataset(ReadRequest),
    /// A regional view, read whole.
    View(String),
    /// Another member's dataset, read through this node.
    Remote { member: String, read: ReadRequest },
    /// A Flight SQL command.
    Sql(SqlCommand),
}

/// The JSON shapes of the targets that are not a plain read request.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewTicket {
    view: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteTicket {
    remote: String,
    read: ReadRequest,
}

impl Target {
    pub(crate) fn of_descriptor(descriptor: &FlightDescriptor) -> Result<Self, FlightError> {
        match DescriptorType::try_from(descriptor.r#type) {
            Ok(DescriptorType::Path) => match descriptor.path.as_slice() {
                [id] => Ok(Self::Dataset(ReadRequest::whole(id.clone()))),
                [kind, id] if kind == "views" => Ok(Self::View(id.clone())),
                [kind, member, id] if kind == "remote" => {
                    Ok(Self::Remote { member: member.clone(), read: ReadRequest::whole(id.clone()) })
                }
                path => Err(FlightError::Descriptor {
                    reason: format!(
                        "path must be [dataset], [\"views\", view] or [\"remote\", member, dataset], got {path:?}"
                    ),
                }),
            },
            Ok(DescriptorType::Cmd) => Self::of_command(&descriptor.cmd),
            Ok(DescriptorType::Unknown) | Err(_) => {
                Err(FlightError::Descriptor { reason: "the descriptor type must be PATH or CMD".into() })
            }
        }
    }

    pub(crate) fn of_ticket(ticket: &Ticket) -> Result<Self, FlightError> {
        Self::of_command(&ticket.ticket)
    }

    /// A Flight SQL message is told by its type URL; anything else is JSON.
    fn of_command(bytes: &[u8]) -> Result<Self, FlightError> {
        match SqlCommand::recognise(bytes) {
            Some(command) => command.map(Self::Sql),
            None => Self::of_json(bytes),
        }
    }

    /// The ticket that reads this target.
    pub(crate) fn ticket(&self) -> Result<Ticket, FlightError> {
        let json = match self {
            Self::Dataset(read) => return Ok(Ticket::new(read.encode())),
            Self::View(view) => serde_json::to_vec(&ViewTicket { view: view.clone() }),
            Self::Remote { member, read } => {
                serde_json::to_vec(&RemoteTicket { remote: member.clone(), read: read.clone() })
            }
            Self::Sql(command) => return command.ticket(),
        };
        json.map(Ticket::new).map_err(|e| FlightError::Descriptor { reason: e.to_string() })
    }

    /// Which shape the JSON has is told by its keys; a read request's own decoding says
    /// what is wrong with anything else.
    fn of_json(bytes: &[u8]) -> Result<Self, FlightError> {
        let keys = |value: &serde_json::Value, key: &str| value.as_object().is_some_and(|o| o.contains_key(key));
        let value = match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(value) if bytes.len() <= MAX_JSON_BYTES => value,
            _ => return Ok(Self::Dataset(ReadRequest::decode(bytes)?)),
        };
        if keys(&value, "remote") {
            let ticket: RemoteTicket = serde_json::from_value(value).map_err(|e| malformed("remote read", &e))?;
            ticket.read.validate()?;
            return Ok(Self::Remote { member: ticket.remote, read: ticket.read });
        }
        if keys(&value, "view") {
            let ticket: ViewTicket = serde_json::from_value(value).map_err(|e| malformed("view", &e))?;
            return Ok(Self::View(ticket.view));
        }
        Ok(Self::Dataset(ReadRequest::decode(bytes)?))
    }
}

/// As large as a read request may be, and a remote read's envelope around it.
const MAX_JSON_BYTES: usize = 66 * 1024;

fn malformed(what: &str, error: &serde_json::Error) -> FlightError {
    FlightError::Descriptor { reason: format!("invalid {what}: {error}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> FlightDescriptor {
        FlightDescriptor::new_path(parts.iter().map(|p| (*p).to_owned()).collect())
    }

    #[test]
    fn descriptors_name_datasets_views_and_remote_datasets() {
        assert_eq!(Target::of_descriptor(&path(&["pegel"])).ok(), Some(Target::Dataset(ReadRequest::whole("pegel"))));
        assert_eq!(Target::of_descriptor(&path(&["views", "owl"])).ok(), Some(Target::View("owl".into())));
        assert_eq!(
            Target::of_descriptor(&path(&["remote", "Herford", "pegel"])).ok(),
            Some(Target::Remote { member: "Herford".into(), read: ReadRequest::whole("pegel") })
        );
        let wrong = Target::of_descriptor(&path(&["a", "b", "c", "d"])).expect_err("four parts");
        assert!(wrong.to_string().contains("[\"remote\", member, dataset]"), "{wrong}");
    }

    #[test]
    fn every_target_reads_back_from_its_ticket() {
        let read = ReadRequest { filter: Some("value > 1".into()), limit: Some(3), ..ReadRequest::whole("pegel") };
        for target in [
            Target::Dataset(read.clone()),
            Target::View("owl".into()),
            Target::Remote { member: "12D3KooW".into(), read },
        ] {
            let ticket = target.ticket().expect("ticket");
            assert_eq!(Target::of_ticket(&ticket).expect("decodes"), target);
        }
    }

    #[test]
    fn a_command_or_ticket_says_what_is_wrong_with_it() {
        let bad = |json: &str| Target::of_ticket(&Ticket::new(json.as_bytes().to_vec())).expect_err(json).to_string();
        assert!(bad(r#"{"view": 3}"#).contains("invalid view"));
        assert!(bad(r#"{"remote": "Herford", "read": {"dataset": ""}}"#).contains("dataset"));
        assert!(bad(r#"{"dataset": "pegel", "colums": []}"#).contains("colums"));
        assert!(bad("not json").contains("not valid JSON"));
    }
}
