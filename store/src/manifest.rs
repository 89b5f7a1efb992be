use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::extent::TimeExtent;

/// The segments that make up a table, swapped atomically in sled after each compaction.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) segments: Vec<Segment>,
    /// Every write-ahead log entry up to this sequence number lives in a segment.
    pub(crate) compacted_seq: u64,
    /// A tombstone: the table is deleted and its storage is being removed (see
    /// [`crate::removal`]). Nothing of such a table is ever read again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) deleted: bool,
}

impl Manifest {
    pub(crate) fn tombstone() -> Self {
        Self { deleted: true, ..Self::default() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Segment {
    pub(crate) file: String,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    /// Span of the time column in this segment (absent in segments of older nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) extent: Option<TimeExtent>,
}

/// All tables' manifests, one sled tree keyed by table id.
#[derive(Clone)]
pub(crate) struct Manifests {
    tree: sled::Tree,
}

impl Manifests {
    pub(crate) fn open(db: &sled::Db) -> Result<Self, StoreError> {
        Ok(Self { tree: db.open_tree("manifests")? })
    }

    pub(crate) fn load(&self, table: &str) -> Result<Manifest, StoreError> {
        match self.tree.get(table)? {
            None => Ok(Manifest::default()),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt { reason: format!("manifest of `{table}`: {e}") }),
        }
    }

    /// Stages the new manifest; durable after the next flush.
    pub(crate) fn store(&self, table: &str, manifest: &Manifest) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(manifest)
            .map_err(|e| StoreError::Corrupt { reason: format!("manifest of `{table}`: {e}") })?;
        self.tree.insert(table, bytes)?;
        Ok(())
    }

    pub(crate) fn contains(&self, table: &str) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(table)?)
    }

    pub(crate) fn ids(&self) -> Result<Vec<String>, StoreError> {
        self.tree.iter().keys().map(|key| Ok(String::from_utf8_lossy(&key?).into_owned())).collect()
    }

    pub(crate) fn remove(&self, table: &str) -> Result<(), StoreError> {
        self.tree.remove(table)?;
        Ok(())
    }
}
