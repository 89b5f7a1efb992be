//! What a failed flush or a delete cut short leaves behind, shown in one process: a
//! failpoint's `error` stops the store at that instant, and reopening the same database
//! and folders is the restart.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::record_batch::RecordBatch;
use prometheus_client::registry::Registry;
use urbanmesh_catalog::{Dataset, DatasetSpec};
use urbanmesh_store::{Failpoints, Store, StoreConfig, StoreError, TimeRange};

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

/// `rows` measurements whose value is their index, from `offset`.
fn batch(offset: i64, rows: i64) -> RecordBatch {
    let start = 1_767_225_600_000;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values((offset..offset + rows).map(|i| start + i * 900_000))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values((offset..offset + rows).map(|i| format!("s{}", i % 3)))),
        Arc::new(Float64Array::from_iter_values((offset..offset + rows).map(|i| i as f64))),
    ];
    RecordBatch::try_new(dataset().arrow_schema(), columns).expect("batch")
}

/// Opens the store in `dir` with `failpoints` armed, waiting for an earlier instance to let go.
async fn open(dir: &Path, segment_rows: usize, failpoints: &str) -> Store {
    let meta = dir.join("meta");
    // A store shut down before lets go of the database once its background tasks end.
    wait_until("the database lock", || sled::open(&meta).is_ok()).await;
    let db = sled::open(&meta).expect("sled");
    let mut config = StoreConfig::new(dir.join("segments"));
    config.segment_rows = segment_rows;
    config.max_tail_age = Duration::from_secs(3600);
    config.failpoints = Failpoints::parse(failpoints).expect("failpoints");
    let store = Store::open(db, config, tokio::runtime::Handle::current(), &mut Registry::default()).expect("store");
    store.attach(&dataset()).expect("attach");
    store
}

/// The values stored, sorted.
async fn values(store: &Store) -> Vec<f64> {
    let batches: Vec<RecordBatch> =
        store.stored("pegel", TimeRange::default()).expect("stored").frame.collect().await.expect("batches");
    let mut values: Vec<f64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("value")
                .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
                .expect("value column")
                .values()
                .to_vec()
        })
        .collect();
    values.sort_by(f64::total_cmp);
    values
}

fn range(from: i64, to: i64) -> Vec<f64> {
    (from..to).map(|i| i as f64).collect()
}

/// Polls `condition` every 10 ms until it holds, failing after 30 s.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        poll.tick().await;
    }
}

async fn wait_for_segment(store: &Store) {
    wait_until("a segment", || store.stats("pegel").expect("stats").segments > 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_acknowledges_nothing_and_its_entries_never_return() {
    let dir = tempfile::tempdir().expect("tempdir");
    let withdrawn = dir.path().join("wal-withdrawn.jsonl");
    {
        let store = open(dir.path(), 1000, "").await;
        store.append("pegel", batch(0, 10)).await.expect("acknowledged");
        store.shutdown().await.expect("shutdown");
    }
    {
        // sled's flush succeeds, then the failpoint reports a failure: the entry is on disk
        // in the log, and only its recorded withdrawal keeps it from coming back.
        let store = open(dir.path(), 1000, "wal-flush:error").await;
        let error = store.append("pegel", batch(10, 5)).await.expect_err("flush fails");
        assert!(matches!(error, StoreError::Flush { .. }), "{error}");
        assert!(error.to_string().contains("nothing was stored"), "{error}");
        assert!(withdrawn.exists(), "the withdrawal is recorded before the writer hears of it");
        // Nothing is written after a failed fsync, not even by a writer that comes later.
        let error = store.append("pegel", batch(20, 5)).await.expect_err("writes stopped");
        assert!(matches!(error, StoreError::WritesStopped { .. }), "{error}");
        assert!(store.writable().is_err());
        let error = store.delete("pegel").await.expect_err("no delete either");
        assert!(matches!(error, StoreError::WritesStopped { .. }), "{error}");
        // Readers still see exactly what was acknowledged.
        assert_eq!(values(&store).await, range(0, 10));
        store.shutdown().await.expect("shutdown");
    }
    let store = open(dir.path(), 1000, "").await;
    assert_eq!(values(&store).await, range(0, 10), "only the acknowledged rows after the restart");
    assert!(!withdrawn.exists(), "the restart settles the withdrawal and forgets it");
    store.writable().expect("writable again");
    let appended = store.append("pegel", batch(30, 3)).await.expect("append after restart");
    assert_eq!(appended.rows, 3);
    let mut expected = range(0, 10);
    expected.extend(range(30, 33));
    assert_eq!(values(&store).await, expected);
}

/// Deletes a table with a segment and a tail, failing at `point`; after the restart the
/// table is whole (and its folder holds only what its manifest names) or empty.
async fn delete_cut_short_at(point: &str, whole_survives: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("segments/pegel");
    {
        let store = open(dir.path(), 100, &format!("{point}:error")).await;
        store.append("pegel", batch(0, 300)).await.expect("append");
        wait_for_segment(&store).await;
        store.append("pegel", batch(300, 7)).await.expect("append to the tail");
        let error = store.delete("pegel").await.expect_err("delete cut short");
        assert!(error.to_string().contains(point), "{point}: {error}");
        store.shutdown().await.expect("shutdown");
    }
    let store = open(dir.path(), 100, "").await;
    let stats = store.stats("pegel").expect("stats");
    if whole_survives {
        assert_eq!(values(&store).await, range(0, 307), "{point}: the whole table");
        let files = std::fs::read_dir(&folder).expect("folder").count();
        assert_eq!(files, stats.segments, "{point}: every file is a segment the manifest names");
    } else {
        assert_eq!(values(&store).await, Vec::<f64>::new(), "{point}: nothing of the table");
        assert_eq!((stats.rows, stats.segments), (0, 0), "{point}");
        assert!(!folder.exists(), "{point}: the leftover files are removed at start");
    }
    // The table works either way, and a delete now goes through.
    store.append("pegel", batch(1000, 2)).await.expect("append");
    store.delete("pegel").await.expect("delete");
    assert!(!folder.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_cut_short_before_the_tombstone_keeps_the_whole_table() {
    delete_cut_short_at("before-manifest-delete", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_cut_short_after_the_tombstone_leaves_nothing() {
    delete_cut_short_at("after-manifest-delete", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_cut_short_after_the_files_leaves_nothing() {
    delete_cut_short_at("after-segments-delete", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_right_after_the_first_segment_folder_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path(), 100, "segment-dir-created:error").await;
        store.append("pegel", batch(0, 250)).await.expect("append");
        // The compaction fails at the failpoint and leaves the rows in the log.
        wait_until("the segment folder", || dir.path().join("segments/pegel").exists()).await;
        store.shutdown().await.expect("shutdown");
    }
    let store = open(dir.path(), 100, "").await;
    assert_eq!(values(&store).await, range(0, 250));
    wait_for_segment(&store).await;
    assert_eq!(values(&store).await, range(0, 250), "compacted once, not twice");
}
