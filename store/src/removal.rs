//! Removing a table's storage so that a crash at any instant leaves all of it or none.
//!
//! The commit point is one durable write: the manifest becomes a tombstone. Before it the
//! table is whole; after it the table is gone, and whatever storage is left (its log, its
//! segment folder, the tombstone) is only cleared, now or at the next start. Segment files
//! are never removed while a manifest that names them can still be read.

use crate::StoreError;
use crate::commit::WriteStop;
use crate::failpoint::Failpoints;
use crate::location::Segments;
use crate::manifest::{Manifest, Manifests};
use crate::wal::Wal;

pub(crate) struct Removal<'a> {
    pub(crate) db: &'a sled::Db,
    pub(crate) manifests: &'a Manifests,
    pub(crate) stop: &'a WriteStop,
    pub(crate) failpoints: &'a Failpoints,
}

impl Removal<'_> {
    /// Removes the log, manifest and `segments` of table `id`. Blocks.
    pub(crate) fn remove(&self, id: &str, segments: &Segments) -> Result<(), StoreError> {
        let log = Wal::tree_name(id);
        let has_log = self.db.tree_names().iter().any(|name| name.as_ref() == log.as_bytes());
        if !has_log && !self.manifests.contains(id)? && !segments.exists()? {
            return Ok(());
        }
        self.failpoints.hit("before-manifest-delete").map_err(StoreError::io(segments.to_string()))?;
        self.manifests.store(id, &Manifest::tombstone())?;
        self.stop.flush_now(self.db)?;
        self.failpoints.hit("after-manifest-delete").map_err(StoreError::io(segments.to_string()))?;
        self.clear(id, segments)
    }

    /// Finishes a removal a crash cut short, if `id` has a tombstone. Blocks.
    pub(crate) fn finish(&self, id: &str, segments: &Segments) -> Result<bool, StoreError> {
        if !self.manifests.load(id)?.deleted {
            return Ok(false);
        }
        tracing::info!(dataset = %id, "finishing the removal of a table's storage cut short by a crash");
        self.clear(id, segments)?;
        Ok(true)
    }

    /// Everything after the commit point: log, files (made durable in their parent), and
    /// last the tombstone.
    fn clear(&self, id: &str, segments: &Segments) -> Result<(), StoreError> {
        self.db.drop_tree(Wal::tree_name(id))?;
        segments.remove_all()?;
        self.failpoints.hit("after-segments-delete").map_err(StoreError::io(segments.to_string()))?;
        self.manifests.remove(id)?;
        self.stop.flush_now(self.db)
    }
}
