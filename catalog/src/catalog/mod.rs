//! This node's catalogue in sled: its own dataset records here, other members' entries in
//! [`replicas`], and what the search index holds of each in [`entries`].

mod entries;
mod replicas;

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Mutex, broadcast};
use urbanmesh_policy::{Policy, PolicyError};

use crate::search::{SearchIndex, SearchRequest, SearchResults};
use crate::view::ViewRecords;
use crate::{CatalogError, CatalogInfo, Dataset, DatasetSpec, Derived};
use entries::{entry, replica_entry};
use replicas::decode_replica;

/// The distribution formats every dataset offers (EU file-type codes).
pub const FORMATS: [&str; 3] = ["CSV", "JSON", "PARQUET"];

/// Dataset records of this node in sled, and the search index over them.
#[derive(Clone)]
pub struct Catalog {
    db: sled::Db,
    datasets: sled::Tree,
    derived: sled::Tree,
    replicas: sled::Tree,
    meta: sled::Tree,
    info: Arc<CatalogInfo>,
    index: SearchIndex,
    /// Orders changes so that the index sees them in the order sled numbered them.
    writing: Arc<Mutex<()>>,
    /// Ids of local datasets whose entry changed (created, described, rows, deleted).
    changes: broadcast::Sender<String>,
    /// Purposes a policy may require (`[policy] purposes` in the node's config).
    purposes: Arc<Vec<String>>,
    views: ViewRecords,
    dashboards: crate::dashboard::Dashboards,
}

/// Change notices buffered per listener before it lags.
const CHANGES: usize = 1024;

const GENERATION: &str = "generation";

impl Catalog {
    /// Opens the records and the search index in `index_dir`, rebuilding the index
    /// when it does not reflect the records.
    pub fn open(db: sled::Db, info: CatalogInfo, index_dir: &Path) -> Result<Self, CatalogError> {
        let datasets = db.open_tree("datasets")?;
        let derived = db.open_tree("derived")?;
        let replicas = db.open_tree("replicas")?;
        let meta = db.open_tree("catalog")?;
        let generation = read_generation(&meta)?;
        let entries = {
            let (datasets, derived, replicas, info) =
                (datasets.clone(), derived.clone(), replicas.clone(), info.clone());
            move || {
                let local = datasets.iter().map(move |item| {
                    let (key, bytes) = item?;
                    let dataset = decode(&String::from_utf8_lossy(&key), &bytes)?;
                    let derived = read_derived(&derived, dataset.id())?;
                    Ok(entry(&info, &dataset, &derived))
                });
                let remote = replicas.iter().map(|item| {
                    let (key, bytes) = item?;
                    Ok(replica_entry(&decode_replica(&String::from_utf8_lossy(&key), &bytes)?))
                });
                local.chain(remote)
            }
        };
        let index = SearchIndex::open(index_dir, generation, entries)?;
        let (changes, _) = broadcast::channel(CHANGES);
        let info = Arc::new(info);
        let views = ViewRecords::open(db.clone(), datasets.clone(), Arc::clone(&info), changes.clone())?;
        let dashboards = crate::dashboard::Dashboards::open(db.clone())?;
        Ok(Self {
            db,
            datasets,
            derived,
            replicas,
            meta,
            info,
            index,
            writing: Arc::default(),
            changes,
            purposes: Arc::default(),
            views,
            dashboards,
        })
    }

    /// Sets the purposes policies may require.
    pub fn with_purposes(mut self, purposes: Vec<String>) -> Self {
        self.purposes = Arc::new(purposes);
        self
    }

    pub fn purposes(&self) -> &[String] {
        &self.purposes
    }

    /// This node's regional view definitions.
    pub fn dashboards(&self) -> &crate::dashboard::Dashboards {
        &self.dashboards
    }

    pub fn views(&self) -> &ViewRecords {
        &self.views
    }

    pub fn info(&self) -> &CatalogInfo {
        &self.info
    }

    /// The municipality that owns this node's datasets.
    pub fn tenant(&self) -> &str {
        &self.info.municipality
    }

    /// Validates and stores a new dataset; durable when this returns.
    pub async fn create(&self, spec: DatasetSpec) -> Result<Dataset, CatalogError> {
        let dataset = self.new_dataset(spec, Utc::now())?;
        let bytes = encode(&dataset)?;
        {
            let _writing = self.writing.lock().await;
            self.views.refuse_taken(dataset.id())?;
            let swapped = self.datasets.compare_and_swap(dataset.id(), None::<&[u8]>, Some(bytes))?;
            if swapped.is_err() {
                return Err(CatalogError::AlreadyExists { id: dataset.id().to_owned() });
            }
            let generation = self.next_generation()?;
            self.index.upsert(&entry(&self.info, &dataset, &Derived::default()), generation).await?;
        }
        self.db.flush_async().await?;
        self.changed(dataset.id());
        Ok(dataset)
    }

    /// Validates and stores many new datasets at once, all or none; durable when this
    /// returns. For imports: one flush and one index commit for the lot.
    pub async fn create_many(&self, specs: Vec<DatasetSpec>) -> Result<Vec<Dataset>, CatalogError> {
        let mut ids = std::collections::HashSet::with_capacity(specs.len());
        for spec in &specs {
            if !ids.insert(spec.id.clone()) {
                return Err(CatalogError::AlreadyExists { id: spec.id.clone() });
            }
        }
        let now = Utc::now();
        let datasets = specs.into_iter().map(|spec| self.new_dataset(spec, now)).collect::<Result<Vec<_>, _>>()?;
        {
            let _writing = self.writing.lock().await;
            for dataset in &datasets {
                self.views.refuse_taken(dataset.id())?;
            }
            if let Some(taken) = datasets.iter().find(|d| self.datasets.contains_key(d.id()).unwrap_or(true)) {
                return Err(CatalogError::AlreadyExists { id: taken.id().to_owned() });
            }
            let mut batch = sled::Batch::default();
            for dataset in &datasets {
                batch.insert(dataset.id(), encode(dataset)?);
            }
            self.datasets.apply_batch(batch)?;
            let generation = self.next_generation()?;
            for dataset in &datasets {
                self.index.upsert(&entry(&self.info, dataset, &Derived::default()), generation).await?;
            }
        }
        self.db.flush_async().await?;
        for dataset in &datasets {
            self.changed(dataset.id());
        }
        Ok(datasets)
    }

    /// Replaces the description of a dataset; its shape (schema, time column, series key,
    /// geometry) stays as it was created. Durable when this returns.
    pub async fn update(&self, mut spec: DatasetSpec) -> Result<Dataset, CatalogError> {
        spec.validate()?;
        let dataset = {
            let _writing = self.writing.lock().await;
            let current = self.get(&spec.id)?;
            if !current.spec.same_shape(&spec) {
                return Err(CatalogError::ShapeChanged { id: spec.id });
            }
            let policy = match spec.policy.take() {
                Some(policy) => self.checked_policy(&spec, policy)?,
                None => current.policy.clone(),
            };
            let dataset = Dataset { spec, modified: Utc::now(), policy, ..current };
            self.replace(&dataset).await?;
            dataset
        };
        self.db.flush_async().await?;
        self.changed(dataset.id());
        Ok(dataset)
    }

    /// Replaces a dataset's usage policy; durable when this returns. Row filters must have
    /// been checked against the rows by the caller (the store plans them).
    pub async fn set_policy(&self, id: &str, policy: Policy) -> Result<Dataset, CatalogError> {
        let dataset = {
            let _writing = self.writing.lock().await;
            let current = self.get(id)?;
            let policy = self.checked_policy(&current.spec, policy)?;
            let dataset = Dataset { policy, modified: Utc::now(), ..current };
            self.replace(&dataset).await?;
            dataset
        };
        self.db.flush_async().await?;
        self.changed(dataset.id());
        Ok(dataset)
    }

    /// Stores a changed record and its index entry; the caller holds `writing`, flushes and
    /// announces the change.
    async fn replace(&self, dataset: &Dataset) -> Result<(), CatalogError> {
        self.datasets.insert(dataset.id(), encode(dataset)?)?;
        let generation = self.next_generation()?;
        let derived = self.derived(dataset.id())?;
        self.index.upsert(&entry(&self.info, dataset, &derived), generation).await
    }

    fn new_dataset(&self, mut spec: DatasetSpec, now: chrono::DateTime<Utc>) -> Result<Dataset, CatalogError> {
        spec.validate()?;
        let policy = match spec.policy.take() {
            Some(policy) => self.checked_policy(&spec, policy)?,
            None => Policy::default(),
        };
        Ok(Dataset { spec, tenant: self.info.municipality.clone(), created: now, modified: now, policy })
    }

    /// Checks a policy for a dataset without storing it; returns it with defaults filled in.
    pub fn validate_policy(&self, id: &str, policy: Policy) -> Result<Policy, CatalogError> {
        self.checked_policy(&self.get(id)?.spec, policy)
    }

    fn checked_policy(&self, spec: &DatasetSpec, policy: Policy) -> Result<Policy, CatalogError> {
        policy.validate(&spec.shape(), &self.purposes).map_err(|e| match e {
            PolicyError::Invalid { field, reason } => CatalogError::invalid(format!("policy.{field}"), reason),
            other => CatalogError::invalid("policy", other.to_string()),
        })
    }

    pub fn get(&self, id: &str) -> Result<Dataset, CatalogError> {
        let bytes = self.datasets.get(id)?.ok_or_else(|| CatalogError::NotFound { id: id.to_owned() })?;
        decode(id, &bytes)
    }

    /// All datasets, ordered by id.
    pub fn list(&self) -> Result<Vec<Dataset>, CatalogError> {
        self.iter().collect()
    }

    /// All datasets, ordered by id, read one at a time.
    pub fn iter(&self) -> impl Iterator<Item = Result<Dataset, CatalogError>> + use<> {
        self.datasets.iter().map(|entry| {
            let (key, bytes) = entry?;
            decode(&String::from_utf8_lossy(&key), &bytes)
        })
    }

    pub fn len(&self) -> usize {
        self.datasets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datasets.is_empty()
    }

    /// Removes the record; durable when this returns.
    pub async fn delete(&self, id: &str) -> Result<Dataset, CatalogError> {
        let bytes = {
            let _writing = self.writing.lock().await;
            let bytes = self.datasets.remove(id)?.ok_or_else(|| CatalogError::NotFound { id: id.to_owned() })?;
            self.derived.remove(id)?;
            let generation = self.next_generation()?;
            self.index.remove(id, generation).await?;
            bytes
        };
        self.db.flush_async().await?;
        self.changed(id);
        decode(id, &bytes)
    }

    /// What the rows of `id` say about it (row count, time extent, last change).
    pub fn derived(&self, id: &str) -> Result<Derived, CatalogError> {
        read_derived(&self.derived, id)
    }

    /// Records what the rows of `id` say about it. Not flushed: the node derives it
    /// again from the store when it starts.
    pub async fn record_derived(&self, id: &str, derived: Derived) -> Result<(), CatalogError> {
        let _writing = self.writing.lock().await;
        let dataset = self.get(id)?;
        if self.derived(id)? == derived {
            return Ok(());
        }
        let bytes =
            serde_json::to_vec(&derived).map_err(|source| CatalogError::CorruptRecord { id: id.into(), source })?;
        self.derived.insert(id, bytes)?;
        let generation = self.next_generation()?;
        self.index.upsert(&entry(&self.info, &dataset, &derived), generation).await?;
        drop(_writing);
        self.changed(id);
        Ok(())
    }

    /// Ids of local datasets whose entry changed, after the change is stored. A listener
    /// that lags hears `Lagged` and should look at every dataset.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    fn changed(&self, id: &str) {
        let _ = self.changes.send(id.to_owned());
    }

    /// A counter that grows with every change of the catalogue; versions announcements.
    pub fn generation(&self) -> Result<u64, CatalogError> {
        read_generation(&self.meta)
    }

    /// Searches the index; blocking, so call it off the async threads.
    pub fn search(&self, request: &SearchRequest) -> Result<SearchResults, CatalogError> {
        self.index.search(request)
    }

    /// Waits until every change made so far is searchable.
    pub async fn sync_index(&self) -> Result<(), CatalogError> {
        self.index.sync().await
    }

    fn next_generation(&self) -> Result<u64, CatalogError> {
        let next = self.meta.update_and_fetch(GENERATION, |old| {
            let old = old.and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_be_bytes);
            Some((old + 1).to_be_bytes().to_vec())
        })?;
        Ok(next.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok()).map_or(0, u64::from_be_bytes))
    }
}

fn read_generation(meta: &sled::Tree) -> Result<u64, CatalogError> {
    Ok(meta.get(GENERATION)?.and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok()).map_or(0, u64::from_be_bytes))
}

fn read_derived(tree: &sled::Tree, id: &str) -> Result<Derived, CatalogError> {
    match tree.get(id)? {
        None => Ok(Derived::default()),
        Some(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| CatalogError::CorruptRecord { id: id.to_owned(), source })
        }
    }
}

fn encode(dataset: &Dataset) -> Result<Vec<u8>, CatalogError> {
    serde_json::to_vec(dataset).map_err(|source| CatalogError::CorruptRecord { id: dataset.id().to_owned(), source })
}

fn decode(id: &str, bytes: &[u8]) -> Result<Dataset, CatalogError> {
    serde_json::from_slice(bytes).map_err(|source| CatalogError::CorruptRecord { id: id.to_owned(), source })
}
