//! Flight between members over mutual TLS: a member reads, anyone else is turned away
//! during the handshake, a server that is not the member asked for is not trusted, a
//! removed member is cut off on the connection it holds, and silent clients cannot hold
//! the listener.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use urbanmesh_catalog::{Catalog, CatalogInfo, DatasetSpec};
use urbanmesh_flight::{
    FlightContext, MAX_HANDSHAKES, MemberCheck, MemberGuardLayer, PeerClient, ReadGate, Views, member_connections,
};
use urbanmesh_policy::{AdminToken, AuditLog, Identities};
use urbanmesh_protocol::{Identity, ReadRequest};
use urbanmesh_store::{Store, StoreConfig};

/// A node serving one dataset of `rows` rows on its member listener; returns its address.
async fn serve(dir: &std::path::Path, identity: &Identity, is_member: MemberCheck, rows: usize) -> String {
    let db = sled::open(dir.join("meta")).expect("sled");
    let mut registry = Registry::default();
    let store = Store::open(
        db.clone(),
        StoreConfig::new(dir.join("segments")),
        tokio::runtime::Handle::current(),
        &mut registry,
    )
    .expect("store");
    let audit_db = db.clone();
    let catalog = Catalog::open(db, CatalogInfo::for_municipality("Herford"), &dir.join("index")).expect("catalog");
    let spec: DatasetSpec = serde_json::from_value(serde_json::json!({
        "id": "zaehlung", "title": "Passanten", "description": "Passanten je Stunde",
        "schema": {"fields": [{"name": "n", "type": "float64"}]},
        "policy": {"visibility": "federation"}
    }))
    .expect("spec");
    let dataset = catalog.create(spec).await.expect("create");
    store.create(&dataset).await.expect("table");
    let column: ArrayRef = Arc::new(Float64Array::from_iter_values((1..=rows).map(|n| n as f64)));
    let batch = RecordBatch::try_new(dataset.arrow_schema(), vec![column]).expect("batch");
    store.append("zaehlung", batch).await.expect("append");
    let gate = ReadGate::new(catalog.clone(), store.clone(), AuditLog::open(&audit_db).expect("audit log"));
    let identities = Identities::new(AdminToken::new("unused".to_owned()), None);
    let views = Views::new(catalog.clone(), store.clone(), gate.clone(), None, identity.peer_id().to_string());
    let context = FlightContext { catalog, store, gate, identities, remote: None, views };
    let service = urbanmesh_flight::server(context, &mut registry);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let guard = MemberGuardLayer::new(Arc::clone(&is_member));
    let incoming = member_connections(listener, identity, is_member).expect("listener");
    tokio::spawn(tonic::transport::Server::builder().layer(guard).add_service(service).serve_with_incoming(incoming));
    format!("grpc+tls://{address}")
}

#[tokio::test]
async fn members_read_and_everyone_else_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Identity::from_secret([1; 32]).expect("key");
    let member = Identity::from_secret([2; 32]).expect("key");
    let stranger = Identity::from_secret([3; 32]).expect("key");
    let allowed = member.peer_id();
    let endpoint = serve(dir.path(), &server, Arc::new(move |peer| *peer == allowed), 3).await;
    let request = ReadRequest::whole("zaehlung");

    let stream =
        PeerClient::new(member.clone()).fetch(server.peer_id(), &endpoint, &request).await.expect("member reads");
    let batches: Vec<RecordBatch> = stream.batches.try_collect().await.expect("rows");
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);

    let refused = PeerClient::new(stranger).fetch(server.peer_id(), &endpoint, &request).await;
    assert!(refused.is_err(), "a non-member must not get a single row");

    // The member expects another PeerId at that address: the TLS handshake must fail.
    let impostor = PeerClient::new(member)
        .fetch(Identity::from_secret([4; 32]).expect("key").peer_id(), &endpoint, &request)
        .await;
    assert!(impostor.is_err(), "a server that cannot prove the expected PeerId is not trusted");
}

/// Waits for a condition, failing after `within`.
async fn within(what: &str, within: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    while !condition().await {
        assert!(Instant::now() < deadline, "{what} not within {within:?}");
        poll.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_cut_off_on_the_connection_it_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Identity::from_secret([1; 32]).expect("key");
    let member = Identity::from_secret([2; 32]).expect("key");
    let admitted = Arc::new(AtomicBool::new(true));
    let (check, allowed) = (Arc::clone(&admitted), member.peer_id());
    let is_member: MemberCheck = Arc::new(move |peer| *peer == allowed && check.load(Ordering::SeqCst));
    // More rows than HTTP/2 flow control lets through unread, so the stream is still open.
    let rows = 500_000;
    let endpoint = serve(dir.path(), &server, is_member, rows).await;
    let request = ReadRequest::whole("zaehlung");
    let client = PeerClient::new(member);

    // The member reads once (the connection is kept), and opens a long stream it reads slowly.
    let first = client.fetch(server.peer_id(), &endpoint, &ReadRequest::whole("zaehlung")).await.expect("reads");
    drop(first);
    let mut stream = client.relay(server.peer_id(), &endpoint, &request).await.expect("stream");
    let mut received = stream.message().await.expect("first message").map_or(0, |m| m.data_body.len());

    admitted.store(false, Ordering::SeqCst);
    let removed = Instant::now();
    // The open stream ends with an error, before all rows arrived.
    let ended = loop {
        match stream.message().await {
            Ok(Some(message)) => received += message.data_body.len(),
            Ok(None) => panic!("the stream finished normally after the removal"),
            Err(status) => break status,
        }
    };
    assert!(removed.elapsed() < Duration::from_secs(1), "the stream ran on for {:?}", removed.elapsed());
    assert!(received < rows * 8, "all rows arrived after the removal");
    assert!(
        matches!(
            ended.code(),
            tonic::Code::PermissionDenied
                | tonic::Code::Unavailable
                | tonic::Code::Unknown
                | tonic::Code::Internal
                | tonic::Code::Cancelled
        ),
        "{ended:?}"
    );
    // And the connection it holds reads nothing more, nor does a new one.
    within("the kept connection to refuse", Duration::from_secs(1), async || {
        client.fetch(server.peer_id(), &endpoint, &request).await.is_err()
    })
    .await;
    assert!(client.fetch(server.peer_id(), &endpoint, &request).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_clients_cannot_hold_the_member_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Identity::from_secret([1; 32]).expect("key");
    let member = Identity::from_secret([2; 32]).expect("key");
    let allowed = member.peer_id();
    let endpoint = serve(dir.path(), &server, Arc::new(move |peer| *peer == allowed), 3).await;
    let address = endpoint.trim_start_matches("grpc+tls://").to_owned();

    // Many more silent connections than handshake slots, plus some that stop mid-hello.
    let silent = 4 * MAX_HANDSHAKES;
    let mut idle = Vec::new();
    for n in 0..silent {
        let mut tcp = tokio::net::TcpStream::connect(&address).await.expect("connect");
        if n % 8 == 0 {
            use tokio::io::AsyncWriteExt;
            tcp.write_all(&[0x16, 0x03, 0x01]).await.expect("a partial ClientHello");
        }
        idle.push(tcp);
    }
    // A real member still connects and reads, well before any handshake timeout.
    let started = Instant::now();
    let read = tokio::time::timeout(
        Duration::from_secs(3),
        PeerClient::new(member).fetch(server.peer_id(), &endpoint, &ReadRequest::whole("zaehlung")),
    )
    .await
    .expect("the member got through in time")
    .expect("the member reads");
    let batches: Vec<RecordBatch> = read.batches.try_collect().await.expect("rows");
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
    assert!(started.elapsed() < Duration::from_secs(3));

    // The silent ones were evicted rather than left to hold slots.
    within("silent connections to be closed", Duration::from_secs(5), async || {
        let mut closed = 0;
        for tcp in &idle {
            let mut byte = [0u8; 1];
            match tcp.try_read(&mut byte) {
                Ok(0) => closed += 1,
                Err(error) if error.kind() != std::io::ErrorKind::WouldBlock => closed += 1,
                _ => {}
            }
        }
        closed >= silent - MAX_HANDSHAKES
    })
    .await;
}
