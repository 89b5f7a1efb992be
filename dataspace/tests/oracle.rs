//! The sealed read path against its definition, over generated policies, data and reader
//! requests: the result equals "apply the grant, then apply the request to the released
//! table", and whether a request fails never depends on rows the grant withholds.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{STATIONS, at, batch, dataset};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use prometheus_client::registry::Registry;
use proptest::prelude::*;
use urbanmesh_dataspace::{latest_rows, scan};
use urbanmesh_policy::{Aggregate, Grant};
use urbanmesh_protocol::ReadRequest;
use urbanmesh_store::{Store, StoreConfig};

fn grants() -> impl Strategy<Value = Grant> {
    let row_filter = prop_oneof![
        Just(None),
        (0i64..10).prop_map(|k| Some(format!("value <> {k}"))),
        Just(Some("station <> 'x'".to_owned())),
        Just(Some("station IN ('a', 'b')".to_owned())),
    ];
    let shape = prop_oneof![
        Just((vec![], None, None)),
        Just((vec!["station".to_owned()], None, None)),
        Just((vec![], Some(vec!["time".to_owned(), "value".to_owned()]), None)),
        (1u64..5, any::<bool>()).prop_map(|(min_group, by_station)| {
            let aggregate = Aggregate {
                bucket: "1h".parse().expect("span"),
                min_group,
                by: by_station.then(|| vec!["station".to_owned()]),
                weight: None,
            };
            (vec![], None, Some(aggregate))
        }),
    ];
    let cap = prop_oneof![Just(None), (1u64..40).prop_map(Some)];
    (row_filter, shape, cap).prop_map(|(row_filter, (masked, columns, aggregate), max_rows)| Grant {
        row_filter,
        masked,
        columns,
        aggregate,
        max_rows,
        ..Grant::owner()
    })
}

/// Reader filters, some of which fail on certain values only: a cast that cannot succeed
/// for letters, a division by zero where `value` is `k`, a group key's count.
fn filters() -> impl Strategy<Value = (Option<String>, bool)> {
    prop_oneof![
        Just((None, false)),
        (0i64..10).prop_map(|k| (Some(format!("value > {k}")), false)),
        Just((Some("station = 'a'".to_owned()), false)),
        Just((Some("station IS NULL".to_owned()), false)),
        Just((Some("records >= 2".to_owned()), false)),
        Just((Some("CAST(station AS BIGINT) > 0".to_owned()), true)),
        (0i64..10).prop_map(|k| (Some(format!("10 / (CAST(value AS BIGINT) - {k}) <> 0")), true)),
        (0i64..10).prop_map(|k| (
            Some(format!("CASE WHEN station = 'x' THEN 1 / (CAST(value AS BIGINT) - {k}) ELSE 1 END = 1")),
            true
        )),
    ]
}

fn requests() -> impl Strategy<Value = ReadRequest> {
    let columns = prop_oneof![
        Just(None),
        Just(Some(vec!["time".to_owned()])),
        Just(Some(vec!["value".to_owned(), "time".to_owned()])),
        Just(Some(vec!["station".to_owned()])),
    ];
    let range = prop_oneof![
        Just((None, None)),
        (0i64..30, 1i64..40).prop_map(|(from, len)| (Some(at(from)), Some(at(from + len))))
    ];
    (filters(), columns, range, 1usize..20).prop_map(|((filter, fallible), columns, (from, to), limit)| ReadRequest {
        filter,
        columns,
        from,
        to,
        // A limit stops evaluation early, so it goes only with filters that cannot fail.
        limit: (!fallible && limit % 3 == 0).then_some(limit),
        ..ReadRequest::whole("")
    })
}

fn data() -> impl Strategy<Value = Vec<(usize, i64)>> {
    proptest::collection::vec((0..STATIONS.len(), 0i64..10), 0..60)
}

/// Every row as text, sorted: the result as a multiset.
fn canonical(batches: &[RecordBatch]) -> (Vec<String>, Vec<String>) {
    let names =
        batches.first().map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect()).unwrap_or_default();
    let mut rows = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).expect("formatter"))
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<_>>().join("|"));
        }
    }
    rows.sort();
    (names, rows)
}

async fn sealed(store: &Store, request: &ReadRequest, grant: &Grant) -> Result<Vec<RecordBatch>, String> {
    let scan = scan(store, request, grant).await.map_err(|e| e.to_string())?;
    scan.batches.try_collect().await.map_err(|e| e.to_string())
}

/// What the grant releases for `whole` (a request without filter, columns or limit), as a
/// plain table.
async fn released(store: &Store, whole: &ReadRequest, grant: &Grant) -> Result<MemTable, String> {
    let rows = sealed(store, whole, grant).await?;
    let schema = scan(store, whole, grant).await.map_err(|e| e.to_string())?.schema;
    MemTable::try_new(schema, vec![rows]).map_err(|e| e.to_string())
}

/// The definition: the grant's output over the request's range, as a plain table, then
/// the request's filter, projection and limit on it.
async fn definition(store: &Store, request: &ReadRequest, grant: &Grant) -> Result<Vec<RecordBatch>, String> {
    let whole = ReadRequest { filter: None, columns: None, limit: None, ..request.clone() };
    let table = released(store, &whole, grant).await?;
    let mut frame = SessionContext::new().read_table(Arc::new(table)).map_err(|e| e.to_string())?;
    if let Some(filter) = &request.filter {
        let predicate = frame.parse_sql_expr(filter).map_err(|e| e.to_string())?;
        frame = frame.filter(predicate).map_err(|e| e.to_string())?;
    }
    if let Some(columns) = &request.columns {
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        frame = frame.select_columns(&names).map_err(|e| e.to_string())?;
    }
    if let Some(limit) = request.limit {
        frame = frame.limit(0, Some(limit)).map_err(|e| e.to_string())?;
    }
    frame.collect().await.map_err(|e| e.to_string())
}

/// A store with small segments, so that reads meet Parquet segments as well as the log
/// tail, and the runtime it runs on.
fn small_segments(dir: &std::path::Path) -> (tokio::runtime::Runtime, Store) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let store = runtime.block_on(async {
        let db = sled::open(dir.join("meta")).expect("sled");
        let mut config = StoreConfig::new(dir.join("segments"));
        config.segment_rows = 16;
        Store::open(db, config, tokio::runtime::Handle::current(), &mut Registry::default()).expect("store")
    });
    (runtime, store)
}

#[test]
fn a_read_is_the_request_applied_to_what_the_grant_releases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, store) = small_segments(dir.path());
    let tables = AtomicUsize::new(0);
    let config = ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(rows in data(), grant in grants(), request in requests())| {
        let id = format!("t{}", tables.fetch_add(1, Ordering::Relaxed));
        let dataset = dataset(&id);
        let request = ReadRequest { dataset: id.clone(), ..request };
        let (sealed, defined) = runtime.block_on(async {
            store.attach(&dataset).expect("attach");
            if !rows.is_empty() {
                store.append(&id, batch(&dataset, &rows)).await.expect("append");
            }
            (sealed(&store, &request, &grant).await, definition(&store, &request, &grant).await)
        });
        match (&sealed, &defined) {
            (Ok(sealed), Ok(defined)) => {
                let (sealed, defined) = (canonical(sealed), canonical(defined));
                if request.limit.is_some() {
                    prop_assert_eq!(sealed.1.len(), defined.1.len(), "limit gives as many rows");
                } else {
                    prop_assert_eq!(sealed, defined);
                }
            }
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "sealed {:?} but defined {:?} for {:?} under {:?}", sealed.as_ref().map(|b| canonical(b).1), defined.as_ref().map(|b| canonical(b).1), request, grant),
        }
    });
}

#[test]
fn whether_a_read_fails_never_depends_on_withheld_rows() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = runtime.block_on(async {
        let db = sled::open(dir.path().join("meta")).expect("sled");
        Store::open(
            db,
            StoreConfig::new(dir.path().join("segments")),
            tokio::runtime::Handle::current(),
            &mut Registry::default(),
        )
        .expect("store")
    });
    let tables = AtomicUsize::new(0);
    // The owner withholds station `x`; the twin datasets differ only in `x`'s rows.
    let grant = Grant { row_filter: Some("station <> 'x'".into()), ..Grant::owner() };
    let released = proptest::collection::vec((0..STATIONS.len() - 1, 0i64..10), 0..40);
    let withheld = proptest::collection::vec((Just(STATIONS.len() - 1), 0i64..10), 1..10);
    let config = ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(released in released, withheld in withheld, positions in proptest::collection::vec(any::<prop::sample::Index>(), 10), request in requests())| {
        let mut with_withheld = released.clone();
        for (row, position) in withheld.iter().zip(&positions) {
            with_withheld.insert(position.index(with_withheld.len() + 1), *row);
        }
        let outcome = |rows: Vec<(usize, i64)>| {
            let id = format!("w{}", tables.fetch_add(1, Ordering::Relaxed));
            let dataset = dataset(&id);
            let request = ReadRequest { dataset: id.clone(), from: None, to: None, ..request.clone() };
            runtime.block_on(async {
                store.attach(&dataset).expect("attach");
                if !rows.is_empty() {
                    store.append(&id, batch(&dataset, &rows)).await.expect("append");
                }
                sealed(&store, &request, &grant).await.map(|b| canonical(&b).1.len())
            })
        };
        let (plain, twin) = (outcome(released), outcome(with_withheld));
        prop_assert_eq!(plain.is_err(), twin.is_err(), "{:?} vs {:?} for {:?}", plain, twin, request);
    });
}

/// The definition of the latest rows: what the grant releases, as a plain table, and of
/// each station the row with the latest time.
async fn latest_defined(store: &Store, id: &str, grant: &Grant) -> Result<Vec<RecordBatch>, String> {
    let table = released(store, &ReadRequest::whole(id), grant).await?;
    let context = SessionContext::new();
    context.register_table("released", Arc::new(table)).map_err(|e| e.to_string())?;
    let latest = "SELECT r.* FROM released r JOIN (SELECT station, max(time) AS latest FROM released GROUP BY station) l \
                  ON r.station = l.station AND r.time = l.latest";
    context.sql(latest).await.map_err(|e| e.to_string())?.collect().await.map_err(|e| e.to_string())
}

#[test]
fn the_latest_rows_are_the_latest_of_what_the_grant_releases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (runtime, store) = small_segments(dir.path());
    let tables = AtomicUsize::new(0);
    let config = ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(rows in data(), split in 0usize..60, grant in grants())| {
        let id = format!("l{}", tables.fetch_add(1, Ordering::Relaxed));
        let dataset = dataset(&id);
        let split = split.min(rows.len());
        let (latest, defined) = runtime.block_on(async {
            store.attach(&dataset).expect("attach");
            // Rows before and after the store first builds its latest rows: the index is
            // built from what is stored, then kept up to date by each append.
            let whole = batch(&dataset, &rows);
            if split > 0 {
                store.append(&id, whole.slice(0, split)).await.expect("append");
            }
            let _ = latest_rows(&store, &id, "time", "station", &grant).await;
            if split < rows.len() {
                store.append(&id, whole.slice(split, rows.len() - split)).await.expect("append");
            }
            let latest = latest_rows(&store, &id, "time", "station", &grant).await.map(|(_, rows)| rows);
            (latest, latest_defined(&store, &id, &grant).await)
        });
        let series_withheld = grant.masked.iter().any(|c| c == "station")
            || grant.columns.as_ref().is_some_and(|c| !c.iter().any(|c| c == "station"))
            || grant.aggregate.as_ref().is_some_and(|a| a.by.is_none());
        match (&latest, &defined) {
            (Ok(latest), Ok(defined)) => prop_assert_eq!(canonical(latest).1, canonical(defined).1, "under {:?}", grant),
            (Err(_), _) => prop_assert!(series_withheld, "latest failed under {:?}: {:?}", grant, latest.as_ref().err()),
            (Ok(_), Err(e)) => prop_assert!(false, "latest served but the definition failed: {}", e),
        }
    });
}
