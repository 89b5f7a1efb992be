//! The access log in the workspace, with filters.

use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use maud::html;
use serde::Deserialize;
use urbanmesh_policy::AuditQuery;

use super::{Staff, page};
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    dataset: String,
    #[serde(default)]
    subject: String,
    /// `YYYY-MM-DD`, from the start of the day.
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, to the end of the day.
    #[serde(default)]
    to: String,
}

const SHOWN: usize = 500;

pub(crate) async fn page_view(
    State(state): State<AppState>,
    staff: Staff,
    uri: Uri,
    filters: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(filters) = filters.unwrap_or_default();
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    // `to` names the last day shown: the range ends (exclusive) at the start of the next.
    let day = |s: &str, end: bool| -> Option<DateTime<Utc>> {
        let date = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
        let date = if end { date.succ_opt()? } else { date };
        Some(date.and_hms_opt(0, 0, 0)?.and_utc())
    };
    let query = AuditQuery {
        dataset: text(&filters.dataset),
        subject: text(&filters.subject),
        from: day(&filters.from, false),
        to: day(&filters.to, true),
        limit: SHOWN,
        newest_first: true,
    };
    let allowed = staff.subject.is_admin();
    let records = match allowed.then(|| state.gate.audit().query(&query)).transpose() {
        Ok(records) => records.unwrap_or_default(),
        Err(error) => return super::unreadable(&state, &staff, &uri, "Zugriffsprotokoll", &error),
    };
    let main = html! {
        h1 { "Zugriffsprotokoll" }
        @if !allowed { p role="alert" { "Das Zugriffsprotokoll lesen Beschäftigte mit der Rolle admin." } }
        form #audit-filters method="get" action="/admin/audit" {
            label for="dataset" { "Datensatz" } " " input #dataset name="dataset" value=(filters.dataset); " "
            label for="subject" { "Wer" } " " input #subject name="subject" value=(filters.subject); " "
            label for="from" { "Von" } " " input #from type="date" name="from" value=(filters.from); " "
            label for="to" { "Bis" } " " input #to type="date" name="to" value=(filters.to); " "
            button type="submit" { "Filtern" }
        }
        p { (records.len()) " Einträge, die neuesten zuerst (höchstens " (SHOWN) ")" }
        div.scroll {
            table #audit {
                thead { tr {
                    th scope="col" { "Zeit" } th scope="col" { "Wer" } th scope="col" { "Datensatz" } th scope="col" { "Zweck" }
                    th scope="col" { "Entscheidung" } th scope="col" { "Grund" } th scope="col" { "Zeilen" } th scope="col" { "Bytes" } th scope="col" { "Zugang" }
                } }
                tbody {
                    @for record in &records {
                        tr data-decision=(record.decision) {
                            td { (record.at.format("%d.%m.%Y %H:%M:%S")) }
                            td { (record.subject) }
                            td { (record.dataset) }
                            td { (record.purpose.as_deref().unwrap_or("")) }
                            td { (record.decision) }
                            td { (record.reason) }
                            td { (record.rows) }
                            td { (record.bytes) }
                            td { (record.interface) }
                        }
                    }
                }
            }
        }
    };
    page(&state, &staff, &uri, "Zugriffsprotokoll", main)
}
