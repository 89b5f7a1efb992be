//! Generated malformed input for every decoder that takes a peer's bytes: the one-line
//! invitation, gossip payloads, request-response messages (protobuf) and the membership
//! records they carry. Nothing panics, every refusal is an error, and no damaged message changes the
//! membership.

use proptest::collection::vec;
use proptest::prelude::*;
use urbanmesh_protocol::federation::{
    Gossip, Invitation, JoinConsent, MemberRecord, MemberStatus, Request, Response, decode_invitation,
    encode_invitation,
};
use urbanmesh_protocol::membership::Membership;
use urbanmesh_protocol::{Identity, PeerId, ProtocolError, Signed, Statement};

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
        Gossip::Member(update.clone()).encode(),
        Request::Member { record: update.clone() }.encode(),
        Request::Join {
            invitation: founding.clone(),
            consent: admission.clone(),
            name: "Lemgo".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
            http: None,
            flight: None,
            peer_flight: None,
        }
        .encode(),
        Response::Members { members: vec![founding, admission, update] }.encode(),
        Response::NameTaken { name: "Herford".into() }.encode(),
    ];
    (membership, messages)
}

/// The membership as comparable text: who, under which latest signed record.
fn snapshot(membership: &Membership) -> Vec<(String, Vec<u8>)> {
    membership.all().map(|m| (m.record.member.clone(), m.signed.body.clone())).collect()
}

/// What a node does with a decoded message's records: checks and applies them.
fn apply_carried(membership: &mut Membership, data: &[u8]) {
    let records: Vec<Signed> = match (Gossip::decode(data), Request::decode(data)) {
        (Ok(Gossip::Member(signed)), _) | (_, Ok(Request::Member { record: signed })) => vec![signed],
        _ => match Response::decode(data) {
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

/// One field of a protobuf message, as a peer could write it: structure-aware input for
/// the message decoders, with the field numbers and wire types our messages use.
#[derive(Debug, Clone)]
enum Field {
    Varint(u32, u64),
    Bytes(u32, Vec<u8>),
    Message(u32, Vec<Field>),
    Fixed64(u32, u64),
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        match field {
            Field::Varint(number, value) => {
                varint(u64::from(*number) << 3, &mut out);
                varint(*value, &mut out);
            }
            Field::Fixed64(number, value) => {
                varint((u64::from(*number) << 3) | 1, &mut out);
                out.extend_from_slice(&value.to_le_bytes());
            }
            Field::Bytes(number, bytes) => {
                varint((u64::from(*number) << 3) | 2, &mut out);
                varint(bytes.len() as u64, &mut out);
                out.extend_from_slice(bytes);
            }
            Field::Message(number, inner) => {
                let inner = encode(inner);
                varint((u64::from(*number) << 3) | 2, &mut out);
                varint(inner.len() as u64, &mut out);
                out.extend_from_slice(&inner);
            }
        }
    }
    out
}

fn message() -> impl Strategy<Value = Vec<Field>> {
    let number = 1..14u32;
    let leaf = prop_oneof![
        (number.clone(), any::<u64>()).prop_map(|(n, v)| Field::Varint(n, v)),
        (number.clone(), prop_oneof![Just(0u64), Just(1), Just(2), Just(u64::MAX)])
            .prop_map(|(n, v)| Field::Varint(n, v)),
        (number.clone(), any::<u64>()).prop_map(|(n, v)| Field::Fixed64(n, v)),
        (number.clone(), vec(any::<u8>(), 0..64)).prop_map(|(n, b)| Field::Bytes(n, b)),
        (number.clone(), "[a-zA-Z0-9/]{0,60}").prop_map(|(n, s)| Field::Bytes(n, s.into_bytes())),
    ];
    let field = leaf.prop_recursive(4, 64, 8, move |inner| {
        (1..14u32, vec(inner, 0..8)).prop_map(|(n, fields)| Field::Message(n, fields))
    });
    vec(field, 0..8)
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
        let _ = Gossip::decode(&bytes);
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        apply_carried(&mut membership, &bytes);
    }

    #[test]
    fn any_protobuf_message_decodes_to_a_message_or_an_error(fields in message()) {
        let (mut membership, _) = federation();
        let bytes = encode(&fields);
        apply_carried(&mut membership, &bytes);
        let wrapped = encode(&[Field::Message(1, fields)]);
        apply_carried(&mut membership, &wrapped);
        if let Ok(signed) = Signed::from_bytes(&bytes) {
            prop_assert!(signed.open::<MemberRecord>().is_err(), "a generated statement passed for a signed one");
        }
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
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    // 100 000 nested groups (field 1, wire type 3): protobuf's one recursive shape.
    let groups = [vec![0x0b; 100_000], vec![0x0c; 100_000]].concat();
    assert!(Gossip::decode(&groups).is_err());
    assert!(Request::decode(&groups).is_err());
    assert!(Response::decode(&groups).is_err());
    let mut nested = Vec::new();
    for _ in 0..10_000 {
        nested = encode(&[Field::Bytes(1, nested)]);
    }
    // Length-delimited fields are read lazily, one level at a time: this is a gossiped
    // record whose body is no statement.
    match Gossip::decode(&nested) {
        Ok(Gossip::Member(signed)) => assert!(signed.open::<MemberRecord>().is_err()),
        other => assert!(other.is_err(), "{other:?}"),
    }
    let line = format!("urbanmesh-invitation:{}", "A".repeat(70 * 1024));
    assert!(matches!(decode_invitation(&line), Err(ProtocolError::Malformed(ref why)) if why.contains("too long")));
}

#[test]
fn a_message_without_the_parts_its_rules_need_is_refused_by_name() {
    let (_, messages) = federation();
    // An empty message has no kind; a join without its invitation names what is missing.
    for error in
        [Gossip::decode(&[]), Gossip::decode(&encode(&[Field::Bytes(7, vec![])]))].map(|r| r.expect_err("no kind"))
    {
        assert!(error.to_string().contains("the gossip's kind is missing"), "{error}");
    }
    let join = encode(&[Field::Message(1, vec![Field::Bytes(3, b"Lemgo".to_vec())])]);
    let error = Request::decode(&join).expect_err("no invitation");
    assert!(error.to_string().contains("join: invitation is missing"), "{error}");
    for message in &messages {
        let decoded =
            [Gossip::decode(message).is_ok(), Request::decode(message).is_ok(), Response::decode(message).is_ok()];
        assert!(decoded.contains(&true), "an honest message must decode");
    }
}

#[test]
fn a_record_with_an_unknown_status_is_malformed() {
    let a = identity(1);
    let mut record = record(&a, &a, "Detmold", 1_000);
    // Statement.member (3) → MemberRecord.status (5) = 7, appended: protobuf merges the
    // two, and the last status wins.
    record.body.extend(encode(&[Field::Message(3, vec![Field::Varint(5, 7)])]));
    let error = MemberRecord::from_body(&record.body).expect_err("unknown status");
    assert!(error.to_string().contains("unknown status 7"), "{error}");
    let error = record.open::<MemberRecord>().expect_err("changed body");
    assert!(matches!(error, ProtocolError::Forged(_)), "the signature covers the status: {error}");
}
