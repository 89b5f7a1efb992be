//! The public portal (decision 009): server-rendered, accessible pages without scripts.
//! Every row shown passes the `ReadGate` as the visitor.

mod accessibility;
mod assets;
mod cache;
mod chart;
mod dashboard;
pub(crate) mod dataset;
mod home;
pub(crate) mod lang;
pub(crate) mod layout;
mod local;
mod map;
pub(crate) mod rows;
mod search;
pub(crate) mod view;
mod vocabulary;
pub(crate) mod words;

use axum::Router;
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;
use axum::routing::get;

use crate::AppState;
use crate::auth::Caller;
pub use cache::PageCache;
use lang::Chosen;
use layout::Frame;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/search", get(search::page))
        .route("/barrierefreiheit", get(accessibility::page))
        .route("/dashboards/{id}", get(dashboard_page))
        .route("/assets/portal.css", get(assets::css))
}

/// The German name of an EU data theme.
pub(crate) fn theme_name(code: &str) -> &str {
    vocabulary::theme(lang::Lang::De, code)
}

/// Whether the client asks for a page rather than data (a browser's `Accept`).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"))
}

pub(crate) use dashboard::visible as dashboard_visible;

/// `/dashboards/{id}`: a dashboard staff built.
async fn dashboard_page(
    axum::extract::State(state): axum::extract::State<AppState>,
    Caller(subject): Caller,
    chosen: Chosen,
    uri: Uri,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let site = state.catalog.info().title.clone();
    dashboard::page(&state, &subject, &Frame { chosen, uri: &uri, site: &site }, &id).await
}

/// Anything else outside the API: the portal's "not found" page.
pub(crate) async fn not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    _caller: Caller,
    chosen: Chosen,
    uri: Uri,
) -> Response {
    layout::not_found(&Frame { chosen, uri: &uri, site: &state.catalog.info().title })
}
