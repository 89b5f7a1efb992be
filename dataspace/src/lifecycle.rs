//! A dataset's life: published as a description and a table together, or neither; deleted
//! rows first. Every way of creating a dataset (REST, the workspace, the demo) comes here.

use urbanmesh_catalog::{Catalog, Dataset, DatasetSpec};
use urbanmesh_store::Store;

use crate::DataspaceError;

/// Describes a new dataset and makes its table, or neither: without its table, or with a
/// policy whose rules cannot apply to it, the record is taken back.
pub async fn publish(catalog: &Catalog, store: &Store, spec: DatasetSpec) -> Result<Dataset, DataspaceError> {
    let dataset = catalog.create(spec).await?;
    let stored = match store.create(&dataset).await {
        Ok(()) => crate::check_rules(store, &dataset).await,
        Err(error) => Err(error.into()),
    };
    if let Err(error) = stored {
        store.delete(dataset.id()).await.ok();
        catalog.delete(dataset.id()).await?;
        return Err(error);
    }
    tracing::info!(dataset = %dataset.id(), "dataset created");
    Ok(dataset)
}

/// Deletes a dataset. Rows first: a crash in between leaves an empty dataset, never
/// orphaned rows that a later dataset of the same id would inherit (start-up removes such
/// leftovers too).
pub async fn delete(catalog: &Catalog, store: &Store, id: &str) -> Result<(), DataspaceError> {
    catalog.get(id)?;
    store.delete(id).await?;
    catalog.delete(id).await?;
    tracing::info!(dataset = %id, "dataset deleted");
    Ok(())
}
