use chrono::Utc;

use crate::{CatalogError, Dataset, DatasetSpec};

/// Dataset records of this node, kept in one sled tree keyed by dataset id.
#[derive(Clone)]
pub struct Catalog {
    db: sled::Db,
    datasets: sled::Tree,
    tenant: String,
}

impl Catalog {
    pub fn open(db: sled::Db, tenant: impl Into<String>) -> Result<Self, CatalogError> {
        let datasets = db.open_tree("datasets")?;
        Ok(Self { db, datasets, tenant: tenant.into() })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Validates and stores a new dataset; durable when this returns.
    pub async fn create(&self, spec: DatasetSpec) -> Result<Dataset, CatalogError> {
        spec.validate()?;
        let now = Utc::now();
        let dataset = Dataset { spec, tenant: self.tenant.clone(), created: now, modified: now };
        let bytes = serde_json::to_vec(&dataset)
            .map_err(|source| CatalogError::CorruptRecord { id: dataset.id().to_owned(), source })?;
        let swapped = self.datasets.compare_and_swap(dataset.id(), None::<&[u8]>, Some(bytes))?;
        if swapped.is_err() {
            return Err(CatalogError::AlreadyExists { id: dataset.id().to_owned() });
        }
        self.db.flush_async().await?;
        Ok(dataset)
    }

    pub fn get(&self, id: &str) -> Result<Dataset, CatalogError> {
        let bytes = self.datasets.get(id)?.ok_or_else(|| CatalogError::NotFound { id: id.to_owned() })?;
        decode(id, &bytes)
    }

    /// All datasets, ordered by id.
    pub fn list(&self) -> Result<Vec<Dataset>, CatalogError> {
        self.datasets
            .iter()
            .map(|entry| {
                let (key, bytes) = entry?;
                decode(&String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    /// Removes the record; durable when this returns.
    pub async fn delete(&self, id: &str) -> Result<Dataset, CatalogError> {
        let bytes = self.datasets.remove(id)?.ok_or_else(|| CatalogError::NotFound { id: id.to_owned() })?;
        self.db.flush_async().await?;
        decode(id, &bytes)
    }
}

fn decode(id: &str, bytes: &[u8]) -> Result<Dataset, CatalogError> {
    serde_json::from_slice(bytes).map_err(|source| CatalogError::CorruptRecord { id: id.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> DatasetSpec {
        serde_json::from_value(serde_json::json!({
            "id": id, "title": "Pegel", "schema": {"fields": [{"name": "v", "type": "float64"}]}
        }))
        .expect("spec")
    }

    #[tokio::test]
    async fn records_survive_reopening_and_ids_are_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let catalog = Catalog::open(sled::open(dir.path()).expect("db"), "Gütersloh").expect("open");
            catalog.create(spec("b")).await.expect("create b");
            catalog.create(spec("a")).await.expect("create a");
            let again = catalog.create(spec("a")).await;
            assert!(matches!(again, Err(CatalogError::AlreadyExists { .. })));
        }
        let catalog = Catalog::open(sled::open(dir.path()).expect("db"), "Gütersloh").expect("reopen");
        let ids: Vec<_> = catalog.list().expect("list").iter().map(|d| d.id().to_owned()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(catalog.get("a").expect("get").tenant, "Gütersloh");
        catalog.delete("a").await.expect("delete");
        assert!(matches!(catalog.get("a"), Err(CatalogError::NotFound { .. })));
        assert!(matches!(catalog.delete("a").await, Err(CatalogError::NotFound { .. })));
    }
}
