//! The store end to end on a real sled database and real Parquet files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::record_batch::RecordBatch;
use prometheus_client::registry::Registry;
use urbanmesh_catalog::{Dataset, DatasetSpec};
use urbanmesh_store::{Store, StoreConfig, TimeRange};

fn dataset() -> Dataset {
    let spec: DatasetSpec = serde_json::from_value(serde_json::json!({
        "id": "pegel", "title": "Pegel", "time_column": "time", "series_key": "station",
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

/// `rows` measurements every 15 minutes from 2026-01-01, starting at `offset`.
fn batch(dataset: &Dataset, offset: i64, rows: i64) -> RecordBatch {
    let start = 1_767_225_600_000;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values((offset..offset + rows).map(|i| start + i * 900_000))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values((offset..offset + rows).map(|i| format!("s{}", i % 3)))),
        Arc::new(Float64Array::from_iter_values((offset..offset + rows).map(|i| i as f64))),
    ];
    RecordBatch::try_new(dataset.arrow_schema(), columns).expect("batch")
}

fn open(dir: &std::path::Path, segment_rows: usize) -> Store {
    let db = sled::open(dir.join("meta")).expect("sled");
    let mut config = StoreConfig::new(dir.join("segments"));
    config.segment_rows = segment_rows;
    let store = Store::open(db, config, tokio::runtime::Handle::current(), &mut Registry::default()).expect("store");
    store.attach(&dataset()).expect("attach");
    store
}

async fn read(store: &Store, id: &str) -> Vec<RecordBatch> {
    store.stored(id, TimeRange::default()).expect("stored").frame.collect().await.expect("batches")
}

/// (station, value) of the latest row of each station, by station.
async fn latest(store: &Store) -> Vec<(String, f64)> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float64Type;
    let rows = store.latest("pegel").await.expect("latest").expect("a time column and a series key");
    let (stations, values) = (rows.column(1).as_string::<i32>(), rows.column(2).as_primitive::<Float64Type>());
    let mut latest: Vec<(String, f64)> =
        (0..rows.num_rows()).map(|i| (stations.value(i).to_owned(), values.value(i))).collect();
    latest.sort_by(|a, b| a.0.cmp(&b.0));
    latest
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        poll.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_rows_are_compacted_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dataset();
    {
        let store = open(dir.path(), 1000);
        for part in 0..5 {
            store.append("pegel", batch(&dataset, part * 400, 400)).await.expect("append");
        }
        wait_until("a segment", || store.stats("pegel").expect("stats").segments > 0).await;
        store.append("pegel", batch(&dataset, 2000, 10)).await.expect("append");
        assert_eq!(rows(&read(&store, "pegel").await), 2010);
        // The last 10 rows stay in the log only; reopening must replay them.
        store.shutdown().await.expect("shutdown");
    }
    // Background tasks let go of the database shortly after shutdown.
    let meta = dir.path().join("meta");
    wait_until("the database lock", || sled::open(&meta).is_ok()).await;
    let store = open(dir.path(), 1000);
    let stats = store.stats("pegel").expect("stats");
    assert_eq!(stats.rows, 2010);
    assert_eq!(rows(&read(&store, "pegel").await), 2010);
    assert!(
        std::fs::read_dir(dir.path().join("segments/pegel"))
            .expect("dir")
            .all(|f| { f.expect("entry").file_name().to_string_lossy().ends_with(".parquet") })
    ); // The latest row of each station, built from segments and log alike after the restart,
    // then kept up to date by appends.
    assert_eq!(latest(&store).await, vec![("s0".into(), 2007.0), ("s1".into(), 2008.0), ("s2".into(), 2009.0)]);
    store.append("pegel", batch(&dataset, 2010, 1)).await.expect("append");
    assert_eq!(latest(&store).await[0], ("s0".into(), 2010.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_table_removes_its_rows_and_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dataset();
    let store = open(dir.path(), 100);
    store.append("pegel", batch(&dataset, 0, 300)).await.expect("append");
    wait_until("a segment", || store.stats("pegel").expect("stats").segments > 0).await;
    store.delete("pegel").await.expect("delete");
    assert!(!dir.path().join("segments/pegel").exists());
    store.attach(&dataset).expect("attach again");
    assert_eq!(store.stats("pegel").expect("stats").rows, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickle_of_small_segments_is_merged_and_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dataset();
    let files = |dir: &std::path::Path| -> usize {
        std::fs::read_dir(dir.join("segments/pegel")).map_or(0, |d| {
            d.filter(|f| f.as_ref().is_ok_and(|f| f.file_name().to_string_lossy().ends_with(".parquet"))).count()
        })
    };
    {
        let db = sled::open(dir.path().join("meta")).expect("sled");
        let mut config = StoreConfig::new(dir.path().join("segments"));
        // Every append of 10 rows becomes a segment of its own, far below a full one.
        config.segment_rows = 400;
        config.max_tail_age = Duration::from_millis(1);
        config.retired_grace = Duration::ZERO;
        let store =
            Store::open(db, config, tokio::runtime::Handle::current(), &mut Registry::default()).expect("store");
        store.attach(&dataset).expect("attach");
        for part in 0..8 {
            store.append("pegel", batch(&dataset, part * 10, 10)).await.expect("append");
            let written = part as usize + 1;
            wait_until("the append to leave the log", || store.stats("pegel").expect("stats").tail_rows == 0).await;
            assert!(store.stats("pegel").expect("stats").segments <= written);
        }
        // Eight compactions, merged four at a time at least: a few segments hold every row.
        wait_until("small segments to be merged", || store.stats("pegel").expect("stats").segments < 4).await;
        let read = read(&store, "pegel").await;
        assert_eq!(rows(&read), 80);
        let values: Vec<f64> = read
            .iter()
            .flat_map(|b| b.column(2).as_any().downcast_ref::<Float64Array>().expect("values").values().to_vec())
            .collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted, (0..80).map(f64::from).collect::<Vec<_>>(), "every row once");
        // The merged segments' files go once no reader can use them.
        let segments = store.stats("pegel").expect("stats").segments;
        wait_until("retired files to go", || files(dir.path()) == segments).await;
        store.shutdown().await.expect("shutdown");
    }
    let meta = dir.path().join("meta");
    wait_until("the database lock", || sled::open(&meta).is_ok()).await;
    let store = open(dir.path(), 1000);
    assert_eq!(rows(&read(&store, "pegel").await), 80);
    assert_eq!(files(dir.path()), store.stats("pegel").expect("stats").segments);
}
