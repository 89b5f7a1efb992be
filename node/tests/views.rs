//! A regional view assembled across a sandbox federation: each source read under its
//! owner's policy, a source that does not fit the target schema left out with the reason,
//! the others served. (Moved here from the black-box suite.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use urbanmesh::RunningNode;
use urbanmesh::sandbox::{Sandbox, eventually, peer};
use urbanmesh_catalog::DatasetSpec;
use urbanmesh_catalog::view::ViewSpec;
use urbanmesh_flight::Freshness;
use urbanmesh_policy::{Interface, Subject};

const DEADLINE: Duration = Duration::from_secs(10);
/// 2026-03-01T10:00:00Z; four readings an hour for two hours.
const START_MS: i64 = 1_772_359_200_000;
const STEP_MS: i64 = 15 * 60_000;
const READINGS: i64 = 8;

fn pegel(id: &str, unit: &str, rules: serde_json::Value) -> DatasetSpec {
    serde_json::from_value(serde_json::json!({
        "id": id, "title": format!("Pegel {id}"), "description": "Wasserstände, 15-Minuten-Werte",
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                              {"name": "value", "type": "float64", "unit": unit}]},
        "time_column": "time", "series_key": "station", "keywords": ["Pegel", "Sichttest"], "themes": ["ENVI"],
        "policy": {"visibility": "federation", "rules": rules}
    }))
    .expect("spec")
}

/// Station `station`'s readings: 100, 101, … (in the dataset's unit).
fn readings(node: &RunningNode, id: &str, station: &str) -> RecordBatch {
    let schema = node.catalog.get(id).expect("dataset").arrow_schema();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMillisecondArray::from_iter_values((0..READINGS).map(|i| START_MS + i * STEP_MS))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values((0..READINGS).map(|_| station))),
        Arc::new(Float64Array::from_iter_values((0..READINGS).map(|i| 100.0 + i as f64))),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

async fn source(node: &RunningNode, spec: DatasetSpec, station: &str) {
    let id = spec.id.clone();
    urbanmesh_dataspace::publish(&node.catalog, &node.store, spec).await.expect("publish");
    node.store.append(&id, readings(node, &id, station)).await.expect("append");
}

/// Rows per (source node, station), with their values.
fn rows_by_source(batches: &[RecordBatch]) -> BTreeMap<(String, String), Vec<f64>> {
    let mut rows: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for batch in batches {
        let column = |name: &str| batch.column_by_name(name).expect(name).clone();
        let (node, station, value) = (column("source_node"), column("station"), column("value"));
        let node = node.as_any().downcast_ref::<StringArray>().expect("utf8");
        let station = station.as_any().downcast_ref::<StringArray>().expect("utf8");
        let value = value.as_any().downcast_ref::<Float64Array>().expect("float64");
        for i in 0..batch.num_rows() {
            let key = (node.value(i).to_owned(), station.value(i).to_owned());
            rows.entry(key).or_default().push(value.value(i));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_serves_each_source_as_its_owner_allows_and_names_what_does_not_fit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let owl = Sandbox::start(dir.path(), "OWL", &["Guetersloh", "Bielefeld", "Herford"]).await.expect("sandbox");
    let [guetersloh, bielefeld, herford] = &owl.nodes[..] else { panic!("three") };
    let everyone = serde_json::json!([{"assignee": "federation"}]);
    source(guetersloh, pegel("pegel-gt", "cm", everyone.clone()), "DALKE").await;
    // Metres: converted to the view's centimetres.
    source(bielefeld, pegel("pegel-bi", "m", everyone.clone()), "LUTTER").await;
    // A temperature where the view wants a length: mismatched, left out.
    source(bielefeld, pegel("temp-bi", "°C", everyone), "SCHLOSSHOF").await;
    // Members may read Herford's only as hourly aggregates.
    let hourly = serde_json::json!([{"assignee": "federation", "aggregate": {"bucket": "1h", "min_group": 1}}]);
    source(herford, pegel("pegel-hf", "cm", hourly), "WERRE").await;
    let (b, h) = (peer(&owl.nodes[1]).await, peer(&owl.nodes[2]).await);
    eventually("the members' sources known at Gütersloh", DEADLINE, || async {
        ["pegel-bi", "temp-bi"].iter().all(|id| guetersloh.catalog.replica(&b, id).is_ok())
            && guetersloh.catalog.replica(&h, "pegel-hf").is_ok()
    })
    .await
    .expect("replicated");

    let spec: ViewSpec = serde_json::from_value(serde_json::json!({
        "id": "pegel-owl", "title": "Pegelstände OWL", "description": "Alle Pegel des Sichttests",
        "select": {"keywords": ["Sichttest"]},
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                              {"name": "value", "type": "float64", "unit": "cm", "nullable": true}]},
        "time_column": "time", "series_key": "station", "refresh": "0s"
    }))
    .expect("view");
    guetersloh.catalog.views().create(spec).await.expect("create");
    let read = guetersloh.views.read(&Subject::Admin, "pegel-owl", Interface::View).await.expect("read");

    let rows = rows_by_source(&read.assembled.batches);
    let node = |name: &str| name.to_owned();
    let expected: Vec<f64> = (0..READINGS).map(|i| 100.0 + i as f64).collect();
    assert_eq!(rows[&(node("Guetersloh"), "DALKE".into())], expected);
    let converted: Vec<f64> = expected.iter().map(|v| v * 100.0).collect();
    assert_eq!(rows[&(node("Bielefeld"), "LUTTER".into())], converted, "metres became centimetres");
    let werre = &rows[&(node("Herford"), "WERRE".into())];
    assert_eq!(werre.len(), 2, "two hourly aggregates, not eight readings: {werre:?}");
    assert_eq!(rows.len(), 3, "{rows:?}");

    let status = |dataset: &str| read.assembled.sources.iter().find(|s| s.dataset == dataset).expect(dataset);
    for fresh in ["pegel-gt", "pegel-bi", "pegel-hf"] {
        assert_eq!(status(fresh).status, Freshness::Fresh, "{:?}", status(fresh));
    }
    let misfit = status("temp-bi");
    assert_eq!((misfit.status, misfit.rows), (Freshness::Mismatched, 0));
    assert!(misfit.error.as_deref().is_some_and(|e| e.contains("°C")), "{misfit:?}");
    drop(read);
    owl.stop().await.expect("stop");
}
