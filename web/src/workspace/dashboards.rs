//! Dashboards in the workspace (`catalog::dashboard`), built from forms step by step: a
//! dashboard with its title, time range and visibility, then its tiles one at a time,
//! each by picking its kind, a dataset or view of this node and the number to show. A bad
//! value is said beside its field, and nothing is stored.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use urbanmesh_catalog::CatalogError;
use urbanmesh_catalog::dashboard::{Dashboard, Range, Source, Tile, TileKind};
use urbanmesh_policy::Visibility;

use super::{Posted, Role, Staff, page_with, unreadable};
use crate::AppState;
use crate::portal::lang::Lang;
use crate::portal::words::words;

/// A refusal of one field of a form: which, and why.
struct FieldError {
    field: &'static str,
    reason: String,
}

impl FieldError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }

    /// The catalogue's refusal, on the form field it concerns (`fields` lists the form's).
    fn of(error: CatalogError, fields: &[&'static str]) -> Self {
        match error {
            CatalogError::InvalidDataset { field, reason } => {
                let name = field.rsplit('.').next().unwrap_or_default();
                let field = fields.iter().find(|f| **f == name).copied().unwrap_or("form");
                Self { field, reason }
            }
            CatalogError::AlreadyExists { .. } => Self::new("id", "Diese Kennung ist schon vergeben."),
            other => Self::new("form", other.to_string()),
        }
    }
}

pub(crate) async fn list(State(state): State<AppState>, staff: Staff, uri: Uri) -> Response {
    render_list(&state, &staff, &uri, StatusCode::OK, &SettingsForm::default(), None)
}

/// A dashboard's own fields.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    range: String,
    #[serde(default)]
    visibility: String,
}

pub(crate) async fn create(State(state): State<AppState>, posted: Posted<SettingsForm>) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Editor) {
        return refused;
    }
    let Posted { staff, form, uri } = posted;
    let stored = async {
        let dashboard = settings(&form, Vec::new())?;
        state.catalog.dashboards().put(&dashboard, true).await.map_err(|e| FieldError::of(e, SETTINGS))?;
        Ok::<_, FieldError>(dashboard)
    }
    .await;
    match stored {
        Ok(dashboard) => Redirect::to(&format!("/admin/dashboards/{}", dashboard.id)).into_response(),
        Err(error) => render_list(&state, &staff, &uri, StatusCode::BAD_REQUEST, &form, Some(&error)),
    }
}

pub(crate) async fn edit(State(state): State<AppState>, staff: Staff, uri: Uri, Path(id): Path<String>) -> Response {
    match state.catalog.dashboards().get(&id) {
        Ok(dashboard) => {
            render_edit(&state, &staff, &uri, StatusCode::OK, &dashboard, None, (&TileForm::default(), None))
        }
        Err(_) => super::not_found(&state, &uri),
    }
}

/// Changes the dashboard's own fields; its tiles stay.
pub(crate) async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<SettingsForm>,
) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Editor) {
        return refused;
    }
    let Posted { staff, mut form, uri } = posted;
    let Ok(current) = state.catalog.dashboards().get(&id) else { return super::not_found(&state, &uri) };
    form.id = id;
    let stored = async {
        let dashboard = settings(&form, current.tiles.clone())?;
        state.catalog.dashboards().put(&dashboard, false).await.map_err(|e| FieldError::of(e, SETTINGS))?;
        Ok::<_, FieldError>(dashboard)
    }
    .await;
    match stored {
        Ok(dashboard) => Redirect::to(&format!("/admin/dashboards/{}", dashboard.id)).into_response(),
        Err(error) => {
            let shown = Dashboard { title: form.title.clone(), description: form.description.clone(), ..current };
            render_edit(
                &state,
                &staff,
                &uri,
                StatusCode::BAD_REQUEST,
                &shown,
                Some(&error),
                (&TileForm::default(), None),
            )
        }
    }
}

/// A tile to add.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TileForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    column: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
}

pub(crate) async fn add_tile(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<TileForm>,
) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Editor) {
        return refused;
    }
    let Posted { staff, form, uri } = posted;
    let Ok(mut dashboard) = state.catalog.dashboards().get(&id) else { return super::not_found(&state, &uri) };
    let stored = async {
        dashboard.tiles.push(tile_of(&form)?);
        state.catalog.check_dashboard(&dashboard).map_err(|e| said(&state, &form, e))?;
        state.catalog.dashboards().put(&dashboard, false).await.map_err(|e| FieldError::of(e, TILE))
    }
    .await;
    match stored {
        Ok(()) => Redirect::to(&format!("/admin/dashboards/{id}#tiles")).into_response(),
        Err(mut error) => {
            if error.field == "title" {
                error.field = "tile-title";
            }
            let current = state.catalog.dashboards().get(&id).unwrap_or(dashboard);
            render_edit(&state, &staff, &uri, StatusCode::BAD_REQUEST, &current, None, (&form, Some(&error)))
        }
    }
}

/// Removes the tile at `index` (0-based).
pub(crate) async fn remove_tile(
    State(state): State<AppState>,
    Path((id, index)): Path<(String, usize)>,
    posted: Posted<Empty>,
) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Editor) {
        return refused;
    }
    let Posted { staff, uri, .. } = posted;
    let Ok(mut dashboard) = state.catalog.dashboards().get(&id) else { return super::not_found(&state, &uri) };
    if index < dashboard.tiles.len() {
        dashboard.tiles.remove(index);
        if let Err(error) = state.catalog.dashboards().put(&dashboard, false).await {
            return unreadable(&state, &staff, &uri, "Dashboard", &error);
        }
    }
    Redirect::to(&format!("/admin/dashboards/{id}#tiles")).into_response()
}

pub(crate) async fn delete(State(state): State<AppState>, Path(id): Path<String>, posted: Posted<Empty>) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Editor) {
        return refused;
    }
    match state.catalog.dashboards().delete(&id).await {
        Ok(()) => Redirect::to("/admin/dashboards").into_response(),
        Err(_) => super::not_found(&state, &posted.uri),
    }
}

/// A form with no fields but its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct Empty {}

const SETTINGS: &[&str] = &["id", "title", "description", "range", "visibility"];
const TILE: &[&str] = &["kind", "source", "column", "title", "text"];

fn settings(form: &SettingsForm, tiles: Vec<Tile>) -> Result<Dashboard, FieldError> {
    let range = Range::parse(&form.range).ok_or_else(|| FieldError::new("range", "Bitte einen Zeitraum wählen."))?;
    let visibility = match form.visibility.as_str() {
        "public" => Visibility::Public,
        "internal" => Visibility::Internal,
        _ => return Err(FieldError::new("visibility", "Bitte wählen, wer das Dashboard sieht.")),
    };
    let dashboard = Dashboard {
        id: form.id.trim().to_owned(),
        title: form.title.trim().to_owned(),
        description: form.description.trim().to_owned(),
        range,
        visibility,
        tiles,
    };
    dashboard.validate().map_err(|e| FieldError::of(e, SETTINGS))?;
    Ok(dashboard)
}

/// The tile the form describes (its source and number are checked against the catalogue
/// with the whole dashboard, [`urbanmesh_catalog::Catalog::check_dashboard`]).
fn tile_of(form: &TileForm) -> Result<Tile, FieldError> {
    let kind =
        TileKind::parse(&form.kind).ok_or_else(|| FieldError::new("kind", "Bitte die Art der Kachel wählen."))?;
    let text = Some(form.text.trim().to_owned()).filter(|t| !t.is_empty());
    let title = Some(form.title.trim().to_owned()).filter(|t| !t.is_empty());
    let (source, column) = if kind == TileKind::Text {
        (None, None)
    } else {
        let source = Source::parse(&form.source)
            .ok_or_else(|| FieldError::new("source", "Bitte einen Datensatz oder eine Ansicht wählen."))?;
        (Some(source), Some(form.column.trim().to_owned()).filter(|c| !c.is_empty()))
    };
    let tile = Tile { kind, title, source, column, text };
    tile.validate().map_err(|e| FieldError::of(e, TILE))?;
    Ok(tile)
}

/// The catalogue's refusal of the tile, said in the workspace's words.
fn said(state: &AppState, form: &TileForm, error: CatalogError) -> FieldError {
    let refused = FieldError::of(error, TILE);
    let source = Source::parse(&form.source);
    match (refused.field, &source) {
        ("source", Some(source)) => {
            FieldError::new("source", format!("„{}“ gibt es auf diesem Knoten nicht.", source.id()))
        }
        ("column", Some(source)) => {
            let numbers = state.catalog.source_schema(source).map(|s| s.numbers().join(", ")).unwrap_or_default();
            FieldError::new(
                "column",
                format!("„{}“ ist keine Zahlenspalte von „{}“; möglich: {numbers}", form.column.trim(), source.id()),
            )
        }
        _ => refused,
    }
}

fn render_list(
    state: &AppState,
    staff: &Staff,
    uri: &Uri,
    status: StatusCode,
    form: &SettingsForm,
    error: Option<&FieldError>,
) -> Response {
    let dashboards = match state.catalog.dashboards().list() {
        Ok(dashboards) => dashboards,
        Err(error) => return unreadable(state, staff, uri, "Dashboards", &error),
    };
    let main = html! {
        h1 { "Dashboards" }
        @if dashboards.is_empty() { p { "Noch keine Dashboards." } }
        ul #dashboards {
            @for dashboard in &dashboards {
                li {
                    a href=(format!("/admin/dashboards/{}", dashboard.id)) { (dashboard.title) }
                    " (" (dashboard.tiles.len()) " Kacheln, " (visibility_word(&dashboard.visibility)) ") · "
                    a href=(format!("/dashboards/{}", dashboard.id)) { "Ansehen" }
                }
            }
        }
        section {
            h2 { "Neues Dashboard" }
            p { "Zuerst Titel, Zeitraum und Sichtbarkeit; die Kacheln kommen im nächsten Schritt." }
            form method="post" action="/admin/dashboards" novalidate {
                (staff.csrf_field())
                (error_note(error, "form"))
                (input("id", "Kennung (Kleinbuchstaben, Ziffern, - und _)", &form.id, error))
                (settings_fields(&form.title, &form.description, &form.range, &form.visibility, error))
                button type="submit" { "Dashboard anlegen" }
            }
        }
    };
    page_with(state, staff, uri, status, "Dashboards", main)
}

fn render_edit(
    state: &AppState,
    staff: &Staff,
    uri: &Uri,
    status: StatusCode,
    dashboard: &Dashboard,
    settings_error: Option<&FieldError>,
    (form, tile_error): (&TileForm, Option<&FieldError>),
) -> Response {
    let datasets = state.catalog.list().unwrap_or_default();
    let views = state.catalog.views().list().unwrap_or_default();
    let id = &dashboard.id;
    let visibility = match dashboard.visibility {
        Visibility::Public => "public",
        _ => "internal",
    };
    let main = html! {
        h1 { "Dashboard „" (dashboard.title) "“" }
        p { a href=(format!("/dashboards/{id}")) { "Im Portal ansehen" } " · " a href="/admin/dashboards" { "Alle Dashboards" } }
        section {
            h2 { "Einstellungen" }
            form method="post" action=(format!("/admin/dashboards/{id}")) novalidate {
                (staff.csrf_field())
                (settings_fields(&dashboard.title, &dashboard.description, dashboard.range.code(), visibility, settings_error))
                button type="submit" { "Einstellungen speichern" }
            }
        }
        section #tiles {
            h2 { "Kacheln" }
            @if dashboard.tiles.is_empty() { p { "Noch keine Kacheln." } }
            ol {
                @for (i, tile) in dashboard.tiles.iter().enumerate() {
                    li {
                        (kind_word(tile.kind))
                        @if let Some(source) = &tile.source { ": " (source.id()) }
                        @if let Some(column) = &tile.column { " (" (column) ")" }
                        @if let Some(title) = &tile.title { " – „" (title) "“" }
                        form.inline method="post" action=(format!("/admin/dashboards/{id}/tiles/{i}/delete")) {
                            (staff.csrf_field())
                            " " button type="submit" aria-label=(format!("Kachel {} entfernen", i + 1)) { "Entfernen" }
                        }
                    }
                }
            }
            h3 { "Kachel hinzufügen" }
            form #add-tile method="post" action=(format!("/admin/dashboards/{id}/tiles")) novalidate {
                (staff.csrf_field())
                (error_note(tile_error, "form"))
                label for="kind" { "Art" }
                select #kind name="kind" aria-describedby=[described(tile_error, "kind")] {
                    @for kind in TileKind::ALL {
                        option value=(kind.code()) selected[form.kind == kind.code()] { (kind_word(kind)) }
                    }
                }
                (error_note(tile_error, "kind"))
                label for="source" { "Datensatz oder Ansicht (nicht für Text)" }
                select #source name="source" aria-invalid=[invalid(tile_error, "source")] aria-describedby=[described(tile_error, "source")] {
                    option value="" { "–" }
                    optgroup label="Datensätze" {
                        @for dataset in &datasets {
                            @let code = Source::Dataset(dataset.id().to_owned()).code();
                            option value=(code) selected[form.source == code] { (dataset.spec.title) }
                        }
                    }
                    optgroup label="Regionale Ansichten" {
                        @for view in &views {
                            @let code = Source::View(view.id().to_owned()).code();
                            option value=(code) selected[form.source == code] { (view.spec.title) }
                        }
                    }
                }
                (error_note(tile_error, "source"))
                (input("column", "Zahlenspalte (leer: die wichtigste)", &form.column, tile_error))
                (input("tile-title", "Überschrift (leer: der Titel der Quelle)", &form.title, tile_error))
                label for="text" { "Text (für eine Textkachel)" }
                textarea #text name="text" rows="4" aria-invalid=[invalid(tile_error, "text")] aria-describedby=[described(tile_error, "text")] { (form.text) }
                (error_note(tile_error, "text"))
                button type="submit" { "Kachel hinzufügen" }
            }
        }
        section {
            h2 { "Löschen" }
            form method="post" action=(format!("/admin/dashboards/{id}/delete")) {
                (staff.csrf_field())
                button type="submit" { "Dashboard löschen" }
            }
        }
    };
    page_with(state, staff, uri, status, &dashboard.title, main)
}

fn settings_fields(
    title: &str,
    description: &str,
    range: &str,
    visibility: &str,
    error: Option<&FieldError>,
) -> Markup {
    html! {
        (input("title", "Titel", title, error))
        label for="description" { "Beschreibung" }
        textarea #description name="description" rows="3" { (description) }
        label for="range" { "Zeitraum der Grafiken" }
        select #range name="range" aria-describedby=[described(error, "range")] {
            @for one in Range::ALL {
                option value=(one.code()) selected[range == one.code() || (range.is_empty() && one == Range::default())] {
                    (words(Lang::De).range(one))
                }
            }
        }
        (error_note(error, "range"))
        label for="visibility" { "Sichtbar für" }
        select #visibility name="visibility" aria-describedby=[described(error, "visibility")] {
            option value="public" selected[visibility == "public"] { "alle (im Portal)" }
            option value="internal" selected[visibility != "public"] { "nur die Verwaltung" }
        }
        (error_note(error, "visibility"))
    }
}

/// A text field with its label, and its error beside it.
fn input(name: &'static str, label: &str, value: &str, error: Option<&FieldError>) -> Markup {
    let field = if name == "tile-title" { "title" } else { name };
    html! {
        label for=(name) { (label) }
        input id=(name) type="text" name=(field) value=(value)
            aria-invalid=[invalid(error, name)] aria-describedby=[described(error, name)];
        (error_note(error, name))
    }
}

fn error_note(error: Option<&FieldError>, field: &str) -> Markup {
    html! {
        @if let Some(error) = error.filter(|e| e.field == field) {
            p.error id=(format!("{field}-error")) role="alert" { (error.reason) }
        }
    }
}

fn invalid(error: Option<&FieldError>, field: &str) -> Option<&'static str> {
    error.filter(|e| e.field == field).map(|_| "true")
}

fn described(error: Option<&FieldError>, field: &str) -> Option<String> {
    error.filter(|e| e.field == field).map(|_| format!("{field}-error"))
}

fn kind_word(kind: TileKind) -> &'static str {
    match kind {
        TileKind::Chart => "Verlaufsgrafik",
        TileKind::Latest => "Aktuelle Werte",
        TileKind::Map => "Karte",
        TileKind::Table => "Tabelle",
        TileKind::Text => "Text",
    }
}

fn visibility_word(visibility: &Visibility) -> &'static str {
    match visibility {
        Visibility::Public => "öffentlich",
        _ => "nur Verwaltung",
    }
}
