//! A dataset's page: description, metadata, latest values, chart, map, preview, downloads.

use arrow::array::RecordBatch;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use futures::TryStreamExt;
use maud::{Markup, html};
use urbanmesh_catalog::Dataset;
use urbanmesh_catalog::dashboard::Range;
use urbanmesh_catalog::vocab::{FREQUENCIES, THEMES};
use urbanmesh_policy::{Interface, Subject};
use urbanmesh_protocol::ReadRequest;

use super::cache::{self, Page};
use super::chart::{chart, legend};
use super::layout::{Frame, not_found};
use super::map::{Spot, map, state_class};
use super::rows::{Columns, Series};
use super::vocabulary;
use super::words::{Words, words};
use crate::AppState;

/// How much of a dataset its page draws, as the visitor chose by link (`?range=24h|7d|30d`):
/// the last day, week (unless chosen) or month of its rows.
fn chosen_range(uri: &axum::http::Uri) -> Range {
    let asked = uri.query().into_iter().flat_map(|q| q.split('&')).find_map(|pair| pair.strip_prefix("range="));
    asked.and_then(Range::parse).unwrap_or_default()
}
const PREVIEW_ROWS: usize = 20;

pub(crate) async fn page(state: &AppState, subject: &Subject, frame: &Frame<'_>, id: &str) -> Response {
    let dataset = match state.catalog.get(id) {
        Ok(dataset) if state.gate.visible(subject, &dataset) => dataset,
        _ => return not_found(frame),
    };
    let w = words(frame.chosen.lang);
    let range = chosen_range(frame.uri);
    let request = latest_request(state, subject, &dataset, range);
    let key = cache::key(subject, frame, state.catalog.generation().unwrap_or_default());
    if let Some(page) = key.as_deref().and_then(|k| state.pages.get(k)) {
        // Served again, but a read all the same: the policy decides and the log records it.
        if page.rows == 0 || state.gate.served_again(subject, &dataset, &request, Interface::Portal, page.rows).is_ok()
        {
            return frame.respond(page.status, page.body);
        }
    }
    let rows = latest_rows(state, subject, &request).await;
    let shown = rows.as_ref().map_or(0, |b| b.iter().map(|b| b.num_rows() as u64).sum());
    let main = html! {
        h1 { (dataset.spec.title) }
        p #description { (dataset.spec.description) }
        (metadata(state, subject, &dataset, w))
        @match &rows {
            Some(batches) => (data_sections(&dataset, batches, range, w)),
            None => p { (w.not_readable) },
        }
        (downloads(&format!("/api/v1/datasets/{id}/rows"), id, w))
        section {
            h2 { (w.python) }
            pre #pyarrow { code { (snippet(&state.endpoints.flight, &format!("\"{id}\""))) } }
        }
        section {
            h2 { (w.sql) }
            pre #sql { code { (sql_snippet(&state.endpoints.flight, &urbanmesh_flight::table_name(&state.catalog.info().municipality, id), false)) } }
        }
        p { a #dcat href=(format!("/datasets/{id}.ttl")) { (w.dcat) } }
    };
    let body: bytes::Bytes = frame.html(&dataset.spec.title, main).into();
    if let Some(key) = key {
        state.pages.put(key, Page { status: StatusCode::OK, body: body.clone(), rows: shown });
    }
    frame.respond(StatusCode::OK, body)
}

/// The read behind the page: the last week of the dataset's rows.
/// It ends at the last time the visitor may know of, or now: never at a time only withheld
/// rows could tell.
fn latest_request(state: &AppState, subject: &Subject, dataset: &Dataset, range: Range) -> ReadRequest {
    let last = state.gate.known(subject, dataset).ok().and_then(|d| d.last).unwrap_or_else(Utc::now);
    let from = dataset.spec.time_column.is_some().then(|| last - range.span());
    ReadRequest { dataset: dataset.id().to_owned(), from, ..ReadRequest::default() }
}

/// The rows the visitor may read, or `None` when reading is refused.
async fn latest_rows(state: &AppState, subject: &Subject, request: &ReadRequest) -> Option<Vec<RecordBatch>> {
    let opened = state.gate.open(subject, request, Interface::Portal).await.ok()?;
    opened.scan.batches.try_collect().await.ok()
}

fn metadata(state: &AppState, subject: &Subject, dataset: &Dataset, w: &Words) -> Markup {
    let spec = &dataset.spec;
    let info = state.catalog.info();
    let publisher = spec.publisher.as_ref().map_or(info.publisher.name.as_str(), |p| p.name.as_str());
    let attribution = dataset.policy.attribution.as_deref().or(spec.attribution.as_deref());
    let derived = state.gate.known(subject, dataset).unwrap_or_default();
    html! {
        section {
            h2 { (w.metadata) }
            dl #metadata {
                dt { (w.publisher) } dd { (publisher) }
                dt { (w.licence) } dd { a href=(vocabulary::licence_text(spec.licence())) rel="license" { (w.licence(spec.licence())) } }
                @if let Some(attribution) = attribution { dt { (w.attribution) } dd { (attribution) } }
                @if !spec.themes.is_empty() {
                    dt { (w.themes) } dd { (spec.themes.iter().map(|t| w.theme(THEMES.code(t))).collect::<Vec<_>>().join(", ")) }
                }
                @if !spec.keywords.is_empty() { dt { (w.keywords) } dd { (spec.keywords.join(", ")) } }
                @if let (Some(first), Some(last)) = (derived.first, derived.last) {
                    dt { (w.period) } dd { (w.lang.time(first.timestamp_millis())) " – " (w.lang.time(last.timestamp_millis())) }
                }
                @if let Some(frequency) = &spec.accrual_periodicity { dt { (w.frequency) } dd { (w.frequency(FREQUENCIES.code(frequency))) } }
            }
        }
    }
}

fn data_sections(dataset: &Dataset, batches: &[RecordBatch], range: Range, w: &Words) -> Markup {
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return html! { p { (w.no_rows) } };
    };
    let spec = &dataset.spec;
    let columns = Columns::pick(&schema, spec.time_column.as_deref(), spec.series_key.as_deref());
    let series = columns.as_ref().map(|c| c.series(batches)).unwrap_or_default();
    let unit = columns.as_ref().and_then(|c| spec.schema.field(&c.value)).and_then(|f| f.unit.as_deref());
    let (header, preview) = match &columns {
        Some(columns) => columns.preview(batches, PREVIEW_ROWS),
        None => (Vec::new(), Vec::new()),
    };
    html! {
        @if !series.is_empty() {
            (latest_values(&series, unit, w))
            section {
                h2 { (w.chart) }
                nav.ranges aria-label=(w.range_label) {
                    @for one in Range::ALL {
                        @if one == range {
                            a href=(format!("?range={}", one.code())) aria-current="page" { (w.range(one)) }
                        } @else {
                            a href=(format!("?range={}", one.code())) { (w.range(one)) }
                        }
                    }
                }
                (chart(&series, w.chart_label, unit, w.lang))
                (legend(&series))
            }
            @let spots = spots(&series, unit, w);
            @if !spots.is_empty() {
                section {
                    h2 { (w.map) }
                    (map(&spots, w.map_label, w))
                    @if dataset.spec.geometry.is_some() {
                        p { a #geojson href=(format!("/api/v1/datasets/{}/latest.geojson", dataset.id())) type="application/geo+json" { (w.geojson) } }
                    }
                }
            }
        }
        @if !preview.is_empty() {
            section {
                h2 { (w.preview) }
                div.scroll {
                    table #preview {
                        thead { tr { @for name in &header { th scope="col" { (name) } } } }
                        tbody { @for row in &preview { tr { @for cell in row { td { (cell) } } } } }
                    }
                }
            }
        }
    }
}

pub(crate) fn latest_values(series: &[Series], unit: Option<&str>, w: &Words) -> Markup {
    let unit = unit.map(|u| format!("\u{a0}{u}")).unwrap_or_default();
    html! {
        section #latest {
            h2 { (w.latest) }
            div.scroll { table {
                thead { tr { th scope="col" { (w.series) } th scope="col" { (w.time) } th scope="col" { (w.value) } th scope="col" { (w.state) } } }
                tbody {
                    @for one in series {
                        @if let Some((at, value)) = one.latest() {
                            tr data-series=(one.name) {
                                th scope="row" { (one.name) }
                                td { (w.lang.time(at)) }
                                td.value { (w.lang.number(value, 1)) (unit) }
                                td { (one.state.as_deref().map_or("–", |s| w.station_state(state_class(Some(s))))) }
                            }
                        }
                    }
                }
            } }
        }
    }
}

pub(crate) fn spots(series: &[Series], unit: Option<&str>, w: &Words) -> Vec<Spot> {
    let unit = unit.map(|u| format!("\u{a0}{u}")).unwrap_or_default();
    series
        .iter()
        .filter_map(|one| {
            let (lon, lat) = one.position?;
            let (at, value) = one.latest()?;
            let state = state_class(one.state.as_deref());
            let detail =
                format!("{}{unit}, {}, {}", w.lang.number(value, 1), w.lang.moment(at), w.station_state(state));
            Some(Spot { name: one.name.clone(), lon, lat, state, detail })
        })
        .collect()
}

pub(crate) fn downloads(rows: &str, name: &str, w: &Words) -> Markup {
    html! {
        section {
            h2 { (w.downloads) }
            ul #downloads.plain {
                @for (format, label) in [("csv", "CSV"), ("json", "JSON"), ("parquet", "Parquet")] {
                    li { a href=(format!("{rows}?format={format}")) download=(format!("{name}.{format}")) type=(media(format)) { (label) } }
                }
            }
        }
    }
}

fn media(format: &str) -> &'static str {
    match format {
        "csv" => "text/csv",
        "json" => "application/json",
        _ => "application/vnd.apache.parquet",
    }
}

/// Querying it with SQL through the ADBC Flight SQL driver, into DuckDB; with `token`,
/// signed in (a bearer token: the admin token or one of the OpenID provider's).
pub(crate) fn sql_snippet(flight: &str, table: &str, token: bool) -> String {
    let options = if token { ", db_kwargs={\"adbc.flight.sql.authorization_header\": \"Bearer <token>\"}" } else { "" };
    format!(
        "# pip install adbc-driver-flightsql duckdb\n\
         import adbc_driver_flightsql.dbapi as flightsql, duckdb\n\
         with flightsql.connect(\"{flight}\"{options}) as conn, conn.cursor() as cur:\n\
         \x20   cur.execute('SELECT * FROM {table} LIMIT 1000')\n\
         \x20   rows = cur.fetch_arrow_table()\n\
         duckdb.sql(\"SELECT count(*) FROM rows\").show()"
    )
}

/// Reading it with pyarrow's Flight client.
pub(crate) fn snippet(flight: &str, path: &str) -> String {
    format!(
        "import pyarrow.flight as fl\nclient = fl.FlightClient(\"{flight}\")\n\
         info = client.get_flight_info(fl.FlightDescriptor.for_path({path}))\n\
         df = client.do_get(info.endpoints[0].ticket).read_pandas()"
    )
}
