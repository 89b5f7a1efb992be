//! Short-lived secrets' records that outlive a restart: sessions and logins under way,
//! kept in the node's database. A record is filed under the SHA-256 of its secret (the
//! cookie's value), so what is on disk cannot be replayed as a cookie. Records older than
//! their lifetime are gone; beyond `max` records, the oldest go first.

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub(crate) struct Expiring<T> {
    tree: sled::Tree,
    lifetime: Duration,
    max: usize,
    record: PhantomData<T>,
}

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    /// Seconds since the epoch when the record was made.
    created: u64,
    value: T,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl<T: Serialize + DeserializeOwned> Expiring<T> {
    pub(crate) fn new(tree: sled::Tree, lifetime: Duration, max: usize) -> Self {
        Self { tree, lifetime, max, record: PhantomData }
    }

    fn fresh(&self, stored: &Stored<T>) -> bool {
        now().saturating_sub(stored.created) < self.lifetime.as_secs()
    }

    fn decode(&self, bytes: &[u8]) -> Option<Stored<T>> {
        serde_json::from_slice(bytes).ok()
    }

    /// Files `value` under `secret`, after dropping expired records (and the oldest, when
    /// `max` are held).
    pub(crate) fn insert(&self, secret: &str, value: T) -> Result<(), sled::Error> {
        let mut live: Vec<(u64, sled::IVec)> = Vec::new();
        for entry in self.tree.iter() {
            let (key, bytes) = entry?;
            match self.decode(&bytes).filter(|stored| self.fresh(stored)) {
                Some(stored) => live.push((stored.created, key)),
                None => {
                    self.tree.remove(key)?;
                }
            }
        }
        if live.len() >= self.max {
            live.sort_by_key(|(created, _)| *created);
            for (_, key) in live.iter().take(live.len() + 1 - self.max) {
                self.tree.remove(key)?;
            }
        }
        let bytes = serde_json::to_vec(&Stored { created: now(), value }).map_err(std::io::Error::other)?;
        self.tree.insert(key(secret), bytes)?;
        Ok(())
    }

    pub(crate) fn get(&self, secret: &str) -> Option<T> {
        let bytes = self.tree.get(key(secret)).ok()??;
        self.decode(&bytes).filter(|stored| self.fresh(stored)).map(|stored| stored.value)
    }

    /// Removes the record and returns it if it had not expired.
    pub(crate) fn take(&self, secret: &str) -> Option<T> {
        let bytes = self.tree.remove(key(secret)).ok()??;
        self.decode(&bytes).filter(|stored| self.fresh(stored)).map(|stored| stored.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> sled::Tree {
        sled::Config::new().temporary(true).open().expect("sled").open_tree("t").expect("tree")
    }

    #[test]
    fn records_are_filed_under_a_hash_of_their_secret() {
        let tree = tree();
        let store: Expiring<String> = Expiring::new(tree.clone(), Duration::from_secs(60), 10);
        store.insert("cookie-value", "anna".into()).expect("insert");
        assert_eq!(store.get("cookie-value").as_deref(), Some("anna"));
        assert!(store.get("other").is_none());
        assert!(tree.iter().keys().all(|k| k.expect("key").as_ref() != b"cookie-value"));
        assert_eq!(store.take("cookie-value").as_deref(), Some("anna"));
        assert!(store.get("cookie-value").is_none());
    }

    #[test]
    fn the_oldest_go_first_when_full_and_expired_ones_are_gone() {
        let store: Expiring<u32> = Expiring::new(tree(), Duration::from_secs(60), 3);
        for n in 0..5 {
            store.insert(&format!("s{n}"), n).expect("insert");
        }
        assert_eq!(store.tree.len(), 3);
        let expired: Expiring<u32> = Expiring::new(tree(), Duration::ZERO, 3);
        expired.insert("s", 1).expect("insert");
        assert!(expired.get("s").is_none());
    }
}
