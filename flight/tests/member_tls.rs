//! Flight between members over mutual TLS: a member reads, anyone else is turned away
//! during the handshake, and a server that is not the member asked for is not trusted.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array};
use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use urbanmesh_catalog::{Catalog, CatalogInfo, DatasetSpec};
use urbanmesh_flight::{FlightContext, MemberCheck, PeerClient, ReadGate, Views, member_connections};
use urbanmesh_policy::{AdminToken, AuditLog, Identities};
use urbanmesh_protocol::{Identity, ReadRequest};
use urbanmesh_store::{Store, StoreConfig};

/// A node serving one dataset of three rows on its member listener; returns its address.
async fn serve(dir: &std::path::Path, identity: &Identity, is_member: MemberCheck) -> String {
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
    let column: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]));
    let batch = RecordBatch::try_new(dataset.arrow_schema().expect("schema"), vec![column]).expect("batch");
    store.append("zaehlung", batch).await.expect("append");
    let gate = ReadGate::new(catalog.clone(), store.clone(), AuditLog::open(&audit_db).expect("audit log"));
    let identities = Identities::new(AdminToken::new("unused".to_owned()), None);
    let views = Views::new(catalog.clone(), gate.clone(), None, identity.peer_id().to_string());
    let context = FlightContext { catalog, store, gate, identities, remote: None, views };
    let service = urbanmesh_flight::server(context, &mut registry);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let incoming = member_connections(listener, identity, is_member).expect("listener");
    tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
    format!("grpc+tls://{address}")
}

#[tokio::test]
async fn members_read_and_everyone_else_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Identity::from_secret([1; 32]).expect("key");
    let member = Identity::from_secret([2; 32]).expect("key");
    let stranger = Identity::from_secret([3; 32]).expect("key");
    let allowed = member.peer_id();
    let endpoint = serve(dir.path(), &server, Arc::new(move |peer| *peer == allowed)).await;
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
