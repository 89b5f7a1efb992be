//! Keeps each dataset's derived metadata (row count, time extent, last change) current:
//! the store announces which datasets received rows, the catalogue records what changed.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast::error::RecvError;
use urbanmesh_catalog::{Catalog, Derived};
use urbanmesh_store::{Store, TableStats, TimeExtent};

use crate::DataspaceError;

/// Changes arriving within this window are recorded together.
const SETTLE: Duration = Duration::from_millis(200);

/// Records what the store holds now for every dataset (at start-up, and after a lag).
pub async fn refresh_all(catalog: &Catalog, store: &Store, touched: bool) -> Result<(), DataspaceError> {
    for dataset in catalog.list()? {
        refresh(catalog, store, dataset.id(), touched).await?;
    }
    Ok(())
}

/// Follows the store's change notices until the store stops.
pub async fn follow(catalog: Catalog, store: Store) {
    let mut changes = store.subscribe();
    loop {
        let mut ids = HashSet::new();
        let mut lagged = false;
        match changes.recv().await {
            Ok(id) => {
                ids.insert(id);
            }
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return,
        }
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                () = &mut settle => break,
                change = changes.recv() => match change {
                    Ok(id) => { ids.insert(id); }
                    Err(RecvError::Lagged(_)) => lagged = true,
                    Err(RecvError::Closed) => break,
                },
            }
        }
        let result = match lagged {
            true => refresh_all(&catalog, &store, true).await,
            false => {
                async {
                    for id in &ids {
                        refresh(&catalog, &store, id, true).await?;
                    }
                    Ok(())
                }
                .await
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "recording derived metadata failed");
        }
    }
}

async fn refresh(catalog: &Catalog, store: &Store, id: &str, touched: bool) -> Result<(), DataspaceError> {
    // A dataset deleted meanwhile has nothing left to describe.
    let Ok(stats) = store.stats(id) else { return Ok(()) };
    let Ok(previous) = catalog.derived(id) else { return Ok(()) };
    let derived = derive(&stats, previous.data_modified, touched.then(Utc::now));
    match catalog.record_derived(id, derived).await {
        Ok(()) | Err(urbanmesh_catalog::CatalogError::NotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

fn derive(stats: &TableStats, modified: Option<DateTime<Utc>>, now: Option<DateTime<Utc>>) -> Derived {
    let instant = |micros: i64| DateTime::<Utc>::from_timestamp_micros(micros);
    Derived {
        rows: Some(stats.rows),
        first: stats.extent.and_then(|e: TimeExtent| instant(e.first_micros)),
        last: stats.extent.and_then(|e| instant(e.last_micros)),
        data_modified: now.or(modified),
    }
}
