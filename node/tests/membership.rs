//! Membership in a sandbox federation: who may remove whom, leaving, a name already held,
//! and a newcomer that brings its catalogue. (Moved here from the black-box suite: these
//! are rules of the federation, not of the binary.)

use std::time::Duration;

use urbanmesh::RunningNode;
use urbanmesh::sandbox::{Sandbox, eventually, node, peer};
use urbanmesh_catalog::DatasetSpec;
use urbanmesh_federation::FederationError;
use urbanmesh_protocol::federation::MemberStatus;

/// Removals and catalogue changes reach every member within this (the suite's deadline).
const DEADLINE: Duration = Duration::from_secs(5);

fn shared(id: &str, title: &str) -> DatasetSpec {
    serde_json::from_value(serde_json::json!({
        "id": id, "title": title, "description": format!("{title}, für den Verbund"),
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "value", "type": "float64"}]},
        "time_column": "time",
        "policy": {"visibility": "federation", "rules": [{"assignee": "federation"}]}
    }))
    .expect("spec")
}

async fn publish(node: &RunningNode, id: &str, title: &str) {
    urbanmesh_dataspace::publish(&node.catalog, &node.store, shared(id, title)).await.expect("publish");
}

fn holds(node: &RunningNode, origin: &str, id: &str) -> bool {
    node.catalog.replica(origin, id).is_ok()
}

async fn status_of(node: &RunningNode, member: &str) -> Option<MemberStatus> {
    node.federation.status().await.members.into_iter().find(|m| m.peer == member).map(|m| m.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_founder_and_the_sponsor_may_remove_a_member_and_no_one_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Gütersloh founds and invites Bielefeld and Herford; Herford invites Detmold and Lemgo.
    let mut owl = Sandbox::start(dir.path(), "OWL", &["Guetersloh", "Bielefeld", "Herford"]).await.expect("sandbox");
    for name in ["Detmold", "Lemgo"] {
        let newcomer = node(dir.path(), name).await.expect("node");
        owl.admit(newcomer, 2).await.expect("admitted by Herford");
    }
    let peers: Vec<String> = futures::future::join_all(owl.nodes.iter().map(peer)).await;
    for (k, node) in owl.nodes.iter().enumerate() {
        publish(node, &format!("rad-{k}"), &format!("Radwege {k}")).await;
    }
    for (k, origin) in peers.iter().enumerate() {
        let id = format!("rad-{k}");
        eventually("every entry on every member", DEADLINE, || async {
            owl.nodes.iter().enumerate().all(|(i, n)| i == k || holds(n, origin, &id))
        })
        .await
        .expect("set-up");
    }
    let [guetersloh, bielefeld, herford, detmold, lemgo] = &owl.nodes[..] else { panic!("five") };

    // Neither sponsor nor founder: refused, and nothing changes.
    for victim in [&peers[2], &peers[3]] {
        let refused = bielefeld.federation.remove(victim).await.expect_err("Bielefeld may not");
        assert!(matches!(refused, FederationError::Refused(_)), "{refused:?}");
    }
    let refused = detmold.federation.remove(&peers[2]).await.expect_err("not even its sponsor");
    assert!(matches!(refused, FederationError::Refused(_)), "{refused:?}");
    let unknown = guetersloh.federation.remove("12D3KooWNichtDaNichtDaNichtDaNichtDaNichtDa").await;
    assert!(matches!(unknown, Err(FederationError::UnknownMember(_))), "{unknown:?}");
    for node in &owl.nodes {
        assert_eq!(status_of(node, &peers[3]).await, Some(MemberStatus::Admitted));
    }

    // The founder removes Detmold, whom Herford sponsored; Herford removes Lemgo.
    guetersloh.federation.remove(&peers[3]).await.expect("the founder may");
    herford.federation.remove(&peers[4]).await.expect("the sponsor may");
    let remaining = [guetersloh, bielefeld, herford];
    for (gone, id) in [(&peers[3], "rad-3"), (&peers[4], "rad-4")] {
        eventually("the removed member's entry gone and its removal known", DEADLINE, || async {
            let mut all = true;
            for node in remaining {
                all &= !holds(node, gone, id) && status_of(node, gone).await == Some(MemberStatus::Removed);
            }
            all
        })
        .await
        .expect("removal everywhere");
    }

    // A removed member hears nothing new, and cannot remove others.
    publish(guetersloh, "rad-neu", "Neue Radwege").await;
    eventually("a new entry on the remaining members", DEADLINE, || async {
        holds(bielefeld, &peers[0], "rad-neu") && holds(herford, &peers[0], "rad-neu")
    })
    .await
    .expect("new entry");
    assert!(!holds(detmold, &peers[0], "rad-neu") && !holds(lemgo, &peers[0], "rad-neu"));
    assert!(detmold.federation.remove(&peers[1]).await.is_err(), "removal is final");
    assert_eq!(status_of(guetersloh, &peers[1]).await, Some(MemberStatus::Admitted));
    owl.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_is_forgotten_and_forgets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let owl = Sandbox::start(dir.path(), "OWL", &["Guetersloh", "Bielefeld", "Herford"]).await.expect("sandbox");
    let [guetersloh, bielefeld, herford] = &owl.nodes[..] else { panic!("three") };
    let (g, b) = (peer(&owl.nodes[0]).await, peer(&owl.nodes[1]).await);
    publish(guetersloh, "luft-gt", "Luft Gütersloh").await;
    publish(bielefeld, "luft-bi", "Luft Bielefeld").await;
    eventually("set-up entries", DEADLINE, || async {
        holds(bielefeld, &g, "luft-gt") && holds(guetersloh, &b, "luft-bi") && holds(herford, &b, "luft-bi")
    })
    .await
    .expect("set-up");

    bielefeld.federation.remove(&b).await.expect("leave");
    let status = bielefeld.federation.status().await;
    assert!(status.federation.is_none() && status.members.is_empty(), "{status:?}");
    assert!(!holds(bielefeld, &g, "luft-gt"), "the leaver keeps only its own entries");
    eventually("the leaver forgotten", DEADLINE, || async {
        !holds(guetersloh, &b, "luft-bi")
            && !holds(herford, &b, "luft-bi")
            && status_of(herford, &b).await == Some(MemberStatus::Removed)
    })
    .await
    .expect("forgotten");

    // Changes no longer cross between the leaver and the federation.
    publish(bielefeld, "luft-bi-neu", "Luft Bielefeld neu").await;
    publish(guetersloh, "luft-gt-neu", "Luft Gütersloh neu").await;
    eventually("a member's new entry", DEADLINE, || async { holds(herford, &g, "luft-gt-neu") }).await.expect("new");
    assert!(!holds(bielefeld, &g, "luft-gt-neu"));
    assert!(!holds(guetersloh, &b, "luft-bi-neu") && !holds(herford, &b, "luft-bi-neu"));
    owl.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_under_a_name_a_member_holds_is_refused_and_leaves_the_invitation_unused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let owl = Sandbox::start(dir.path(), "OWL", &["Guetersloh"]).await.expect("sandbox");
    let founder = &owl.nodes[0];
    let twin = node(dir.path(), "GUETERSLOH").await.expect("twin");
    let invitation = founder.federation.invite(None, None, Duration::from_secs(600)).await.expect("invite");
    match twin.federation.join(&invitation).await {
        Err(FederationError::NameTaken { name, .. }) => assert_eq!(name, "GUETERSLOH"),
        other => panic!("expected the name to be taken, got {other:?}"),
    }
    assert!(twin.federation.status().await.federation.is_none());
    let twin_peer = twin.federation.status().await.me;
    assert_eq!(status_of(founder, &twin_peer).await, None);
    let other = node(dir.path(), "Lemgo").await.expect("node");
    other.federation.join(&invitation).await.expect("the invitation is still good");
    twin.stop().await.expect("stop");
    other.stop().await.expect("stop");
    owl.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_brings_its_existing_catalogue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut owl = Sandbox::start(dir.path(), "OWL", &["Guetersloh", "Bielefeld"]).await.expect("sandbox");
    publish(&owl.nodes[0], "friedhoefe-gt", "Friedhöfe Gütersloh").await;
    let newcomer = node(dir.path(), "Bad Salzuflen").await.expect("node");
    for k in 0..3 {
        publish(&newcomer, &format!("friedhoefe-bs-{k}"), &format!("Friedhöfe {k}")).await;
    }
    let theirs = newcomer.federation.status().await.me;
    owl.admit(newcomer, 1).await.expect("admitted by Bielefeld");
    let g = peer(&owl.nodes[0]).await;
    let took = eventually("the newcomer's catalogue on every member, and theirs on it", DEADLINE, || async {
        let [guetersloh, bielefeld, newcomer] = &owl.nodes[..] else { return false };
        (0..3).all(|k| {
            let id = format!("friedhoefe-bs-{k}");
            holds(guetersloh, &theirs, &id) && holds(bielefeld, &theirs, &id)
        }) && holds(newcomer, &g, "friedhoefe-gt")
    })
    .await
    .expect("catalogues exchanged");
    println!("the newcomer's catalogue reached the members after {took:?}");
    owl.stop().await.expect("stop");
}
