//! The node's identity (its ed25519 key, whose PeerId names it on the network) and
//! signed envelopes that any peer can check against the signer's PeerId alone.

use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};

use crate::{ProtocolError, Statement};

/// What a signature covers before the body, so that no signature this key makes for
/// another protocol (Noise, TLS, gossipsub) can pass for a statement, nor one the other way.
const SIGNING_CONTEXT: &[u8] = b"urbanmesh-statement:";

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    [SIGNING_CONTEXT, body].concat()
}

/// The node key, from the 32-byte secret `urbanmesh init` wrote.
#[derive(Clone)]
pub struct Identity {
    keypair: Keypair,
}

impl Identity {
    pub fn from_secret(secret: [u8; 32]) -> Result<Self, ProtocolError> {
        let mut secret = secret;
        let keypair = Keypair::ed25519_from_bytes(&mut secret).map_err(|e| ProtocolError::Key(e.to_string()))?;
        Ok(Self { keypair })
    }

    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }

    pub(crate) fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// Signs `body`; anyone can verify the result knowing only our PeerId.
    pub fn sign<T: Statement>(&self, statement: &T) -> Result<Signed, ProtocolError> {
        let body = statement.to_body();
        let signature = self.keypair.sign(&signed_bytes(&body)).map_err(|e| ProtocolError::Key(e.to_string()))?;
        Ok(Signed { body, signer: self.peer_id().to_string(), signature })
    }
}

/// A statement with the signature of the peer that wrote it. The body travels as the
/// exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub body: Vec<u8>,
    /// The signer's PeerId, as text.
    pub signer: String,
    pub signature: Vec<u8>,
}

/// Largest signed body accepted from a peer.
pub const MAX_SIGNED_BODY: usize = 256 * 1024;

impl Signed {
    /// Checks the signature against the signer's PeerId and decodes the body.
    pub fn open<T: Statement>(&self) -> Result<(PeerId, T), ProtocolError> {
        if self.body.len() > MAX_SIGNED_BODY {
            return Err(ProtocolError::Malformed(format!("signed body of {} bytes is too large", self.body.len())));
        }
        let signer: PeerId = self.signer.parse().map_err(|_| ProtocolError::Forged("signer is not a PeerId".into()))?;
        let key = public_key(&signer).ok_or_else(|| ProtocolError::Forged("signer has no ed25519 key".into()))?;
        if !key.verify(&signed_bytes(&self.body), &self.signature) {
            return Err(ProtocolError::Forged(format!("signature does not match {signer}")));
        }
        Ok((signer, T::from_body(&self.body)?))
    }
}

/// The public key inside an ed25519 PeerId (identity multihash).
pub fn public_key(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return None;
    }
    PublicKey::try_decode_protobuf(multihash.digest()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::{Announcement, JoinConsent};

    fn announcement(dataset: &str) -> Announcement {
        Announcement {
            federation: "f1".into(),
            origin: "o".into(),
            dataset: dataset.into(),
            version: 1,
            member: None,
            entry: None,
        }
    }

    #[test]
    fn signatures_bind_body_signer_and_kind() {
        let alice = Identity::from_secret([7; 32]).expect("key");
        let mallory = Identity::from_secret([9; 32]).expect("key");
        let signed = alice.sign(&announcement("pegel")).expect("sign");
        let (signer, body): (PeerId, Announcement) = signed.open().expect("valid");
        assert_eq!((signer, body), (alice.peer_id(), announcement("pegel")));
        let mut tampered = signed.clone();
        tampered.body = announcement("luft").to_body();
        assert!(matches!(tampered.open::<Announcement>(), Err(ProtocolError::Forged(_))));
        let mut claimed = signed.clone();
        claimed.signer = mallory.peer_id().to_string();
        assert!(matches!(claimed.open::<Announcement>(), Err(ProtocolError::Forged(_))));
        assert!(matches!(signed.open::<JoinConsent>(), Err(ProtocolError::Malformed(_))), "a kind for another");
        let bare = Signed { signature: alice.keypair.sign(&signed.body).expect("sign"), ..signed };
        assert!(matches!(bare.open::<Announcement>(), Err(ProtocolError::Forged(_))), "no signing context");
    }
}
