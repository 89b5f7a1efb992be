//! The node's identity (its ed25519 key, whose PeerId names it on the network) and
//! signed envelopes that any peer can check against the signer's PeerId alone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libp2p::PeerId;
use libp2p::identity::{Keypair, PublicKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ProtocolError;

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
    pub fn sign<T: Serialize>(&self, body: &T) -> Result<Signed, ProtocolError> {
        let body = serde_json::to_string(body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        let signature = self.keypair.sign(body.as_bytes()).map_err(|e| ProtocolError::Key(e.to_string()))?;
        Ok(Signed { body, signer: self.peer_id().to_string(), signature: URL_SAFE_NO_PAD.encode(signature) })
    }
}

/// A JSON body with the signature of the peer that wrote it. The body travels as the
/// exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub body: String,
    pub signer: String,
    pub signature: String,
}

/// Largest signed body accepted from a peer.
pub const MAX_SIGNED_BODY: usize = 256 * 1024;

impl Signed {
    /// Checks the signature against the signer's PeerId and decodes the body.
    pub fn open<T: DeserializeOwned>(&self) -> Result<(PeerId, T), ProtocolError> {
        if self.body.len() > MAX_SIGNED_BODY {
            return Err(ProtocolError::Malformed(format!("signed body of {} bytes is too large", self.body.len())));
        }
        let signer: PeerId = self.signer.parse().map_err(|_| ProtocolError::Forged("signer is not a PeerId".into()))?;
        let key = public_key(&signer).ok_or_else(|| ProtocolError::Forged("signer has no ed25519 key".into()))?;
        let signature = URL_SAFE_NO_PAD
            .decode(&self.signature)
            .map_err(|_| ProtocolError::Forged("signature is not base64".into()))?;
        if !key.verify(self.body.as_bytes(), &signature) {
            return Err(ProtocolError::Forged(format!("signature does not match {signer}")));
        }
        let body = serde_json::from_str(&self.body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        Ok((signer, body))
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

    #[test]
    fn signatures_bind_body_and_signer() {
        let alice = Identity::from_secret([7; 32]).expect("key");
        let mallory = Identity::from_secret([9; 32]).expect("key");
        let signed = alice.sign(&serde_json::json!({"dataset": "pegel"})).expect("sign");
        let (signer, body): (PeerId, serde_json::Value) = signed.open().expect("valid");
        assert_eq!(signer, alice.peer_id());
        assert_eq!(body["dataset"], "pegel");
        let mut tampered = signed.clone();
        tampered.body = r#"{"dataset":"luft"}"#.into();
        assert!(matches!(tampered.open::<serde_json::Value>(), Err(ProtocolError::Forged(_))));
        let mut claimed = signed;
        claimed.signer = mallory.peer_id().to_string();
        assert!(matches!(claimed.open::<serde_json::Value>(), Err(ProtocolError::Forged(_))));
    }
}
