//! Datasets in the workspace: the list, a new dataset, its description, and uploads with
//! every rejected row shown.

use axum::extract::{Multipart, Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use urbanmesh_catalog::vocab::{FREQUENCIES, LICENCES, THEMES};
use urbanmesh_catalog::{Dataset, DatasetSpec, FieldType};
use urbanmesh_store::decode::Format;

use super::{Posted, Role, Staff, page, page_with, problem_text, unreadable};
use crate::AppState;
use crate::problem::Problem;

pub(crate) async fn list(State(state): State<AppState>, staff: Staff, uri: Uri) -> Response {
    let datasets = match state.catalog.list() {
        Ok(datasets) => datasets,
        Err(error) => return unreadable(&state, &staff, &uri, "Datensätze", &error),
    };
    let main = html! {
        h1 { "Datensätze" }
        p { a href="/admin/datasets/new" { "Neuen Datensatz anlegen" } }
        div.scroll { table #datasets {
            thead { tr { th scope="col" { "Datensatz" } th scope="col" { "Sichtbar für" } th scope="col" { "Zeilen" } } }
            tbody {
                @for dataset in &datasets {
                    tr {
                        th scope="row" { a href=(format!("/admin/datasets/{}", dataset.id())) { (dataset.spec.title) } " (" (dataset.id()) ")" }
                        td { (super::summary::visibility(&dataset.policy)) }
                        td { @match state.store.stats(dataset.id()) {
                            Ok(stats) => (stats.rows),
                            Err(error) => span.error { "nicht lesbar: " (error.to_string()) },
                        } }
                    }
                }
            }
        } }
    };
    page(&state, &staff, &uri, "Datensätze", main)
}

/// The fields of the description form (new and edit).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DescriptionForm {
    #[serde(default)]
    id: String,
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    keywords: String,
    #[serde(default)]
    theme: String,
    #[serde(default)]
    licence: String,
    #[serde(default)]
    frequency: String,
    /// One column per line: `name type [unit]`.
    #[serde(default)]
    schema: String,
    #[serde(default)]
    time_column: String,
    #[serde(default)]
    series_key: String,
}

pub(crate) async fn new_form(State(state): State<AppState>, staff: Staff, uri: Uri) -> Response {
    page(&state, &staff, &uri, "Neuer Datensatz", description_form(&staff, None, &DescriptionForm::default(), None))
}

pub(crate) async fn create(State(state): State<AppState>, posted: Posted<DescriptionForm>) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Editor) {
        return refused;
    }
    let Posted { staff, form, uri } = posted;
    let result = match spec_of(&form, None) {
        Ok(spec) => crate::api::datasets::publish(&state, spec).await,
        Err(problem) => Err(problem),
    };
    match result {
        Ok(dataset) => Redirect::to(&format!("/admin/datasets/{}", dataset.id())).into_response(),
        Err(problem) => page_with(
            &state,
            &staff,
            &uri,
            StatusCode::BAD_REQUEST,
            "Neuer Datensatz",
            description_form(&staff, None, &form, Some(&problem_text(&problem))),
        ),
    }
}

pub(crate) async fn edit(State(state): State<AppState>, staff: Staff, uri: Uri, Path(id): Path<String>) -> Response {
    let Ok(dataset) = state.catalog.get(&id) else { return super::not_found(&state, &uri) };
    let form = form_of(&dataset);
    page(&state, &staff, &uri, &dataset.spec.title, dataset_page(&state, &staff, &dataset, &form, None, None))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted<DescriptionForm>,
) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Editor) {
        return refused;
    }
    let Posted { staff, form, uri } = posted;
    let Ok(current) = state.catalog.get(&id) else { return super::not_found(&state, &uri) };
    let result = match spec_of(&form, Some(&current)) {
        Ok(spec) => state.catalog.update(spec).await.map_err(Problem::from),
        Err(problem) => Err(problem),
    };
    match result {
        Ok(dataset) => Redirect::to(&format!("/admin/datasets/{}", dataset.id())).into_response(),
        Err(problem) => page_with(
            &state,
            &staff,
            &uri,
            StatusCode::BAD_REQUEST,
            &current.spec.title,
            dataset_page(&state, &staff, &current, &form, Some(&problem_text(&problem)), None),
        ),
    }
}

/// What an upload did: rows stored, or every row at fault and nothing stored.
enum Outcome {
    Stored { rows: usize, file: String },
    Refused { file: String, problem: Problem },
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    staff: Staff,
    uri: Uri,
    Path(id): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let Ok(dataset) = state.catalog.get(&id) else { return super::not_found(&state, &uri) };
    let mut csrf = String::new();
    let mut outcome = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some("csrf") {
            csrf = field.text().await.unwrap_or_default();
            continue;
        }
        let Some(file) = field.file_name().map(str::to_owned) else { continue };
        if let Err(refused) = staff.check(&state, &uri, &csrf) {
            return refused;
        }
        if !staff.subject.may_edit() {
            return staff.refuse(&state, &uri, "editor oder admin");
        }
        let Some(format) = Format::from_file_name(&file) else {
            let problem = Problem::bad_request(format!("„{file}“ ist keine .csv- oder .xlsx-Datei"));
            outcome = Some(Outcome::Refused { file, problem });
            break;
        };
        outcome = Some(match field.bytes().await {
            Ok(body) => match crate::api::ingest::store(&state, id.clone(), format, body).await {
                Ok(stored) => Outcome::Stored { rows: stored.rows, file },
                Err(problem) => Outcome::Refused { file, problem },
            },
            Err(error) => Outcome::Refused { file, problem: Problem::bad_request(error.to_string()) },
        });
        break;
    }
    if let Err(refused) = staff.check(&state, &uri, &csrf) {
        return refused;
    }
    let status = match &outcome {
        Some(Outcome::Refused { .. }) | None => StatusCode::BAD_REQUEST,
        Some(Outcome::Stored { .. }) => StatusCode::OK,
    };
    let form = form_of(&dataset);
    let main = dataset_page(&state, &staff, &dataset, &form, None, Some(outcome_view(outcome.as_ref())));
    page_with(&state, &staff, &uri, status, &dataset.spec.title, main)
}

fn outcome_view(outcome: Option<&Outcome>) -> Markup {
    html! {
        @match outcome {
            None => p #upload-result role="alert" { "Das Formular enthielt keine Datei." },
            Some(Outcome::Stored { rows, file }) => p #upload-result role="status" { "„" (file) "“: " (rows) " Zeilen gespeichert." },
            Some(Outcome::Refused { file, problem }) => div #upload-result role="alert" {
                p { "„" (file) "“ wurde nicht gespeichert, keine einzige Zeile: " (problem.detail()) }
                @if !problem.errors().is_empty() {
                    table #upload-errors {
                        caption { "Fehlerhafte Zeilen – bitte korrigieren und die Datei erneut hochladen" }
                        thead { tr { th scope="col" { "Zeile" } th scope="col" { "Zeile in der Datei" } th scope="col" { "Spalte" } th scope="col" { "Grund" } } }
                        tbody {
                            @for error in problem.errors() {
                                tr data-row=(error.row) {
                                    th scope="row" { (error.row) }
                                    td { @if let Some(line) = error.line { (line) } }
                                    td { (error.column.as_deref().unwrap_or("")) }
                                    td { (error.reason) }
                                }
                            }
                        }
                    }
                }
            },
        }
    }
}

fn dataset_page(
    state: &AppState,
    staff: &Staff,
    dataset: &Dataset,
    form: &DescriptionForm,
    error: Option<&str>,
    upload: Option<Markup>,
) -> Markup {
    let id = dataset.id();
    let rows = state.store.stats(id).map(|s| s.rows).unwrap_or(0);
    let table = urbanmesh_flight::table_name(&state.catalog.info().municipality, id);
    html! {
        h1 { (dataset.spec.title) }
        p {
            (rows) " Zeilen · "
            a href=(format!("/datasets/{id}")) { "Öffentliche Seite" } " · "
            a href=(format!("/admin/datasets/{id}/policy")) { "Wer darf was sehen?" }
        }
        p #policy-summary { (super::summary::summary(&dataset.policy)) }
        section {
            h2 { "Mit SQL abfragen" }
            p { "Name in SQL (Flight SQL, ADBC, DuckDB, DBeaver): " code #sql-name { (table) } }
            pre #sql { code { (crate::portal::dataset::sql_snippet(&state.endpoints.flight, &table, true)) } }
        }
        section {
            h2 { "Daten hochladen" }
            @if let Some(upload) = upload { (upload) }
            form #upload method="post" action=(format!("/admin/datasets/{id}/upload")) enctype="multipart/form-data" {
                (staff.csrf_field())
                label for="file" { "CSV- oder Excel-Datei (.csv, .xlsx) mit den Spalten " (dataset.spec.schema.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")) }
                input #file type="file" name="file" accept=".csv,.xlsx" required;
                button type="submit" { "Hochladen" }
            }
        }
        (description_form(staff, Some(dataset), form, error))
    }
}

fn description_form(staff: &Staff, dataset: Option<&Dataset>, form: &DescriptionForm, error: Option<&str>) -> Markup {
    let action = dataset.map_or("/admin/datasets/new".to_owned(), |d| format!("/admin/datasets/{}", d.id()));
    html! {
        section {
            @if dataset.is_some() { h2 { "Beschreibung" } } @else { h1 { "Neuer Datensatz" } }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form #description method="post" action=(action) {
                (staff.csrf_field())
                @if dataset.is_none() {
                    p { label for="id" { "Kennung (Kleinbuchstaben, Ziffern, - und _)" } br; input #id name="id" value=(form.id) required; }
                }
                p { label for="title" { "Titel" } br; input #title name="title" value=(form.title) required; }
                p { label for="description-text" { "Beschreibung" } br; textarea #description-text name="description" rows="4" { (form.description) } }
                p { label for="keywords" { "Schlagwörter (durch Kommas getrennt)" } br; input #keywords name="keywords" value=(form.keywords); }
                p {
                    label for="theme" { "Thema" } br;
                    select #theme name="theme" {
                        option value="" { "–" }
                        @for code in THEMES.codes { option value=(code) selected[form.theme == *code] { (theme_name(code)) } }
                    }
                }
                p {
                    label for="licence" { "Lizenz" } br;
                    select #licence name="licence" {
                        @for code in LICENCES.codes { option value=(code) selected[form.licence == *code] { (code) } }
                    }
                }
                p {
                    label for="frequency" { "Aktualisierung" } br;
                    select #frequency name="frequency" {
                        option value="" { "–" }
                        @for code in FREQUENCIES.codes { option value=(code) selected[form.frequency == *code] { (code) } }
                    }
                }
                @if dataset.is_none() {
                    p {
                        label for="schema" { "Spalten, eine je Zeile: Name Typ [Einheit] (Typen: int64, float64, utf8, bool, date32, timestamp[ms, UTC])" } br;
                        textarea #schema name="schema" rows="6" { (form.schema) }
                    }
                    p { label for="time_column" { "Zeitspalte" } br; input #time_column name="time_column" value=(form.time_column); }
                    p { label for="series_key" { "Reihenschlüssel (z. B. Messstelle)" } br; input #series_key name="series_key" value=(form.series_key); }
                }
                button type="submit" { @if dataset.is_some() { "Speichern" } @else { "Anlegen" } }
            }
        }
    }
}

fn theme_name(code: &str) -> &str {
    crate::portal::theme_name(code)
}

fn form_of(dataset: &Dataset) -> DescriptionForm {
    let spec = &dataset.spec;
    DescriptionForm {
        id: spec.id.clone(),
        title: spec.title.clone(),
        description: spec.description.clone(),
        keywords: spec.keywords.join(", "),
        theme: spec.themes.first().map(|t| THEMES.code(t).to_owned()).unwrap_or_default(),
        licence: spec.licence().to_owned(),
        frequency: spec.accrual_periodicity.clone().unwrap_or_default(),
        schema: String::new(),
        time_column: spec.time_column.clone().unwrap_or_default(),
        series_key: spec.series_key.clone().unwrap_or_default(),
    }
}

/// The description the form asks for: a new dataset's, or `current`'s with the form's changes.
fn spec_of(form: &DescriptionForm, current: Option<&Dataset>) -> Result<DatasetSpec, Problem> {
    let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let keywords: Vec<String> = form.keywords.split(',').filter_map(optional).collect();
    let themes: Vec<String> = optional(&form.theme).into_iter().collect();
    if let Some(current) = current {
        return Ok(DatasetSpec {
            title: form.title.trim().to_owned(),
            description: form.description.trim().to_owned(),
            keywords,
            themes,
            licence: optional(&form.licence),
            accrual_periodicity: optional(&form.frequency),
            policy: None,
            ..current.spec.clone()
        });
    }
    let mut fields = Vec::new();
    for (i, line) in form.schema.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line = line.trim();
        let (name, rest) = line.split_once(char::is_whitespace).ok_or_else(|| {
            Problem::invalid_field(format!("schema, Zeile {}", i + 1), format!("„{line}“ braucht Name und Typ"))
        })?;
        let rest = rest.trim();
        // `timestamp[ms, UTC]` holds a blank; a unit follows the type.
        let (type_name, unit) = match rest.rfind(']') {
            Some(end) => (rest[..=end].to_owned(), optional(&rest[end + 1..])),
            None => match rest.split_once(char::is_whitespace) {
                Some((t, u)) => (t.to_owned(), optional(u)),
                None => (rest.to_owned(), None),
            },
        };
        if FieldType::parse(&type_name).is_none() {
            return Err(Problem::invalid_field(
                format!("schema, Zeile {}", i + 1),
                format!("„{type_name}“ ist kein Spaltentyp; erlaubt sind {}", FieldType::NAMES),
            ));
        }
        let nullable = Some(name) != optional(&form.time_column).as_deref();
        fields.push(serde_json::json!({"name": name, "type": type_name, "unit": unit, "nullable": nullable}));
    }
    let spec = serde_json::json!({
        "id": form.id.trim(),
        "title": form.title.trim(),
        "description": form.description.trim(),
        "schema": {"fields": fields},
        "time_column": optional(&form.time_column),
        "series_key": optional(&form.series_key),
        "keywords": keywords,
        "themes": themes,
        "licence": optional(&form.licence),
        "accrual_periodicity": optional(&form.frequency),
    });
    let cleaned: serde_json::Map<String, serde_json::Value> = spec
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut cleaned = serde_json::Value::Object(cleaned);
    if let Some(fields) = cleaned.pointer_mut("/schema/fields").and_then(|f| f.as_array_mut()) {
        for field in fields.iter_mut().filter_map(|f| f.as_object_mut()) {
            field.retain(|_, v| !v.is_null());
        }
    }
    serde_json::from_value(cleaned).map_err(|e| Problem::bad_request(e.to_string()))
}
