//! The federation in the workspace: members, invitations, removal.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::{Posted, Role, Staff, page_with};
use crate::AppState;

pub(crate) async fn page_view(
    state: &AppState,
    staff: &Staff,
    uri: &Uri,
    note: Option<maud::Markup>,
    status: StatusCode,
) -> Response {
    let federation = state.federation.status().await;
    let main = html! {
        h1 { "Verbund" }
        @if let Some(note) = note { (note) }
        @match &federation.federation {
            Some(info) => p { "„" (info.name) "“, gegründet von " code { (info.founder) } "." },
            None => p { "Dieser Knoten gehört noch keinem Verbund an; die erste Einladung gründet einen." },
        }
        div.scroll { table #members {
            thead { tr { th scope="col" { "Mitglied" } th scope="col" { "Status" } th scope="col" { "Verbunden" } th scope="col" { "PeerId" } th scope="col" { span.visually-hidden { "Aktion" } } } }
            tbody {
                @for member in &federation.members {
                    tr {
                        th scope="row" { (member.name) }
                        td { (format!("{:?}", member.status).to_lowercase()) }
                        td { @if member.connected { "ja" } @else { "nein" } }
                        td { code { (member.peer) } }
                        td {
                            @if member.peer != federation.me && staff.subject.is_admin() && member.status == urbanmesh_protocol::federation::MemberStatus::Admitted {
                                form.inline method="post" action="/admin/federation/remove" {
                                    (staff.csrf_field())
                                    input type="hidden" name="peer" value=(member.peer);
                                    button type="submit" aria-label=(format!("{} entfernen", member.name)) { "Entfernen" }
                                }
                            }
                        }
                    }
                }
            }
        } }
        @if staff.subject.is_admin() {
            section {
                h2 { "Einladen" }
                form #invite method="post" action="/admin/federation/invite" {
                    (staff.csrf_field())
                    p { label for="invitee" { "Name der Kommune" } br; input #invitee name="name" required; }
                    p { label for="federation-name" { "Name des Verbunds (nur bei der Gründung)" } br; input #federation-name name="federation"; }
                    p {
                        label for="ttl" { "Gültig für" } br;
                        select #ttl name="ttl" { option value="1h" { "1 Stunde" } option value="24h" selected { "24 Stunden" } option value="168h" { "7 Tage" } }
                    }
                    button type="submit" { "Einladung erstellen" }
                }
            }
        }
    };
    page_with(state, staff, uri, status, "Verbund", main)
}

pub(crate) async fn page(State(state): State<AppState>, staff: Staff, uri: Uri) -> Response {
    page_view(&state, &staff, &uri, None, StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct InviteForm {
    name: String,
    #[serde(default)]
    federation: String,
    ttl: String,
}

pub(crate) async fn invite(State(state): State<AppState>, posted: Posted<InviteForm>) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Admin) {
        return refused;
    }
    let Posted { staff, form, uri } = posted;
    let ttl = match form.ttl.as_str() {
        "1h" => 3600,
        "168h" => 7 * 86_400,
        _ => 86_400,
    };
    let federation = Some(form.federation.trim()).filter(|f| !f.is_empty());
    let name = Some(form.name.trim().to_owned()).filter(|n| !n.is_empty());
    let note = match state.federation.invite(federation, name, std::time::Duration::from_secs(ttl)).await {
        Ok(invitation) => html! {
            div role="status" {
                p { "Einladung für " (form.name) " – einmal gültig; " (form.name) " tritt damit bei (" code { "urbanmesh join" } " oder im eigenen Arbeitsbereich):" }
                pre #invitation { (invitation) }
            }
        },
        Err(error) => html! { p.error role="alert" { (error.to_string()) } },
    };
    page_view(&state, &staff, &uri, Some(note), StatusCode::OK).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct RemoveForm {
    peer: String,
}

pub(crate) async fn remove(State(state): State<AppState>, posted: Posted<RemoveForm>) -> Response {
    if let Err(refused) = posted.requires(&state, Role::Admin) {
        return refused;
    }
    let Posted { staff, form, uri } = posted;
    match state.federation.remove(&form.peer).await {
        Ok(()) => Redirect::to("/admin/federation").into_response(),
        Err(error) => {
            let note = html! { p.error role="alert" { (error.to_string()) } };
            page_view(&state, &staff, &uri, Some(note), StatusCode::BAD_REQUEST).await
        }
    }
}
