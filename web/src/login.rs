//! Login for the workspace at the municipality's OpenID provider: authorization code with
//! PKCE (`openidconnect`), then a session cookie. `GET /auth/login?next=/admin`,
//! `GET /auth/callback`, `POST /auth/logout`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use urbanmesh_policy::{Subject, TokenVerifier, constant_time_eq};

use crate::AppState;
use crate::expiring::Expiring;
use crate::problem::Problem;
use crate::session;

const LOGIN_COOKIE: &str = "urbanmesh_login";
const PENDING_LIFETIME: Duration = Duration::from_secs(600);
const MAX_PENDING: usize = 1000;

type Client =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// The workspace's relying party: where the provider is and who is signing in.
pub struct Login {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    /// This node's public base URL; the callback is `{base}/auth/callback`.
    base: String,
    verifier: Arc<TokenVerifier>,
    http: openidconnect::reqwest::Client,
    provider: OnceCell<CoreProviderMetadata>,
    /// The provider's `end_session_endpoint`, where logout continues (RP-initiated logout).
    end_session: OnceCell<Option<String>>,
    /// Logins under way, by their state; kept like the sessions, so that a login begun
    /// before a restart can finish after it.
    pending: Expiring<Pending>,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    /// The PKCE verifier's secret.
    verifier: String,
    nonce: String,
    next: String,
}

impl Login {
    pub fn new(
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        base: String,
        verifier: Arc<TokenVerifier>,
        db: &sled::Db,
    ) -> Result<Self, String> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            issuer,
            client_id,
            client_secret,
            base: base.trim_end_matches('/').to_owned(),
            verifier,
            http,
            provider: OnceCell::new(),
            end_session: OnceCell::new(),
            pending: Expiring::new(db.open_tree("logins").map_err(|e| e.to_string())?, PENDING_LIFETIME, MAX_PENDING),
        })
    }

    fn secure(&self) -> bool {
        self.base.starts_with("https://")
    }

    async fn client(&self) -> Result<Client, Problem> {
        let metadata = self
            .provider
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.issuer.clone()).map_err(|e| e.to_string())?;
                CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| Problem::new(StatusCode::BAD_GATEWAY, format!("the OpenID provider is not reachable: {e}")))?;
        let redirect = RedirectUrl::new(format!("{}/auth/callback", self.base))
            .map_err(|e| Problem::internal(format!("callback URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    async fn end_session(&self) -> Option<String> {
        self.end_session
            .get_or_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
                let discovery: serde_json::Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
                discovery.get("end_session_endpoint")?.as_str().map(str::to_owned)
            })
            .await
            .clone()
    }

    fn remember(&self, state: &str, pending: Pending) -> Result<(), Problem> {
        self.pending.insert(state, pending).map_err(|e| Problem::internal(format!("storing the login: {e}")))
    }

    fn take(&self, state: &str) -> Option<Pending> {
        self.pending.take(state)
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// Sends the browser to the provider, with PKCE, a state bound to a cookie, and a nonce;
/// without a provider, shows the form to sign in with the admin token.
pub(crate) async fn login(
    State(state): State<AppState>,
    Query(query): Query<LoginQuery>,
    uri: axum::http::Uri,
) -> Result<Response, Problem> {
    let Some(login) = state.login.as_deref() else {
        return Ok(crate::workspace::token_sign_in(&state, &uri, &local_path(query.next.as_deref()), false));
    };
    let client = login.client().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let next = local_path(query.next.as_deref());
    let pending = Pending { verifier: verifier.secret().clone(), nonce: nonce.secret().clone(), next };
    login.remember(csrf.secret(), pending)?;
    let cookie = session::set_cookie(LOGIN_COOKIE, csrf.secret(), Some(PENDING_LIFETIME), login.secure());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(url.as_str())).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back from the provider: checks state and nonce, redeems the code with the PKCE verifier,
/// verifies the tokens and starts the session.
pub(crate) async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, Problem> {
    let login = configured(&state)?;
    if let Some(error) = query.error {
        let detail = query.error_description.unwrap_or_default();
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            format!("the provider refused the login: {error} {detail}"),
        ));
    }
    let (Some(code), Some(returned)) = (query.code, query.state) else {
        return Err(Problem::bad_request("the callback needs `code` and `state`"));
    };
    // Only the browser that started the login may finish it (or cancel it).
    let bound =
        session::cookie(&headers, LOGIN_COOKIE).is_some_and(|c| constant_time_eq(c.as_bytes(), returned.as_bytes()));
    let pending = bound
        .then(|| login.take(&returned))
        .flatten()
        .ok_or_else(|| Problem::new(StatusCode::BAD_REQUEST, "unknown or expired login; start again at /auth/login"))?;
    let client = login.client().await?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Problem::internal(format!("token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&login.http)
        .await
        .map_err(|e| Problem::new(StatusCode::UNAUTHORIZED, format!("the code was not accepted: {e}")))?;
    let id_token = tokens.id_token().ok_or_else(|| Problem::new(StatusCode::UNAUTHORIZED, "no ID token"))?;
    id_token
        .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
        .map_err(|e| Problem::new(StatusCode::UNAUTHORIZED, format!("ID token refused: {e}")))?;
    let person = login
        .verifier
        .verify(tokens.access_token().secret())
        .await
        .map_err(|e| Problem::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
    tracing::info!(person = %person.id, roles = ?person.roles, "signed in");
    let id = state
        .sessions
        .start(Subject::Person(person), Some(id_token.to_string()))
        .map_err(|e| Problem::internal(e.to_string()))?;
    let secure = login.secure();
    let mut response = Redirect::to(&pending.next).into_response();
    let headers = response.headers_mut();
    for cookie in [
        session::set_cookie(session::SESSION_COOKIE, &id, Some(session::lifetime()), secure),
        session::set_cookie(LOGIN_COOKIE, "", Some(Duration::ZERO), secure),
    ] {
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct LogoutForm {
    csrf: String,
}

/// Ends the session (the form carries its CSRF token) and the provider's session.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, Problem> {
    let Some((id, session)) = session::of_request(&headers, &state.sessions) else {
        return Ok(Redirect::to("/").into_response());
    };
    if !constant_time_eq(form.csrf.as_bytes(), session.csrf.as_bytes()) {
        return Err(Problem::new(StatusCode::FORBIDDEN, "the logout form's CSRF token does not match the session"));
    }
    state.sessions.end(&id);
    let secure = state.endpoints.http.starts_with("https://");
    let cookie = session::set_cookie(session::SESSION_COOKIE, "", Some(Duration::ZERO), secure);
    let Some(login) = state.login.as_deref() else {
        return Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response());
    };
    let target = match (login.end_session().await, &session.id_token) {
        (Some(end), Some(hint)) => Some(end)
            .map(|end| {
                let back = format!("{}/", login.base);
                format!(
                    "{end}?id_token_hint={}&post_logout_redirect_uri={}&client_id={}",
                    urlencode(hint),
                    urlencode(&back),
                    urlencode(&login.client_id)
                )
            })
            .unwrap_or_else(|| "/".into()),
        _ => "/".into(),
    };
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    token: String,
    next: Option<String>,
}

/// `POST /auth/token`: signs the holder of the admin token in to the workspace, on a node
/// without an OpenID provider (with one, people sign in as themselves).
pub(crate) async fn token(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    Form(form): Form<TokenForm>,
) -> Result<Response, Problem> {
    let next = local_path(form.next.as_deref());
    if state.login.is_some() {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "this node signs people in at its OpenID provider: /auth/login",
        ));
    }
    let presented = format!("Bearer {}", form.token.trim());
    let subject = state.identities.subject(Some(&presented)).await.ok();
    if subject != Some(Subject::Admin) {
        tracing::info!("workspace sign-in with a wrong admin token refused");
        return Ok(crate::workspace::token_sign_in(&state, &uri, &next, true));
    }
    let id = state.sessions.start(Subject::Admin, None).map_err(|e| Problem::internal(e.to_string()))?;
    tracing::info!("signed in with the admin token");
    let secure = state.endpoints.http.starts_with("https://");
    let cookie = session::set_cookie(session::SESSION_COOKIE, &id, Some(session::lifetime()), secure);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
}

fn configured(state: &AppState) -> Result<&Login, Problem> {
    state.login.as_deref().ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no OpenID provider is configured"))
}

/// Only paths on this node, so that the login cannot be turned into an open redirect.
fn local_path(next: Option<&str>) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._~-%?=&+,;:@".contains(c);
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && path.chars().all(plain) => path.to_owned(),
        _ => "/".to_owned(),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
