//! The provider's signing keys, cached. A token naming a key the cache does not hold makes
//! the cache fetch the keys again, but a refresh never blocks tokens signed with keys
//! already known: the cache is locked for a lookup only, and the fetch runs in a task of its
//! own, one at a time (callers that need its result wait for it, nobody else does), at most
//! once per refetch interval.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use tokio::sync::watch;

use crate::PolicyError;

/// Unknown key ids make the cache fetch the provider's keys again, at most this often.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// How long one fetch (discovery and key set) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct ProviderKeys {
    shared: Arc<Shared>,
}

struct Shared {
    issuer: String,
    http: reqwest::Client,
    refetch_interval: Duration,
    set: RwLock<Option<Arc<JwkSet>>>,
    refresh: Mutex<Refresh>,
    /// Counts finished refreshes; callers waiting for one watch it.
    refreshed: watch::Sender<u64>,
}

#[derive(Default)]
struct Refresh {
    running: bool,
    started: Option<Instant>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl ProviderKeys {
    /// Keys are fetched on first use, so a node starts while its provider is down.
    pub(crate) fn new(issuer: &str, refetch_interval: Duration) -> Result<Self, PolicyError> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| PolicyError::Provider(e.to_string()))?;
        let shared = Shared {
            issuer: issuer.trim_end_matches('/').to_owned(),
            http,
            refetch_interval,
            set: RwLock::new(None),
            refresh: Mutex::default(),
            refreshed: watch::Sender::new(0),
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The provider's key for `kid`, fetching the key set when it is not known yet.
    pub(crate) async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Jwk, PolicyError> {
        if let Some(jwk) = self.shared.lookup(kid, alg) {
            return Ok(jwk);
        }
        // Subscribed before looking at the refresh, so that its end cannot be missed.
        let mut refreshed = self.shared.refreshed.subscribe();
        if self.start_or_join_refresh() {
            // The refresh ends within its timeout (its task reports even when it fails);
            // the margin only guards against a task that never ran.
            let _ = tokio::time::timeout(FETCH_TIMEOUT + Duration::from_secs(1), refreshed.changed()).await;
        }
        match self.shared.lookup(kid, alg) {
            Some(jwk) => Ok(jwk),
            None if self.shared.keys().is_none() => {
                Err(PolicyError::Provider("the provider's keys could not be fetched; retrying shortly".into()))
            }
            None => Err(PolicyError::Token("signed with a key the provider does not publish".into())),
        }
    }

    /// Whether a refresh is under way (started now, or by another caller); `false` when one
    /// ran less than the refetch interval ago. Failures count as a refresh too, so a provider
    /// that is down is asked at most once per interval, not once per request.
    fn start_or_join_refresh(&self) -> bool {
        let mut refresh = self.shared.refresh.lock().unwrap_or_else(PoisonError::into_inner);
        if refresh.running {
            return true;
        }
        if refresh.started.is_some_and(|at| at.elapsed() < self.shared.refetch_interval) {
            return false;
        }
        refresh.running = true;
        refresh.started = Some(Instant::now());
        // A task of its own: a caller that goes away does not cancel the others' refresh.
        let ended = RefreshEnded(Arc::clone(&self.shared));
        tokio::spawn(async move {
            match ended.0.fetch().await {
                Ok(set) => *ended.0.set.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(set)),
                Err(error) => tracing::warn!(%error, "the OpenID provider's keys were not refreshed"),
            }
        });
        true
    }
}

/// Ends a refresh when its task finishes, however it finishes.
struct RefreshEnded(Arc<Shared>);

impl Drop for RefreshEnded {
    fn drop(&mut self) {
        self.0.refresh.lock().unwrap_or_else(PoisonError::into_inner).running = false;
        self.0.refreshed.send_modify(|count| *count += 1);
    }
}

impl Shared {
    fn keys(&self) -> Option<Arc<JwkSet>> {
        self.set.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
        self.keys().and_then(|set| find(&set, kid, alg))
    }

    async fn fetch(&self) -> Result<JwkSet, PolicyError> {
        let issuer = &self.issuer;
        let discovery: Discovery = self.get_json(&format!("{issuer}/.well-known/openid-configuration")).await?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(PolicyError::Provider(format!(
                "discovery names issuer `{}`, configured is `{issuer}`",
                discovery.issuer
            )));
        }
        self.get_json(&discovery.jwks_uri).await
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, PolicyError> {
        let failed = |e: reqwest::Error| PolicyError::Provider(format!("{url}: {e}"));
        self.http
            .get(url)
            .send()
            .await
            .map_err(failed)?
            .error_for_status()
            .map_err(failed)?
            .json()
            .await
            .map_err(failed)
    }
}

fn find(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    set.keys
        .iter()
        .filter(|jwk| kid.is_none() || jwk.common.key_id.as_deref() == kid)
        .find(|jwk| jwk.common.key_algorithm.is_none_or(|a| a.to_string() == format!("{alg:?}")))
        .cloned()
}
