//! The latest row of each series (a station's current value), folded in as rows are
//! published, so that "the current value of every station" is answered without reading
//! a table's history. Regional views fold their assembled rows with it too.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{cast, interleave_record_batch};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use futures::StreamExt;

use crate::{Store, StoreError, TimeRange};

/// One row per series: for each value of the series key, the row with the latest time
/// (of rows with equal times, the one folded last). Rows without a time are left out.
#[derive(Debug, Clone)]
pub struct LatestRows {
    time: usize,
    key: usize,
    /// The latest rows, in the order their series first appeared.
    rows: RecordBatch,
    /// Series key → (its latest time, as the column's integer, and its row in `rows`).
    index: HashMap<ScalarValue, (i64, usize)>,
}

impl LatestRows {
    /// An empty index over rows of `schema`, or `None` when it lacks either column.
    pub fn new(schema: SchemaRef, time: &str, key: &str) -> Option<Self> {
        let time = schema.index_of(time).ok()?;
        let key = schema.index_of(key).ok()?;
        Some(Self { time, key, rows: RecordBatch::new_empty(schema), index: HashMap::new() })
    }

    /// Takes the rows of `batch` that are later than what is known of their series.
    pub fn fold(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        if batch.schema() != self.rows.schema() {
            return Err(ArrowError::SchemaError("a batch of another schema than the series' rows".into()));
        }
        let times = cast(batch.column(self.time), &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>();
        let keys = batch.column(self.key);
        // (source, row): source 0 is the current rows, 1 the batch.
        let mut picks: Vec<(usize, usize)> = (0..self.rows.num_rows()).map(|row| (0, row)).collect();
        let mut changed = false;
        for row in 0..batch.num_rows() {
            if times.is_null(row) {
                continue;
            }
            let time = times.value(row);
            let key = ScalarValue::try_from_array(keys.as_ref(), row)?;
            match self.index.get_mut(&key) {
                Some((latest, _)) if time < *latest => {}
                Some((latest, at)) => {
                    *latest = time;
                    picks[*at] = (1, row);
                    changed = true;
                }
                None => {
                    self.index.insert(key, (time, picks.len()));
                    picks.push((1, row));
                    changed = true;
                }
            }
        }
        if changed {
            self.rows = interleave_record_batch(&[&self.rows, batch], &picks)?;
        }
        Ok(())
    }

    /// The latest row of every series.
    pub fn rows(&self) -> &RecordBatch {
        &self.rows
    }
}

impl Store {
    /// The latest stored row of each series of dataset `id`, or `None` when it has no
    /// time column or no series key. Read from the index the table keeps once it is
    /// built; the first call builds it from all rows (on the query runtime, within the
    /// query budgets).
    pub async fn latest(&self, id: &str) -> Result<Option<RecordBatch>, StoreError> {
        let table = self.table(id)?;
        let (Some(time), Some(key)) = (table.time_column.clone(), table.series_key.clone()) else {
            return Ok(None);
        };
        let publishes = match table.latest() {
            Ok(rows) => return Ok(Some(rows)),
            Err(publishes) => publishes,
        };
        // The snapshot is cut after the publish count is read: a publish in between is
        // in the snapshot and makes the count differ, so the index is not kept.
        let stored = self.stored(id, TimeRange::default())?;
        let mut scan = self
            .run(move |_| async move { stored.frame.create_physical_plan().await.map_err(StoreError::from) })
            .await?;
        let mut latest = LatestRows::new(Arc::clone(&table.schema), &time, &key).ok_or_else(|| {
            StoreError::InvalidRequest { reason: format!("dataset `{id}` lacks `{time}` or `{key}`") }
        })?;
        while let Some(batch) = scan.batches.next().await {
            latest.fold(&batch?)?;
        }
        let rows = latest.rows().clone();
        table.keep_latest(publishes, latest);
        Ok(Some(rows))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};

    use super::*;

    fn batch(rows: &[(i64, Option<&str>, f64)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("station", DataType::Utf8, true),
            Field::new("value", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()).with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                Arc::new(Float64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
            ],
        )
        .expect("batch")
    }

    fn values(latest: &LatestRows) -> Vec<(Option<String>, f64)> {
        let rows = latest.rows();
        let names = rows.column(1).as_string::<i32>();
        let values = rows.column(2).as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        (0..rows.num_rows()).map(|i| (names.is_valid(i).then(|| names.value(i).to_owned()), values.value(i))).collect()
    }

    #[test]
    fn keeps_the_latest_row_of_each_series_whatever_order_rows_arrive_in() {
        let first = batch(&[(3, Some("a"), 1.0), (1, Some("b"), 2.0), (2, Some("a"), 3.0)]);
        let mut latest = LatestRows::new(first.schema(), "time", "station").expect("columns");
        latest.fold(&first).expect("fold");
        assert_eq!(values(&latest), vec![(Some("a".into()), 1.0), (Some("b".into()), 2.0)]);
        latest.fold(&batch(&[(2, Some("b"), 5.0), (0, Some("a"), 9.0), (1, None, 7.0)])).expect("fold");
        assert_eq!(values(&latest), vec![(Some("a".into()), 1.0), (Some("b".into()), 5.0), (None, 7.0)]);
        // Equal times: the row folded last wins, as a correction sent again would.
        latest.fold(&batch(&[(3, Some("a"), 4.0)])).expect("fold");
        assert_eq!(values(&latest)[0], (Some("a".into()), 4.0));
    }

    #[test]
    fn a_batch_of_another_shape_is_refused() {
        let first = batch(&[(1, Some("a"), 1.0)]);
        let mut latest = LatestRows::new(first.schema(), "time", "station").expect("columns");
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
            vec![Arc::new(datafusion::arrow::array::Int64Array::from(vec![1]))],
        )
        .expect("batch");
        assert!(latest.fold(&other).is_err());
        assert!(LatestRows::new(first.schema(), "time", "nope").is_none());
    }
}
