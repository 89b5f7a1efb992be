//! The latest released row of each series: what a map of stations, or a SensorThings
//! client asking for the current values, shows.
//!
//! The store keeps the latest stored row of each series ([`Store::latest`]). That index
//! lies below the grant, and the grant applies on the way out. It answers for a grant only
//! where "latest, then the grant" and "the grant, then latest" are the same rows: the
//! grant neither aggregates nor caps rows, releases the time column and the series key as
//! stored, and filters rows, if at all, on the series key alone. Any other grant is
//! answered from its whole output, sealed, with the latest row of each series taken on top.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, ident, lit};
use datafusion::prelude::DataFrame;
use futures::TryStreamExt;
use urbanmesh_policy::{AuditEntry, Grant, Interface, Outcome, Subject};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::{Store, Stored, TimeRange};

use crate::sealed::Released;
use crate::{DataspaceError, ReadGate, gate, grant};

/// The latest released row of each series, and the grant they were released under.
pub struct Latest {
    pub schema: SchemaRef,
    pub rows: Vec<RecordBatch>,
    pub grant: Grant,
}

const RANK: &str = "__urbanmesh_latest";

impl ReadGate {
    /// The latest row of each series of `dataset`, as `subject`'s grant releases it, with
    /// one access-log entry. Refused like any read; invalid where the dataset has no time
    /// column or series key, or the grant releases neither as stored.
    pub async fn latest(
        &self,
        subject: &Subject,
        dataset: &str,
        interface: Interface,
    ) -> Result<Latest, DataspaceError> {
        let request = ReadRequest::whole(dataset);
        let (described, grant) = self.decide(subject, &request, interface)?;
        let (Some(time), Some(key)) = (described.spec.time_column.clone(), described.spec.series_key.clone()) else {
            return Err(DataspaceError::InvalidRequest {
                reason: format!("dataset `{dataset}` has no time column and series key, so it has no latest values"),
            });
        };
        let (schema, rows) = latest_rows(&self.store, dataset, &time, &key, &grant).await?;
        let audit = AuditEntry::new(
            self.audit.clone(),
            gate::record(subject, &request, interface, Outcome::Permit, grant.describe()),
        );
        audit.served().add(rows.iter().map(|b| b.num_rows() as u64).sum(), 0);
        Ok(Latest { schema, rows, grant })
    }
}

/// The latest row of each series (by `key`, latest in `time`) of what `grant` releases of
/// `dataset`, computed on the store's query runtime within the query budgets.
pub async fn latest_rows(
    store: &Store,
    dataset: &str,
    time: &str,
    key: &str,
    grant: &Grant,
) -> Result<(SchemaRef, Vec<RecordBatch>), DataspaceError> {
    releases_series(time, key, grant)?;
    let frame = latest_frame(store, dataset, time, key, grant).await?;
    let scan =
        store.run(move |_| async move { frame.create_physical_plan().await.map_err(DataspaceError::from) }).await?;
    let schema = Arc::clone(&scan.schema);
    let rows: Vec<RecordBatch> = scan.batches.try_collect().await?;
    Ok((schema, rows))
}

async fn latest_frame(
    store: &Store,
    dataset: &str,
    time: &str,
    key: &str,
    grant: &Grant,
) -> Result<DataFrame, DataspaceError> {
    let session = store.session();
    if grant.aggregate.is_none()
        && grant.max_rows.is_none()
        && let Some(stored) = store.latest(dataset).await?
    {
        let frame = session.read_batch(stored)?;
        if filters_series_only(&frame, grant, key) {
            let stored = Stored { id: dataset.to_owned(), time_column: Some(time.to_owned()), frame };
            return grant::release(stored, grant);
        }
    }
    let released = grant::release(store.stored(dataset, TimeRange::default())?, grant)?;
    let sealed = session.read_table(Arc::new(Released::new(released)))?;
    let rank =
        row_number().partition_by(vec![ident(key)]).order_by(vec![ident(time).sort(false, true)]).build()?.alias(RANK);
    Ok(sealed.window(vec![rank])?.filter(ident(RANK).eq(lit(1u64)))?.drop_columns(&[RANK])?)
}

/// Latest rows per series need the time column and the series key as stored.
fn releases_series(time: &str, key: &str, grant: &Grant) -> Result<(), DataspaceError> {
    for column in [time, key] {
        let withheld = grant.masked.iter().any(|c| c == column)
            || grant.columns.as_ref().is_some_and(|columns| !columns.iter().any(|c| c == column));
        if withheld {
            return Err(DataspaceError::InvalidRequest {
                reason: format!(
                    "the column `{column}` is not released to you, so there are no latest values per series"
                ),
            });
        }
    }
    match &grant.aggregate {
        Some(aggregate) if !aggregate.by.as_ref().is_some_and(|by| by.iter().any(|c| c == key)) => {
            Err(DataspaceError::InvalidRequest {
                reason: format!("the series key `{key}` is aggregated away, so there are no latest values per series"),
            })
        }
        _ => Ok(()),
    }
}

/// Whether the grant's row filter, if any, reads the series key alone: then it keeps or
/// drops a series' rows all together, and the latest stored row decides for the series.
fn filters_series_only(frame: &DataFrame, grant: &Grant, key: &str) -> bool {
    let Some(filter) = &grant.row_filter else { return true };
    frame.parse_sql_expr(filter).is_ok_and(|expr| expr.column_refs().iter().all(|column| column.name == key))
}
