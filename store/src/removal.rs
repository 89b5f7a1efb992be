//! Removing a table's storage so that a crash at any instant leaves all of it or none.
//!
//! The commit point is one durable write: the manifest becomes a tombstone. Before it the
//! table is whole; after it the table is gone, and whatever storage is left (its log, its
//! segment folder, the tombstone) is only cleared, now or at the next start. Segment files
//! are never removed while a manifest that names them can still be read.

use std::path::Path;

use crate::StoreError;
use crate::commit::WriteStop;
use crate::failpoint::Failpoints;
use crate::manifest::{Manifest, Manifests};
use crate::segment::sync_dir;
use crate::wal::Wal;

pub(crate) struct Removal<'a> {
    pub(crate) db: &'a sled::Db,
    pub(crate) manifests: &'a Manifests,
    pub(crate) stop: &'a WriteStop,
    pub(crate) failpoints: &'a Failpoints,
}

impl Removal<'_> {
    /// Removes the log, manifest and segment folder `dir` of table `id`. Blocks.
    pub(crate) fn remove(&self, id: &str, dir: &Path) -> Result<(), StoreError> {
        let log = Wal::tree_name(id);
        let has_log = self.db.tree_names().iter().any(|name| name.as_ref() == log.as_bytes());
        if !has_log && !dir.exists() && !self.manifests.contains(id)? {
            return Ok(());
        }
        self.failpoints.hit("before-manifest-delete").map_err(StoreError::io(dir))?;
        self.manifests.store(id, &Manifest::tombstone())?;
        self.stop.flush_now(self.db)?;
        self.failpoints.hit("after-manifest-delete").map_err(StoreError::io(dir))?;
        self.clear(id, dir)
    }

    /// Finishes a removal a crash cut short, if `id` has a tombstone. Blocks.
    pub(crate) fn finish(&self, id: &str, dir: &Path) -> Result<bool, StoreError> {
        if !self.manifests.load(id)?.deleted {
            return Ok(false);
        }
        tracing::info!(dataset = %id, "finishing the removal of a table's storage cut short by a crash");
        self.clear(id, dir)?;
        Ok(true)
    }

    /// Everything after the commit point: log, files (made durable in their parent), and
    /// last the tombstone.
    fn clear(&self, id: &str, dir: &Path) -> Result<(), StoreError> {
        self.db.drop_tree(Wal::tree_name(id))?;
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StoreError::Io { path: dir.to_owned(), source: e });
            }
            _ => {}
        }
        if let Some(parent) = dir.parent().filter(|parent| parent.exists()) {
            sync_dir(parent)?;
        }
        self.failpoints.hit("after-segments-delete").map_err(StoreError::io(dir))?;
        self.manifests.remove(id)?;
        self.stop.flush_now(self.db)
    }
}
