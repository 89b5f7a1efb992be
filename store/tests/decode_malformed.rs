//! Generated and structure-aware malformed bodies for the CSV, JSON and NDJSON decoders:
//! none panics, every refusal names the rows and columns at fault, and a refused body
//! leaves the store as it was (checked through a real store).

mod common;

use std::cell::Cell;
use std::sync::Arc;

use common::*;
use datafusion::arrow::record_batch::RecordBatch;
use prometheus_client::registry::Registry;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use urbanmesh_catalog::{Dataset, DatasetSpec};
use urbanmesh_store::decode::{DecodeLimits, Format, decode};
use urbanmesh_store::{Store, StoreConfig, StoreError};

fn read(format: Format, body: &[u8]) -> Result<RecordBatch, StoreError> {
    decode(format, schema(), body, &DecodeLimits::default())
}

/// One generated row: a station and a value, each written well or badly.
#[derive(Debug, Clone)]
struct Row {
    station: Option<String>,
    value: Value,
}

#[derive(Debug, Clone)]
enum Value {
    Number(f64),
    Missing,
    /// Text that is no number: the row must be refused, naming `value`.
    Garbage(String),
}

impl Row {
    /// Whether the dataset accepts the row (`station` is required, `value` optional).
    fn good(&self) -> bool {
        self.station.is_some() && !matches!(self.value, Value::Garbage(_))
    }

    fn csv(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let value = match &self.value {
            Value::Number(n) => n.to_string(),
            Value::Missing => String::new(),
            Value::Garbage(g) => quote(g),
        };
        format!("{},{value}\n", self.station.as_deref().map(quote).unwrap_or_default())
    }

    fn json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        if let Some(station) = &self.station {
            object.insert("station".into(), station.clone().into());
        }
        match &self.value {
            Value::Number(n) => drop(object.insert("value".into(), (*n).into())),
            Value::Missing => {}
            Value::Garbage(g) => drop(object.insert("value".into(), g.clone().into())),
        }
        object.into()
    }
}

fn row() -> impl Strategy<Value = Row> {
    let station = prop_oneof![4 => "[A-Za-zäöü][A-Za-zäöüß ,;\"\n-]{0,11}".prop_map(Some), 1 => Just(None)];
    let value = prop_oneof![
        4 => (-1e9f64..1e9).prop_map(Value::Number),
        1 => Just(Value::Missing),
        1 => "x[a-z]{0,3}[ !]{0,3}".prop_map(Value::Garbage),
    ];
    (station, value).prop_map(|(station, value)| Row { station, value })
}

/// Every refused body names exactly the bad rows (1-based among the data rows).
fn assert_names_bad_rows(rows: &[Row], result: &Result<RecordBatch, StoreError>) -> Result<(), TestCaseError> {
    let bad: Vec<usize> = rows.iter().enumerate().filter(|(_, r)| !r.good()).map(|(i, _)| i + 1).collect();
    match result {
        Ok(batch) => {
            prop_assert!(bad.is_empty(), "bad rows {bad:?} were accepted");
            prop_assert_eq!(batch.num_rows(), rows.len());
        }
        Err(StoreError::Empty) => prop_assert!(rows.is_empty()),
        Err(error @ StoreError::InvalidRows { errors, rejected, total }) => {
            assert_explained(error);
            prop_assert_eq!(*total, rows.len());
            prop_assert_eq!(*rejected, bad.len());
            let named: Vec<usize> = errors.iter().map(|e| e.row).collect();
            let mut unique = named.clone();
            unique.dedup();
            prop_assert_eq!(&unique, &bad);
            for error in errors {
                let column = error.column.as_deref();
                prop_assert!(column == Some("station") || column == Some("value"), "{:?}", error);
            }
        }
        Err(other) => prop_assert!(false, "unexpected {other:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_decoded_or_refused_with_a_reason(body in prop::collection::vec(any::<u8>(), 0..400)) {
        for format in [Format::Csv, Format::Json, Format::NdJson, Format::Xlsx] {
            if let Err(error) = read(format, &body) {
                assert_explained(&error);
            }
        }
    }

    #[test]
    fn text_that_looks_nearly_right_is_decoded_or_refused(body in "[\\[\\]{}\",:;\\n\\r\\t a-z0-9.eE+-]{0,300}") {
        for format in [Format::Csv, Format::Json, Format::NdJson] {
            if let Err(error) = read(format, body.as_bytes()) {
                assert_explained(&error);
            }
        }
    }

    #[test]
    fn csv_refusals_name_every_bad_row(rows in prop::collection::vec(row(), 0..20)) {
        let body: String = std::iter::once("station,value\n".to_owned()).chain(rows.iter().map(Row::csv)).collect();
        assert_names_bad_rows(&rows, &read(Format::Csv, body.as_bytes()))?;
    }

    #[test]
    fn json_refusals_name_every_bad_row(rows in prop::collection::vec(row(), 0..20)) {
        let body = serde_json::Value::Array(rows.iter().map(Row::json).collect()).to_string();
        assert_names_bad_rows(&rows, &read(Format::Json, body.as_bytes()))?;
    }

    #[test]
    fn ndjson_refusals_name_every_bad_row_and_its_line(rows in prop::collection::vec(row(), 0..20)) {
        let body: String = rows.iter().map(|r| format!("{}\n", r.json())).collect();
        let result = read(Format::NdJson, body.as_bytes());
        assert_names_bad_rows(&rows, &result)?;
        if let Err(StoreError::InvalidRows { errors, .. }) = &result {
            for error in errors {
                prop_assert_eq!(error.line, Some(error.row));
            }
        }
    }

    #[test]
    fn a_broken_ndjson_line_is_named(rows in prop::collection::vec(row(), 1..10), broken in 0usize..10, cut in 1usize..8) {
        let mut lines: Vec<Vec<u8>> = rows.iter().map(|r| r.json().to_string().into_bytes()).collect();
        let broken = broken % lines.len();
        let line = &mut lines[broken];
        line.truncate(line.len() - cut.min(line.len() - 1)); // a line cut to nothing would be blank
        let body = lines.join(&b'\n');
        let Err(StoreError::InvalidRows { errors, .. }) = read(Format::NdJson, &body) else {
            return Err(TestCaseError::fail("a broken line was accepted"));
        };
        prop_assert!(errors.iter().any(|e| e.line == Some(broken + 1) && e.reason.contains("JSON")), "{:?}", errors);
    }
}

fn dataset() -> Dataset {
    let spec: DatasetSpec = serde_json::from_value(serde_json::json!({
        "id": "pegel", "title": "Pegel",
        "schema": {"fields": [
            {"name": "station", "type": "utf8"},
            {"name": "value", "type": "float64", "nullable": true}]}
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

/// Decodes generated bodies of every format and appends what decodes, as the ingest
/// endpoints do: after every refused body the store holds exactly the rows of the
/// bodies accepted before it.
#[test]
fn refused_bodies_leave_the_store_untouched() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = runtime.block_on(async {
        let db = sled::open(dir.path().join("meta")).expect("sled");
        let store = Store::open(
            db,
            StoreConfig::new(dir.path().join("segments")),
            runtime.handle().clone(),
            &mut Registry::default(),
        )
        .expect("store");
        store.attach(&dataset()).expect("attach");
        store
    });
    assert_eq!(*store.schema("pegel").expect("schema"), *schema());
    let stored = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (accepted, refused) = (Cell::new(0), Cell::new(0));
    let mut runner = TestRunner::new(Config { cases: 96, failure_persistence: None, ..Config::default() });
    let bodies = (prop::collection::vec(row(), 1..12), 0u8..4);
    runner
        .run(&bodies, |(mut rows, format)| {
            if format == 3 {
                // A sheet row without cells is blank and skipped, as spreadsheets have them.
                rows.retain(|r| r.station.is_some() || !matches!(r.value, Value::Missing));
                // A sheet of blank rows only holds no rows: refused as empty, like an empty CSV above.
                prop_assume!(!rows.is_empty());
            }
            let (format, body) = match format {
                0 => (
                    Format::Csv,
                    std::iter::once("station,value\n".to_owned())
                        .chain(rows.iter().map(Row::csv))
                        .collect::<String>()
                        .into_bytes(),
                ),
                1 => (
                    Format::Json,
                    serde_json::Value::Array(rows.iter().map(Row::json).collect()).to_string().into_bytes(),
                ),
                2 => (Format::NdJson, rows.iter().map(|r| format!("{}\n", r.json())).collect::<String>().into_bytes()),
                _ => {
                    let cells: Vec<String> =
                        std::iter::once(format!("{}{}", inline("A1", "station"), inline("B1", "value")))
                            .chain(rows.iter().enumerate().map(|(i, r)| {
                                let at = i + 2;
                                let station = r
                                    .station
                                    .as_deref()
                                    .map(|s| inline(&format!("A{at}"), &xml_text(s)))
                                    .unwrap_or_default();
                                let value = match &r.value {
                                    Value::Number(n) => number(&format!("B{at}"), &n.to_string()),
                                    Value::Missing => String::new(),
                                    Value::Garbage(g) => inline(&format!("B{at}"), g),
                                };
                                format!("{station}{value}")
                            }))
                            .collect();
                    (Format::Xlsx, workbook(&sheet(&format!("A1:B{}", rows.len() + 1), &cells), None))
                }
            };
            let result = read(format, &body);
            let before = store.stats("pegel").expect("stats").rows as usize;
            prop_assert_eq!(before, stored.load(std::sync::atomic::Ordering::SeqCst));
            match result {
                Ok(batch) => {
                    prop_assert!(rows.iter().all(Row::good), "{format:?} accepted bad rows");
                    let appended = runtime.block_on(store.append("pegel", batch)).expect("append");
                    stored.fetch_add(appended.rows, std::sync::atomic::Ordering::SeqCst);
                    accepted.set(accepted.get() + 1);
                }
                Err(error) => {
                    assert_explained(&error);
                    prop_assert!(!rows.iter().all(Row::good), "{format:?} refused good rows: {error}");
                    refused.set(refused.get() + 1);
                }
            }
            let after = store.stats("pegel").expect("stats").rows as usize;
            prop_assert_eq!(after, stored.load(std::sync::atomic::Ordering::SeqCst));
            Ok(())
        })
        .expect("every refused body leaves the store as it was");
    let (accepted, refused) = (accepted.get(), refused.get());
    assert!(accepted > 0 && refused > 0, "both kinds were generated: {accepted} accepted, {refused} refused");
    runtime.block_on(store.shutdown()).expect("shutdown");
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;")
}
