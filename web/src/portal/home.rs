//! The portal's home: search, the regional views, the newest datasets.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::html;

use super::cache::{self, Page};
use super::lang::Chosen;
use super::layout::Frame;
use super::search::search_form;
use super::words::words;
use crate::AppState;
use crate::auth::Caller;

const NEWEST: usize = 12;

pub(crate) async fn page(State(state): State<AppState>, Caller(subject): Caller, chosen: Chosen, uri: Uri) -> Response {
    let info = state.catalog.info();
    let frame = Frame { chosen, uri: &uri, site: &info.title };
    let w = words(chosen.lang);
    let views = state.views.list(&subject).unwrap_or_default();
    let dashboards: Vec<_> = state
        .catalog
        .dashboards()
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| super::dashboard::visible(&subject, d))
        .collect();
    let generation = state.catalog.generation().unwrap_or_default();
    let newest_view = views.iter().map(|v| v.modified).max();
    let boards: Vec<&str> = dashboards.iter().map(|d| d.title.as_str()).collect();
    let key = cache::key(&subject, &frame, format!("{generation}|{}|{newest_view:?}|{boards:?}", views.len()));
    if let Some(page) = key.as_deref().and_then(|k| state.pages.get(k)) {
        return frame.respond(page.status, page.body);
    }
    let mut datasets: Vec<_> =
        state.catalog.iter().filter_map(Result::ok).filter(|d| state.gate.visible(&subject, d)).collect();
    datasets.sort_by(|a, b| b.modified.cmp(&a.modified));
    let main = html! {
        h1 { (info.title) }
        p { (info.description) }
        (search_form(w, None, false))
        section #views {
            h2 { (w.views) }
            @if views.is_empty() { p { (w.no_views) } }
            ul.plain {
                @for view in &views {
                    li { a href=(format!("/views/{}", view.id())) { (view.spec.title) } " – " (view.spec.description) }
                }
            }
        }
        @if !dashboards.is_empty() {
            section #dashboards {
                h2 { (w.dashboards) }
                ul.plain {
                    @for dashboard in &dashboards {
                        li { a href=(format!("/dashboards/{}", dashboard.id)) { (dashboard.title) }
                            @if !dashboard.description.is_empty() { " – " (dashboard.description) } }
                    }
                }
            }
        }
        section #datasets {
            h2 { (w.newest) }
            @if datasets.is_empty() { p { (w.no_datasets) } }
            ul.plain {
                @for dataset in datasets.iter().take(NEWEST) {
                    li { a href=(format!("/datasets/{}", dataset.id())) { (dataset.spec.title) } }
                }
            }
        }
    };
    let body: bytes::Bytes = frame.html(&info.title, main).into();
    if let Some(key) = key {
        state.pages.put(key, Page { status: StatusCode::OK, body: body.clone(), rows: 0 });
    }
    frame.respond(StatusCode::OK, body)
}
