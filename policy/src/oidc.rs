//! People: bearer JWTs from the municipality's OpenID provider, checked against the
//! provider's published keys (signature, issuer, audience, expiry, not-before).

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::RwLock;

use crate::{Person, PolicyError};

/// Unknown key ids make the verifier fetch the provider's keys again, at most this often.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Clock skew tolerated for `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// How tokens of the provider are read. From `[oidc]` in `config.toml`.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    /// The `aud` bearer tokens must carry.
    pub audience: String,
    /// Dotted path to the list of roles, e.g. Keycloak's `realm_access.roles`.
    pub roles_claim: String,
    /// Claim naming the person's municipality; roles count only when it equals `tenant`.
    pub tenant_claim: Option<String>,
    pub tenant: String,
}

pub struct TokenVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: RwLock<Keys>,
}

#[derive(Default)]
struct Keys {
    set: Option<JwkSet>,
    fetched: Option<Instant>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl TokenVerifier {
    /// Keys are fetched on first use, so a node starts while its provider is down.
    pub fn new(settings: OidcSettings) -> Result<Self, PolicyError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| PolicyError::Provider(e.to_string()))?;
        Ok(Self { settings, http, keys: RwLock::new(Keys::default()) })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The person a bearer token names, if the token is genuine and meant for this node.
    pub async fn verify(&self, token: &str) -> Result<Person, PolicyError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(PolicyError::Token("longer than any token the provider issues".into()));
        }
        let header = decode_header(token).map_err(|e| PolicyError::Token(format!("malformed header: {e}")))?;
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(PolicyError::Token("symmetric algorithms are not accepted".into()));
        }
        let jwk = self.key(header.kid.as_deref(), header.alg).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| PolicyError::Token(format!("unusable key: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_audience(&[self.settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let claims = decode::<Value>(token, &key, &validation).map_err(|e| PolicyError::Token(e.to_string()))?.claims;
        Ok(self.person(&claims))
    }

    fn person(&self, claims: &Value) -> Person {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let home = match &self.settings.tenant_claim {
            None => true,
            Some(claim) => text(claim).is_some_and(|t| t == self.settings.tenant),
        };
        let roles = if home {
            claim_path(claims, &self.settings.roles_claim)
                .and_then(Value::as_array)
                .map(|roles| roles.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Person {
            id: text("sub").unwrap_or_default(),
            name: text("preferred_username").or_else(|| text("name")),
            home,
            roles,
        }
    }

    /// The provider's key for `kid`, fetching the key set when it is not known yet.
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<Jwk, PolicyError> {
        if let Some(jwk) = self.keys.read().await.set.as_ref().and_then(|set| find(set, kid, alg)) {
            return Ok(jwk);
        }
        let mut keys = self.keys.write().await;
        let recently = keys.fetched.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL);
        if !recently {
            // Failures count as a fetch too, so a provider that is down is asked at most
            // once per interval, not once per request.
            keys.fetched = Some(Instant::now());
            keys.set = Some(self.fetch_keys().await?);
        }
        let Some(set) = keys.set.as_ref() else {
            return Err(PolicyError::Provider("the provider's keys could not be fetched; retrying shortly".into()));
        };
        find(set, kid, alg).ok_or_else(|| PolicyError::Token("signed with a key the provider does not publish".into()))
    }

    async fn fetch_keys(&self) -> Result<JwkSet, PolicyError> {
        let issuer = self.settings.issuer.trim_end_matches('/');
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

fn claim_path<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |value, part| value.get(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(tenant_claim: Option<&str>) -> TokenVerifier {
        TokenVerifier::new(OidcSettings {
            issuer: "http://127.0.0.1:1".into(),
            audience: "urbanmesh".into(),
            roles_claim: "realm_access.roles".into(),
            tenant_claim: tenant_claim.map(str::to_owned),
            tenant: "herford".into(),
        })
        .expect("verifier")
    }

    #[test]
    fn roles_come_from_the_configured_claim_and_count_only_at_home() {
        let claims = serde_json::json!({
            "sub": "u1", "preferred_username": "anna", "tenant": "herford",
            "realm_access": {"roles": ["admin", 7, "viewer"]}
        });
        let person = verifier(Some("tenant")).person(&claims);
        assert_eq!((person.id.as_str(), person.name.as_deref(), person.home), ("u1", Some("anna"), true));
        assert_eq!(person.roles, ["admin", "viewer"]);
        let elsewhere = serde_json::json!({"sub": "u2", "tenant": "bielefeld", "realm_access": {"roles": ["admin"]}});
        let person = verifier(Some("tenant")).person(&elsewhere);
        assert!(!person.home && person.roles.is_empty());
        let unclaimed =
            verifier(Some("tenant")).person(&serde_json::json!({"sub": "u3", "realm_access": {"roles": ["admin"]}}));
        assert!(!unclaimed.home, "a token without the tenant claim is not from this municipality");
        assert!(
            verifier(None).person(&elsewhere).home,
            "without a tenant claim configured, the provider is the tenant's"
        );
    }

    #[tokio::test]
    async fn symmetric_and_unsigned_tokens_are_refused_before_any_key_lookup() {
        let verifier = verifier(None);
        // {"alg":"HS256","typ":"JWT"} . {"sub":"x"} . signature
        let hs256 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln";
        assert!(matches!(verifier.verify(hs256).await, Err(PolicyError::Token(m)) if m.contains("symmetric")));
        // {"alg":"none"}
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert!(matches!(verifier.verify(none).await, Err(PolicyError::Token(m)) if m.contains("malformed header")));
    }
}
