//! The connectors of a node: their definitions, kept in the node's database, and the task
//! each one runs. Defining, replacing or deleting one starts or stops its task.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use urbanmesh_catalog::Catalog;
use urbanmesh_store::Store;

use crate::message::MessageLimits;
use crate::pull::Pull;
use crate::sink::Sink;
use crate::spec::{ConnectorSpec, Plan, Source};
use crate::status::{ConnectorState, ConnectorStatus, Metrics, Tracker};
use crate::{LiveError, mqtt, pull};

/// A connector as the API shows it: its definition (without the password) and its status.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Connector {
    #[serde(flatten)]
    pub spec: ConnectorSpec,
    pub status: ConnectorStatus,
}

/// Bounds on what connectors receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorLimits {
    /// One MQTT message.
    pub message: MessageLimits,
    /// One pulled response.
    pub response: MessageLimits,
}

impl Default for ConnectorLimits {
    fn default() -> Self {
        Self { message: MessageLimits::default(), response: MessageLimits { bytes: 16 * 1024 * 1024, rows: 100_000 } }
    }
}

/// The record kept per connector: the definition with its password.
#[derive(Serialize, Deserialize)]
struct Record {
    spec: ConnectorSpec,
    password: Option<String>,
}

#[derive(Clone)]
pub struct Connectors {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    catalog: Catalog,
    store: Store,
    /// Part of the default MQTT client id.
    node: String,
    limits: ConnectorLimits,
    metrics: Metrics,
    /// Serialises changes of definitions, so that a task runs per stored definition.
    changing: tokio::sync::Mutex<()>,
    running: Mutex<BTreeMap<String, Running>>,
}

struct Running {
    spec: ConnectorSpec,
    tracker: Arc<Tracker>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Connectors {
    /// Opens the stored definitions and starts them. `registry` is the staff-only one: its
    /// series name connectors.
    pub fn open(
        db: &sled::Db,
        catalog: Catalog,
        store: Store,
        node: &str,
        limits: ConnectorLimits,
        registry: &mut Registry,
    ) -> Result<Self, LiveError> {
        let connectors = Self {
            inner: Arc::new(Inner {
                db: db.clone(),
                tree: db.open_tree("connectors")?,
                catalog,
                store,
                node: node.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect(),
                limits,
                metrics: Metrics::register(registry),
                changing: tokio::sync::Mutex::new(()),
                running: Mutex::new(BTreeMap::new()),
            }),
        };
        for entry in connectors.inner.tree.iter() {
            let (_, bytes) = entry?;
            let record: Record = serde_json::from_slice(&bytes)?;
            let mut spec = record.spec;
            spec.password = record.password;
            connectors.launch(spec);
        }
        Ok(connectors)
    }

    /// Connectors the config file declares: stored (replacing a stored one of the same id)
    /// and started.
    pub async fn declare(&self, specs: Vec<ConnectorSpec>) -> Result<(), LiveError> {
        for spec in specs {
            let exists = self.inner.tree.contains_key(&spec.id)?;
            self.put(spec, !exists).await?;
        }
        Ok(())
    }

    pub fn list(&self) -> Vec<Connector> {
        self.running().values().map(Running::view).collect()
    }

    pub fn get(&self, id: &str) -> Result<Connector, LiveError> {
        self.running().get(id).map(Running::view).ok_or_else(|| LiveError::NotFound { id: id.to_owned() })
    }

    /// Stores a new connector and starts it.
    pub async fn create(&self, spec: ConnectorSpec) -> Result<Connector, LiveError> {
        self.put(spec, true).await
    }

    /// Replaces a connector and restarts it. A password left out keeps the stored one.
    pub async fn replace(&self, mut spec: ConnectorSpec) -> Result<Connector, LiveError> {
        if spec.password.is_none() {
            spec.password = self.running().get(&spec.id).and_then(|r| r.spec.password.clone());
        }
        self.put(spec, false).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), LiveError> {
        let _changing = self.inner.changing.lock().await;
        self.inner.tree.remove(id)?.ok_or_else(|| LiveError::NotFound { id: id.to_owned() })?;
        self.inner.db.flush_async().await?;
        let running = self.running().remove(id);
        if let Some(running) = running {
            running.halt().await;
        }
        Ok(())
    }

    /// Stops every connector, letting each finish the group it is storing.
    pub async fn stop(&self) {
        let running = std::mem::take(&mut *self.running());
        for (_, running) in running {
            running.halt().await;
        }
    }

    async fn put(&self, spec: ConnectorSpec, new: bool) -> Result<Connector, LiveError> {
        let dataset =
            self.inner.catalog.get(&spec.dataset).map_err(|_| {
                crate::spec::invalid("dataset", format!("`{}` is no dataset of this node", spec.dataset))
            })?;
        spec.plan(&dataset, &self.inner.node)?;
        let _changing = self.inner.changing.lock().await;
        let exists = self.inner.tree.contains_key(&spec.id)?;
        if new && exists {
            return Err(LiveError::Exists { id: spec.id });
        }
        if !new && !exists {
            return Err(LiveError::NotFound { id: spec.id });
        }
        let record = Record { password: spec.password.clone(), spec: spec.clone() };
        self.inner.tree.insert(&spec.id, serde_json::to_vec(&record)?)?;
        self.inner.db.flush_async().await?;
        let previous = self.running().remove(&spec.id);
        if let Some(previous) = previous {
            previous.halt().await;
        }
        let id = spec.id.clone();
        self.launch(spec);
        self.get(&id)
    }

    /// Starts the task of a stored definition.
    fn launch(&self, spec: ConnectorSpec) {
        let tracker = Arc::new(Tracker::new(self.inner.metrics.counters(&spec.id)));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(Arc::clone(&self.inner), spec.clone(), Arc::clone(&tracker), stopped));
        self.running().insert(spec.id.clone(), Running { spec, tracker, stop, task });
    }

    fn running(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.inner.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Running {
    fn view(&self) -> Connector {
        Connector { spec: self.spec.clone(), status: self.tracker.snapshot() }
    }

    async fn halt(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
        self.tracker.set_state(ConnectorState::Stopped);
    }
}

/// One connector's task: checks its definition against the dataset as it is now, loads
/// the stored keys, then receives or pulls until stopped.
async fn run(inner: Arc<Inner>, spec: ConnectorSpec, tracker: Arc<Tracker>, stop: watch::Receiver<bool>) {
    let plan = match inner.catalog.get(&spec.dataset) {
        Ok(dataset) => spec.plan(&dataset, &inner.node),
        Err(error) => Err(error.into()),
    };
    let Plan { source, mapper, .. } = match plan {
        Ok(plan) => plan,
        Err(error) => {
            tracker.failed(format!("the connector cannot run: {error}"));
            tracker.set_state(ConnectorState::Stopped);
            return;
        }
    };
    let sink = match Sink::open(inner.store.clone(), spec.dataset.clone(), mapper, Arc::clone(&tracker)).await {
        Ok(sink) => sink,
        Err(error) => {
            tracker.failed(format!("cannot read the stored keys of `{}`: {error}", spec.dataset));
            tracker.set_state(ConnectorState::Stopped);
            return;
        }
    };
    match source {
        Source::Mqtt(mqtt) => mqtt::run(mqtt, sink, inner.limits.message, stop).await,
        Source::Pegelonline { base, stations, every } => {
            pull::run(Pull::Pegelonline { base, stations }, every.get(), sink, inner.limits.response, stop).await
        }
        Source::HttpJson { url, every, rows } => {
            pull::run(Pull::HttpJson { url, rows }, every.get(), sink, inner.limits.response, stop).await
        }
    }
}
