//! Which row keys are stored, so that a message delivered twice is stored once.
//!
//! The set is rebuilt from the stored rows when a connector starts: a row is "seen" exactly
//! when it is durable, whether or not its message was acknowledged before a crash. It holds
//! the keys of rows within a window of row time (the newest row time minus [`WINDOW`]), so
//! it stays bounded however long the connector runs.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::{Array, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use urbanmesh_store::{Store, TimeRange};

use crate::LiveError;
use crate::mapping::Mapper;

/// How far back in row time a duplicate is recognised.
pub(crate) const WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// Keys held before the ones outside the window are dropped.
const PRUNE_AT: usize = 1 << 20;

/// Each row's key (its key columns in Arrow's row format) and its time in milliseconds.
pub(crate) type RowKeys = Vec<(Box<[u8]>, i64)>;

pub(crate) struct Seen {
    converter: Option<RowConverter>,
    key: Arc<[usize]>,
    time: Option<usize>,
    /// Key → row time in milliseconds (the time it was seen, without a time column).
    keys: HashMap<Box<[u8]>, i64>,
    newest: i64,
}

impl Seen {
    /// The keys of the rows of `dataset` stored within the window.
    pub(crate) async fn load(store: &Store, dataset: &str, mapper: &Mapper) -> Result<Self, LiveError> {
        let fields = mapper.key.iter().map(|&i| SortField::new(mapper.schema().field(i).data_type().clone())).collect();
        let converter = if mapper.key.is_empty() { None } else { Some(RowConverter::new(fields)?) };
        let mut seen =
            Self { converter, key: Arc::clone(&mapper.key), time: mapper.time, keys: HashMap::new(), newest: 0 };
        if seen.converter.is_none() {
            return Ok(seen);
        }
        let range = match mapper.time {
            Some(_) => TimeRange { from: Some(Utc::now() - WINDOW), to: None },
            None => TimeRange::default(),
        };
        let stored = store.stored(dataset, range)?;
        // The key columns, then the time column unless it is one of them.
        let mut selected: Vec<usize> = mapper.key.to_vec();
        if let Some(time) = mapper.time.filter(|t| !selected.contains(t)) {
            selected.push(time);
        }
        let time = mapper.time.and_then(|t| selected.iter().position(|&s| s == t));
        let schema = Arc::new(mapper.schema().project(&selected)?);
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let frame = stored.frame.select_columns(&names)?;
        let batches = store
            .query_runtime()
            .spawn(async move { frame.collect().await })
            .await
            .map_err(|e| LiveError::Task(e.to_string()))??;
        let positions: Vec<usize> = (0..mapper.key.len()).collect();
        for batch in batches {
            let batch = RecordBatch::try_new(Arc::clone(&schema), batch.columns().to_vec())?;
            for (key, at) in seen.keys_of(&batch, &positions, time)? {
                seen.insert(key, at);
            }
        }
        Ok(seen)
    }

    /// Each row's key and time, in row order; empty without a key.
    pub(crate) fn keys(&self, batch: &RecordBatch) -> Result<RowKeys, LiveError> {
        self.keys_of(batch, &self.key, self.time)
    }

    fn keys_of(&self, batch: &RecordBatch, key: &[usize], time: Option<usize>) -> Result<RowKeys, LiveError> {
        let Some(converter) = &self.converter else { return Ok(Vec::new()) };
        let columns: Vec<_> = key.iter().map(|&i| Arc::clone(batch.column(i))).collect();
        let rows = converter.convert_columns(&columns)?;
        let times = match time {
            Some(index) => Some(millis(batch.column(index))?),
            None => None,
        };
        let now = Utc::now().timestamp_millis();
        Ok(rows
            .iter()
            .enumerate()
            .map(|(row, key)| {
                let at = times.as_ref().filter(|t| t.is_valid(row)).map_or(now, |t| t.value(row));
                (Box::from(key.as_ref()), at)
            })
            .collect())
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key)
    }

    pub(crate) fn insert(&mut self, key: Box<[u8]>, at: i64) {
        self.newest = self.newest.max(at);
        self.keys.insert(key, at);
        if self.keys.len() >= PRUNE_AT {
            let oldest = self.newest - WINDOW.num_milliseconds();
            self.keys.retain(|_, at| *at >= oldest);
        }
    }

    pub(crate) fn has_key(&self) -> bool {
        self.converter.is_some()
    }
}

/// A timestamp column in milliseconds.
fn millis(column: &dyn Array) -> Result<Int64Array, LiveError> {
    let as_millis = cast(column, &DataType::Timestamp(TimeUnit::Millisecond, None))?;
    let as_int = cast(&as_millis, &DataType::Int64)?;
    as_int
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| LiveError::Task("a time column is not a timestamp".into()))
}
