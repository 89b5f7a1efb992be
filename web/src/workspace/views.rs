//! The views editor: each view's definition as JSON (decision 008), with its status.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use urbanmesh_catalog::view::ViewSpec;

use super::{Posted, Staff, page_with, problem_text};
use crate::AppState;
use crate::problem::Problem;

/// A new view to start from.
const EXAMPLE: &str = r#"{
  "id": "pegel-region",
  "title": "Pegelstände der Region",
  "description": "Alle Pegel des Verbunds",
  "select": {"themes": ["ENVI"], "keywords": ["Pegel"]},
  "schema": {"fields": [
    {"name": "time", "type": "timestamp[ms, UTC]"},
    {"name": "station", "type": "utf8"},
    {"name": "value", "type": "float64", "unit": "cm"}]},
  "time_column": "time", "series_key": "station",
  "window": "7d", "refresh": "1m", "deadline": "2s",
  "policy": {"visibility": "public"}
}"#;

pub(crate) async fn list(State(state): State<AppState>, staff: Staff, uri: Uri) -> Response {
    render(&state, &staff, &uri, StatusCode::OK, None, None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ViewForm {
    definition: String,
}

/// Creates the view, or changes it when one of its id exists.
pub(crate) async fn save(State(state): State<AppState>, Posted { staff, form, uri }: Posted<ViewForm>) -> Response {
    let result = async {
        if !staff.subject.may_edit() {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "Ansichten ändern Beschäftigte mit der Rolle editor oder admin.",
            ));
        }
        let spec: ViewSpec = serde_json::from_str(&form.definition).map_err(|e| Problem::bad_request(e.to_string()))?;
        if spec.policy.is_some() && !staff.subject.is_admin() {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "Eine Richtlinie setzen Beschäftigte mit der Rolle admin.",
            ));
        }
        let id = spec.id.clone();
        let views = state.catalog.views();
        let saved = if views.get(&id).is_ok() { views.update(spec).await } else { views.create(spec).await };
        state.views.forget(&id);
        saved.map_err(Problem::from)
    }
    .await;
    match result {
        Ok(view) => {
            let note = html! { p role="status" { "Ansicht „" (view.spec.title) "“ gespeichert. " a href=(format!("/views/{}", view.id())) { "Ansehen" } } };
            render(&state, &staff, &uri, StatusCode::OK, Some(note), None)
        }
        Err(problem) => {
            let note = html! { p.error role="alert" { (problem_text(&problem)) } };
            render(&state, &staff, &uri, problem.status(), Some(note), Some(&form.definition))
        }
    }
}

fn render(
    state: &AppState,
    staff: &Staff,
    uri: &Uri,
    status: StatusCode,
    note: Option<Markup>,
    draft: Option<&str>,
) -> Response {
    let views = match state.catalog.views().list() {
        Ok(views) => views,
        Err(error) => return super::unreadable(state, staff, uri, "Regionale Ansichten", &error),
    };
    let main = html! {
        h1 { "Regionale Ansichten" }
        @if let Some(note) = note { (note) }
        @for view in &views {
            section {
                h2 { a href=(format!("/views/{}", view.id())) { (view.spec.title) } " (" (view.id()) ")" }
                p { "Sichtbar für " (super::summary::visibility(&view.policy)) ". "
                    a href=(format!("/api/v1/views/{}/status", view.id())) { "Stand der Quellen" } }
                (editor(staff, &format!("definition-{}", view.id()), &serde_json::to_string_pretty(&view.spec).unwrap_or_default()))
            }
        }
        section {
            h2 { "Neue Ansicht" }
            (editor(staff, "definition-new", draft.unwrap_or(EXAMPLE)))
        }
    };
    page_with(state, staff, uri, status, "Regionale Ansichten", main)
}

fn editor(staff: &Staff, id: &str, definition: &str) -> Markup {
    html! {
        form method="post" action="/admin/views/save" {
            (staff.csrf_field())
            label for=(id) { "Definition (JSON)" } br;
            textarea id=(id) name="definition" rows="14" { (definition) }
            br;
            button type="submit" { "Speichern" }
        }
    }
}
