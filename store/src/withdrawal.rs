//! Log entries withdrawn after a failed flush, recorded outside the log.
//!
//! Once an fsync of the log has failed, nothing written to the log afterwards can be
//! trusted to reach the disk (the kernel may have dropped the dirty pages and a retried
//! fsync succeeds anyway; sled stops on its first I/O error). So the withdrawal of the
//! entries that were not acknowledged goes to this small file of its own, fsynced, and
//! the next start removes those entries from the log before it is replayed.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::segment::sync_dir;
use crate::wal::Wal;

/// One line of the file: the entries of one group commit that was not acknowledged.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Withdrawn {
    /// (table id, sequence number)
    entries: Vec<(String, u64)>,
}

pub(crate) struct Withdrawals {
    path: PathBuf,
}

impl Withdrawals {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Appends `entries` and makes them durable; only then may their writers hear that
    /// nothing was stored.
    pub(crate) fn record(&self, entries: Vec<(String, u64)>) -> Result<(), StoreError> {
        let created = !self.path.exists();
        let mut line = serde_json::to_vec(&Withdrawn { entries })
            .map_err(|e| StoreError::Corrupt { reason: format!("withdrawn entries: {e}") })?;
        line.push(b'\n');
        let mut file =
            OpenOptions::new().create(true).append(true).open(&self.path).map_err(StoreError::io(&self.path))?;
        file.write_all(&line).and_then(|()| file.sync_all()).map_err(StoreError::io(&self.path))?;
        if created {
            sync_dir(parent(&self.path))?;
        }
        Ok(())
    }

    /// Removes every recorded entry from its table's log, makes that durable, then
    /// forgets the file. Run at start, before any table replays its log.
    pub(crate) fn apply(&self, db: &sled::Db) -> Result<usize, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(StoreError::Io { path: self.path.clone(), source: e }),
        };
        let lines: Vec<&str> = text.lines().collect();
        let trees = db.tree_names();
        let mut removed = 0;
        for (number, line) in lines.iter().enumerate() {
            let withdrawn: Withdrawn = match serde_json::from_str(line) {
                Ok(withdrawn) => withdrawn,
                // A crash while recording: nobody was answered, the entries are in doubt
                // like any write in flight at a crash.
                Err(_) if number + 1 == lines.len() && !text.ends_with('\n') => break,
                Err(e) => {
                    return Err(StoreError::Corrupt {
                        reason: format!("{} line {}: {e}", self.path.display(), number + 1),
                    });
                }
            };
            for (table, seq) in withdrawn.entries {
                let name = Wal::tree_name(&table);
                // A table deleted since has no log to clean.
                if trees.iter().any(|tree| tree.as_ref() == name.as_bytes()) {
                    removed += usize::from(db.open_tree(name)?.remove(seq.to_be_bytes())?.is_some());
                }
            }
        }
        db.flush()?;
        std::fs::remove_file(&self.path).map_err(StoreError::io(&self.path))?;
        sync_dir(parent(&self.path))?;
        Ok(removed)
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_entries_leave_the_log_and_the_file_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let log = db.open_tree(Wal::tree_name("pegel")).expect("tree");
        for seq in 1..=4u64 {
            log.insert(seq.to_be_bytes(), b"entry".as_slice()).expect("insert");
        }
        let withdrawals = Withdrawals::new(dir.path().join("wal-withdrawn.jsonl"));
        withdrawals.record(vec![("pegel".into(), 3), ("gone".into(), 9)]).expect("record");
        withdrawals.record(vec![("pegel".into(), 4)]).expect("record");
        assert_eq!(withdrawals.apply(&db).expect("apply"), 2);
        let left: Vec<u64> = log
            .iter()
            .keys()
            .map(|k| u64::from_be_bytes(k.expect("key").as_ref().try_into().expect("8 bytes")))
            .collect();
        assert_eq!(left, vec![1, 2]);
        assert!(!dir.path().join("wal-withdrawn.jsonl").exists());
        // A table that has no log is not created by the clean-up.
        assert!(!db.tree_names().iter().any(|t| t.as_ref() == Wal::tree_name("gone").as_bytes()));
        assert_eq!(withdrawals.apply(&db).expect("nothing to apply"), 0);
    }

    #[test]
    fn a_torn_last_line_is_skipped_but_a_damaged_one_before_it_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::Config::new().temporary(true).open().expect("sled");
        let path = dir.path().join("wal-withdrawn.jsonl");
        std::fs::write(&path, "{\"entries\":[[\"pegel\",1]]}\n{\"entries\":[[\"peg").expect("write");
        assert_eq!(Withdrawals::new(path.clone()).apply(&db).expect("torn tail"), 0);
        std::fs::write(&path, "garbage\n{\"entries\":[]}\n").expect("write");
        let error = Withdrawals::new(path).apply(&db).expect_err("damaged line");
        assert!(error.to_string().contains("line 1"), "{error}");
    }
}
