//! A hostile member: a client holding a real member's key signs forged records, replays
//! old ones, takes names and is removed. Every attempt is refused by real nodes on
//! loopback, and the federation's state stays as it was.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{TestNode, eventually, node};
use urbanmesh_federation::FederationError;
use urbanmesh_protocol::federation::{Gossip, JoinConsent, MemberRecord, MemberStatus, Request, Response, topic};
use urbanmesh_protocol::membership::MAX_CLOCK_AHEAD_MS;
use urbanmesh_protocol::{Identity, Signed};

/// What a node believes about the membership, without what changes by itself
/// (connections come and go).
async fn believed(node: &TestNode) -> serde_json::Value {
    let status = node.federation.status().await;
    let mut members = serde_json::to_value(&status.members).expect("json");
    for member in members.as_array_mut().expect("members") {
        member.as_object_mut().expect("member").remove("connected");
    }
    serde_json::json!({ "federation": serde_json::to_value(&status.federation).expect("json"), "members": members })
}

fn peer(node: &TestNode) -> String {
    node.identity.peer_id().to_string()
}

/// A record with what a node holds about a member, as if the member had signed it: the
/// template for forgeries.
async fn record_of(node: &TestNode, member: &str) -> MemberRecord {
    let status = node.federation.status().await;
    let view = status.members.into_iter().find(|m| m.peer == member).expect("known member");
    let federation = status.federation.expect("federation");
    MemberRecord {
        federation: federation.id,
        federation_name: federation.name,
        member: view.peer,
        name: view.name,
        status: view.status,
        by: member.to_owned(),
        at: view.since,
        addresses: view.addresses,
        http: view.http,
        flight: view.flight,
        peer_flight: view.peer_flight,
        consent: None,
    }
}

/// Hands a record to `to` directly and returns its answer.
async fn hand(from: &TestNode, to: &TestNode, record: &Signed) -> Response {
    let request = Request::Member { record: record.clone() };
    from.client.request(to.identity.peer_id(), to.addresses.clone(), request).await.expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_member_changes_nothing_that_is_not_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = node(dir.path(), "Detmold", 1).await;
    let b = node(dir.path(), "Herford", 2).await;
    let h = node(dir.path(), "Lemgo", 3).await;
    for joining in [&b, &h] {
        let invitation = a.federation.invite(Some("OWL"), None, Duration::from_secs(3600)).await.expect("invite");
        joining.federation.join(&invitation).await.expect("join");
    }
    for observer in [&a, &b, &h] {
        eventually("three members everywhere", async || {
            let status = observer.federation.status().await;
            status.members.iter().filter(|m| m.status == MemberStatus::Admitted).count() == 3
        })
        .await;
    }
    let federation = a.federation.status().await.federation.expect("federation");
    let (before_a, before_b) = (believed(&a).await, believed(&b).await);
    let now = Utc::now().timestamp_millis();
    let b_record = record_of(&a, &peer(&b)).await;
    let h_record = record_of(&a, &peer(&h)).await;
    let evil = |record: &MemberRecord| MemberRecord {
        addresses: vec!["/ip4/127.0.0.1/tcp/9/p2p/12D3KooWHostile".into()],
        peer_flight: Some("grpc+tls://127.0.0.1:9".into()),
        ..record.clone()
    };
    let sign = |record: &MemberRecord| h.identity.sign(record).expect("sign");
    let consent_by = |signer: &Identity, member: &str, at: i64| {
        signer
            .sign(&JoinConsent {
                federation: federation.id.clone(),
                member: member.to_owned(),
                inviter: peer(&h),
                nonce: "forged".into(),
                at,
            })
            .expect("sign")
    };
    // A fresh node the hostile member would like to slip in under a taken name.
    let sybil = Identity::from_secret([9; 32]).expect("key");
    let sybil_peer = sybil.peer_id().to_string();

    let forgeries: Vec<(&str, Signed)> = vec![
        (
            "an admission naming another member, to replace its addresses",
            sign(&MemberRecord { by: peer(&h), status: MemberStatus::Admitted, at: now + 1, ..evil(&b_record) }),
        ),
        (
            "the same with a consent the hostile member signed itself",
            sign(&MemberRecord {
                by: peer(&h),
                at: now + 2,
                consent: Some(consent_by(&h.identity, &peer(&b), now + 1)),
                ..evil(&b_record)
            }),
        ),
        (
            "a self-update in another member's name",
            sign(&MemberRecord { by: peer(&b), status: MemberStatus::Admitted, at: now + 3, ..evil(&b_record) }),
        ),
        (
            "a removal it may not make (neither sponsor nor founder)",
            sign(&MemberRecord { by: peer(&h), status: MemberStatus::Removed, at: now + 4, ..b_record.clone() }),
        ),
        (
            "the founder's removal",
            sign(&MemberRecord {
                by: peer(&h),
                status: MemberStatus::Removed,
                at: now + 4,
                ..record_of(&a, &peer(&a)).await
            }),
        ),
        ("its own record dated at the end of time", sign(&MemberRecord { at: i64::MAX, ..h_record.clone() })),
        ("its own record dated an hour ahead", sign(&MemberRecord { at: now + 3_600_000, ..h_record.clone() })),
        (
            "its own record dated just beyond the allowed skew",
            sign(&MemberRecord { at: now + MAX_CLOCK_AHEAD_MS + 60_000, ..h_record.clone() }),
        ),
        (
            "its own rename to a taken name",
            sign(&MemberRecord { name: "herford ".into(), at: now + 5, ..h_record.clone() }),
        ),
        (
            "a newcomer admitted under a taken name, with the newcomer's genuine consent",
            sign(&MemberRecord {
                member: sybil_peer.clone(),
                name: "HERFORD".into(),
                by: peer(&h),
                at: now + 6,
                consent: Some(consent_by(&sybil, &sybil_peer, now + 5)),
                addresses: vec![],
                ..h_record.clone()
            }),
        ),
        (
            "a newcomer admitted without its consent",
            sign(&MemberRecord {
                member: sybil_peer.clone(),
                name: "Bad Salzuflen".into(),
                by: peer(&h),
                at: now + 6,
                addresses: vec![],
                ..h_record.clone()
            }),
        ),
    ];
    for (what, forged) in &forgeries {
        for target in [&a, &b] {
            let answer = hand(&h, target, forged).await;
            assert!(matches!(answer, Response::Refused { .. }), "{what}: {answer:?}");
        }
        h.client.publish(topic(&federation.id), Gossip::Member(forged.clone()).encode()).await.expect("gossip");
    }
    // Replays: every record a holds, handed back and gossiped again, is stale.
    let Response::Members { members: held } =
        h.client.request(a.identity.peer_id(), a.addresses.clone(), Request::Members).await.expect("members")
    else {
        panic!("a lists its members to a member");
    };
    for old in &held {
        assert!(matches!(hand(&h, &a, old).await, Response::Accepted), "a replay is stale, not an error");
        h.client.publish(topic(&federation.id), Gossip::Member(old.clone()).encode()).await.expect("gossip");
    }
    // A genuine update of its own, gossiped last: once it arrived, the forgeries before it did too.
    let marker = sign(&MemberRecord {
        at: Utc::now().timestamp_millis().max(now + 10),
        http: Some("http://lemgo.example".into()),
        ..h_record.clone()
    });
    h.client.publish(topic(&federation.id), Gossip::Member(marker).encode()).await.expect("gossip");
    for observer in [&a, &b] {
        eventually("h's genuine update", async || {
            observer
                .federation
                .status()
                .await
                .members
                .iter()
                .any(|m| m.peer == peer(&h) && m.http.as_deref() == Some("http://lemgo.example"))
        })
        .await;
    }
    let without_h = |mut state: serde_json::Value| {
        state["members"].as_array_mut().expect("members").retain(|m| m["peer"] != peer(&h));
        state
    };
    assert_eq!(without_h(believed(&a).await), without_h(before_a.clone()), "a's view of others is unchanged");
    assert_eq!(without_h(believed(&b).await), without_h(before_b), "b's view of others is unchanged");
    let holders: Vec<String> = a
        .federation
        .status()
        .await
        .members
        .into_iter()
        .filter(|m| m.status == MemberStatus::Admitted && m.name.trim().to_lowercase() == "herford")
        .map(|m| m.peer)
        .collect();
    assert_eq!(holders, vec![peer(&b)], "the name still belongs to b alone");

    // A join under a taken name is refused, saying so, and leaves the invitation usable.
    let invitation = a.federation.invite(None, None, Duration::from_secs(3600)).await.expect("invite");
    let copycat = node(dir.path(), " herford", 4).await;
    let taken = copycat.federation.join(&invitation).await;
    assert!(matches!(taken, Err(FederationError::NameTaken { ref name, .. }) if name == "herford"), "{taken:?}");
    assert!(taken.expect_err("taken").to_string().contains("is taken"));
    let newcomer = node(dir.path(), "Bad Salzuflen", 5).await;
    newcomer.federation.join(&invitation).await.expect("the invitation is still valid under a free name");

    // The founder removes the hostile member: its record from the future could not stop it.
    a.federation.remove(&peer(&h)).await.expect("removal");
    let removed = Utc::now();
    assert!(!a.federation.admits(&h.identity.peer_id()), "removed at once");
    eventually("h to be turned away", async || {
        let answer = h.client.request(a.identity.peer_id(), a.addresses.clone(), Request::Members).await;
        !matches!(answer, Ok(Response::Members { .. }))
    })
    .await;
    assert!(Utc::now() - removed < chrono::Duration::seconds(1), "removal took effect within a second");
    // Its old admission, replayed by anyone, does not bring it back.
    for old in held.iter().filter(|s| s.open::<MemberRecord>().is_ok_and(|(_, r)| r.member == peer(&h))) {
        let answer = hand(&b, &a, old).await;
        assert!(matches!(answer, Response::Accepted | Response::Refused { .. }), "{answer:?}");
    }
    assert!(!a.federation.admits(&h.identity.peer_id()));
}
