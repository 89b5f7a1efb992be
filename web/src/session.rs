//! Signed-in people of the workspace: server-side sessions behind an HttpOnly, SameSite
//! cookie, each with its CSRF token for state-changing requests.

use std::time::Duration;

use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use serde::{Deserialize, Serialize};
use urbanmesh_policy::{Subject, constant_time_eq};

use crate::expiring::Expiring;

pub(crate) const SESSION_COOKIE: &str = "urbanmesh_session";
/// Header (or form field `csrf`) that state-changing requests made with the session carry.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Most sessions held; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Session {
    /// A person signed in at the OpenID provider, or the holder of the admin token.
    pub(crate) subject: Subject,
    pub(crate) csrf: String,
    /// Sent to the provider at logout (`id_token_hint`).
    pub(crate) id_token: Option<String>,
    /// For the admin token's holder: the fingerprint of the token signed in with, so that
    /// the session ends when the token is changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    admin_token: Option<String>,
}

/// The workspace's sessions, kept in the node's database so that a restart (an update, a
/// rescheduled container) signs nobody out.
pub struct Sessions {
    by_id: Expiring<Session>,
    /// The fingerprint of the admin token sessions of its holder must carry; `None` where
    /// the holder may not sign in (an OpenID provider is configured).
    admin_token: Option<String>,
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("no randomness for the session: {0}")]
    Random(#[from] getrandom::Error),
    #[error("storing the session: {0}")]
    Stored(#[from] sled::Error),
}

impl Sessions {
    /// The sessions in `tree` of the node's database. With `admin_token` (a node without
    /// an OpenID provider), its holder may sign in; a session of an earlier token, or one
    /// from before a provider was configured, is nobody's.
    pub fn new(tree: sled::Tree, admin_token: Option<&str>) -> Self {
        Self { by_id: Expiring::new(tree, LIFETIME, MAX_SESSIONS), admin_token: admin_token.map(fingerprint) }
    }

    /// Starts a session; returns its id (the cookie value).
    pub(crate) fn start(&self, subject: Subject, id_token: Option<String>) -> Result<String, SessionError> {
        let id = random_token()?;
        let admin_token = matches!(subject, Subject::Admin).then(|| self.admin_token.clone()).flatten();
        self.by_id.insert(&id, Session { subject, csrf: random_token()?, id_token, admin_token })?;
        Ok(id)
    }

    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        self.by_id.get(id).filter(|session| match session.subject {
            Subject::Admin => session.admin_token.is_some() && session.admin_token == self.admin_token,
            _ => true,
        })
    }

    pub(crate) fn end(&self, id: &str) -> Option<Session> {
        self.by_id.take(id)
    }
}

/// The session a request's cookie names, if any.
pub(crate) fn of_request(headers: &HeaderMap, sessions: &Sessions) -> Option<(String, Session)> {
    let id = cookie(headers, SESSION_COOKIE)?;
    sessions.get(&id).map(|session| (id, session))
}

/// Whether a request made with the session may go ahead: reads always, changes only with
/// the session's CSRF token in the header.
pub(crate) fn csrf_ok(parts: &Parts, session: &Session) -> bool {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| constant_time_eq(t.as_bytes(), session.csrf.as_bytes()))
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when the node is served over https.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

pub(crate) fn lifetime() -> Duration {
    LIFETIME
}

/// A token's SHA-256, hex: what a session keeps of the admin token.
fn fingerprint(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// 32 random bytes, hex.
pub(crate) fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}
