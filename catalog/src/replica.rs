use serde::{Deserialize, Serialize};

use crate::{Dataset, Derived};

/// The member a replicated entry comes from, and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The member's PeerId.
    pub peer: String,
    /// The member's name (its municipality).
    pub name: String,
    /// Its portal and API base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// Its Flight endpoint for members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flight: Option<String>,
}

/// What a node shares with its federation about one of its datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedEntry {
    pub dataset: Dataset,
    pub derived: Derived,
    /// A regional view, assembled at its origin when read; never a source of other views.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub view: bool,
}

/// A peer's catalogue entry as this node keeps it: verified, versioned, searchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replica {
    pub origin: Origin,
    pub version: u64,
    #[serde(flatten)]
    pub entry: SharedEntry,
}

impl Replica {
    pub fn key(&self) -> String {
        replica_key(&self.origin.peer, self.entry.dataset.id())
    }
}

pub(crate) fn replica_key(peer: &str, dataset: &str) -> String {
    format!("{peer}/{dataset}")
}
