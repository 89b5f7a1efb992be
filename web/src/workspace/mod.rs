//! The staff workspace at `/admin`: datasets, uploads, policies, federation, views and the
//! access log, as server-rendered forms. Signed-in staff only (the session of `/auth/login`);
//! every form carries the session's CSRF token. German only.

mod audit;
mod dashboards;
mod datasets;
mod federation;
mod policy;
mod summary;
mod views;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use urbanmesh_policy::{Subject, constant_time_eq};

use crate::AppState;
use crate::portal::lang::{Chosen, Lang};
use crate::portal::layout::Frame;
use crate::session;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(datasets::list))
        .route("/admin/datasets/new", get(datasets::new_form).post(datasets::create))
        .route("/admin/datasets/{id}", get(datasets::edit).post(datasets::update))
        .route("/admin/datasets/{id}/upload", post(datasets::upload))
        .route("/admin/datasets/{id}/policy", get(policy::edit).post(policy::save))
        .route("/admin/federation", get(federation::page))
        .route("/admin/federation/invite", post(federation::invite))
        .route("/admin/federation/remove", post(federation::remove))
        .route("/admin/views", get(views::list))
        .route("/admin/views/save", post(views::save))
        .route("/admin/audit", get(audit::page_view))
        .route("/admin/dashboards", get(dashboards::list).post(dashboards::create))
        .route("/admin/dashboards/{id}", get(dashboards::edit).post(dashboards::save))
        .route("/admin/dashboards/{id}/tiles", post(dashboards::add_tile))
        .route("/admin/dashboards/{id}/tiles/{index}/delete", post(dashboards::remove_tile))
        .route("/admin/dashboards/{id}/delete", post(dashboards::delete))
}

/// A signed-in member of staff, with the session's CSRF token for the forms.
pub(crate) struct Staff {
    pub(crate) subject: Subject,
    pub(crate) csrf: String,
    pub(crate) name: String,
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match session::of_request(&parts.headers, &state.sessions) {
            Some((_, session)) => {
                let name = match &session.subject {
                    Subject::Person(person) => person.name.clone().unwrap_or_else(|| person.id.clone()),
                    _ => "Administration (Admin-Token)".to_owned(),
                };
                let subject = session.subject;
                if !subject.is_staff() {
                    return Err(message(
                        state,
                        &parts.uri,
                        StatusCode::FORBIDDEN,
                        "Kein Zugang",
                        "Der Arbeitsbereich ist für die Beschäftigten der Kommune (Rolle viewer, editor oder admin).",
                    ));
                }
                Ok(Self { subject, csrf: session.csrf, name })
            }
            None => {
                let next = parts.uri.path_and_query().map_or("/admin", |p| p.as_str());
                let next: String = url_escape(next);
                Err(Redirect::to(&format!("/auth/login?next={next}")).into_response())
            }
        }
    }
}

/// A form posted by signed-in staff whose CSRF token is the session's: a form sent from
/// another site, or from a page of an earlier session, is refused before any handler sees
/// it. What the person's role allows the handler checks with [`Posted::requires`].
pub(crate) struct Posted<F> {
    pub(crate) staff: Staff,
    pub(crate) form: F,
    pub(crate) uri: Uri,
}

/// The token every workspace form carries.
#[derive(serde::Deserialize)]
struct Token {
    #[serde(default)]
    csrf: String,
}

impl<F: serde::de::DeserializeOwned> axum::extract::FromRequest<AppState> for Posted<F> {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let staff = Staff::from_request_parts(&mut parts, state).await?;
        let uri = parts.uri.clone();
        let bytes = axum::body::to_bytes(body, state.limits.max_json_body_bytes)
            .await
            .map_err(|e| (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response())?;
        let token: Token = serde_urlencoded::from_bytes(&bytes).unwrap_or(Token { csrf: String::new() });
        staff.check(state, &uri, &token.csrf)?;
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| message(state, &uri, StatusCode::BAD_REQUEST, "Formular unvollständig", &e.to_string()))?;
        Ok(Self { staff, form, uri })
    }
}

/// What a workspace action needs of the person's role.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Editor,
    Admin,
}

impl<F> Posted<F> {
    /// Refuses, with a page saying so, what the person's role does not allow.
    pub(crate) fn requires(&self, state: &AppState, role: Role) -> Result<(), Response> {
        let (allowed, needs) = match role {
            Role::Editor => (self.staff.subject.may_edit(), "editor oder admin"),
            Role::Admin => (self.staff.subject.is_admin(), "admin"),
        };
        if allowed { Ok(()) } else { Err(self.staff.refuse(state, &self.uri, needs)) }
    }
}

impl Staff {
    /// Refuses a form without the session's CSRF token (e.g. sent from another site, or
    /// from a page of an earlier session).
    pub(crate) fn check(&self, state: &AppState, uri: &Uri, token: &str) -> Result<(), Response> {
        if constant_time_eq(token.as_bytes(), self.csrf.as_bytes()) {
            return Ok(());
        }
        Err(message(
            state,
            uri,
            StatusCode::FORBIDDEN,
            "Formular abgelehnt",
            "Das Formular gehört nicht zu dieser Anmeldung (vielleicht aus einem älteren Fenster). \
             Bitte die Seite neu laden und noch einmal senden; nichts wurde geändert.",
        ))
    }

    /// Refuses what the person's role does not allow.
    pub(crate) fn refuse(&self, state: &AppState, uri: &Uri, needs: &str) -> Response {
        message(
            state,
            uri,
            StatusCode::FORBIDDEN,
            "Keine Berechtigung",
            &format!("Dafür braucht es die Rolle {needs}; nichts wurde geändert."),
        )
    }

    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

/// A workspace page: the portal's frame with the workspace's navigation.
pub(crate) fn page(state: &AppState, staff: &Staff, uri: &Uri, title: &str, main: Markup) -> Response {
    page_with(state, staff, uri, StatusCode::OK, title, main)
}

pub(crate) fn page_with(
    state: &AppState,
    staff: &Staff,
    uri: &Uri,
    status: StatusCode,
    title: &str,
    main: Markup,
) -> Response {
    let frame = Frame { chosen: Chosen { lang: Lang::De, switched: false }, uri, site: &state.catalog.info().title };
    frame.page(
        status,
        title,
        html! {
            nav.workspace aria-label="Arbeitsbereich" {
                a href="/admin" { "Datensätze" } " · "
                a href="/admin/datasets/new" { "Neuer Datensatz" } " · "
                a href="/admin/views" { "Ansichten" } " · "
                a href="/admin/dashboards" { "Dashboards" } " · "
                a href="/admin/federation" { "Verbund" } " · "
                a href="/admin/audit" { "Zugriffsprotokoll" } " · "
                span { (staff.name) }
                form.inline method="post" action="/auth/logout" {
                    (staff.csrf_field())
                    button type="submit" { "Abmelden" }
                }
            }
            (main)
        },
    )
}

/// A workspace page whose content could not be read: the error, said, not an empty list.
pub(crate) fn unreadable(
    state: &AppState,
    staff: &Staff,
    uri: &Uri,
    what: &str,
    error: &dyn std::fmt::Display,
) -> Response {
    tracing::error!(%error, what, "workspace page unreadable");
    page_with(
        state,
        staff,
        uri,
        StatusCode::INTERNAL_SERVER_ERROR,
        what,
        html! { h1 { (what) } p.error role="alert" { "Konnte nicht gelesen werden: " (error.to_string()) } },
    )
}

/// The portal's "not found" page.
pub(crate) fn not_found(state: &AppState, uri: &Uri) -> Response {
    crate::portal::layout::not_found(&Frame {
        chosen: Chosen { lang: Lang::De, switched: false },
        uri,
        site: &state.catalog.info().title,
    })
}

/// Signing in with the node's admin token, where no OpenID provider is configured (the
/// demo, a node set up before its Keycloak): the token is in `admin.token` of the data
/// directory.
pub(crate) fn token_sign_in(state: &AppState, uri: &Uri, next: &str, refused: bool) -> Response {
    let frame = Frame { chosen: Chosen { lang: Lang::De, switched: false }, uri, site: &state.catalog.info().title };
    let status = if refused { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    frame.page(
        status,
        "Anmelden",
        html! {
            h1 { "Anmelden" }
            p {
                "Dieser Knoten hat keinen Anmeldedienst ([oidc] in config.toml). Die Verwaltung meldet sich mit dem "
                "Admin-Token des Knotens an: der Inhalt der Datei " code { "admin.token" } " im Datenverzeichnis."
            }
            @if refused { p.error role="alert" { "Dieses Token gilt hier nicht." } }
            form method="post" action="/auth/token" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Admin-Token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Anmelden" }
            }
        },
    )
}

fn message(state: &AppState, uri: &Uri, status: StatusCode, title: &str, text: &str) -> Response {
    let frame = Frame { chosen: Chosen { lang: Lang::De, switched: false }, uri, site: &state.catalog.info().title };
    frame.page(status, title, html! { h1 { (title) } p { (text) } })
}

/// A refused form: the page again with the reason, naming the field where there is one.
pub(crate) fn problem_text(problem: &crate::Problem) -> String {
    match problem.field() {
        Some(field) if !problem.detail().contains(field) => format!("{field}: {}", problem.detail()),
        _ => problem.detail().to_owned(),
    }
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
