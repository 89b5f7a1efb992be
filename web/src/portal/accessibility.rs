//! The accessibility statement (Erklärung zur Barrierefreiheit) that § 12b BGG and the
//! state laws require of public bodies' websites, linked from every page's footer.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::{Markup, html};

use super::lang::{Chosen, Lang};
use super::layout::Frame;
use crate::AppState;

/// When the portal was last assessed, and how: its automated checks run with every build.
const ASSESSED: &str = "2026-12-03";

pub(crate) async fn page(State(state): State<AppState>, chosen: Chosen, uri: Uri) -> Response {
    let info = state.catalog.info();
    let frame = Frame { chosen, uri: &uri, site: &info.title };
    let contact = info.contact_point.as_ref();
    let email = contact.and_then(|c| c.email.as_deref());
    let url = contact.and_then(|c| c.url.as_deref()).or(info.homepage.as_deref());
    let feedback = html! {
        @if let Some(email) = email { a href=(format!("mailto:{email}")) { (email) } }
        @else if let Some(url) = url { a href=(url) { (url) } }
        @else { (info.publisher.name) }
    };
    let (title, main) = match chosen.lang {
        Lang::De => ("Erklärung zur Barrierefreiheit", german(&info.municipality, &info.title, feedback)),
        Lang::En => ("Accessibility statement", english(&info.municipality, &info.title, feedback)),
    };
    frame.page(StatusCode::OK, title, main)
}

fn german(municipality: &str, site: &str, feedback: Markup) -> Markup {
    html! {
        h1 { "Erklärung zur Barrierefreiheit" }
        p { (municipality) " ist bemüht, das Datenportal „" (site) "“ barrierefrei zugänglich zu machen. \
            Rechtsgrundlage sind das Behindertengleichstellungsgesetz (BGG), die Barrierefreie-Informationstechnik-Verordnung \
            (BITV 2.0) und die Gesetze des Landes zur Umsetzung der Richtlinie (EU) 2016/2102." }
        h2 { "Stand der Vereinbarkeit mit den Anforderungen" }
        p { "Das öffentliche Portal (Startseite, Suche, Seiten der Datensätze und regionalen Sichten) ist mit den \
            Anforderungen der WCAG 2.1 auf Stufe AA weitgehend vereinbar. Der Arbeitsbereich der Verwaltung (/admin) \
            ist noch nicht vollständig geprüft und daher teilweise vereinbar." }
        h2 { "Nicht barrierefreie Inhalte" }
        ul {
            li { "Verlaufsgrafiken und Karten sind Grafiken. Ihre Werte stehen zusätzlich als Tabelle \
                („Aktuelle Werte“, Vorschau) und zum Herunterladen als CSV bereit." }
            li { "Die Karte hat noch keine Hintergrundkarte; Lage und Namen der Messstellen stehen auch in der Tabelle." }
        }
        h2 { "Erstellung dieser Erklärung" }
        p { "Diese Erklärung wurde am " time datetime=(ASSESSED) { "03.12.2026" } " erstellt. Grundlage ist eine \
            Selbstbewertung: automatische Prüfungen mit axe-core, HTML-Validierung, Kontrastmessung und Darstellung \
            auf Telefonbreite bei jeder Änderung der Software, dazu Prüfungen der Bedienung allein mit der Tastatur." }
        h2 { "Feedback und Kontakt" }
        p { "Sind Ihnen Mängel beim barrierefreien Zugang aufgefallen? Schreiben Sie uns: " (feedback) }
        h2 { "Schlichtungsverfahren" }
        p { "Wenn auch nach Ihrem Feedback keine zufriedenstellende Lösung gefunden wurde, können Sie sich an die \
            Durchsetzungs- oder Ombudsstelle für barrierefreie Informationstechnik Ihres Landes wenden \
            (in Nordrhein-Westfalen: die Ombudsstelle für barrierefreie Informationstechnik des Landes NRW)." }
    }
}

fn english(municipality: &str, site: &str, feedback: Markup) -> Markup {
    html! {
        h1 { "Accessibility statement" }
        p { (municipality) " strives to make the data portal “" (site) "” accessible, as the German Disability \
            Equality Act (BGG), the Accessible Information Technology Ordinance (BITV 2.0) and the state laws \
            implementing Directive (EU) 2016/2102 require." }
        h2 { "Compliance status" }
        p { "The public portal (home, search, dataset and regional view pages) largely conforms to WCAG 2.1 level AA. \
            The staff workspace (/admin) has not been fully assessed yet and conforms partially." }
        h2 { "Content that is not accessible" }
        ul {
            li { "Charts and maps are graphics. Their values are also given as tables (latest values, preview) and \
                as CSV downloads." }
            li { "The map has no basemap yet; the stations' names and positions are also in the table." }
        }
        h2 { "Preparation of this statement" }
        p { "This statement was prepared on " time datetime=(ASSESSED) { "3 December 2026" } ". It rests on a \
            self-assessment: automated checks with axe-core, HTML validation, contrast measurement and rendering at \
            phone width with every change of the software, and keyboard-only walkthroughs." }
        h2 { "Feedback and contact" }
        p { "Have you found a barrier? Tell us: " (feedback) }
        h2 { "Enforcement procedure" }
        p { "If your feedback does not lead to a satisfactory solution, you may turn to your state's enforcement \
            or ombuds body for accessible information technology (in North Rhine-Westphalia: the Ombudsstelle \
            für barrierefreie Informationstechnik des Landes NRW)." }
    }
}
