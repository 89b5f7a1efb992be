#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("the node key is not a valid ed25519 secret key: {0}")]
    Key(String),
    #[error("invalid listen address `{address}`: {reason}")]
    Address { address: String, reason: String },
    #[error("building the peer-to-peer transport failed: {0}")]
    Transport(String),
    #[error("listening on `{address}` failed: {reason}")]
    Listen { address: String, reason: String },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("forged or damaged signature: {0}")]
    Forged(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("peer {peer} unreachable: {reason}")]
    Unreachable { peer: String, reason: String },
    #[error("the network loop has stopped")]
    Stopped,
}
