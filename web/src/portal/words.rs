//! The portal's words in German and English.

use urbanmesh_catalog::dashboard::Range;
use urbanmesh_flight::Freshness;

use super::lang::Lang;
use super::vocabulary;

pub(crate) struct Words {
    pub(crate) search: &'static str,
    pub(crate) search_label: &'static str,
    pub(crate) search_placeholder: &'static str,
    pub(crate) views: &'static str,
    pub(crate) dashboards: &'static str,
    pub(crate) no_views: &'static str,
    pub(crate) newest: &'static str,
    pub(crate) no_datasets: &'static str,
    pub(crate) results: &'static str,
    pub(crate) hits: &'static str,
    /// Before a search hit's time of last change, and its formats.
    pub(crate) updated: &'static str,
    pub(crate) formats: &'static str,
    pub(crate) no_hits: &'static str,
    pub(crate) facets: &'static str,
    pub(crate) facet_theme: &'static str,
    pub(crate) facet_publisher: &'static str,
    pub(crate) facet_licence: &'static str,
    pub(crate) facet_municipality: &'static str,
    pub(crate) scope: &'static str,
    pub(crate) whole_federation: &'static str,
    pub(crate) this_town: &'static str,
    pub(crate) paging: &'static str,
    pub(crate) previous: &'static str,
    pub(crate) next: &'static str,
    pub(crate) page: &'static str,
    pub(crate) metadata: &'static str,
    pub(crate) publisher: &'static str,
    pub(crate) licence: &'static str,
    pub(crate) attribution: &'static str,
    pub(crate) themes: &'static str,
    pub(crate) keywords: &'static str,
    pub(crate) period: &'static str,
    pub(crate) frequency: &'static str,
    pub(crate) latest: &'static str,
    pub(crate) series: &'static str,
    pub(crate) time: &'static str,
    pub(crate) value: &'static str,
    pub(crate) state: &'static str,
    pub(crate) chart: &'static str,
    pub(crate) chart_label: &'static str,
    /// The chart's time ranges: a day, a week, a month.
    pub(crate) ranges: [&'static str; 3],
    pub(crate) range_label: &'static str,
    pub(crate) map: &'static str,
    pub(crate) map_label: &'static str,
    /// The link to the map's stations as GeoJSON.
    pub(crate) geojson: &'static str,
    pub(crate) preview: &'static str,
    pub(crate) downloads: &'static str,
    pub(crate) python: &'static str,
    pub(crate) sql: &'static str,
    pub(crate) dcat: &'static str,
    pub(crate) no_rows: &'static str,
    pub(crate) not_readable: &'static str,
    pub(crate) stations: &'static str,
    pub(crate) sources: &'static str,
    pub(crate) town: &'static str,
    pub(crate) dataset: &'static str,
    pub(crate) status: &'static str,
    pub(crate) rows: &'static str,
    pub(crate) age: &'static str,
    pub(crate) not_found_title: &'static str,
    pub(crate) not_found: &'static str,
    pub(crate) home: &'static str,
    pub(crate) other_language: &'static str,
    pub(crate) footer: &'static str,
    /// The footer's link to the accessibility statement.
    pub(crate) accessibility: &'static str,
    /// The status of a view's source: fetched now, served from before, not answering,
    /// or not matching the view's schema.
    fresh: &'static str,
    stale: &'static str,
    unavailable: &'static str,
    mismatched: &'static str,
    /// Low, normal, high, unknown.
    station_states: [&'static str; 4],
    pub(crate) lang: Lang,
}

impl Words {
    /// The name of an EU data theme, or its code.
    pub(crate) fn theme<'a>(&self, code: &'a str) -> &'a str {
        vocabulary::theme(self.lang, code)
    }

    /// The name of a dcat-ap.de licence, or its code.
    pub(crate) fn licence<'a>(&self, code: &'a str) -> &'a str {
        vocabulary::licence(self.lang, code)
    }

    /// How often a dataset is updated, in words, or the code.
    pub(crate) fn frequency<'a>(&self, code: &'a str) -> &'a str {
        vocabulary::frequency(self.lang, code)
    }

    /// A station's state (`low`, `normal`, `high`, `unknown`) in words.
    pub(crate) fn station_state(&self, state: &str) -> &'static str {
        let [low, normal, high, unknown] = self.station_states;
        match state {
            "low" => low,
            "normal" => normal,
            "high" => high,
            _ => unknown,
        }
    }

    /// A chart's time range in words.
    pub(crate) fn range(&self, range: Range) -> &'static str {
        let [day, week, month] = self.ranges;
        match range {
            Range::Day => day,
            Range::Week => week,
            Range::Month => month,
        }
    }

    pub(crate) fn freshness(&self, status: Freshness) -> &'static str {
        match status {
            Freshness::Fresh => self.fresh,
            Freshness::Stale => self.stale,
            Freshness::Unavailable => self.unavailable,
            Freshness::Mismatched => self.mismatched,
        }
    }
}

const DE: Words = Words {
    fresh: "aktuell",
    stale: "veraltet (letzte gute Daten)",
    unavailable: "nicht erreichbar",
    mismatched: "passt nicht zur Sicht",
    station_states: ["niedrig", "normal", "hoch", "unbekannt"],
    lang: Lang::De,
    search: "Suchen",
    search_label: "Daten suchen",
    search_placeholder: "z. B. Pegel, Wetter, Passanten",
    views: "Regionale Ansichten",
    dashboards: "Dashboards",
    no_views: "Noch keine regionalen Ansichten.",
    newest: "Neueste Datensätze",
    no_datasets: "Noch keine Datensätze.",
    results: "Suchergebnisse",
    hits: "Treffer",
    updated: "Aktualisiert:",
    formats: "Formate:",
    no_hits: "Keine Treffer.",
    facets: "Eingrenzen",
    facet_theme: "Thema",
    facet_publisher: "Herausgeber",
    facet_licence: "Lizenz",
    facet_municipality: "Kommune",
    scope: "Wo suchen",
    whole_federation: "Im ganzen Verbund suchen",
    this_town: "Nur hier suchen",
    paging: "Seiten",
    previous: "Zurück",
    next: "Weiter",
    page: "Seite",
    metadata: "Angaben zum Datensatz",
    publisher: "Herausgeber",
    licence: "Lizenz",
    attribution: "Namensnennung",
    themes: "Themen",
    keywords: "Schlagwörter",
    period: "Zeitraum",
    frequency: "Aktualisierung",
    latest: "Aktuelle Werte",
    series: "Reihe",
    time: "Zeit",
    value: "Wert",
    state: "Lage",
    chart: "Verlauf",
    chart_label: "Verlauf der Werte",
    ranges: ["24 Stunden", "7 Tage", "30 Tage"],
    range_label: "Zeitraum der Grafik",
    map: "Karte",
    map_label: "Karte der Messstellen",
    geojson: "Messstellen mit aktuellen Werten als GeoJSON",
    preview: "Vorschau",
    downloads: "Herunterladen",
    python: "In Python lesen",
    sql: "Mit SQL abfragen (ADBC, DuckDB, DBeaver)",
    dcat: "Metadaten (DCAT-AP.de)",
    no_rows: "Keine Werte.",
    not_readable: "Die Werte dieses Datensatzes sind nicht öffentlich.",
    stations: "Messstellen",
    sources: "Quellen",
    town: "Stadt",
    dataset: "Datensatz",
    status: "Stand",
    rows: "Zeilen",
    age: "Alter",
    not_found_title: "Nicht gefunden",
    not_found: "Diese Seite gibt es hier nicht.",
    home: "Startseite",
    other_language: "English",
    footer: "Offene Daten, betrieben von der Kommune selbst mit Urban Mesh.",
    accessibility: "Barrierefreiheit",
};

const EN: Words = Words {
    fresh: "current",
    stale: "outdated (last good rows shown)",
    unavailable: "not answering",
    mismatched: "does not match the view",
    station_states: ["low", "normal", "high", "unknown"],
    lang: Lang::En,
    search: "Search",
    search_label: "Search data",
    search_placeholder: "e.g. water level, weather, pedestrians",
    views: "Regional views",
    dashboards: "Dashboards",
    no_views: "No regional views yet.",
    newest: "Newest datasets",
    no_datasets: "No datasets yet.",
    results: "Search results",
    hits: "results",
    updated: "Updated:",
    formats: "Formats:",
    no_hits: "Nothing found.",
    facets: "Narrow down",
    facet_theme: "Theme",
    facet_publisher: "Publisher",
    facet_licence: "Licence",
    facet_municipality: "Municipality",
    scope: "Where to search",
    whole_federation: "Search the whole federation",
    this_town: "Search here only",
    paging: "Pages",
    previous: "Previous",
    next: "Next",
    page: "Page",
    metadata: "About this dataset",
    publisher: "Publisher",
    licence: "Licence",
    attribution: "Attribution",
    themes: "Themes",
    keywords: "Keywords",
    period: "Period",
    frequency: "Updated",
    latest: "Latest values",
    series: "Series",
    time: "Time",
    value: "Value",
    state: "State",
    chart: "Chart",
    chart_label: "Values over time",
    ranges: ["24 hours", "7 days", "30 days"],
    range_label: "Time range of the chart",
    map: "Map",
    map_label: "Map of the stations",
    geojson: "Stations with their latest values as GeoJSON",
    preview: "Preview",
    downloads: "Download",
    python: "Read it in Python",
    sql: "Query it with SQL (ADBC, DuckDB, DBeaver)",
    dcat: "Metadata (DCAT-AP.de)",
    no_rows: "No values.",
    not_readable: "The values of this dataset are not public.",
    stations: "Stations",
    sources: "Sources",
    town: "Town",
    dataset: "Dataset",
    status: "Status",
    rows: "Rows",
    age: "Age",
    not_found_title: "Not found",
    not_found: "There is no such page here.",
    home: "Home",
    other_language: "Deutsch",
    footer: "Open data, run by the municipality itself with Urban Mesh.",
    accessibility: "Accessibility",
};

pub(crate) fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::De => &DE,
        Lang::En => &EN,
    }
}
