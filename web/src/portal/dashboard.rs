//! A dashboard staff built in the workspace (`catalog::dashboard`): its tiles in order,
//! every chart over the dashboard's time range so that all stand on one time axis. Each
//! tile's rows are read as the visitor, through the `ReadGate` or the view's assembly.

use arrow::array::RecordBatch;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use maud::{Markup, html};
use urbanmesh_catalog::dashboard::{Dashboard, Source, Tile, TileKind};
use urbanmesh_catalog::{FieldSpec, SchemaSpec};
use urbanmesh_flight::ViewRead;
use urbanmesh_policy::{Interface, Subject, Visibility};
use urbanmesh_protocol::ReadRequest;

use super::chart::{chart_over, legend};
use super::dataset::{latest_values, spots};
use super::layout::{Frame, not_found};
use super::map::map;
use super::rows::{Columns, Series};
use super::words::{Words, words};
use crate::AppState;

/// Rows a table tile shows: the latest.
const TABLE_ROWS: usize = 10;

/// Whether `subject` may see the dashboard at all (its tiles' rows are decided apart).
pub(crate) fn visible(subject: &Subject, dashboard: &Dashboard) -> bool {
    dashboard.visibility == Visibility::Public || subject.is_staff()
}

pub(crate) async fn page(state: &AppState, subject: &Subject, frame: &Frame<'_>, id: &str) -> Response {
    let dashboard = match state.catalog.dashboards().get(id) {
        Ok(dashboard) if visible(subject, &dashboard) => dashboard,
        _ => return not_found(frame),
    };
    let w = words(frame.chosen.lang);
    let now = Utc::now();
    let from = now - dashboard.range.span();
    let mut tiles = Vec::with_capacity(dashboard.tiles.len());
    for (i, tile) in dashboard.tiles.iter().enumerate() {
        tiles.push(self::tile(state, subject, tile, i, (from, now), w).await);
    }
    let main = html! {
        h1 { (dashboard.title) }
        @if !dashboard.description.is_empty() { p #description { (dashboard.description) } }
        div #tiles { @for tile in tiles { (tile) } }
    };
    frame.page(StatusCode::OK, &dashboard.title, main)
}

/// What a tile's source gave the visitor: a heading, the schema's fields and the rows.
struct Read {
    title: String,
    schema: SchemaSpec,
    time: Option<String>,
    key: Option<String>,
    batches: Vec<RecordBatch>,
}

/// One tile; `(from, to)` is the dashboard's time, the same for all its tiles.
async fn tile(
    state: &AppState,
    subject: &Subject,
    tile: &Tile,
    index: usize,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    w: &Words,
) -> Markup {
    let id = format!("tile-{index}");
    if tile.kind == TileKind::Text {
        let text = tile.text.as_deref().unwrap_or_default();
        return html! {
            section.tile.text id=(id) {
                @if let Some(title) = &tile.title { h2 { (title) } }
                @for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) { p { (paragraph) } }
            }
        };
    }
    let Some(source) = &tile.source else { return html! {} };
    let read = read(state, subject, source, from).await;
    let heading = tile.title.clone().or_else(|| read.as_ref().map(|r| r.title.clone())).unwrap_or_default();
    let Some(read) = read else {
        return html! { section.tile data-kind=(tile.kind.code()) id=(id) { h2 { (heading) } p { (w.not_readable) } } };
    };
    let Some(schema) = read.batches.first().map(RecordBatch::schema) else {
        return html! { section.tile data-kind=(tile.kind.code()) id=(id) { h2 { (heading) } p { (w.no_rows) } } };
    };
    let Some(mut columns) = Columns::pick(&schema, read.time.as_deref(), read.key.as_deref()) else {
        return html! { section.tile data-kind=(tile.kind.code()) id=(id) { h2 { (heading) } p { (w.no_rows) } } };
    };
    if let Some(column) = tile.column.as_ref().filter(|c| schema.field_with_name(c).is_ok()) {
        columns.value.clone_from(column);
    }
    let series: Vec<Series> = columns.series(&read.batches);
    let unit = read.schema.field(&columns.value).and_then(|f: &FieldSpec| f.unit.as_deref());
    html! {
        section.tile data-kind=(tile.kind.code()) id=(id) {
            h2 { (heading) }
            @match tile.kind {
                TileKind::Chart => {
                    (chart_over(&series, &format!("{}: {heading}", w.chart_label), unit, w.lang, (from.timestamp_millis(), to.timestamp_millis())))
                    (legend(&series))
                }
                TileKind::Latest => (latest_values(&series, unit, w)),
                TileKind::Map => {
                    @let spots = spots(&series, unit, w);
                    @if spots.is_empty() { p { (w.no_rows) } } @else { (map(&spots, w.map_label, w)) }
                }
                TileKind::Table => {
                    @let (header, rows) = columns.preview(&read.batches, TABLE_ROWS);
                    div.scroll { table {
                        thead { tr { @for name in &header { th scope="col" { (name) } } } }
                        tbody { @for row in &rows { tr { @for cell in row { td { (cell) } } } } }
                    } }
                }
                TileKind::Text => {}
            }
        }
    }
}

/// The source's rows as the visitor may read them, or `None` when it may not.
async fn read(state: &AppState, subject: &Subject, source: &Source, from: DateTime<Utc>) -> Option<Read> {
    match source {
        Source::Dataset(id) => {
            let dataset = state.catalog.get(id).ok().filter(|d| state.gate.visible(subject, d))?;
            let from = dataset.spec.time_column.is_some().then_some(from);
            let request = ReadRequest { dataset: id.clone(), from, ..ReadRequest::default() };
            let opened = state.gate.open(subject, &request, Interface::Portal).await.ok()?;
            let batches = opened.scan.batches.try_collect().await.ok()?;
            let spec = dataset.spec;
            Some(Read { title: spec.title, schema: spec.schema, time: spec.time_column, key: spec.series_key, batches })
        }
        Source::View(id) => {
            let ViewRead { view, assembled, audit } = state.views.read(subject, id, Interface::Portal).await.ok()?;
            audit.served().add(assembled.rows() as u64, 0);
            let spec = view.spec;
            let batches = assembled.batches.clone();
            Some(Read { title: spec.title, schema: spec.schema, time: spec.time_column, key: spec.series_key, batches })
        }
    }
}
