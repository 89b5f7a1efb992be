//! A regional view's dashboard: every station on a map coloured by state, a chart per
//! station, and how each source town fared.

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use urbanmesh_flight::{Freshness, ViewRead};

use super::cache::{self, Page};
use super::chart::small_chart;
use super::dataset::{downloads, latest_values, snippet, spots};
use super::layout::{Frame, not_found};
use super::map::map;
use super::rows::Columns;
use super::words::words;
use urbanmesh_policy::{Interface, Subject};

use crate::AppState;

pub(crate) async fn page(state: &AppState, subject: &Subject, frame: &Frame<'_>, id: &str) -> Response {
    let Ok(ViewRead { view, assembled, audit: _audit }) = state.views.read(subject, id, Interface::Portal).await else {
        return not_found(frame);
    };
    let w = words(frame.chosen.lang);
    let key = cache::key(subject, frame, format!("{:?}|{:?}", assembled.assembled_at, view.modified));
    if let Some(page) = key.as_deref().and_then(|k| state.pages.get(k)) {
        return frame.respond(page.status, page.body);
    }
    let spec = &view.spec;
    let columns = Columns::pick(&assembled.schema, spec.time_column.as_deref(), spec.series_key.as_deref());
    let series = columns.as_ref().map(|c| c.series(&assembled.batches)).unwrap_or_default();
    let unit = columns.as_ref().and_then(|c| spec.schema.field(&c.value)).and_then(|f| f.unit.as_deref());
    let spots = spots(&series, unit, w);
    let main = html! {
        h1 { (spec.title) }
        p #description { (spec.description) }
        @if !spots.is_empty() {
            section {
                h2 { (w.map) }
                (map(&spots, w.map_label, w))
                p { a #geojson href=(format!("/api/v1/views/{}/latest.geojson", spec.id)) type="application/geo+json" { (w.geojson) } }
            }
        }
        @if series.is_empty() { p { (w.no_rows) } } @else { (latest_values(&series, unit, w)) }
        section {
            h2 { (w.stations) }
            div #stations {
                @for one in &series {
                    figure {
                        (small_chart(std::slice::from_ref(one), &format!("{}: {}", w.chart_label, one.name), unit, w.lang))
                        figcaption { (one.name) }
                    }
                }
            }
        }
        section {
            h2 { (w.sources) }
            div.scroll {
                table #sources {
                    thead { tr {
                        th scope="col" { (w.town) } th scope="col" { (w.dataset) } th scope="col" { (w.status) }
                        th scope="col" { (w.rows) } th scope="col" { (w.age) }
                    } }
                    tbody {
                        @for source in &assembled.sources {
                            tr data-status=(freshness(source.status)) {
                                th scope="row" { (source.node) }
                                td { (source.dataset) }
                                td { (w.freshness(source.status)) @if let Some(error) = &source.error { " – " (error) } }
                                td { (w.lang.number(source.rows as f64, 0)) }
                                td { @if let Some(age) = source.age_seconds { (age) " s" } }
                            }
                        }
                    }
                }
            }
        }
        (downloads(&format!("/api/v1/views/{id}/rows"), id, w))
        section {
            h2 { (w.python) }
            pre #pyarrow { code { (snippet(&state.endpoints.flight, &format!("\"views\", \"{id}\""))) } }
        }
    };
    let body: bytes::Bytes = frame.html(&spec.title, main).into();
    if let Some(key) = key {
        state.pages.put(key, Page { status: StatusCode::OK, body: body.clone(), rows: 0 });
    }
    frame.respond(StatusCode::OK, body)
}

fn freshness(status: Freshness) -> &'static str {
    match status {
        Freshness::Fresh => "fresh",
        Freshness::Stale => "stale",
        Freshness::Unavailable => "unavailable",
        Freshness::Mismatched => "mismatched",
    }
}
