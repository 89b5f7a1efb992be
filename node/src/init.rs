use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{Context, bail};

use crate::config::Config;

pub const KEY_FILE: &str = "node.key";
pub const TOKEN_FILE: &str = "admin.token";

/// Creates the node's identity key, configuration and admin token; refuses to touch an
/// existing node.
pub fn init(dir: &Path, name: &str, ars: Option<&str>) -> anyhow::Result<()> {
    for existing in [KEY_FILE, "config.toml", TOKEN_FILE, "meta"] {
        if dir.join(existing).exists() {
            bail!("{} already holds a node ({existing} exists); refusing to overwrite it", dir.display());
        }
    }
    if name.trim().is_empty() {
        bail!("--name must name the municipality, e.g. --name Gütersloh");
    }
    if let Some(ars) = ars {
        if ars.len() != 12 || !ars.bytes().all(|b| b.is_ascii_digit()) {
            bail!("--ars must be the 12-digit Amtlicher Regionalschlüssel, e.g. 057540008008; got `{ars}`");
        }
    }
    identity(dir)?;
    let config = toml::to_string_pretty(&Config::new(name.trim(), ars.map(str::to_owned)))?;
    std::fs::write(Config::path(dir), config).context("writing config.toml")?;
    tracing::info!(node = %name.trim(), dir = %dir.display(), "node initialised");
    Ok(())
}

/// Creates the node's identity key and admin token in `dir` unless it has them: what a
/// node started with `--config` on an empty data directory (a new container's volume)
/// needs. Returns whether it created them; refuses a directory with a store but no key.
pub fn identity(dir: &Path) -> anyhow::Result<bool> {
    if dir.join(KEY_FILE).exists() {
        return Ok(false);
    }
    for existing in [TOKEN_FILE, "meta"] {
        if dir.join(existing).exists() {
            bail!("{} holds a node's {existing} but no {KEY_FILE}; refusing to give it a new identity", dir.display());
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    // An ed25519 secret key is 32 random bytes; the node's peer identity derives from it.
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness for the node key: {e}"))?;
    write_secret(&dir.join(KEY_FILE), &key)?;
    let mut token = [0u8; 32];
    getrandom::fill(&mut token).map_err(|e| anyhow::anyhow!("no randomness for the admin token: {e}"))?;
    write_secret(&dir.join(TOKEN_FILE), hex::encode(token).as_bytes())?;
    Ok(true)
}

/// Writes a file only its owner can read, durably, failing if it already exists.
fn write_secret(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}
