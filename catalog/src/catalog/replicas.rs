//! Other members' entries as this node keeps them, and what this node shares of its own.

use urbanmesh_policy::{Subject, Visibility, audience};

use super::Catalog;
use super::entries::replica_entry;
use crate::replica::{Origin, Replica, SharedEntry, replica_key};
use crate::{CatalogError, Dataset, Derived};

impl Catalog {
    /// What this node shares about a local dataset or view: its description with the visible
    /// part of its policy, and what the rows cover as `member` may know it (`None`: as every
    /// member may). What its policy keeps inside the node is not shared (not found).
    pub fn shared_entry(&self, id: &str, member: Option<&str>) -> Result<SharedEntry, CatalogError> {
        let (mut dataset, stored, view) = self.shared_source(id)?;
        let derived = match member {
            Some(peer) => stored.known_to(&dataset, &Subject::Member { peer: peer.to_owned() }),
            None => stored.known_to_all(&dataset, &audience::member_representatives(&dataset.policy)),
        };
        let public = match dataset.policy.visibility {
            Visibility::Public => stored.known_to(&dataset, &Subject::Anonymous),
            _ => Derived::default(),
        };
        dataset.policy = dataset.policy.shared();
        Ok(SharedEntry { dataset, derived, public, view })
    }

    /// Those of `members` that keep the shared entry of `id` and may know more of its rows
    /// than every member may: the ones to tell their own facts. Reads the record once.
    pub fn members_knowing_more(&self, id: &str, members: &[String]) -> Result<Vec<String>, CatalogError> {
        let (dataset, stored, _) = self.shared_source(id)?;
        let everyone = stored.known_to_all(&dataset, &audience::member_representatives(&dataset.policy));
        let shared = dataset.policy.shared();
        Ok(members
            .iter()
            .filter(|member| shared.is_for_member(member))
            .filter(|member| stored.known_to(&dataset, &Subject::Member { peer: (*member).clone() }) != everyone)
            .cloned()
            .collect())
    }

    /// A shared dataset or view with what is stored about its rows, and whether it is a view.
    fn shared_source(&self, id: &str) -> Result<(Dataset, Derived, bool), CatalogError> {
        let (dataset, stored, view) = match self.get(id) {
            Ok(dataset) => (dataset, self.derived(id)?, false),
            Err(CatalogError::NotFound { .. }) => (self.views.get(id)?.described(), Derived::default(), true),
            Err(error) => return Err(error),
        };
        if !dataset.policy.is_shared() {
            return Err(CatalogError::NotFound { id: id.to_owned() });
        }
        Ok((dataset, stored, view))
    }

    /// Stores a peer's entry unless a newer or equal version is known. Returns whether
    /// it was stored.
    pub async fn put_replica(&self, replica: Replica) -> Result<bool, CatalogError> {
        let key = replica.key();
        let _writing = self.writing.lock().await;
        if let Some(known) = self.replicas.get(&key)? {
            let known = decode_replica(&key, &known)?;
            if known.rank() >= replica.rank() {
                return Ok(false);
            }
        }
        let bytes =
            serde_json::to_vec(&replica).map_err(|source| CatalogError::CorruptRecord { id: key.clone(), source })?;
        self.replicas.insert(key.as_bytes(), bytes)?;
        let generation = self.next_generation()?;
        self.index.upsert(&replica_entry(&replica), generation).await?;
        Ok(true)
    }

    /// Removes a peer's entry, if `version` is newer than the one known (a withdrawal),
    /// or in any case when `version` is `None` (the peer left).
    pub async fn remove_replica(&self, peer: &str, dataset: &str, version: Option<u64>) -> Result<bool, CatalogError> {
        let key = replica_key(peer, dataset);
        let _writing = self.writing.lock().await;
        let Some(known) = self.replicas.get(&key)? else { return Ok(false) };
        if version.is_some_and(|v| decode_replica(&key, &known).is_ok_and(|known| known.version >= v)) {
            return Ok(false);
        }
        self.replicas.remove(key.as_bytes())?;
        let generation = self.next_generation()?;
        self.index.remove(&key, generation).await?;
        Ok(true)
    }

    /// Every entry replicated from any member.
    pub fn replicas(&self) -> Result<Vec<Replica>, CatalogError> {
        self.replicas
            .iter()
            .map(|item| {
                let (key, bytes) = item?;
                decode_replica(&String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    /// Every entry replicated from `peer`.
    pub fn replicas_of(&self, peer: &str) -> Result<Vec<Replica>, CatalogError> {
        self.replicas
            .scan_prefix(format!("{peer}/"))
            .map(|item| {
                let (key, bytes) = item?;
                decode_replica(&String::from_utf8_lossy(&key), &bytes)
            })
            .collect()
    }

    pub fn replica(&self, peer: &str, dataset: &str) -> Result<Replica, CatalogError> {
        let key = replica_key(peer, dataset);
        let bytes = self.replicas.get(&key)?.ok_or_else(|| CatalogError::NotFound { id: key.clone() })?;
        decode_replica(&key, &bytes)
    }

    /// Rewrites how the replicas of `origin.peer` name and reach it (its addresses
    /// changed); their versions stay. Returns how many changed.
    pub async fn set_origin(&self, origin: Origin) -> Result<usize, CatalogError> {
        let mut changed = 0;
        for replica in self.replicas_of(&origin.peer)? {
            if replica.origin == origin {
                continue;
            }
            let replica = Replica { origin: origin.clone(), ..replica };
            let key = replica.key();
            let bytes = serde_json::to_vec(&replica)
                .map_err(|source| CatalogError::CorruptRecord { id: key.clone(), source })?;
            let _writing = self.writing.lock().await;
            self.replicas.insert(key.as_bytes(), bytes)?;
            let generation = self.next_generation()?;
            self.index.upsert(&replica_entry(&replica), generation).await?;
            changed += 1;
        }
        Ok(changed)
    }

    /// Removes everything replicated from `peer` (it left or was removed).
    pub async fn forget_origin(&self, peer: &str) -> Result<usize, CatalogError> {
        let replicas = self.replicas_of(peer)?;
        for replica in &replicas {
            self.remove_replica(peer, replica.entry.dataset.id(), None).await?;
        }
        Ok(replicas.len())
    }
}

pub(super) fn decode_replica(key: &str, bytes: &[u8]) -> Result<Replica, CatalogError> {
    serde_json::from_slice(bytes).map_err(|source| CatalogError::CorruptRecord { id: key.to_owned(), source })
}
