//! What replicas carry of another member's rows: gossip what every member may know, and
//! what one member may know beyond that only to that member, by request-response. A member
//! that relays what it was told alone is not believed.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{TestNode, eventually, node};
use urbanmesh_catalog::{DatasetSpec, Derived};
use urbanmesh_protocol::federation::{Request, Response};

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("time")
}

/// Raw rows for `partner`, hourly aggregates for every other member.
fn pegel(partner: &str) -> DatasetSpec {
    serde_json::from_value(serde_json::json!({
        "id": "pegel", "title": "Pegelstände", "description": "Wasserstände der Werre",
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "v", "type": "float64"}]},
        "time_column": "time",
        "policy": {"visibility": "federation", "rules": [
            {"assignee": {"peers": [partner]}},
            {"assignee": "federation", "aggregate": {"bucket": "1h", "min_group": 1}}]}
    }))
    .expect("spec")
}

async fn admit(origin: &TestNode, newcomer: &TestNode, name: &str) {
    let invitation = origin.federation.invite(Some("OWL"), Some(name.into()), Duration::from_secs(3600)).await;
    newcomer.federation.join(&invitation.expect("invite")).await.expect("join");
}

fn replica_facts(node: &TestNode, origin: &str) -> Option<Derived> {
    node.catalog.replica(origin, "pegel").ok().map(|replica| replica.entry.derived)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_hears_what_it_may_know_and_a_relayed_entry_is_not_believed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let origin = node(dir.path(), "Detmold", 11).await;
    let partner = node(dir.path(), "Herford", 12).await;
    let member = node(dir.path(), "Lemgo", 13).await;
    admit(&origin, &partner, "Herford").await;
    admit(&origin, &member, "Lemgo").await;
    let origin_peer = origin.identity.peer_id().to_string();

    origin.catalog.create(pegel(&partner.identity.peer_id().to_string())).await.expect("create");
    let stored = Derived {
        rows: Some(3),
        first: Some(at("2026-03-01T10:17:00Z")),
        last: Some(at("2026-03-01T12:43:00Z")),
        data_modified: Some(at("2026-03-01T12:44:10Z")),
    };
    origin.catalog.record_derived("pegel", stored.clone()).await.expect("facts");

    eventually("the partner's exact facts", async || replica_facts(&partner, &origin_peer) == Some(stored.clone()))
        .await;
    let hourly = Derived {
        rows: None,
        first: Some(at("2026-03-01T10:00:00Z")),
        last: Some(at("2026-03-01T13:00:00Z")),
        data_modified: Some(at("2026-03-01T12:00:00Z")),
    };
    eventually("the member's hourly facts", async || replica_facts(&member, &origin_peer) == Some(hourly.clone()))
        .await;

    // The partner, turned hostile, hands what it was told alone to the other member, as
    // fresh as it gets: the origin's catalogue changed since the member last heard.
    origin.catalog.create(common::spec("luft")).await.expect("another dataset");
    let told = partner.client.request(origin.identity.peer_id(), origin.addresses.clone(), Request::Catalog).await;
    let Ok(Response::Catalog { announcements }) = told else { panic!("the partner's catalogue: {told:?}") };
    assert!(!announcements.is_empty());
    let relayed = Request::Announce { announcements };
    let answer = partner.client.request(member.identity.peer_id(), member.addresses.clone(), relayed).await;
    assert!(answer.is_ok(), "{answer:?}");
    eventually("luft at the member", async || member.catalog.replica(&origin_peer, "luft").is_ok()).await;
    assert_eq!(replica_facts(&member, &origin_peer), Some(hourly), "the member believed a relayed entry");
}
