//! What a running connector reports: its state, its counts, and the latest messages it
//! could not store, with the reason (the dead letters).

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// Dead letters kept per connector, newest first.
pub const DEAD_LETTERS: usize = 100;
/// Bytes of a dead message kept beside its reason.
const PAYLOAD_SHOWN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectorState {
    /// Opening the connection to the broker.
    Connecting,
    /// Subscribed; messages arrive.
    Connected,
    /// The last attempt failed (see `last_error`); trying again after a pause.
    Retrying,
    /// A pull is under way.
    Pulling,
    /// Between two pulls.
    Waiting,
    /// Not running: deleted, or the node is stopping.
    Stopped,
}

/// A message that was not stored, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub at: DateTime<Utc>,
    /// The MQTT topic, or the URL pulled.
    pub topic: Option<String>,
    pub reason: String,
    /// The start of the message, as text.
    pub payload: String,
}

/// A connector's state and counts, as the API shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectorStatus {
    pub state: ConnectorState,
    pub last_message: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Messages (or pulled responses) received.
    pub messages: u64,
    /// Rows stored.
    pub stored: u64,
    /// Rows not stored again because their key was stored.
    pub duplicates: u64,
    /// Messages refused whole.
    pub rejected: u64,
    /// The latest refused messages, newest first.
    pub dead_letters: Vec<DeadLetter>,
}

/// The status of one connector, shared by its task and the API.
#[derive(Debug)]
pub(crate) struct Tracker {
    status: Mutex<ConnectorStatus>,
    counters: Counters,
}

impl Tracker {
    pub(crate) fn new(counters: Counters) -> Self {
        Self {
            status: Mutex::new(ConnectorStatus {
                state: ConnectorState::Connecting,
                last_message: None,
                last_error: None,
                messages: 0,
                stored: 0,
                duplicates: 0,
                rejected: 0,
                dead_letters: Vec::new(),
            }),
            counters,
        }
    }

    pub(crate) fn snapshot(&self) -> ConnectorStatus {
        self.lock().clone()
    }

    pub(crate) fn set_state(&self, state: ConnectorState) {
        self.lock().state = state;
    }

    /// A failure to connect, pull or store: shown until the next success.
    pub(crate) fn failed(&self, error: impl Into<String>) {
        let mut status = self.lock();
        status.state = ConnectorState::Retrying;
        status.last_error = Some(error.into());
    }

    pub(crate) fn succeeded(&self, state: ConnectorState) {
        let mut status = self.lock();
        status.state = state;
        status.last_error = None;
    }

    pub(crate) fn received(&self, messages: u64) {
        let mut status = self.lock();
        status.messages += messages;
        status.last_message = Some(Utc::now());
    }

    pub(crate) fn stored(&self, messages: u64, rows: u64, duplicates: u64) {
        self.counters.accepted.inc_by(messages);
        let mut status = self.lock();
        status.stored += rows;
        status.duplicates += duplicates;
        self.counters.stored.inc_by(rows);
        self.counters.duplicate.inc_by(duplicates);
    }

    pub(crate) fn rejected(&self, topic: Option<&str>, payload: &[u8], reason: String) {
        tracing::debug!(topic, %reason, "message refused");
        let end = payload.len().min(PAYLOAD_SHOWN);
        let letter = DeadLetter {
            at: Utc::now(),
            topic: topic.map(str::to_owned),
            reason,
            payload: String::from_utf8_lossy(&payload[..end]).into_owned(),
        };
        let mut status = self.lock();
        status.rejected += 1;
        status.dead_letters.insert(0, letter);
        status.dead_letters.truncate(DEAD_LETTERS);
        self.counters.rejected.inc();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConnectorStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    connector: String,
    outcome: &'static str,
}

/// `urbanmesh_connector_messages_total{outcome="accepted"|"rejected"}` and
/// `urbanmesh_connector_rows_total{outcome="stored"|"duplicate"}`, by connector:
/// staff-only series, since they name connectors.
#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    messages: Family<Outcome, Counter>,
    rows: Family<Outcome, Counter>,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "urbanmesh_connector_messages",
            "Messages (or pulled responses) accepted and refused, by connector",
            metrics.messages.clone(),
        );
        registry.register(
            "urbanmesh_connector_rows",
            "Rows stored, and rows not stored again because their key was stored, by connector",
            metrics.rows.clone(),
        );
        metrics
    }

    pub(crate) fn counters(&self, connector: &str) -> Counters {
        let counter = |family: &Family<Outcome, Counter>, outcome| {
            family.get_or_create(&Outcome { connector: connector.to_owned(), outcome }).clone()
        };
        Counters {
            accepted: counter(&self.messages, "accepted"),
            rejected: counter(&self.messages, "rejected"),
            stored: counter(&self.rows, "stored"),
            duplicate: counter(&self.rows, "duplicate"),
        }
    }
}

/// One connector's series.
#[derive(Debug, Clone)]
pub(crate) struct Counters {
    accepted: Counter,
    rejected: Counter,
    stored: Counter,
    duplicate: Counter,
}
