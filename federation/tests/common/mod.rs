//! Real nodes on loopback for the federation tests: libp2p, sled, tantivy.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use urbanmesh_catalog::{Catalog, CatalogInfo, DatasetSpec};
use urbanmesh_federation::{Federation, Profile};
use urbanmesh_protocol::{Identity, Multiaddr, Network, NetworkClient, NetworkConfig};

pub struct TestNode {
    pub federation: Federation,
    pub catalog: Catalog,
    pub client: NetworkClient,
    pub addresses: Vec<Multiaddr>,
    pub identity: Identity,
    pub _network: Network,
}

pub async fn node(dir: &std::path::Path, name: &str, secret: u8) -> TestNode {
    let identity = Identity::from_secret([secret; 32]).expect("key");
    let config = NetworkConfig { listen: vec!["/ip4/127.0.0.1/tcp/0".into()], ..NetworkConfig::default() };
    let (network, events) = Network::start(&identity, &config).await.expect("network");
    let db = sled::open(dir.join(name).join("meta")).expect("sled");
    let catalog =
        Catalog::open(db.clone(), CatalogInfo::for_municipality(name), &dir.join(name).join("index")).expect("catalog");
    let profile = Profile {
        name: name.to_owned(),
        addresses: network.listen_addresses.iter().map(ToString::to_string).collect(),
        http: None,
        flight: None,
        peer_flight: None,
    };
    let client = network.client();
    let federation = Federation::start(db, identity.clone(), catalog.clone(), client.clone(), events, profile)
        .await
        .expect("federation");
    let addresses = network.listen_addresses.clone();
    TestNode { federation, catalog, client, addresses, identity, _network: network }
}

pub async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        poll.tick().await;
    }
}

pub fn spec(id: &str) -> DatasetSpec {
    serde_json::from_value(serde_json::json!({
        "id": id, "title": "Pegelstände", "description": "Wasserstände der Werre",
        "schema": {"fields": [{"name": "v", "type": "float64"}]},
        "policy": {"visibility": "federation"}
    }))
    .expect("spec")
}
