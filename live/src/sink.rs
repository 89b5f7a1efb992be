//! The durable write every connector ends in: rows whose key is stored are left out, the
//! rest are appended through the store's group commit, and only then does the connector
//! acknowledge what it received.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::record_batch::RecordBatch;
use urbanmesh_store::Store;

use crate::LiveError;
use crate::mapping::Mapper;
use crate::seen::Seen;
use crate::status::Tracker;

pub(crate) struct Sink {
    store: Store,
    dataset: String,
    mapper: Mapper,
    seen: Seen,
    pub(crate) tracker: Arc<Tracker>,
}

impl Sink {
    pub(crate) async fn open(
        store: Store,
        dataset: String,
        mapper: Mapper,
        tracker: Arc<Tracker>,
    ) -> Result<Self, LiveError> {
        let seen = Seen::load(&store, &dataset, &mapper).await?;
        Ok(Self { store, dataset, mapper, seen, tracker })
    }

    pub(crate) fn mapper(&self) -> &Mapper {
        &self.mapper
    }

    /// Stores the rows of `messages` (one batch per accepted message) durably, leaving out
    /// rows whose key is stored or came earlier among them. Returns once they are durable;
    /// on an error nothing of them counts as seen, so a redelivery stores them.
    pub(crate) async fn write(&mut self, messages: &[RecordBatch]) -> Result<(), LiveError> {
        let mut fresh: HashMap<Box<[u8]>, i64> = HashMap::new();
        let mut kept = Vec::with_capacity(messages.len());
        let mut duplicates = 0u64;
        for batch in messages {
            if !self.seen.has_key() {
                kept.push(batch.clone());
                continue;
            }
            let keys = self.seen.keys(batch)?;
            let mut keep = BooleanBuilder::with_capacity(keys.len());
            for (key, at) in keys {
                let new = !self.seen.contains(&key) && !fresh.contains_key(&key);
                if new {
                    fresh.insert(key, at);
                } else {
                    duplicates += 1;
                }
                keep.append_value(new);
            }
            let batch = filter_record_batch(batch, &keep.finish())?;
            if batch.num_rows() > 0 {
                kept.push(batch);
            }
        }
        let rows: usize = kept.iter().map(RecordBatch::num_rows).sum();
        if rows > 0 {
            let batch = concat_batches(self.mapper.schema(), &kept)?;
            self.store.append(&self.dataset, batch).await?;
        }
        for (key, at) in fresh {
            self.seen.insert(key, at);
        }
        self.tracker.stored(messages.len() as u64, rows as u64, duplicates);
        Ok(())
    }

    /// The newest row time stored in the dataset, where a pull resumes.
    pub(crate) fn newest_stored(&self) -> Option<DateTime<Utc>> {
        let extent = self.store.stats(&self.dataset).ok()?.extent?;
        DateTime::from_timestamp_micros(extent.last_micros)
    }
}
