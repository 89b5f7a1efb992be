use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{Mutex, broadcast};
use urbanmesh_policy::{Policy, PolicyError, Shape};

use super::{View, ViewSpec};
use crate::{CatalogError, CatalogInfo};

/// This node's view definitions in sled (tree `views`).
#[derive(Clone)]
pub struct ViewRecords {
    db: sled::Db,
    tree: sled::Tree,
    /// The datasets' tree: views and datasets share one namespace, since members read
    /// both by `<node>/<id>`.
    datasets: sled::Tree,
    info: Arc<CatalogInfo>,
    writing: Arc<Mutex<()>>,
    /// The catalogue's change notices, which federation replication follows.
    changes: broadcast::Sender<String>,
}

impl ViewRecords {
    pub(crate) fn open(
        db: sled::Db,
        datasets: sled::Tree,
        info: Arc<CatalogInfo>,
        changes: broadcast::Sender<String>,
    ) -> Result<Self, CatalogError> {
        let tree = db.open_tree("views")?;
        Ok(Self { db, tree, datasets, info, writing: Arc::default(), changes })
    }

    /// Refuses `id` for a new dataset when a view has it.
    pub(crate) fn refuse_taken(&self, id: &str) -> Result<(), CatalogError> {
        if self.contains(id)? {
            return Err(CatalogError::AlreadyExists { id: format!("{id} (a view)") });
        }
        Ok(())
    }

    fn changed(&self, id: &str) {
        let _ = self.changes.send(id.to_owned());
    }

    /// Validates and stores a new view; durable when this returns.
    pub async fn create(&self, spec: ViewSpec) -> Result<View, CatalogError> {
        let now = Utc::now();
        let view = self.checked(spec, now, now)?;
        {
            let _writing = self.writing.lock().await;
            if self.datasets.contains_key(view.id())? {
                return Err(CatalogError::AlreadyExists { id: format!("{} (a dataset)", view.id()) });
            }
            let swapped = self.tree.compare_and_swap(view.id(), None::<&[u8]>, Some(encode(&view)?))?;
            if swapped.is_err() {
                return Err(CatalogError::AlreadyExists { id: view.id().to_owned() });
            }
        }
        self.db.flush_async().await?;
        self.changed(view.id());
        Ok(view)
    }

    /// Replaces a view's definition; its policy stays unless the new one names one.
    pub async fn update(&self, spec: ViewSpec) -> Result<View, CatalogError> {
        let view = {
            let _writing = self.writing.lock().await;
            let current = self.get(&spec.id)?;
            let keeps_policy = spec.policy.is_none();
            let mut view = self.checked(spec, current.created, Utc::now())?;
            if keeps_policy {
                view.policy = current.policy;
            }
            self.tree.insert(view.id(), encode(&view)?)?;
            view
        };
        self.db.flush_async().await?;
        self.changed(view.id());
        Ok(view)
    }

    /// Whether a view of this id exists (no record is decoded).
    pub fn contains(&self, id: &str) -> Result<bool, CatalogError> {
        Ok(self.tree.contains_key(id)?)
    }

    pub fn get(&self, id: &str) -> Result<View, CatalogError> {
        let bytes = self.tree.get(id)?.ok_or_else(|| CatalogError::NotFound { id: id.to_owned() })?;
        decode(id, &bytes)
    }

    /// All views, ordered by id.
    pub fn list(&self) -> Result<Vec<View>, CatalogError> {
        self.tree
            .iter()
            .map(|item| {
                let (key, bytes) = item?;
                decode(&String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    /// Removes a view; durable when this returns.
    pub async fn delete(&self, id: &str) -> Result<View, CatalogError> {
        let bytes = {
            let _writing = self.writing.lock().await;
            self.tree.remove(id)?.ok_or_else(|| CatalogError::NotFound { id: id.to_owned() })?
        };
        self.db.flush_async().await?;
        self.changed(id);
        decode(id, &bytes)
    }

    fn checked(
        &self,
        mut spec: ViewSpec,
        created: chrono::DateTime<Utc>,
        modified: chrono::DateTime<Utc>,
    ) -> Result<View, CatalogError> {
        spec.validate()?;
        let policy = match spec.policy.take() {
            Some(policy) => self.checked_policy(&spec, policy)?,
            None => Policy::default(),
        };
        Ok(View { spec, tenant: self.info.municipality.clone(), created, modified, policy })
    }

    /// A view's policy says who may see it and its duties; what it shows is shaped by its
    /// sources' policies, so it has no rules of its own.
    fn checked_policy(&self, spec: &ViewSpec, policy: Policy) -> Result<Policy, CatalogError> {
        if !policy.rules.is_empty() {
            return Err(CatalogError::invalid(
                "policy.rules",
                "a view takes only visibility, attribution and licence; its sources' policies shape its rows",
            ));
        }
        let shape = Shape {
            columns: spec.schema.fields.iter().map(|f| f.name.as_str()).collect(),
            time_column: spec.time_column.as_deref(),
            series_key: spec.series_key.as_deref(),
        };
        policy.validate(&shape, &[]).map_err(|e| match e {
            PolicyError::Invalid { field, reason } => CatalogError::invalid(format!("policy.{field}"), reason),
            other => CatalogError::invalid("policy", other.to_string()),
        })
    }
}

fn encode(view: &View) -> Result<Vec<u8>, CatalogError> {
    serde_json::to_vec(view).map_err(|source| CatalogError::CorruptRecord { id: view.id().to_owned(), source })
}

fn decode(id: &str, bytes: &[u8]) -> Result<View, CatalogError> {
    serde_json::from_slice(bytes).map_err(|source| CatalogError::CorruptRecord { id: id.to_owned(), source })
}
