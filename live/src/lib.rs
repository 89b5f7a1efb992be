//! Live data in: connectors that subscribe to MQTT brokers (The Things Stack uplinks, or
//! any JSON) and pull PEGELONLINE-shaped APIs, writing through the same durable append as
//! every other source. A message is acknowledged upstream only once its rows are durable;
//! one that cannot be stored goes to its connector's dead letters with the reason.

mod connectors;
mod error;
mod mapping;
mod message;
mod mqtt;
mod path;
mod pull;
mod seen;
mod sink;
mod spec;
mod status;

pub use connectors::{Connector, ConnectorLimits, Connectors};
pub use error::LiveError;
pub use message::MessageLimits;
pub use path::JsonPath;
pub use spec::{Checked, ConnectorKind, ConnectorMapping, ConnectorSpec, MessageFormat, check};
pub use status::{ConnectorState, ConnectorStatus, DEAD_LETTERS, DeadLetter};
