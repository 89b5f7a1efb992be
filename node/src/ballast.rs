//! Room to start on a full disk. The data directory holds a ballast file of
//! `[storage] ballast_bytes`; when the node starts with less free space than
//! `[storage] min_free_bytes`, it gives the ballast up before opening its database, which
//! needs room to open. It then serves reads and refuses writes (507) until space is freed,
//! and takes the ballast back at a start with room to spare.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

pub(crate) const BALLAST_FILE: &str = "ballast";

/// Gives the ballast up on a nearly full disk, or lays it down where there is room.
pub(crate) fn settle(data_dir: &Path, min_free_bytes: u64, ballast_bytes: u64) -> anyhow::Result<()> {
    let path = data_dir.join(BALLAST_FILE);
    // A ballast cut short (a crash, a full disk) is never kept.
    let _ = std::fs::remove_file(path.with_extension("tmp"));
    let free = fs4::available_space(data_dir)
        .with_context(|| format!("measuring the free space of {}", data_dir.display()))?;
    if free < min_free_bytes {
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            tracing::warn!(
                free,
                min_free_bytes,
                "disk nearly full: gave up the ballast to start; writes are refused until space is freed"
            );
        } else {
            tracing::warn!(
                free,
                min_free_bytes,
                "disk nearly full and no ballast left; writes are refused until space is freed"
            );
        }
        return Ok(());
    }
    let held = std::fs::metadata(&path).map_or(0, |m| m.len());
    if ballast_bytes == 0 {
        if held > 0 {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        return Ok(());
    }
    // Taken back only with room to spare: the floor stays free after it.
    if held < ballast_bytes
        && free.saturating_sub(ballast_bytes - held) >= min_free_bytes
        && let Err(error) = lay(&path, ballast_bytes)
    {
        // The node starts without it; the next start tries again.
        let _ = std::fs::remove_file(path.with_extension("tmp"));
        tracing::warn!(%error, "could not lay the ballast");
    }
    Ok(())
}

/// Writes the ballast with real blocks (not a sparse file, which would free nothing).
fn lay(path: &Path, bytes: u64) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    let chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let now = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..now])?;
        left -= now as u64;
    }
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ballast_is_laid_where_there_is_room_and_given_up_where_there_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        settle(dir.path(), 1, 3 << 20).expect("settle");
        assert_eq!(std::fs::metadata(dir.path().join(BALLAST_FILE)).expect("ballast").len(), 3 << 20);
        settle(dir.path(), u64::MAX, 3 << 20).expect("settle");
        assert!(!dir.path().join(BALLAST_FILE).exists(), "given up below the floor");
        settle(dir.path(), 1, 0).expect("settle");
        assert!(!dir.path().join(BALLAST_FILE).exists(), "none asked for");
    }
}
