//! The free-space floor: writes are refused while the disk holding the store has less
//! free space than `[storage] min_free_bytes`, before it is full. Reads go on, compaction
//! waits (it would need room of its own), and writes resume by themselves once space is
//! freed. A full disk would otherwise fail the log's fsync, which stops every write until
//! a restart (decision 012), and could leave the node unable to start.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::StoreError;

/// How long one measurement of the free space stands; writes within it are not measured.
const MEASURED_FOR: Duration = Duration::from_millis(250);

pub(crate) struct DiskSpace {
    /// A folder on the store's disk.
    dir: PathBuf,
    floor: u64,
    measured: Mutex<Option<(Instant, u64)>>,
}

impl DiskSpace {
    pub(crate) fn new(dir: &Path, floor: u64) -> Self {
        Self { dir: dir.to_owned(), floor, measured: Mutex::new(None) }
    }

    /// Refuses when the free space is below the floor.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        if self.floor == 0 {
            return Ok(());
        }
        let free = self.free();
        if free < self.floor { Err(StoreError::DiskFull { free, floor: self.floor }) } else { Ok(()) }
    }

    /// Bytes free to the node on the store's disk; `u64::MAX` if the system cannot tell
    /// (a failing measurement must not stop writes that would succeed).
    fn free(&self) -> u64 {
        let mut measured = self.measured.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, free)) = *measured
            && at.elapsed() < MEASURED_FOR
        {
            return free;
        }
        let existing = self.dir.ancestors().find(|dir| dir.exists()).unwrap_or(Path::new("/"));
        let free = fs4::available_space(existing).unwrap_or_else(|error| {
            tracing::warn!(dir = %existing.display(), %error, "cannot measure the free space");
            u64::MAX
        });
        *measured = Some((Instant::now(), free));
        free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_above_the_free_space_refuses_and_none_never_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(DiskSpace::new(dir.path(), 1).check().is_ok());
        assert!(DiskSpace::new(dir.path(), 0).check().is_ok());
        let error = DiskSpace::new(&dir.path().join("not/yet"), u64::MAX).check().expect_err("full");
        assert!(error.to_string().contains("min_free_bytes"), "{error}");
    }
}
