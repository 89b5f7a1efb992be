//! Assembling a view: every source fetched in parallel within its deadline, mapped to the
//! target schema, and merged; a source that fails is served from its last good result.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::SchemaRef;
use chrono::{DateTime, Utc};
use serde::Serialize;
use urbanmesh_catalog::view::View;

use super::aggregate::aggregate;
use super::conform::Mapping;
use super::mismatch::Mismatch;
use super::source::{self, Reader, Source};
use crate::{FlightError, ReadGate, Remote};
use urbanmesh_store::Store;

/// A view's merged table and how each source fared.
#[derive(Debug)]
pub struct Assembled {
    pub view: String,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub sources: Vec<SourceStatus>,
    pub assembled_at: DateTime<Utc>,
    pub took_ms: u64,
    /// The definition it was assembled from.
    pub(crate) definition: DateTime<Utc>,
    /// The catalogue's generation when it started: a new source or new rows make it old.
    pub(crate) generation: u64,
}

impl Assembled {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SourceStatus {
    pub node: String,
    pub dataset: String,
    pub status: Freshness,
    pub rows: usize,
    /// When the rows served were fetched.
    pub fetched_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    /// Why the source is stale, unavailable or mismatched.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Freshness {
    /// Fetched in this assembly.
    Fresh,
    /// Not answering now; its last good rows are served.
    Stale,
    /// Not answering, and nothing cached.
    Unavailable,
    /// Answering with rows that do not fit the view's schema; left out.
    Mismatched,
}

/// A source's last good rows, already in the view's shape.
#[derive(Clone)]
pub(crate) struct Good {
    batches: Vec<RecordBatch>,
    at: DateTime<Utc>,
}

/// Last good rows per source (`<municipality>/<dataset>`), for one view definition.
#[derive(Default)]
pub(crate) struct GoodRows {
    definition: Option<DateTime<Utc>>,
    rows: HashMap<String, Good>,
}

/// What assembling needs from the node.
pub(crate) struct Assembler<'a> {
    pub(crate) catalog: &'a urbanmesh_catalog::Catalog,
    pub(crate) gate: &'a ReadGate,
    pub(crate) remote: Option<&'a Remote>,
    pub(crate) own_peer: &'a str,
    /// Where the view's own aggregation runs, within the query budgets.
    pub(crate) store: &'a Store,
}

impl Assembler<'_> {
    pub(crate) async fn assemble(
        &self,
        view: &View,
        good: &std::sync::Mutex<GoodRows>,
    ) -> Result<Assembled, FlightError> {
        let started = Instant::now();
        let generation = self.catalog.generation()?;
        let reader = Reader::of(view, self.own_peer);
        let sources = source::matching(self.catalog, self.gate, view, &reader)?;
        let schema = view.described().arrow_schema();
        let deadline = view.spec.deadline();
        let fetches = sources.iter().map(|source| {
            let request = source::request(view, source, &reader);
            let reader = &reader;
            let schema = &schema;
            async move {
                let fetched = source::fetch(self.gate, self.remote, source, &request, reader, deadline).await;
                let shaped = match fetched {
                    Ok((arrived, batches)) => {
                        shape(self.store, view, source, &arrived, batches, schema).await.map_err(Failure::Mismatch)
                    }
                    Err(error) => Err(Failure::Fetch(error.to_string())),
                };
                (source, shaped)
            }
        });
        let results = futures::future::join_all(fetches).await;
        let now = Utc::now();
        let mut good = good.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if good.definition != Some(view.modified) {
            *good = GoodRows { definition: Some(view.modified), rows: HashMap::new() };
        }
        let mut batches = Vec::new();
        let mut statuses = Vec::with_capacity(results.len());
        for (source, shaped) in results {
            let key = source.key();
            let status = match shaped {
                Ok(rows) => {
                    batches.extend(rows.iter().cloned());
                    let status = status(source, Freshness::Fresh, &rows, Some(now), now, None);
                    good.rows.insert(key, Good { batches: rows, at: now });
                    status
                }
                Err(Failure::Mismatch(reason)) => {
                    tracing::warn!(view = %view.id(), source = %key, %reason, "source does not fit the view");
                    status(source, Freshness::Mismatched, &[], None, now, Some(reason.to_string()))
                }
                Err(Failure::Fetch(reason)) => match good.rows.get(&key) {
                    Some(cached) => {
                        batches.extend(cached.batches.iter().cloned());
                        status(source, Freshness::Stale, &cached.batches, Some(cached.at), now, Some(reason))
                    }
                    None => status(source, Freshness::Unavailable, &[], None, now, Some(reason)),
                },
            };
            statuses.push(status);
        }
        drop(good);
        // One table of few large batches: sources arrive in many small ones, and every batch
        // costs a message when the view is sent.
        let batches = coalesce(&schema, batches)?;
        Ok(Assembled {
            view: view.id().to_owned(),
            schema,
            batches,
            sources: statuses,
            assembled_at: now,
            took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            definition: view.modified,
            generation,
        })
    }
}

enum Failure {
    Fetch(String),
    Mismatch(Mismatch),
}

fn status(
    source: &Source,
    freshness: Freshness,
    rows: &[RecordBatch],
    fetched_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    error: Option<String>,
) -> SourceStatus {
    SourceStatus {
        node: source.node.clone(),
        dataset: source.dataset.clone(),
        status: freshness,
        rows: rows.iter().map(RecordBatch::num_rows).sum(),
        fetched_at,
        age_seconds: fetched_at.map(|at| (now - at).num_seconds()),
        error,
    }
}

/// One source's rows in the view's result schema (mapped, converted, aggregated).
async fn shape(
    store: &Store,
    view: &View,
    source: &Source,
    arrived: &SchemaRef,
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, Mismatch> {
    let spec = &view.spec;
    let target = spec.schema.to_arrow();
    let mapping = Mapping::plan(spec, &source.key(), &source.spec, arrived, target)?;
    let conformed_schema = conformed_schema(spec);
    let conformed = batches
        .iter()
        .map(|batch| mapping.apply(batch, &source.node, &source.dataset, &conformed_schema))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = match (&spec.aggregate, &spec.time_column, spec.bucket()) {
        (Some(rule), Some(time), Some(bucket)) => {
            let order: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            aggregate(store, conformed, time, bucket.as_secs(), rule, &order).await?
        }
        _ => conformed,
    };
    rows.iter().filter(|b| b.num_rows() > 0).map(|batch| fit(batch, schema)).collect()
}

/// Batches of up to [`COALESCED_ROWS`] rows.
fn coalesce(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, FlightError> {
    let mut merged = Vec::new();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut rows = 0;
    for batch in batches {
        rows += batch.num_rows();
        pending.push(batch);
        if rows >= COALESCED_ROWS {
            merged.push(concat_batches(schema, &pending).map_err(arrow_flight::error::FlightError::Arrow)?);
            pending.clear();
            rows = 0;
        }
    }
    if !pending.is_empty() {
        merged.push(concat_batches(schema, &pending).map_err(arrow_flight::error::FlightError::Arrow)?);
    }
    Ok(merged)
}

const COALESCED_ROWS: usize = 128 * 1024;

/// The target schema, nullable throughout, with the provenance columns.
fn conformed_schema(spec: &urbanmesh_catalog::view::ViewSpec) -> SchemaRef {
    let mut fields = spec.schema.fields.clone();
    for field in &mut fields {
        field.nullable = true;
    }
    fields.extend(spec.result_fields().into_iter().rev().take(2).rev());
    urbanmesh_catalog::SchemaSpec { fields }.to_arrow()
}

/// A batch in exactly the result schema (types and nullability), column by column.
fn fit(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, Mismatch> {
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
