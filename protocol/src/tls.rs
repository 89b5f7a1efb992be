//! TLS between members, with certificates derived from the node keys: each side's
//! certificate carries its libp2p identity (the libp2p TLS spec), so a connection is bound
//! to two PeerIds, and the caller checks that the other one is a member.

use std::sync::Arc;

use libp2p::PeerId;

use crate::{Identity, ProtocolError};

/// Server side: requires and verifies a client certificate; ALPN `h2` for gRPC.
pub fn server_config(identity: &Identity) -> Result<Arc<rustls::ServerConfig>, ProtocolError> {
    let mut config =
        libp2p_tls::make_server_config(identity.keypair()).map_err(|e| ProtocolError::Key(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Client side towards `remote`: the handshake fails unless the server proves that PeerId.
pub fn client_config(identity: &Identity, remote: PeerId) -> Result<Arc<rustls::ClientConfig>, ProtocolError> {
    let mut config = libp2p_tls::make_client_config(identity.keypair(), Some(remote))
        .map_err(|e| ProtocolError::Key(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The PeerId a verified peer certificate speaks for.
pub fn peer_of_certificate(der: &rustls::pki_types::CertificateDer<'_>) -> Result<PeerId, ProtocolError> {
    libp2p_tls::certificate::parse(der)
        .map(|certificate| certificate.peer_id())
        .map_err(|e| ProtocolError::Forged(format!("peer certificate: {e}")))
}
