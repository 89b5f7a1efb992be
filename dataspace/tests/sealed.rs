//! The sealed read path over a real store (sled and Parquet): ranges, filters, projections
//! and limits, and grants applied before any of them.

use std::sync::Arc;
use urbanmesh_policy::Grant;

use datafusion::arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use datafusion::arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use prometheus_client::registry::Registry;
use urbanmesh_catalog::{Dataset, DatasetSpec};
use urbanmesh_dataspace::{DataspaceError, scan};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::{Store, StoreConfig, StoreError};

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

async fn read(store: &Store, request: ReadRequest) -> Vec<RecordBatch> {
    scan(&store, &request, &Grant::owner()).await.expect("scan").batches.try_collect().await.expect("batches")
}

async fn read_granted(store: &Store, request: ReadRequest, grant: &Grant) -> Vec<RecordBatch> {
    scan(store, &request, grant).await.expect("scan").batches.try_collect().await.expect("batches")
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_apply_range_filter_projection_and_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dataset();
    let store = open(dir.path(), 500);
    store.append("pegel", batch(&dataset, 0, 960)).await.expect("append");
    store.append("pegel", batch(&dataset, 960, 40)).await.expect("append");
    let request = ReadRequest {
        dataset: "pegel".into(),
        columns: Some(vec!["value".into()]),
        from: Some("2026-01-02T00:00:00Z".parse().expect("from")),
        to: Some("2026-01-03T00:00:00Z".parse().expect("to")),
        filter: Some("station = 's0' AND value >= 100".into()),
        limit: None,
        purpose: None,
        for_public: false,
    };
    let batches = read(&store, request.clone()).await;
    assert_eq!(batches[0].schema().fields().len(), 1);
    let mut values: Vec<f64> = batches
        .iter()
        .flat_map(|b| b.column(0).as_any().downcast_ref::<Float64Array>().expect("f64").values().to_vec())
        .collect();
    values.sort_by(f64::total_cmp);
    let expected: Vec<f64> = (96..192).filter(|i| i % 3 == 0 && *i >= 100).map(|i| i as f64).collect();
    assert_eq!(values, expected);
    assert_eq!(rows(&read(&store, ReadRequest { limit: Some(7), ..ReadRequest::whole("pegel") }).await), 7);

    let bad =
        scan(&store, &ReadRequest { filter: Some("value >".into()), ..ReadRequest::whole("pegel") }, &Grant::owner())
            .await;
    assert!(matches!(bad, Err(DataspaceError::InvalidFilter { .. })));
    let bad =
        scan(&store, &ReadRequest { filter: Some("nope = 1".into()), ..ReadRequest::whole("pegel") }, &Grant::owner())
            .await;
    assert!(matches!(bad, Err(DataspaceError::InvalidFilter { .. })));
    let costly = ReadRequest { filter: Some("repeat(station, 100000000) = 'x'".into()), ..ReadRequest::whole("pegel") };
    let refusal = scan(&store, &costly, &Grant::owner()).await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(refusal.contains("not allowed in a filter"), "{refusal}");
    let cheap = ReadRequest { filter: Some("lower(station) IN ('s0', 's1')".into()), ..ReadRequest::whole("pegel") };
    assert_eq!(rows(&read(&store, cheap).await), 667);
    let bad = scan(
        &store,
        &ReadRequest { columns: Some(vec!["nope".into()]), ..ReadRequest::whole("pegel") },
        &Grant::owner(),
    )
    .await;
    assert!(matches!(bad, Err(DataspaceError::InvalidRequest { .. })));
    assert!(matches!(
        scan(&store, &ReadRequest::whole("other"), &Grant::owner()).await,
        Err(DataspaceError::Store(StoreError::UnknownTable { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_filter_mask_project_and_cap_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dataset();
    let store = open(dir.path(), 500);
    store.append("pegel", batch(&dataset, 0, 960)).await.expect("append");
    let whole = ReadRequest::whole("pegel");

    let filtered = Grant { row_filter: Some("value < 10".into()), ..Grant::owner() };
    assert_eq!(rows(&read_granted(&store, whole.clone(), &filtered).await), 10);

    let masked = Grant { masked: vec!["station".into()], ..Grant::owner() };
    let batches = read_granted(&store, whole.clone(), &masked).await;
    assert_eq!(rows(&batches), 960);
    assert!(batches.iter().all(|b| b.column_by_name("station").expect("station").null_count() == b.num_rows()));
    // A reader's filter sees the masked column as nulls, so it cannot probe the values.
    let probe = ReadRequest { filter: Some("station = 's0'".into()), ..whole.clone() };
    assert_eq!(rows(&read_granted(&store, probe, &masked).await), 0);

    let projected = Grant { columns: Some(vec!["time".into(), "value".into()]), max_rows: Some(5), ..Grant::owner() };
    let batches = read_granted(&store, whole.clone(), &projected).await;
    assert_eq!(rows(&batches), 5);
    assert_eq!(batches[0].schema().fields().len(), 2);
    let hidden = ReadRequest { columns: Some(vec!["station".into()]), ..whole.clone() };
    assert!(scan(&store, &hidden, &projected).await.is_err(), "a column the grant withholds cannot be asked for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregate_only_never_releases_a_group_below_k() {
    use datafusion::arrow::array::{Array, Int64Array};
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dataset();
    let store = open(dir.path(), 500);
    store.append("pegel", batch(&dataset, 0, 960)).await.expect("append");
    let aggregate = urbanmesh_policy::Aggregate {
        bucket: "1h".parse().expect("span"),
        min_group: 2,
        by: Some(vec!["station".into()]),
        weight: None,
    };
    let grant = Grant { aggregate: Some(aggregate), ..Grant::owner() };
    let batches = read_granted(&store, ReadRequest::whole("pegel"), &grant).await;
    // Four rows an hour over three stations: per hour one station has two rows, two have one.
    let mut expected = std::collections::HashMap::<(i64, i64), i64>::new();
    for i in 0..960i64 {
        *expected.entry((i / 4, i % 3)).or_default() += 1;
    }
    let released: i64 = expected.values().filter(|n| **n >= 2).sum();
    let mut seen = 0;
    for batch in &batches {
        let records = batch.column_by_name("records").expect("records");
        let records = records.as_any().downcast_ref::<Int64Array>().expect("int64");
        assert!(records.iter().all(|n| n.is_some_and(|n| n >= 2)), "a group below k was released");
        seen += records.values().iter().sum::<i64>();
        assert!(batch.column_by_name("value").is_some(), "measures keep their column names");
    }
    assert_eq!(seen, released);
    assert_eq!(rows(&batches), 240, "one group an hour reaches k");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_bounds_in_a_filter_read_the_same_rows_as_the_whole_read_filtered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dataset();
    // Four segments of 250 rows, about 2.6 days each.
    let store = open(dir.path(), 250);
    for part in 0..4 {
        store.append("pegel", batch(&dataset, part * 250, 250)).await.expect("append");
    }
    let aggregate = urbanmesh_policy::Aggregate {
        bucket: "1h".parse().expect("span"),
        min_group: 1,
        by: Some(vec!["station".into()]),
        weight: None,
    };
    let grants = [
        Grant::owner(),
        Grant { aggregate: Some(aggregate), ..Grant::owner() },
        Grant { masked: vec!["time".into()], ..Grant::owner() },
        // A cap releases the first rows in time order, whatever the reader's bounds.
        Grant { max_rows: Some(100), ..Grant::owner() },
    ];
    let filters = [
        "time >= '2026-01-04T10:30:00Z' AND time < '2026-01-06T00:00:00Z'",
        "time > '2026-01-04T10:15:00' AND time <= to_timestamp('2026-01-05T10:15:00Z') AND value > 2",
        "time BETWEEN '2026-01-03T00:00:00Z' AND '2026-01-03T12:00:00Z'",
        "time = '2026-01-07T03:00:00Z'",
    ];
    for grant in &grants {
        for filter in filters {
            let narrowed =
                read_granted(&store, ReadRequest { filter: Some(filter.into()), ..ReadRequest::whole("pegel") }, grant)
                    .await;
            // The same rows through a plan the filter cannot narrow: an OR with a false branch.
            let whole =
                ReadRequest { filter: Some(format!("({filter}) OR value < -1")), ..ReadRequest::whole("pegel") };
            let widened = read_granted(&store, whole, grant).await;
            assert_eq!(rows(&narrowed), rows(&widened), "{filter} under {grant:?}");
        }
    }
}
