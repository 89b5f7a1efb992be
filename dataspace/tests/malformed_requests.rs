//! Tickets and filters come from anyone who may read a dataset. Generated and damaged ones,
//! random or shaped like the grammar, are a read or a clear error: never a panic, a hang
//! or a stack overflow. They run as the node runs them: on a query runtime with the node's
//! stack size, against a store holding Parquet segments and a log tail.

mod common;

use std::time::Duration;

use common::{batch, dataset};
use futures::TryStreamExt;
use prometheus_client::registry::Registry;
use proptest::prelude::*;
use urbanmesh_dataspace::{DataspaceError, scan};
use urbanmesh_policy::Grant;
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::{Store, StoreConfig};

/// The node's query threads' stack (node/src/runtime.rs).
const QUERY_STACK: usize = 8 * 1024 * 1024;
/// Longer than any read of these few rows may take, planning included.
const DEADLINE: Duration = Duration::from_secs(20);

struct Setup {
    runtime: tokio::runtime::Runtime,
    store: Store,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(QUERY_STACK)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = runtime.block_on(async {
        let db = sled::open(dir.path().join("meta")).expect("sled");
        let mut config = StoreConfig::new(dir.path().join("segments"));
        config.segment_rows = 8;
        let store =
            Store::open(db, config, tokio::runtime::Handle::current(), &mut Registry::default()).expect("store");
        let pegel = dataset("pegel");
        store.attach(&pegel).expect("attach");
        let rows: Vec<(usize, i64)> = (0..20).map(|i| (i % 4, i as i64 % 7)).collect();
        store.append("pegel", batch(&pegel, &rows)).await.expect("append");
        store
    });
    Setup { runtime, store, _dir: dir }
}

/// Reads `request` to the end: the rows, or the error that ended it.
fn read(setup: &Setup, request: &ReadRequest) -> Result<usize, DataspaceError> {
    let grant = Grant { row_filter: Some("station <> 'x'".into()), ..Grant::owner() };
    setup.runtime.block_on(async {
        let read = async {
            let scan = scan(&setup.store, request, &grant).await?;
            let batches: Vec<_> = scan.batches.try_collect().await?;
            Ok(batches.iter().map(|b| b.num_rows()).sum())
        };
        tokio::time::timeout(DEADLINE, read).await.expect("a read that neither ends nor fails")
    })
}

/// Pieces of the filter grammar and of what it refuses, to be put together at random.
fn tokens() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "value",
        "station",
        "time",
        "records",
        "nope",
        "\"value\"",
        "1",
        "0",
        "-1",
        "1e308",
        "'a'",
        "'x'",
        "''",
        "NULL",
        "TRUE",
        "(",
        ")",
        "((",
        "))",
        "=",
        "<>",
        "<",
        ">=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "AND",
        "OR",
        "NOT",
        "IN",
        "(1, 2)",
        "BETWEEN",
        "LIKE",
        "'%a%'",
        "IS",
        "NULL",
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "CAST(",
        "AS",
        "BIGINT",
        "TIMESTAMP",
        ")",
        "lower(",
        "substr(",
        "repeat(",
        "||",
        "~",
        "SIMILAR TO",
        "(SELECT 1)",
        "count(*)",
        "row_number() OVER ()",
        ",",
        ";",
        "--",
        "/*",
        "\\",
        "'",
        "\"",
        "ü",
        "\u{0}",
    ]);
    prop::collection::vec(piece, 1..24).prop_map(|pieces| pieces.join(" "))
}

fn request_with(filter: String) -> ReadRequest {
    ReadRequest { filter: Some(filter), ..ReadRequest::whole("pegel") }
}

#[test]
fn filters_put_together_from_the_grammar_are_read_or_refused() {
    let setup = setup();
    let config = ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(filter in tokens())| {
        match read(&setup, &request_with(filter.clone())) {
            Ok(rows) => prop_assert!(rows <= 20, "{filter}: {rows} rows"),
            Err(error) => prop_assert!(!error.to_string().is_empty(), "{filter}: an error without a reason"),
        }
    });
}

#[test]
fn any_text_as_a_filter_is_read_or_refused() {
    let setup = setup();
    let config = ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(filter in any::<String>())| {
        match read(&setup, &request_with(filter.clone())) {
            Ok(rows) => prop_assert!(rows <= 20, "{filter:?}: {rows} rows"),
            Err(error) => prop_assert!(!error.to_string().is_empty(), "{filter:?}: an error without a reason"),
        }
    });
}

/// As deep or as long as a ticket's 64 KiB allow: refused or read, the node stays up.
#[test]
fn deep_and_long_filters_do_not_overflow_the_stack() {
    let setup = setup();
    let deep = 12_000;
    let cases = [
        format!("{}value > 1{}", "(".repeat(deep), ")".repeat(deep)),
        format!("{}value > 1", "NOT ".repeat(deep / 2)),
        format!("value > 0{}", " + 1".repeat(deep)),
        format!("value = 1{}", " OR value = 1".repeat(deep / 4)),
        format!("value IN ({})", vec!["1"; deep].join(", ")),
        format!("{}1{} = 1", "abs(".repeat(deep / 4), ")".repeat(deep / 4)),
        format!("{}1 END = 1", "CASE WHEN value > 0 THEN ".repeat(deep / 16)),
    ];
    for filter in cases {
        assert!(filter.len() < 64 * 1024 + 1024, "{} bytes", filter.len());
        if let Ok(rows) = read(&setup, &request_with(filter.clone())) {
            assert!(rows <= 20, "{}…: {rows} rows", &filter[..40]);
        }
    }
}

fn damage(valid: &[u8], cuts: &[(prop::sample::Index, u8)]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    for (at, byte) in cuts {
        let i = at.index(bytes.len().max(1));
        match byte % 3 {
            0 => bytes.truncate(i),
            1 if i < bytes.len() => bytes[i] = *byte,
            _ => bytes.insert(i.min(bytes.len()), *byte),
        }
    }
    bytes
}

#[test]
fn damaged_and_random_tickets_decode_to_a_read_or_a_clear_error() {
    let setup = setup();
    let valid = br#"{"dataset":"pegel","columns":["time","value"],"from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z","filter":"value > 1","limit":5}"#;
    let tickets = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
            .prop_map(move |cuts| damage(valid, &cuts)),
    ];
    let config = ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(ticket in tickets)| {
        match ReadRequest::decode(&ticket) {
            Ok(request) => {
                // Whatever decodes is read under the grant, or refused with a reason.
                if let Err(error) = read(&setup, &request) {
                    prop_assert!(!error.to_string().is_empty());
                }
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    });
}
