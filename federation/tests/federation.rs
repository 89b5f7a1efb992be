//! Three real nodes on loopback (libp2p, sled, tantivy): joining, single use, replication,
//! refusal of non-members, and robustness against garbage from a member.

mod common;

use std::time::Duration;

use common::{eventually, node, spec};
use urbanmesh_catalog::DatasetSpec;
use urbanmesh_federation::FederationError;
use urbanmesh_protocol::federation::{Gossip, Request, Response, topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_replicate_and_strangers_get_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(dir.path(), "Detmold", 1).await;
    let b = node(dir.path(), "Herford", 2).await;
    let c = node(dir.path(), "Fremd", 3).await;
    let a_peer = a.identity.peer_id().to_string();

    let invitation =
        a.federation.invite(Some("OWL"), Some("Herford".into()), Duration::from_secs(3600)).await.expect("invite");
    b.federation.join(&invitation).await.expect("join");
    let reused = c.federation.join(&invitation).await;
    assert!(matches!(reused, Err(FederationError::Invitation(ref why)) if why.contains("used")), "{reused:?}");
    assert!(matches!(b.federation.join(&invitation).await, Err(FederationError::AlreadyMember(_))));

    a.catalog.create(spec("werre")).await.expect("create");
    eventually("the replica at b", async || b.catalog.replica(&a_peer, "werre").is_ok()).await;

    // A stranger with a valid identity asks for the catalogue directly: refused.
    let answer = c.client.request(a.identity.peer_id(), a.addresses.clone(), Request::Catalog).await.expect("answer");
    assert!(matches!(answer, Response::Refused { .. }), "{answer:?}");
    assert!(c.catalog.replicas_of(&a_peer).expect("replicas").is_empty());

    // Garbage gossip and an oversized request from a member neither crash nor stall a.
    let (id, _) = {
        let status = a.federation.status().await;
        let federation = status.federation.expect("federation");
        (federation.id, federation.name)
    };
    b.client.publish(topic(&id), b"{not protobuf".to_vec()).await.expect("publish");
    let forged = urbanmesh_protocol::Signed { body: b"x".to_vec(), signer: "y".into(), signature: b"z".to_vec() };
    b.client.publish(topic(&id), Gossip::Announcement(forged).encode()).await.expect("publish");
    let huge = Request::Join {
        invitation: urbanmesh_protocol::Signed { body: vec![b'x'; 2 << 20], signer: String::new(), signature: vec![] },
        consent: urbanmesh_protocol::Signed { body: vec![], signer: String::new(), signature: vec![] },
        name: String::new(),
        addresses: vec![],
        http: None,
        flight: None,
        peer_flight: None,
    };
    assert!(b.client.request(a.identity.peer_id(), a.addresses.clone(), huge).await.is_err());
    let members =
        b.client.request(a.identity.peer_id(), a.addresses.clone(), Request::Members).await.expect("a answers");
    assert!(matches!(members, Response::Members { ref members } if members.len() == 2), "{members:?}");
    a.catalog.update(DatasetSpec { title: "Pegelstände der Werre".into(), ..spec("werre") }).await.expect("update");
    eventually("the update at b", async || {
        b.catalog.replica(&a_peer, "werre").is_ok_and(|r| r.entry.dataset.spec.title == "Pegelstände der Werre")
    })
    .await;
    // Taken back inside the node, the entry is withdrawn from the members, rules and all.
    let internal: urbanmesh_policy::Policy = serde_json::from_str(r#"{"visibility": "internal"}"#).expect("policy");
    a.catalog.set_policy("werre", internal).await.expect("policy");
    eventually("the withdrawal at b", async || b.catalog.replica(&a_peer, "werre").is_err()).await;

    // The founder removes b: b forgets the federation and a's entries.
    a.federation.remove(&b.identity.peer_id().to_string()).await.expect("remove");
    eventually("b to leave", async || b.federation.status().await.federation.is_none()).await;
    assert!(b.catalog.replicas_of(&a_peer).expect("replicas").is_empty());
}
