//! Search results with facets and paging, over this node's catalogue or the federation's.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use urbanmesh_catalog::search::{SearchParams, SearchRequest};

use super::cache::{self, Page};
use super::lang::Chosen;
use super::layout::Frame;
use super::words::{Words, words};
use crate::AppState;
use crate::auth::Caller;

/// The query parameters the page understands; `lang` is the language switch's.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PortalSearch {
    q: Option<String>,
    theme: Option<String>,
    publisher: Option<String>,
    licence: Option<String>,
    municipality: Option<String>,
    scope: Option<String>,
    page: Option<String>,
    #[serde(rename = "lang")]
    _lang: Option<String>,
}

/// The facets offered, by the index's dimension names.
const FACETS: [&str; 4] = ["theme", "publisher", "licence", "municipality"];

pub(crate) async fn page(
    State(state): State<AppState>,
    Caller(subject): Caller,
    chosen: Chosen,
    uri: Uri,
    query: Result<Query<PortalSearch>, QueryRejection>,
) -> Response {
    let frame = Frame { chosen, uri: &uri, site: &state.catalog.info().title };
    let w = words(chosen.lang);
    let key = cache::key(&subject, &frame, state.catalog.generation().unwrap_or_default());
    if let Some(page) = key.as_deref().and_then(|k| state.pages.get(k)) {
        return frame.respond(page.status, page.body);
    }
    let Query(query) = query.unwrap_or_default();
    let params = SearchParams {
        q: query.q.clone(),
        theme: query.theme.clone(),
        publisher: query.publisher.clone(),
        licence: query.licence.clone(),
        municipality: query.municipality.clone(),
        scope: query.scope.clone(),
        page: query.page.clone(),
        ..SearchParams::default()
    };
    let mut problem = None;
    let results = match SearchRequest::parse(params) {
        Ok(mut request) => {
            request.audience = subject.audience();
            let catalog = state.catalog.clone();
            let page = request.page;
            let per_page = request.per_page;
            match tokio::task::spawn_blocking(move || catalog.search(&request)).await {
                Ok(Ok(results)) => Some((results, page, per_page)),
                Ok(Err(error)) => {
                    problem = Some(error.to_string());
                    None
                }
                Err(error) => {
                    problem = Some(error.to_string());
                    None
                }
            }
        }
        Err(error) => {
            problem = Some(error.to_string());
            None
        }
    };
    let federation = query.scope.as_deref() == Some("federation");
    let main = html! {
        h1 { (w.results) }
        (search_form(w, query.q.as_deref(), federation))
        @if let Some(problem) = problem { p role="alert" { (problem) } }
        @if let Some((results, page, per_page)) = results {
            p #count { (results.total) " " (w.hits) }
            div.layout {
                aside #facets aria-label=(w.facets) {
                    h2 { (w.facets) }
                    @for name in FACETS {
                        @if let Some(counts) = results.facets.get(name).filter(|c| !c.is_empty()) {
                            fieldset {
                                legend { (facet_label(w, name)) }
                                ul.plain {
                                    @for count in counts.iter().take(12) {
                                        li { a href=(with(&uri, name, &count.value)) {
                                            (match name { "theme" => w.theme(&count.value), "licence" => w.licence(&count.value), _ => count.value.as_str() }) " (" (count.count) ")"
                                        } }
                                    }
                                }
                            }
                        }
                    }
                }
                div {
                    @if results.hits.is_empty() { p { (w.no_hits) } }
                    ol #results.plain {
                        @for hit in &results.hits { (hit_item(&state, &subject, hit, w)) }
                    }
                    (paging(w, &uri, page, results.total.div_ceil(per_page)))
                }
            }
        }
    };
    let body: bytes::Bytes = frame.html(w.results, main).into();
    if let Some(key) = key {
        state.pages.put(key, Page { status: StatusCode::OK, body: body.clone(), rows: 0 });
    }
    frame.respond(StatusCode::OK, body)
}

pub(crate) fn search_form(w: &Words, q: Option<&str>, federation: bool) -> Markup {
    html! {
        form role="search" action="/search" method="get" {
            label for="q" { (w.search_label) }
            input #q type="search" name="q" value=(q.unwrap_or("")) placeholder=(w.search_placeholder);
            label for="scope" { (w.scope) }
            select #scope name="scope" {
                option value="local" selected[!federation] { (w.this_town) }
                option value="federation" selected[federation] { (w.whole_federation) }
            }
            button type="submit" { (w.search) }
        }
    }
}

fn hit_item(
    state: &AppState,
    subject: &urbanmesh_policy::Subject,
    hit: &urbanmesh_catalog::search::Hit,
    w: &Words,
) -> Markup {
    let (dataset, derived, link, town) = match &hit.origin {
        Some(peer) => match state.catalog.replica(peer, &hit.id) {
            Ok(replica) => {
                let base = replica.origin.http.clone().unwrap_or_default();
                // Visitors learn what the member lets the public know; staff what it lets this node know.
                let derived = if subject.is_staff() { replica.entry.derived } else { replica.entry.public };
                (replica.entry.dataset, derived, format!("{base}/datasets/{}", hit.id), Some(replica.origin.name))
            }
            Err(_) => return html! {},
        },
        None => match state.catalog.get(&hit.id) {
            Ok(dataset) if state.gate.visible(subject, &dataset) => {
                let derived = state.gate.known(subject, &dataset).unwrap_or_default();
                (dataset, derived, format!("/datasets/{}", hit.id), None)
            }
            _ => return html! {},
        },
    };
    let snippet = hit.highlights.get("description").cloned();
    let updated = derived.data_modified.unwrap_or(dataset.modified).timestamp_millis();
    html! {
        li {
            h2 { a href=(link) { (dataset.spec.title) } }
            @if let Some(town) = town { p.town { (town) } }
            p { @match snippet { Some(marked) => (PreEscaped(marked)), None => (dataset.spec.description) } }
            p.about {
                (w.updated) " " (w.lang.time(updated)) " · " (w.formats) " " (formats(&dataset.spec).join(", "))
            }
        }
    }
}

/// The formats a dataset can be had in: downloads, Flight, and for stations the map formats.
fn formats(spec: &urbanmesh_catalog::DatasetSpec) -> Vec<&'static str> {
    let mut formats = vec!["CSV", "JSON", "Parquet", "Arrow Flight"];
    if spec.geometry.is_some() {
        formats.push("GeoJSON");
        if spec.series_key.is_some() && spec.time_column.is_some() {
            formats.push("SensorThings");
        }
    }
    formats
}

fn facet_label(w: &Words, name: &str) -> &'static str {
    match name {
        "theme" => w.facet_theme,
        "publisher" => w.facet_publisher,
        "licence" => w.facet_licence,
        _ => w.facet_municipality,
    }
}

/// The current search with `name=value` set (and back on the first page).
fn with(uri: &Uri, name: &str, value: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        form_pairs(uri).into_iter().filter(|(k, _)| k != name && k != "page").collect();
    pairs.push((name.to_owned(), value.to_owned()));
    format!("/search?{}", encode(&pairs))
}

fn paging(w: &Words, uri: &Uri, page: usize, pages: usize) -> Markup {
    let to = |n: usize| {
        let mut pairs: Vec<(String, String)> = form_pairs(uri).into_iter().filter(|(k, _)| k != "page").collect();
        pairs.push(("page".into(), n.to_string()));
        format!("/search?{}", encode(&pairs))
    };
    html! {
        @if pages > 1 {
            nav aria-label=(w.paging) {
                @if page > 1 { a rel="prev" href=(to(page - 1)) { (w.previous) } " " }
                span { (w.page) " " (page) " / " (pages) }
                @if page < pages { " " a rel="next" href=(to(page + 1)) { (w.next) } }
            }
        }
    }
}

fn form_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query().map(|q| url_decode_pairs(q)).unwrap_or_default()
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
}

fn encode(pairs: &[(String, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}
