use serde::{Deserialize, Serialize};

use crate::{Dataset, Derived};

/// The member a replicated entry comes from, and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// What the rows cover as the receiving member may know it (see [`Derived::known_to`]).
    pub derived: Derived,
    /// The same as the public may know it; empty unless the dataset is public. What a
    /// member shows its own visitors.
    #[serde(default)]
    pub public: Derived,
    /// A regional view, assembled at its origin when read; never a source of other views.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub view: bool,
}

/// A peer's catalogue entry as this node keeps it: verified, versioned, searchable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replica {
    pub origin: Origin,
    pub version: u64,
    /// The origin addressed the entry to this node alone, with what this node may know of
    /// its rows; a gossiped entry of the same version tells what every member may know.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub personal: bool,
    #[serde(flatten)]
    pub entry: SharedEntry,
}

impl Replica {
    /// Which of two entries of one dataset is newer: the later version, and at one version
    /// the one addressed to this node.
    pub fn rank(&self) -> (u64, bool) {
        (self.version, self.personal)
    }

    pub fn key(&self) -> String {
        replica_key(&self.origin.peer, self.entry.dataset.id())
    }
}

pub(crate) fn replica_key(peer: &str, dataset: &str) -> String {
    format!("{peer}/{dataset}")
}
