//! Generated malformed input for every decoder that takes a peer's bytes: the one-line
//! invitation, gossip payloads, request-response messages and the membership records they
//! carry. Nothing panics, every refusal is an error, and no damaged message changes the
//! membership.

use proptest::collection::vec;
use proptest::prelude::*;
use urbanmesh_protocol::federation::{
    Gossip, Invitation, JoinConsent, MemberRecord, MemberStatus, Request, Response, decode_invitation,
    encode_invitation,
};
use urbanmesh_protocol::membership::Membership;
use urbanmesh_protocol::{Identity, PeerId, ProtocolError, Signed};

fn identity(secret: u8) -> Identity {
    Identity::from_secret([secret; 32]).expect("key")
}

fn invitation() -> (PeerId, Invitation, String) {
    let inviter = identity(1);
    let invitation = Invitation {
        federation: "f1".into(),
        federation_name: "OWL".into(),
        inviter: inviter.peer_id().to_string(),
        inviter_name: "Detmold".into(),
        addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        invitee: Some("Herford".into()),
        nonce: "00ff".into(),
        expires: 1_900_000_000,
    };
    let line = encode_invitation(&inviter.sign(&invitation).expect("sign")).expect("encode");
    (inviter.peer_id(), invitation, line)
}

fn record(by: &Identity, member: &Identity, name: &str, at: i64) -> Signed {
    let consent = (by.peer_id() != member.peer_id()).then(|| {
        member
            .sign(&JoinConsent {
                federation: "f1".into(),
                member: member.peer_id().to_string(),
                inviter: by.peer_id().to_string(),
                nonce: "n".into(),
                at: at - 1,
            })
            .expect("sign")
    });
    by.sign(&MemberRecord {
        federation: "f1".into(),
        federation_name: "OWL".into(),
        member: member.peer_id().to_string(),
        name: name.into(),
        status: MemberStatus::Admitted,
        by: by.peer_id().to_string(),
        at,
        addresses: vec![],
        http: None,
        flight: None,
        peer_flight: None,
        consent,
    })
    .expect("sign")
}

/// A federation of two, and the wire messages a member might send about it.
fn federation() -> (Membership, Vec<Vec<u8>>) {
    let (a, b) = (identity(1), identity(2));
    let founding = record(&a, &a, "Detmold", 1_000);
    let admission = record(&a, &b, "Herford", 2_000);
    let mut membership = Membership::default();
    let applied = membership.apply_all(&[founding.clone(), admission.clone()]);
    assert!(applied.refused.is_empty(), "{:?}", applied.refused);
    let update = record(&b, &b, "Herford", 3_000);
    let messages = vec![
        serde_json::to_vec(&Gossip::Member(update.clone())).expect("json"),
        serde_json::to_vec(&Request::Member { record: update.clone() }).expect("json"),
        serde_json::to_vec(&Request::Join {
            invitation: founding.clone(),
            consent: admission.clone(),
            name: "Lemgo".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
            http: None,
            flight: None,
            peer_flight: None,
        })
        .expect("json"),
        serde_json::to_vec(&Response::Members { members: vec![founding, admission, update] }).expect("json"),
        serde_json::to_vec(&Response::NameTaken { name: "Herford".into() }).expect("json"),
    ];
    (membership, messages)
}

/// The membership as comparable text: who, under which latest signed record.
fn snapshot(membership: &Membership) -> Vec<(String, String)> {
    membership.all().map(|m| (m.record.member.clone(), m.signed.body.clone())).collect()
}

/// What a node does with a decoded message's records: checks and applies them.
fn apply_carried(membership: &mut Membership, data: &[u8]) {
    let records: Vec<Signed> = match (serde_json::from_slice::<Gossip>(data), serde_json::from_slice::<Request>(data)) {
        (Ok(Gossip::Member(signed)), _) | (_, Ok(Request::Member { record: signed })) => vec![signed],
        _ => match serde_json::from_slice::<Response>(data) {
            Ok(Response::Members { members } | Response::Joined { members }) => members,
            _ => vec![],
        },
    };
    let before = snapshot(membership);
    let applied = membership.apply_all(&records);
    if applied.changes.iter().all(|c| *c == urbanmesh_protocol::membership::Change::Stale) {
        assert_eq!(snapshot(membership), before, "a refused or stale record changed the membership");
    }
}

/// Damage to a byte string: flip, cut, insert or delete.
#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, u8),
    Delete(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, bits)| Damage::Flip(at, bits)),
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Insert(at, byte)),
        any::<usize>().prop_map(Damage::Delete),
    ]
}

fn apply_damage(mut bytes: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for damage in damages {
        let len = bytes.len().max(1);
        match *damage {
            Damage::Flip(at, bits) if !bytes.is_empty() => bytes[at % len] ^= bits,
            Damage::Cut(at) => bytes.truncate(at % len),
            Damage::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Damage::Delete(at) if !bytes.is_empty() => drop(bytes.remove(at % len)),
            _ => {}
        }
    }
    bytes
}

/// Any JSON value, nested a few levels: structure-aware input for the message decoders.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("member".to_owned()),
            Just("announcement".to_owned()),
            Just("join".to_owned()),
            Just("body".to_owned()),
            Just("signer".to_owned()),
            any::<String>()
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            vec(
                (
                    prop_oneof![
                        Just("member".to_owned()),
                        Just("announcement".to_owned()),
                        Just("record".to_owned()),
                        Just("body".to_owned()),
                        Just("signer".to_owned()),
                        Just("signature".to_owned()),
                        Just("members".to_owned()),
                        any::<String>()
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|fields| serde_json::Value::Object(fields.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_an_invitation_or_a_clear_error(text in any::<String>()) {
        for candidate in [text.clone(), format!("urbanmesh-invitation:{text}")] {
            match decode_invitation(&candidate) {
                Ok(signed) => drop(signed.open::<Invitation>()),
                Err(error) => prop_assert!(matches!(error, ProtocolError::Malformed(_)), "{error:?}"),
            }
        }
    }

    #[test]
    fn a_damaged_invitation_is_refused_or_says_exactly_what_was_signed(damages in vec(damage(), 1..6)) {
        let (inviter, invitation, line) = invitation();
        let damaged = apply_damage(line.into_bytes(), &damages);
        let text = String::from_utf8_lossy(&damaged);
        if let Ok(signed) = decode_invitation(&text)
            && let Ok((signer, opened)) = signed.open::<Invitation>()
        {
            prop_assert_eq!((signer, opened), (inviter, invitation));
        }
    }

    #[test]
    fn base64_of_any_bytes_is_a_clear_error(bytes in vec(any::<u8>(), 0..2048)) {
        use base64::Engine;
        let text = format!("urbanmesh-invitation:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes));
        if let Ok(signed) = decode_invitation(&text) {
            prop_assert!(signed.open::<Invitation>().is_err());
        }
    }

    #[test]
    fn any_bytes_decode_to_a_message_or_an_error(bytes in vec(any::<u8>(), 0..4096)) {
        let (mut membership, _) = federation();
        let _ = serde_json::from_slice::<Gossip>(&bytes);
        let _ = serde_json::from_slice::<Request>(&bytes);
        let _ = serde_json::from_slice::<Response>(&bytes);
        apply_carried(&mut membership, &bytes);
    }

    #[test]
    fn any_json_decodes_to_a_message_or_an_error(value in json()) {
        let (mut membership, _) = federation();
        let bytes = serde_json::to_vec(&value).expect("json");
        apply_carried(&mut membership, &bytes);
        let wrapped = serde_json::to_vec(&serde_json::json!({"member": value})).expect("json");
        apply_carried(&mut membership, &wrapped);
    }

    #[test]
    fn damaged_wire_messages_never_change_the_membership_unsigned(
        pick in any::<prop::sample::Index>(),
        damages in vec(damage(), 1..6),
    ) {
        let (mut membership, messages) = federation();
        let damaged = apply_damage(pick.get(&messages).clone(), &damages);
        apply_carried(&mut membership, &damaged);
        // Whatever survived the damage must still carry a valid signature to count.
        for member in membership.all() {
            prop_assert!(member.signed.open::<MemberRecord>().is_ok());
        }
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(serde_json::from_str::<Gossip>(&deep).is_err());
    assert!(serde_json::from_str::<Request>(&deep).is_err());
    let deep_member = format!(r#"{{"member": {{"body": {}}}}}"#, "[".repeat(100_000));
    assert!(serde_json::from_str::<Gossip>(&deep_member).is_err());
    let line = format!("urbanmesh-invitation:{}", "A".repeat(70 * 1024));
    assert!(matches!(decode_invitation(&line), Err(ProtocolError::Malformed(ref why)) if why.contains("too long")));
}
