//! Three real nodes in one process (the sandbox): a dataset one town shares reaches the
//! others as each may know it, and each member reads it under its own grant.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use urbanmesh::RunningNode;
use urbanmesh::sandbox::{Sandbox, eventually, peer};
use urbanmesh_catalog::{DatasetSpec, Derived};
use urbanmesh_policy::{Interface, Subject};
use urbanmesh_protocol::ReadRequest;

/// 2026-03-01T10:17:00Z, then a reading every 20 minutes until 12:57.
const FIRST_MS: i64 = 1_772_360_220_000;
const STEP_MS: i64 = 20 * 60_000;
const READINGS: i64 = 9;
const DEADLINE: Duration = Duration::from_secs(20);

fn passanten(partner: &str) -> DatasetSpec {
    serde_json::from_value(serde_json::json!({
        "id": "passanten", "title": "Passanten Innenstadt", "description": "Gezählte Passanten je Zone",
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "zone", "type": "utf8"},
                              {"name": "count", "type": "float64"}]},
        "time_column": "time", "series_key": "zone",
        "policy": {"visibility": "federation", "rules": [
            {"assignee": {"peers": [partner]}},
            {"assignee": "federation", "aggregate": {"bucket": "1h", "min_group": 2}}]}
    }))
    .expect("spec")
}

fn readings(spec: &DatasetSpec) -> RecordBatch {
    let schema = urbanmesh_catalog::Dataset {
        spec: spec.clone(),
        tenant: String::new(),
        created: chrono::Utc::now(),
        modified: chrono::Utc::now(),
        policy: Default::default(),
    }
    .arrow_schema();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values((0..READINGS).map(|i| FIRST_MS + i * STEP_MS))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values((0..READINGS).map(|_| "Markt"))),
        Arc::new(Float64Array::from_iter_values((0..READINGS).map(|i| i as f64))),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

fn replica_facts(node: &RunningNode, origin: &str) -> Option<Derived> {
    node.catalog.replica(origin, "passanten").ok().map(|replica| replica.entry.derived)
}

async fn rows_read_by(node: &RunningNode, subject: &Subject) -> usize {
    let opened = node.gate.open(subject, &ReadRequest::whole("passanten"), Interface::PeerFlight).await.expect("read");
    let batches: Vec<RecordBatch> = opened.scan.batches.try_collect().await.expect("rows");
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_dataset_reaches_each_member_as_that_member_may_know_and_read_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = Sandbox::start(dir.path(), "OWL", &["Herford", "Bielefeld", "Detmold"]).await.expect("sandbox");
    let [herford, bielefeld, detmold] = &sandbox.nodes[..] else { panic!("three nodes") };
    let (origin, partner, member) = (peer(herford).await, peer(bielefeld).await, peer(detmold).await);

    let spec = passanten(&partner);
    urbanmesh_dataspace::publish(&herford.catalog, &herford.store, spec.clone()).await.expect("publish");
    herford.store.append("passanten", readings(&spec)).await.expect("append");

    // The partner reads the rows as stored and knows their count and extent exactly; the
    // other member reads hourly aggregates and knows the extent to the hour.
    eventually("the partner's exact facts", DEADLINE, || async {
        replica_facts(bielefeld, &origin).and_then(|f| f.rows) == Some(9)
    })
    .await
    .expect("exact facts");
    eventually("the member's hourly facts", DEADLINE, || async {
        replica_facts(detmold, &origin).is_some_and(|f| f.rows.is_none() && f.first.is_some())
    })
    .await
    .expect("hourly facts");
    let hourly = replica_facts(detmold, &origin).expect("replica");
    assert_eq!(hourly.first.map(|t| t.to_rfc3339()), Some("2026-03-01T10:00:00+00:00".into()));
    assert_eq!(hourly.last.map(|t| t.to_rfc3339()), Some("2026-03-01T13:00:00+00:00".into()));
    assert_eq!(rows_read_by(herford, &Subject::Member { peer: partner }).await, 9);
    // 10:17, 10:37, 10:57 | 11:17, 11:37, 11:57 | 12:17, 12:37, 12:57: three hours.
    assert_eq!(rows_read_by(herford, &Subject::Member { peer: member }).await, 3);

    sandbox.stop().await.expect("stop");
}
