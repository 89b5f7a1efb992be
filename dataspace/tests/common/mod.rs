//! The dataset the sealed-path tests read: a time series of stations and values.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::record_batch::RecordBatch;
use urbanmesh_catalog::{Dataset, DatasetSpec};

pub const START_MS: i64 = 1_767_225_600_000;
pub const STEP_MS: i64 = 900_000;
pub const STATIONS: &[&str] = &["a", "b", "7", "x"];

pub fn dataset(id: &str) -> Dataset {
    let spec: DatasetSpec = serde_json::from_value(serde_json::json!({
        "id": id, "title": "Pegel", "time_column": "time", "series_key": "station",
        "schema": {"fields": [
            {"name": "time", "type": "timestamp[ms, UTC]"},
            {"name": "station", "type": "utf8"},
            {"name": "value", "type": "float64"}]}
    }))
    .expect("spec");
    Dataset {
        spec,
        tenant: "Test".into(),
        created: chrono::Utc::now(),
        modified: chrono::Utc::now(),
        policy: Default::default(),
    }
}

/// One row every 15 minutes: (station index, value).
pub fn batch(dataset: &Dataset, rows: &[(usize, i64)]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values((0..rows.len() as i64).map(|i| START_MS + i * STEP_MS))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|(s, _)| STATIONS[*s]))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|(_, v)| *v as f64))),
    ];
    RecordBatch::try_new(dataset.arrow_schema(), columns).expect("batch")
}

pub fn at(step: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(START_MS + step * STEP_MS).expect("time")
}
