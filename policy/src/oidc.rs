//! People: bearer JWTs from the municipality's OpenID provider, checked against the
//! provider's published keys (signature, issuer, audience, expiry, not-before), and only
//! when they are access tokens (RFC 9068): an ID token tells a client who signed in, it is
//! no credential for an API.

use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation, decode, decode_header};
use serde_json::Value;

use crate::jwks::{ProviderKeys, REFETCH_INTERVAL};
use crate::{Person, PolicyError};

/// Clock skew tolerated for `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// The `typ` of access tokens in RFC 9068; the default of [`OidcSettings::token_types`].
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Claims that only ID tokens carry (OpenID Connect Core 3.1.3.6, 3.3.2.11, FAPI `s_hash`):
/// a token with one is refused whatever its `typ` says.
const ID_TOKEN_CLAIMS: [&str; 4] = ["nonce", "at_hash", "c_hash", "s_hash"];

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
    /// The JOSE `typ` values accepted for access tokens ([`ACCESS_TOKEN_TYPE`] by default;
    /// `JWT` for a Keycloak that does not write `at+jwt`). Compared as media types:
    /// case-insensitive, `application/` implied.
    pub token_types: Vec<String>,
}

pub struct TokenVerifier {
    settings: OidcSettings,
    keys: ProviderKeys,
}

impl TokenVerifier {
    /// Keys are fetched on first use, so a node starts while its provider is down.
    pub fn new(settings: OidcSettings) -> Result<Self, PolicyError> {
        let keys = ProviderKeys::new(&settings.issuer, REFETCH_INTERVAL)?;
        Ok(Self { settings, keys })
    }

    /// Asks the provider again for a key it does not know at most once per `interval`
    /// (10 s unless set here).
    pub fn with_refetch_interval(self, interval: std::time::Duration) -> Result<Self, PolicyError> {
        Ok(Self { keys: ProviderKeys::new(&self.settings.issuer, interval)?, settings: self.settings })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The person a bearer token names, if the token is a genuine access token meant for
    /// this node.
    pub async fn verify(&self, token: &str) -> Result<Person, PolicyError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(PolicyError::Token("longer than any token the provider issues".into()));
        }
        let header = decode_header(token).map_err(|e| PolicyError::Token(format!("malformed header: {e}")))?;
        if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(PolicyError::Token("symmetric algorithms are not accepted".into()));
        }
        // Before any key lookup, so that other tokens cannot make the node fetch keys.
        self.access_token_type(&header)?;
        let jwk = self.keys.key(header.kid.as_deref(), header.alg).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| PolicyError::Token(format!("unusable key: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.settings.issuer.as_str()]);
        validation.set_audience(&[self.settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let claims = decode::<Value>(token, &key, &validation).map_err(|e| PolicyError::Token(e.to_string()))?.claims;
        not_an_id_token(&claims)?;
        Ok(self.person(&claims))
    }

    /// RFC 9068 section 4: the resource server checks `typ`, so that no other JWT of the
    /// provider (above all an ID token, whose `aud` is the client) passes for an access token.
    fn access_token_type(&self, header: &Header) -> Result<(), PolicyError> {
        let typ = header.typ.as_deref().map(media_type);
        if typ.as_ref().is_some_and(|typ| self.settings.token_types.iter().any(|t| media_type(t) == *typ)) {
            return Ok(());
        }
        Err(PolicyError::Token(format!(
            "not an access token: header `typ` is {}, accepted: {} (ID tokens are no bearer tokens)",
            header.typ.as_deref().map_or_else(|| "missing".to_owned(), |t| format!("`{t}`")),
            self.settings.token_types.join(", ")
        )))
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
}

/// Refuses tokens that say they are something else than an access token.
fn not_an_id_token(claims: &Value) -> Result<(), PolicyError> {
    if let Some(claim) = ID_TOKEN_CLAIMS.iter().find(|claim| claims.get(**claim).is_some()) {
        return Err(PolicyError::Token(format!("not an access token: it carries `{claim}`, a claim of ID tokens")));
    }
    // Keycloak names the kind of token in a claim `typ`: `Bearer` for access tokens, `ID`, ...
    if let Some(kind) = claims.get("typ").and_then(Value::as_str)
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(PolicyError::Token(format!("not an access token: its claim `typ` is `{kind}`")));
    }
    Ok(())
}

/// A JOSE `typ` as the media type it names (RFC 7515 4.1.9): case-insensitive, and
/// `application/` may be left out.
fn media_type(typ: &str) -> String {
    let typ = typ.trim().to_ascii_lowercase();
    typ.strip_prefix("application/").map_or_else(|| typ.clone(), str::to_owned)
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
            token_types: vec![ACCESS_TOKEN_TYPE.into()],
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
