//! The policy editor: visibility and duties as fields, rules as JSON, with the policy in
//! plain words above it.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use urbanmesh_catalog::Dataset;
use urbanmesh_policy::{Policy, Visibility};

use super::{Posted, Staff, page, page_with, problem_text};
use crate::AppState;
use crate::problem::Problem;

#[derive(Debug, Deserialize)]
pub(crate) struct PolicyForm {
    visibility: String,
    #[serde(default)]
    peers: String,
    #[serde(default)]
    attribution: String,
    #[serde(default)]
    licence: String,
    #[serde(default)]
    rules: String,
}

pub(crate) async fn edit(State(state): State<AppState>, staff: Staff, uri: Uri, Path(id): Path<String>) -> Response {
    let Ok(dataset) = state.catalog.get(&id) else { return super::not_found(&state, &uri) };
    let form = form_of(&dataset.policy);
    page(&state, &staff, &uri, "Wer darf was sehen?", editor(&staff, &dataset, &form, None))
}

pub(crate) async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { staff, form, uri }: Posted<PolicyForm>,
) -> Response {
    let Ok(dataset) = state.catalog.get(&id) else { return super::not_found(&state, &uri) };
    if !staff.subject.is_admin() {
        let problem = Problem::new(StatusCode::FORBIDDEN, "Richtlinien setzen Beschäftigte mit der Rolle admin.");
        return page_with(
            &state,
            &staff,
            &uri,
            StatusCode::FORBIDDEN,
            "Wer darf was sehen?",
            editor(&staff, &dataset, &form, Some(&problem)),
        );
    }
    match apply(&state, &dataset, &form).await {
        Ok(()) => Redirect::to(&format!("/admin/datasets/{id}")).into_response(),
        Err(problem) => page_with(
            &state,
            &staff,
            &uri,
            StatusCode::BAD_REQUEST,
            "Wer darf was sehen?",
            editor(&staff, &dataset, &form, Some(&problem)),
        ),
    }
}

async fn apply(state: &AppState, dataset: &Dataset, form: &PolicyForm) -> Result<(), Problem> {
    let visibility = match form.visibility.as_str() {
        "public" => serde_json::json!("public"),
        "federation" => serde_json::json!("federation"),
        "internal" => serde_json::json!("internal"),
        "peers" => {
            serde_json::json!({"peers": form.peers.split(',').map(str::trim).filter(|p| !p.is_empty()).collect::<Vec<_>>()})
        }
        other => return Err(Problem::invalid_field("visibility", format!("`{other}` ist keine Sichtbarkeit"))),
    };
    let rules: serde_json::Value = if form.rules.trim().is_empty() {
        serde_json::json!([])
    } else {
        serde_json::from_str(&form.rules).map_err(|e| Problem::invalid_field("rules", format!("ist kein JSON: {e}")))?
    };
    let mut value = serde_json::json!({"visibility": visibility, "rules": rules});
    for (key, text) in [("attribution", &form.attribution), ("licence", &form.licence)] {
        if !text.trim().is_empty() {
            value[key] = serde_json::json!(text.trim());
        }
    }
    let policy: Policy = serde_json::from_value(value).map_err(|e| Problem::bad_request(e.to_string()))?;
    let policy = state.catalog.validate_policy(dataset.id(), policy)?;
    urbanmesh_dataspace::check_rules(&state.store, &Dataset { policy: policy.clone(), ..dataset.clone() }).await?;
    state.catalog.set_policy(dataset.id(), policy).await?;
    tracing::info!(dataset = %dataset.id(), "policy set in the workspace");
    Ok(())
}

fn form_of(policy: &Policy) -> PolicyForm {
    let (visibility, peers) = match &policy.visibility {
        Visibility::Public => ("public", String::new()),
        Visibility::Federation => ("federation", String::new()),
        Visibility::Peers(peers) => ("peers", peers.join(", ")),
        Visibility::Internal => ("internal", String::new()),
    };
    PolicyForm {
        visibility: visibility.to_owned(),
        peers,
        attribution: policy.attribution.clone().unwrap_or_default(),
        licence: policy.licence.clone().unwrap_or_default(),
        rules: if policy.rules.is_empty() {
            String::new()
        } else {
            serde_json::to_string_pretty(&policy.rules).unwrap_or_default()
        },
    }
}

fn editor(staff: &Staff, dataset: &Dataset, form: &PolicyForm, problem: Option<&Problem>) -> Markup {
    let choices = [
        ("public", "Alle (öffentlich)"),
        ("federation", "Mitglieder des Verbunds"),
        ("peers", "Bestimmte Mitglieder"),
        ("internal", "Nur die Beschäftigten"),
    ];
    html! {
        h1 { "Wer darf „" (dataset.spec.title) "“ sehen?" }
        p #policy-summary { (super::summary::summary(&dataset.policy)) }
        @if let Some(problem) = problem { p.error role="alert" { (problem_text(problem)) } }
        form #policy method="post" action=(format!("/admin/datasets/{}/policy", dataset.id())) {
            (staff.csrf_field())
            fieldset {
                legend { "Sichtbarkeit" }
                @for (value, label) in choices {
                    p {
                        input type="radio" name="visibility" id=(format!("visibility-{value}")) value=(value) checked[form.visibility == value];
                        " " label for=(format!("visibility-{value}")) { (label) }
                    }
                }
                p { label for="peers" { "Mitglieder (PeerIds, durch Kommas getrennt)" } br; input #peers name="peers" value=(form.peers); }
            }
            p { label for="attribution" { "Namensnennung" } br; input #attribution name="attribution" value=(form.attribution); }
            p { label for="policy-licence" { "Lizenz (Pflicht für Nutzende)" } br; input #policy-licence name="licence" value=(form.licence); }
            p {
                label for="rules" { "Regeln (JSON; leer: jede Person, die den Datensatz sieht, liest ihn vollständig)" } br;
                textarea #rules name="rules" rows="10" { (form.rules) }
            }
            button type="submit" { "Speichern" }
        }
    }
}
