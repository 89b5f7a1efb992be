"""The public portal (docs/decisions/009-portal.md, issue 7 part 1) against real nodes.

The browser tests drive Debian's headless Chromium through chromedriver (selenium), as a
citizen would: search from a node's home page, open a dataset page, read the chart, the
latest values and the preview, download the rows; the regional dashboard of the five
towns; the language switch; the same flow with JavaScript switched off; a hidden
dataset; a member's dataset found through another node's portal. Every step leaves a
full-page screenshot in target/test-artifacts/portal/ (`<test>-<NN>-<step>.png`). A
missing Chromium fails the tests with a message; nothing is skipped.

The tests without a browser fetch every page type (home, search, dataset, view, 404) with
a browser's Accept header and check HTML validity (html5lib's strict parser), basic
accessibility (lang, one h1, heading order, labelled controls, alt text, SVG roles and
labels, landmarks), the security headers, and content negotiation of the DCAT IRIs.

All tests share one federation of the five towns (the module's `owl`); each fixture gives
its datasets a word of its own. Rows are written relative to now (the chart shows the last
seven days) with levels that are whole numbers from 100 to 999, unique per row, so that a
level can be recognised on a page whatever the number format (333, 333.0, 333,0 cm).
Waits poll a condition against a deadline.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import io
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import html5lib
import pyarrow.parquet as pq
import pytest
from rdflib import RDF, Graph, Namespace, URIRef
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from browser import (BROWSER_ACCEPT, Browser, attr, content, data_rows, elements, html_problems, parse_html, path_of,
                     query_of, row_text, security_header_problems, text_of)
from conftest import Node, Response, federated_ids, http_request, parse_time, wait_until

UTC = dt.timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
# Set-up: a new dataset reaches the search index; a member's entry reaches another node.
INDEX_DEADLINE = 15.0
REPLICATION_DEADLINE = 30.0
STEP = dt.timedelta(minutes=15)
WEEK = dt.timedelta(days=7)
PUBLIC = {"visibility": "public"}
ABSENT = "gibt-es-nicht"
STATES = ("low", "normal", "high")


# ---- data -----------------------------------------------------------------------------------


def now_slot() -> dt.datetime:
    """The current 15-minute slot (UTC), the time of the latest readings."""
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    return now - dt.timedelta(minutes=now.minute % 15)


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def csv_text(rows: list[dict], columns: list[str]) -> str:
    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            return rfc3339(value)
        return str(value)

    return ",".join(columns) + "\n" + "".join(",".join(cell(row.get(c)) for c in columns) + "\n" for row in rows)


def write_rows(node: Node, dataset: str, rows: list[dict], columns: list[str]) -> None:
    response = node.post_rows(dataset, csv_text(rows, columns), "text/csv")
    assert response.status == 200, f"{node.name}: rows of {dataset}: {response!r}"


def schema(*extra: dict) -> dict:
    return {"fields": [
        {"name": "time", "type": "timestamp[ms, UTC]"},
        {"name": "station", "type": "utf8"},
        {"name": "value", "type": "float64", "unit": "cm"},
        {"name": "lon", "type": "float64"},
        {"name": "lat", "type": "float64"},
        *extra,
    ]}


def dataset_spec(node: Node, dataset_id: str, title: str, description: str, keywords: list[str],
                 fields: dict, policy: dict | None = PUBLIC) -> dict:
    """A water-level dataset of `node` with a point geometry and the full description the
    dataset page shows."""
    spec = {
        "id": dataset_id,
        "title": title,
        "description": description,
        "schema": fields,
        "time_column": "time",
        "series_key": "station",
        "geometry": {"lon": "lon", "lat": "lat"},
        "keywords": keywords,
        "themes": ["ENVI"],
        "publisher": {"name": f"Stadt {node.name}", "type": "LocalAuthority"},
        "accrual_periodicity": "15MIN",
        "licence": "dl-by-de/2.0",
        "attribution": f"Stadt {node.name}, Pegeldaten",
    }
    if policy is not None:  # without one, the dataset is tenant-internal
        spec["policy"] = policy
    return spec


def wait_indexed(node: Node, word: str, total: int, staff: bool = False) -> None:
    """Set-up: `node`'s own search finds `total` entries for `word` (as its staff, or anonymously)."""
    def found():
        response = node.get("/api/v1/search", query={"q": word, "scope": "local", "per_page": 100}, auth=staff)
        assert response.status == 200, response
        return response.json()["total"] == total

    wait_until(found, INDEX_DEADLINE, f"{node.name}'s search to find {total} entries for {word!r}", interval=0.05)


def wait_settled(node: Node, dataset: str, rows: int) -> None:
    """Set-up: the dataset's derived metadata (row count, extent) counts `rows`."""
    wait_until(lambda: node.get(f"/api/v1/datasets/{dataset}", auth=True).json().get("rows") == rows,
               INDEX_DEADLINE, f"{node.name}'s {dataset} to count {rows} rows", interval=0.05)


# ---- the dataset of the search flow: Detmold's water levels -----------------------------------

SEARCH_WORD = "Portalsuchtest"


@dataclass
class Written:
    """A dataset and the rows written to it, in the order written (by time)."""

    node: Node
    id: str
    title: str
    description: str
    columns: list[str]
    rows: list[dict]
    keyword: str

    @property
    def stations(self) -> list[str]:
        return sorted({row["station"] for row in self.rows})

    def latest(self) -> dict[str, dict]:
        """Station -> its latest row (the last one written for it)."""
        return {row["station"]: row for row in self.rows}

    def charted(self) -> dict[str, list[dict]]:
        """Station -> its rows within the last seven days of the data."""
        end = max(row["time"] for row in self.rows)
        out: dict[str, list[dict]] = {}
        for row in self.rows:
            if row["time"] > end - WEEK:
                out.setdefault(row["station"], []).append(row)
        return out

    def newest(self, n: int) -> list[dict]:
        return sorted(self.rows, key=lambda row: row["time"], reverse=True)[:n]


def werre_dataset(node: Node) -> Written:
    """The dataset of the search flow and its rows (see `werre`)."""
    latest = now_slot()
    stations = {"WERRE": (8.8790, 51.9380, 300, 12, 150), "BERLEBECKE": (8.9020, 51.9010, 500, 9, 170)}
    rows = []
    for station, (lon, lat, base, recent, old_base) in stations.items():
        for k, age in enumerate((dt.timedelta(days=10), dt.timedelta(days=9))):
            rows.append({"time": latest - age, "station": station, "value": float(old_base + 3 * k), "lon": lon,
                         "lat": lat})
        for i in range(recent):
            rows.append({"time": latest - (recent - 1 - i) * STEP, "station": station, "value": float(base + 3 * i),
                         "lon": lon, "lat": lat})
    rows.sort(key=lambda row: (row["time"], row["station"]))
    return Written(
        node=node, id="portal-werre", title=f"Pegelstände Detmold {SEARCH_WORD}",
        description="Wasserstände der Werre und der Berlebecke in Detmold, 15-Minuten-Werte",
        columns=["time", "station", "value", "lon", "lat"], rows=rows, keyword=SEARCH_WORD)


@pytest.fixture(scope="module")
def werre(owl) -> Written:
    """Detmold's public water levels with a geometry: the Werre (12 readings of the last three
    hours) and the Berlebecke (9), each with two readings from nine and ten days ago that the
    chart leaves out; 25 rows, so the preview (20) leaves out the oldest five."""
    node = owl.node("Detmold")
    written = werre_dataset(node)
    node.create_dataset(dataset_spec(node, written.id, written.title, written.description,
                                     ["Pegel", "Werre", SEARCH_WORD], schema()))
    write_rows(node, written.id, written.rows, written.columns)
    wait_settled(node, written.id, len(written.rows))
    wait_indexed(node, SEARCH_WORD, 1)
    return written


# ---- the regional dashboard: one view over the five towns -------------------------------------

DASHBOARD = "Dashboardtest"
VIEW_ID = "portal-dashboard"
VIEW_TITLE = f"Pegelstände OWL {DASHBOARD}"
VIEW_FIELDS = [
    {"name": "time", "type": "timestamp[ms, UTC]"},
    {"name": "station", "type": "utf8"},
    {"name": "value", "type": "float64", "unit": "cm"},
    {"name": "lon", "type": "float64", "nullable": True},
    {"name": "lat", "type": "float64", "nullable": True},
    {"name": "state", "type": "utf8", "nullable": True},
]
# Stations per town (7 in all), named so that none is part of another's name.
DASHBOARD_STATIONS = {
    "Gütersloh": ["DALKE"],
    "Bielefeld": ["JOELLENBECK", "SCHILDESCHE"],
    "Herford": ["AA-HERFORD"],
    "Detmold": ["HEIDENOLDENDORF", "REMMIGHAUSEN"],
    "Bad Salzuflen": ["SALZE"],
}


@dataclass
class Station:
    town: str
    dataset: str
    name: str
    state: str  # of its latest reading
    value: float  # its latest reading


@dataclass
class Dashboard:
    host: Node
    view_id: str
    title: str
    stations: list[Station] = field(default_factory=list)
    rows: int = 0


@pytest.fixture(scope="module")
def dashboard(owl) -> Dashboard:
    """Every town a public water-level dataset (station, level, lon/lat, state) and a public
    view over them on Gütersloh, assembled on every read. The latest states cover low, normal
    and high; each station's earlier readings are in another state than its latest."""
    host = owl.node("Gütersloh")
    board = Dashboard(host, VIEW_ID, VIEW_TITLE)
    latest = now_slot()
    index = 0
    placed: dict[Node, str] = {}
    for node in owl.nodes:
        dataset = f"portal-dash-{len(placed)}"
        rows = []
        for name in DASHBOARD_STATIONS[node.name]:
            state, earlier = STATES[index % 3], STATES[(index + 1) % 3]
            lon, lat = 8.35 + 0.1 * index, 51.85 + 0.05 * index
            for i in range(4):
                rows.append({"time": latest - (3 - i) * STEP, "station": name, "value": float(600 + 10 * index + i),
                             "lon": lon, "lat": lat, "state": state if i == 3 else earlier})
            board.stations.append(Station(node.name, dataset, name, state, float(600 + 10 * index + 3)))
            index += 1
        rows.sort(key=lambda row: (row["time"], row["station"]))
        node.create_dataset(dataset_spec(node, dataset, f"Pegelstände {node.name} {DASHBOARD}",
                                         f"Wasserstände in {node.name} mit Zustand ({DASHBOARD})",
                                         ["Pegel", DASHBOARD], schema({"name": "state", "type": "utf8"})))
        write_rows(node, dataset, rows, ["time", "station", "value", "lon", "lat", "state"])
        board.rows += len(rows)
        placed[node] = dataset
    assert sorted(Counter(s.state for s in board.stations).values()) == [2, 2, 3]

    def replicated() -> bool:
        return all(dataset in federated_ids(host, origin.name, q=DASHBOARD)
                   for origin, dataset in placed.items() if origin is not host)

    wait_until(replicated, REPLICATION_DEADLINE, f"Gütersloh to learn every town's {DASHBOARD} dataset", interval=0.05)
    response = host.post_json("/api/v1/views", {
        "id": VIEW_ID, "title": VIEW_TITLE,
        "description": f"Wasserstände aller Städte mit dem Schlagwort {DASHBOARD}, nach Zustand gefärbt",
        "select": {"keywords": [DASHBOARD]},
        "schema": {"fields": VIEW_FIELDS},
        "time_column": "time", "series_key": "station",
        "window": "7d", "refresh": "0s", "deadline": "5s",
        "keywords": ["Pegel", "OWL"], "themes": ["ENVI"],
        "policy": PUBLIC,
    })
    assert response.status == 201, f"creating the view: {response!r}"
    return board


def berlin(moment: dt.datetime) -> tuple[dt.datetime, str]:
    """German civil time and its zone's German abbreviation, by the EU rule."""
    local = moment.astimezone(BERLIN)
    return local, "MESZ" if local.dst() else "MEZ"


def test_a_dataset_page_speaks_plain_german_and_english(werre):
    """Codes become words: the licence's name linked to its text, the update interval; times
    are German civil time with the zone named, numbers carry a decimal comma on German pages."""
    path = f"/datasets/{werre.id}"
    german = html5lib.parse(fetch_page(werre.node, path).text, namespaceHTMLElements=False)
    metadata = german.find(".//dl[@id='metadata']")
    licence = metadata.find(".//a[@rel='license']")
    assert licence is not None and licence.text == "Datenlizenz Deutschland – Namensnennung – Version 2.0", licence
    assert licence.get("href") == "https://www.govdata.de/dl-de/by-2-0"
    text = " ".join(metadata.itertext())
    assert "alle 15 Minuten" in text and "15MIN" not in text and "dl-by-de" not in text, text
    # The latest values: a <time> with the instant, shown in Berlin's time with its zone.
    newest = max(row["time"] for row in werre.rows)
    row = german.find(".//section[@id='latest']//tr[@data-series='WERRE']")
    stamp = row.find(".//time")
    assert dt.datetime.fromisoformat(stamp.get("datetime")) == newest, stamp.get("datetime")
    local, zone = berlin(newest)
    assert stamp.text == local.strftime(f"%d.%m.%Y, %H:%M {zone}"), stamp.text
    werre_latest = max((r for r in werre.rows if r["station"] == "WERRE"), key=lambda r: r["time"])["value"]
    value = "".join(row.find(".//td[@class='value']").itertext())
    assert value == f"{werre_latest:.1f}".replace(".", ",") + "\u00a0cm", repr(value)

    english = html5lib.parse(fetch_page(werre.node, path, lang="en").text, namespaceHTMLElements=False)
    licence = english.find(".//dl[@id='metadata']//a[@rel='license']")
    assert licence.text == "Data licence Germany – attribution – version 2.0", licence.text
    assert "every 15 minutes" in " ".join(english.find(".//dl[@id='metadata']").itertext())
    stamp = english.find(".//section[@id='latest']//tr[@data-series='WERRE']//time")
    assert stamp.text.endswith(" CEST" if local.dst() else " CET"), stamp.text
    value = "".join(english.find(".//section[@id='latest']//tr[@data-series='WERRE']//td[@class='value']").itertext())
    assert value == f"{werre_latest:.1f}\u00a0cm", repr(value)


def test_a_search_hit_says_when_it_changed_and_in_which_formats_it_comes(werre):
    page = html5lib.parse(fetch_page(werre.node, "/search", {"q": SEARCH_WORD}).text, namespaceHTMLElements=False)
    hit = next(li for li in page.findall(".//ol[@id='results']/li")
               if li.find(".//h2/a").get("href").endswith(f"/datasets/{werre.id}"))
    about = hit.find("p[@class='about']")
    text = " ".join(about.itertext())
    assert text.startswith("Aktualisiert:") and "Formate: CSV, JSON, Parquet, Arrow Flight, GeoJSON, SensorThings" in text, text
    stamp = about.find("time")
    assert dt.datetime.fromisoformat(stamp.get("datetime")) <= dt.datetime.now(UTC), stamp.get("datetime")


SVG = "{http://www.w3.org/2000/svg}"


def test_the_chart_has_a_grid_and_a_range_chosen_by_link_with_gaps_left_open(werre):
    """Horizontal grid lines with values, time marks, links to 24 h / 7 days / 30 days; over
    30 days the readings of nine and ten days ago join the chart, apart from the recent
    ones: the days between are a gap, not a line."""
    path = f"/datasets/{werre.id}"
    week = html5lib.parse(fetch_page(werre.node, path).text, namespaceHTMLElements=False)
    links = week.findall(".//nav[@class='ranges']/a")
    assert [a.get("href") for a in links] == ["?range=24h", "?range=7d", "?range=30d"], links
    assert [a.get("aria-current") for a in links] == [None, "page", None]
    chart = week.find(f".//{SVG}svg[@class='chart']")
    grid = chart.find(f"{SVG}g[@class='grid']")
    assert len(grid.findall(f"{SVG}line")) >= 4 and len(grid.findall(f"{SVG}text")) >= 4, "a grid with labelled lines"

    month = html5lib.parse(fetch_page(werre.node, path, {"range": "30d"}).text, namespaceHTMLElements=False)
    assert month.find(".//nav[@class='ranges']/a[@aria-current='page']").get("href") == "?range=30d"
    chart = month.find(f".//{SVG}svg[@class='chart']")
    for group in chart.findall(f"{SVG}g"):
        if group.get("class") == "grid":
            continue
        station = group.find(f"{SVG}title").text
        runs = [len(p.get("points").split()) for p in group.findall(f"{SVG}polyline")]
        readings = sum(1 for r in werre.rows if r["station"] == station)
        assert sum(runs) == readings, (station, runs, readings)
        assert len(runs) == 3, f"{station}: ten days ago, nine days ago and the last hours apart: {runs}"


# ---- pages without a browser --------------------------------------------------------------------


def fetch_page(node: Node, path: str, query: dict | None = None, lang: str | None = None) -> Response:
    """A portal page as a browser asks for it (no cookie: the default language unless `lang`)."""
    query = dict(query or {})
    if lang and lang != "de":
        query["lang"] = lang
    return http_request("GET", node.url(path, query or None), headers={"Accept": BROWSER_ACCEPT})


PAGE_KINDS = ["home", "search", "dataset", "view", "not-found"]


def portal_page(request, kind: str) -> tuple[Node, str, dict | None, int]:
    """(node, path, query, expected status) of a page of `kind`, with the fixtures it needs."""
    if kind == "view":
        board = request.getfixturevalue("dashboard")
        return board.host, f"/views/{board.view_id}", None, 200
    werre = request.getfixturevalue("werre")
    return {
        "home": (werre.node, "/", None, 200),
        "search": (werre.node, "/search", {"q": SEARCH_WORD}, 200),
        "dataset": (werre.node, f"/datasets/{werre.id}", None, 200),
        "not-found": (werre.node, f"/datasets/{ABSENT}", None, 404),
        "accessibility": (werre.node, "/barrierefreiheit", None, 200),
    }[kind]


# ---- numbers and times on pages ------------------------------------------------------------------

NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
SVG_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def levels_in(text: str) -> list[float]:
    """The water levels in a text: numbers from 100 to 999, with a decimal point or comma
    (times, dates and coordinates are outside that range)."""
    return [n for n in (float(m.replace(",", ".")) for m in NUMBER.findall(text)) if 100 <= n < 1000]


def points_of(polyline: WebElement) -> int:
    return len(SVG_NUMBER.findall(attr(polyline, "points"))) // 2


def shows_time(element: WebElement, moment: dt.datetime) -> bool:
    """The element states `moment`: a <time datetime> of it, or its hour and minute in UTC or
    in German time."""
    for stamp in element.find_elements(By.CSS_SELECTOR, "time[datetime]"):
        try:
            if parse_time(attr(stamp, "datetime")) == moment:
                return True
        except ValueError:
            pass
    text = content(element)
    return any(moment.astimezone(zone).strftime("%H:%M") in text for zone in (UTC, BERLIN))


# ---- flows shared by tests ----------------------------------------------------------------------


def search_from_home(b: Browser, node: Node, word: str) -> None:
    """Home page (opened unless the browser is there) -> the search form -> the results for `word`."""
    if b.url.split("?")[0] != node.url("/"):
        b.open(node.url("/"), "home")
    form = b.one("form[role=search]")
    assert (attr(form, "method") or "get").lower() == "get", attr(form, "method")
    assert path_of(attr(form, "action")) == "/search", attr(form, "action")
    field_q = b.one("input[name=q]", form)
    assert b.accessible_name(field_q), "the search field has no label"
    field_q.clear()
    field_q.send_keys(word)
    b.shot("typed")
    submit = b.all("button[type=submit], button:not([type]), input[type=submit]", form)
    if submit:
        b.follow(submit[0], "results")
    else:
        b.follow(field_q, "results", action=lambda: field_q.send_keys(Keys.ENTER))
    assert path_of(b.url) == "/search", b.url
    assert query_of(b.url).get("q") == word, b.url


def hit_link(b: Browser, href: str) -> WebElement:
    """The one result's link to `href` (absolute)."""
    wanted = urllib.parse.urlsplit(href)
    links = [a for li in b.all("#results li") for a in b.all("a[href]", li)
             if urllib.parse.urlsplit(attr(a, "href"))[:3] == wanted[:3]]
    assert links, f"no result links to {href}: {[attr(a, 'href') for a in b.all('#results li a')]}"
    return links[0]


def check_chart_and_latest(b: Browser, werre: Written) -> None:
    """What a citizen looks for first: the title, the latest level of each station, the week's chart."""
    assert b.h1() == werre.title
    latest = b.one("#latest")
    rows = data_rows(latest)
    assert len(rows) == len(werre.stations), f"#latest rows: {[row_text(r) for r in rows]}"
    for station, row in werre.latest().items():
        mine = [tr for tr in rows if station in row_text(tr)]
        assert len(mine) == 1, f"#latest: one row of {station} expected: {[row_text(r) for r in rows]}"
        assert row["value"] in levels_in(row_text(mine[0])), (
            f"#latest: {station}'s latest level is {row['value']:g}, the row reads {row_text(mine[0])!r}")
        assert shows_time(mine[0], row["time"]), (
            f"#latest: {station}'s latest reading is from {rfc3339(row['time'])}, the row reads {row_text(mine[0])!r}")
        assert mine[0].is_displayed()

    charts = b.all("svg.chart")
    assert charts, "no svg.chart"
    chart = charts[0]
    assert chart.is_displayed() and chart.size["width"] > 0 and chart.size["height"] > 0, chart.size
    polylines = b.all("polyline", chart)
    charted = werre.charted()
    assert len(polylines) == len(charted), f"one polyline per series: {len(polylines)} for {sorted(charted)}"
    assert sorted(points_of(p) for p in polylines) == sorted(len(r) for r in charted.values()), (
        "each series' polyline has a point per reading of the last seven days: "
        f"{sorted(points_of(p) for p in polylines)} for {({s: len(r) for s, r in charted.items()})}")
    titles = [content(t) for t in b.all("title", chart)]
    assert len(titles) >= sum(len(r) for r in charted.values()), f"a title per point: {len(titles)} titles"
    for station, row in werre.latest().items():
        assert any(row["value"] in levels_in(t) for t in titles), f"no point title with {station}'s {row['value']:g}"


def check_dataset_page(b: Browser, werre: Written) -> None:
    node = werre.node
    check_chart_and_latest(b, werre)
    assert werre.description in content(b.one("#description"))

    metadata = b.one("dl#metadata")
    text = content(metadata)
    assert len(b.all("dt", metadata)) >= 7, f"dl#metadata: {[content(dt_) for dt_ in b.all('dt', metadata)]}"
    for expected in (f"Stadt {node.name}", f"Stadt {node.name}, Pegeldaten", "Werre"):
        assert expected in text, f"dl#metadata lacks {expected!r}: {text!r}"
    assert "dl-by-de/2.0" in attr(metadata, "innerHTML") or "Namensnennung" in text, f"no licence: {text!r}"

    # The map: one circle per station, each with a title naming it.
    maps = b.all("svg.map")
    assert maps, "the dataset has a geometry, but there is no svg.map"
    check_map_geometry(b, maps[0], len(werre.stations))
    circles = b.all("circle", maps[0])
    assert len(circles) == len(werre.stations), f"{len(circles)} circles for {werre.stations}"
    circle_titles = [" ".join(content(t) for t in b.all("title", c)) for c in circles]
    for station in werre.stations:
        assert sum(station in t for t in circle_titles) == 1, f"{station} in circle titles {circle_titles}"
    # The map links its stations as GeoJSON, each at its latest position with its latest value.
    geojson = http_request("GET", attr(b.one("a#geojson"), "href"))
    assert geojson.status == 200 and geojson.content_type == "application/geo+json", geojson
    features = geojson.json()["features"]
    assert len(features) == len(werre.stations), features
    assert all(f["geometry"]["type"] == "Point" for f in features), features

    # The preview: the 20 latest rows.
    preview = data_rows(b.one("table#preview"))
    assert len(preview) == 20, f"table#preview shows {len(preview)} rows"
    shown = sorted(level for tr in preview for level in levels_in(row_text(tr)))
    assert shown == sorted(row["value"] for row in werre.newest(20)), (
        f"table#preview levels {shown}, expected the 20 newest {sorted(r['value'] for r in werre.newest(20))}")

    check_downloads(b, werre.columns, len(werre.rows), sorted(row["value"] for row in werre.rows))

    snippet = attr(b.one("pre#pyarrow"), "textContent")
    assert "pyarrow" in snippet and werre.id in snippet, snippet
    assert any(urllib.parse.urlsplit(address).netloc in snippet for address in (node.flight, node.http)), (
        f"the snippet should reach this node ({node.flight} or {node.http}): {snippet}")
    try:
        ast.parse(snippet)
    except SyntaxError as error:
        raise AssertionError(f"pre#pyarrow is not Python: {error}\n{snippet}") from None

    dcat = b.one("a#dcat")
    assert path_of(attr(dcat, "href")) == f"/datasets/{werre.id}.ttl", attr(dcat, "href")
    response = http_request("GET", attr(dcat, "href"))
    assert response.status == 200, response
    graph = Graph().parse(data=response.body, format="turtle")
    assert (URIRef(f"{node.http}/datasets/{werre.id}"), RDF.type, DCAT.Dataset) in graph


def check_downloads(b: Browser, columns: list[str], count: int, levels: list[float]) -> None:
    """#downloads a[download]: CSV, JSON and Parquet of every row, fetched as the links say."""
    links = b.all("#downloads a[download]")
    assert len(links) >= 3, f"#downloads: {[attr(a, 'href') for a in links]}"
    got: dict[str, Response] = {}
    for link in links:
        response = http_request("GET", attr(link, "href"))
        assert response.status == 200, f"{attr(link, 'href')}: {response!r}"
        got[response.content_type] = response
    wanted = {"text/csv", "application/json", "application/vnd.apache.parquet"}
    assert wanted <= set(got), f"downloads as {sorted(got)}, expected {sorted(wanted)}"

    reader = csv.DictReader(io.StringIO(got["text/csv"].text))
    records = list(reader)
    assert reader.fieldnames[:len(columns)] == columns, f"CSV header {reader.fieldnames}, expected {columns}"
    assert len(records) == count, f"CSV has {len(records)} rows, expected {count}"
    assert sorted(float(r["value"]) for r in records) == levels
    records = got["application/json"].json()
    assert isinstance(records, list) and len(records) == count, f"JSON: {str(records)[:300]}"
    assert sorted(float(r["value"]) for r in records) == levels
    table = pq.read_table(io.BytesIO(got["application/vnd.apache.parquet"].body))
    assert table.num_rows == count and table.column_names[:len(columns)] == columns, table.schema


# ==== 1. in the browser =============================================================================


def test_search_leads_to_the_dataset_page_with_chart_and_latest_values(browser, werre):
    b, node = browser, werre.node
    b.open(node.url("/"), "home")
    assert b.lang == "de"
    newest = [path_of(attr(a, "href")) for a in b.all('#datasets a[href^="/datasets/"]')]
    assert f"/datasets/{werre.id}" in newest, f"the home page's newest datasets: {newest}"

    search_from_home(b, node, SEARCH_WORD)
    assert b.count() == 1
    assert len(b.all("#results li")) == 1, [content(li) for li in b.all("#results li")]

    # Facets: one fieldset per facet, links with counts that narrow the search.
    fieldsets = b.all("#facets fieldset")
    params = {}
    for fieldset in fieldsets:
        for link in b.all("a[href]", fieldset):
            for key in query_of(attr(link, "href")):
                params.setdefault(key, []).append(link)
    for facet in ("theme", "publisher", "licence", "municipality"):
        assert facet in params, f"no facet links for {facet}: {[content(f) for f in fieldsets]}"
    assert len(fieldsets) >= 4, [content(f) for f in fieldsets]
    envi = [a for a in params["theme"] if query_of(attr(a, "href")).get("theme") == "ENVI"]
    assert envi and "1" in re.findall(r"\d+", content(envi[0])), f"the ENVI facet link: {[content(a) for a in envi]}"
    b.follow(envi[0], "facet-ENVI")
    assert query_of(b.url).get("theme") == "ENVI" and query_of(b.url).get("q") == SEARCH_WORD, b.url
    assert b.count() == 1

    b.follow(hit_link(b, node.url(f"/datasets/{werre.id}")), "dataset")
    assert path_of(b.url) == f"/datasets/{werre.id}", b.url
    check_dataset_page(b, werre)


STATE_WORDS = {"low": "niedrig", "normal": "normal", "high": "hoch"}

MAP_GEOMETRY = """
const svg = arguments[0];
const box = svg.viewBox.baseVal;
const rect = e => { const b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
return {
  view: [box.x, box.y, box.x + box.width, box.y + box.height],
  circles: [...svg.querySelectorAll('circle')].map(rect),
  labels: [...svg.querySelectorAll('text')].map(t => [t.textContent, ...rect(t)]),
};
"""


def check_map_geometry(b: Browser, svg: WebElement, stations: int) -> None:
    """Every station's circle and label lie inside the map, as the browser lays them out,
    and no label overlaps another label or a circle."""
    geometry = b.driver.execute_script(MAP_GEOMETRY, svg)
    x0, y0, x1, y1 = geometry["view"]
    inside = lambda r: r[0] >= x0 - 0.5 and r[1] >= y0 - 0.5 and r[2] <= x1 + 0.5 and r[3] <= y1 + 0.5
    overlap = lambda a, c: min(a[2], c[2]) - max(a[0], c[0]) > 0.5 and min(a[3], c[3]) - max(a[1], c[1]) > 0.5
    circles, labels = geometry["circles"], geometry["labels"]
    assert len(circles) == stations and len(labels) == stations, geometry
    assert all(inside(c) for c in circles), f"a circle outside the map: {circles}"
    for i, (name, *box) in enumerate(labels):
        assert inside(box), f"{name} leaves the map: {box} in {geometry['view']}"
        for other, *other_box in labels[i + 1:]:
            assert not overlap(box, other_box), f"{name} overlaps {other}: {box} {other_box}"
        assert not any(overlap(box, c) for c in circles), f"{name} covers a station: {box}"


def test_the_regional_dashboard_shows_all_five_towns(browser, dashboard):
    b, host = browser, dashboard.host
    b.open(host.url("/"), "home")
    featured = [a for a in b.all('#views a[href^="/views/"]') if path_of(attr(a, "href")) == f"/views/{VIEW_ID}"]
    assert featured, f"the home page features {[attr(a, 'href') for a in b.all('#views a')]}"
    b.follow(featured[0], "dashboard")
    assert path_of(b.url) == f"/views/{VIEW_ID}", b.url
    assert b.h1() == VIEW_TITLE

    # The map: one circle per station, in the state of its latest reading, coloured by state.
    maps = b.all("svg.map")
    assert maps, "no svg.map on the dashboard"
    geojson = http_request("GET", attr(b.one("a#geojson"), "href"))
    assert geojson.status == 200 and len(geojson.json()["features"]) == len(dashboard.stations), geojson
    circles = b.all("circle", maps[0])
    assert len(circles) == len(dashboard.stations), (
        f"{len(circles)} circles for {len(dashboard.stations)} stations: {[content(c) for c in circles]}")
    states = [attr(c, "data-state") for c in circles]
    assert Counter(states) == Counter(s.state for s in dashboard.stations), states
    fills: dict[str, set[str]] = {}
    for circle, state in zip(circles, states):
        assert state in attr(circle, "class").split(), f"class {attr(circle, 'class')!r} for state {state}"
        fills.setdefault(state, set()).add(circle.value_of_css_property("fill"))
    assert all(len(f) == 1 for f in fills.values()) and len({next(iter(f)) for f in fills.values()}) == len(fills), (
        f"each state one colour of its own: {fills}")
    by_title = {}
    for circle in circles:
        title = " ".join(content(t) for t in b.all("title", circle))
        named = [s for s in dashboard.stations if s.name in title]
        assert len(named) == 1, f"a circle's title should name its station: {title!r}"
        by_title[named[0].name] = attr(circle, "data-state")
    assert by_title == {s.name: s.state for s in dashboard.stations}, by_title
    check_map_geometry(b, maps[0], len(dashboard.stations))
    legend = [content(li) for li in b.all("ul.legend.states li")]
    assert sorted(legend) == sorted({STATE_WORDS[s.state] for s in dashboard.stations}), legend

    # A chart per station.
    figures = b.all("#stations figure")
    assert len(figures) == len(dashboard.stations), f"{len(figures)} figures: {[content(f)[:80] for f in figures]}"
    for figure in figures:
        charts = b.all("svg.chart", figure)
        assert len(charts) == 1 and b.all("polyline", charts[0]), content(figure)[:200]
    named = {s.name for s in dashboard.stations
             for f in figures if s.name in content(f) + " ".join(attr(c, "aria-label") for c in b.all("svg", f))}
    assert named == {s.name for s in dashboard.stations}, f"stations named by the figures: {sorted(named)}"

    # Every source town, fresh.
    sources = b.all("table#sources tr[data-status]")
    towns = {town: [tr for tr in sources if town in row_text(tr)] for town in DASHBOARD_STATIONS}
    assert len(sources) == 5 and all(len(rows) == 1 for rows in towns.values()), (
        f"table#sources: {[(attr(tr, 'data-status'), row_text(tr)) for tr in sources]}")
    assert {town: attr(rows[0], "data-status") for town, rows in towns.items()} == {t: "fresh" for t in towns}

    check_downloads(b, [f["name"] for f in VIEW_FIELDS], dashboard.rows,
                    sorted(float(600 + 10 * k + i) for k in range(len(dashboard.stations)) for i in range(4)))


FOCUSED = """
const e = document.activeElement;
const style = getComputedStyle(e);
return {tag: e.tagName.toLowerCase(), id: e.id, href: e.getAttribute('href') || '',
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2};
"""


def tab_to(b: Browser, wanted, what: str, limit: int = 60) -> dict:
    """Presses Tab until the focused element is `wanted`; every stop on the way shows its
    focus (an outline of at least 2 px)."""
    for _ in range(limit):
        ActionChains(b.driver).send_keys(Keys.TAB).perform()
        focused = b.driver.execute_script(FOCUSED)
        assert focused["outline"], f"focus not visible on {focused}"
        if wanted(focused):
            return focused
    raise AssertionError(f"Tab never reached {what}")


def test_search_and_the_dataset_page_work_by_keyboard_alone(browser, werre):
    """Search, its results and the dataset page, with Tab and Enter only (BITV 2.0 / WCAG
    2.1.1), and the focus always visible (2.4.7)."""
    b = browser
    b.open(werre.node.url("/"), "keyboard-home")
    tab_to(b, lambda f: f["id"] == "q", "the search field")
    ActionChains(b.driver).send_keys(SEARCH_WORD).perform()
    b.follow(b.one("input#q"), "keyboard-results", action=lambda: ActionChains(b.driver).send_keys(Keys.ENTER).perform())
    assert path_of(b.url) == "/search" and query_of(b.url).get("q") == SEARCH_WORD, b.url
    target = f"/datasets/{werre.id}"
    tab_to(b, lambda f: f["tag"] == "a" and path_of(f["href"]) == target, "the hit's link")
    b.follow(b.one("html"), "keyboard-dataset", action=lambda: ActionChains(b.driver).send_keys(Keys.ENTER).perform())
    assert path_of(b.url) == target and b.h1() == werre.title, b.url
    # The dataset page's range links and downloads are reachable too.
    tab_to(b, lambda f: f["href"] == "?range=30d", "the 30-day range")
    b.follow(b.one("html"), "keyboard-range", action=lambda: ActionChains(b.driver).send_keys(Keys.ENTER).perform())
    assert query_of(b.url).get("range") == "30d", b.url
    tab_to(b, lambda f: "format=csv" in f["href"], "the CSV download")


def test_german_by_default_and_english_kept_in_a_cookie(browser, werre):
    b, node = browser, werre.node
    b.open(node.url("/"), "home-de")
    assert b.lang == "de"
    label_de = b.accessible_name(b.one("form[role=search] input[name=q]"))
    b.follow(b.one('header a[hreflang="en"]'), "home-en")
    assert b.lang == "en", b.url
    cookie = b.driver.get_cookie("lang")
    assert cookie and cookie["value"] == "en", f"the lang cookie: {cookie}"
    assert b.accessible_name(b.one("form[role=search] input[name=q]")) != label_de, "the page is not translated"
    assert b.all('header a[hreflang="de"]'), "the English page links the German one"

    # The next pages, reached without ?lang, are English too.
    link = [a for a in b.all('#datasets a[href^="/datasets/"]') if path_of(attr(a, "href")) == f"/datasets/{werre.id}"]
    assert link, "the home page lists the dataset"
    b.follow(link[0], "dataset-en")
    assert "lang" not in query_of(b.url), b.url
    assert b.lang == "en"
    b.open(node.url("/search", {"q": SEARCH_WORD}), "search-en")
    assert b.lang == "en"

    # And back.
    b.follow(b.one('header a[hreflang="de"]'), "search-de")
    assert b.lang == "de"
    b.open(node.url(f"/datasets/{werre.id}"), "dataset-de")
    assert b.lang == "de"


def test_search_and_dataset_page_work_without_javascript(nojs_browser, werre):
    b = nojs_browser
    # JavaScript is really off in this browser.
    b.driver.get("data:text/html,<title>aus</title><script>document.title='an'</script>")
    assert b.driver.title == "aus", "JavaScript runs although it was switched off"

    search_from_home(b, werre.node, SEARCH_WORD)
    assert b.count() == 1
    b.follow(hit_link(b, werre.node.url(f"/datasets/{werre.id}")), "dataset")
    check_chart_and_latest(b, werre)
    assert len(data_rows(b.one("table#preview"))) == 20
    assert b.all("#downloads a[download]")


@pytest.fixture(scope="module")
def hidden(werre) -> Written:
    """An internal dataset of Detmold (no policy): its staff see it, visitors must not."""
    node = werre.node
    word = "Portalinterntest"
    latest = now_slot()
    rows = [{"time": latest - (3 - i) * STEP, "station": "INTERN", "value": float(800 + i), "lon": 8.9, "lat": 51.9}
            for i in range(4)]
    written = Written(node, "portal-intern", f"Interne Pegel {word}", "Nur für die Verwaltung", werre.columns, rows,
                      word)
    node.create_dataset(dataset_spec(node, written.id, written.title, written.description, ["Pegel", word], schema(),
                                     policy=None))
    write_rows(node, written.id, rows, written.columns)
    wait_indexed(node, word, 1, staff=True)
    return written


def test_a_dataset_the_visitor_may_not_see_is_the_same_404_page_as_an_absent_one(browser, hidden):
    b, node = browser, hidden.node
    assert node.get(f"/api/v1/datasets/{hidden.id}", auth=True).status == 200, "the staff see it"

    refused, absent = fetch_page(node, f"/datasets/{hidden.id}"), fetch_page(node, f"/datasets/{ABSENT}")
    assert absent.status == 404 and absent.content_type == "text/html", absent
    assert refused.status == 404 and refused.content_type == "text/html", refused
    assert refused.text.replace(hidden.id, ABSENT) == absent.text, (
        "the hidden dataset's page differs from an absent one's:\n"
        + refused.text[:2000] + "\n---\n" + absent.text[:2000])
    assert hidden.title not in refused.text and hidden.description not in refused.text

    b.open(node.url(f"/datasets/{hidden.id}"), "hidden")
    hidden_h1 = b.h1()
    b.open(node.url(f"/datasets/{ABSENT}"), "absent")
    assert b.h1() == hidden_h1.replace(hidden.id, ABSENT)

    # Nor is it listed or found.
    b.open(node.url("/"), "home")
    assert not [a for a in b.all("a[href]") if hidden.id in attr(a, "href")], "the home page links the hidden dataset"
    b.open(node.url("/search", {"q": hidden.keyword}), "search")
    assert b.count() == 0 and not b.all("#results li"), [content(li) for li in b.all("#results li")]
    assert hidden.title not in b.driver.page_source


def test_a_members_dataset_is_found_from_another_nodes_portal_and_links_to_its_origin(browser, owl, werre):
    b, bielefeld, detmold = browser, owl.node("Bielefeld"), werre.node
    wait_until(lambda: werre.id in federated_ids(bielefeld, detmold.name, q=SEARCH_WORD), REPLICATION_DEADLINE,
               "Bielefeld to learn Detmold's dataset", interval=0.05)

    b.open(bielefeld.url("/search", {"q": SEARCH_WORD}), "local")
    assert b.count() == 0, "Bielefeld's own catalogue has no such dataset"
    b.open(bielefeld.url("/search", {"q": SEARCH_WORD, "scope": "federation"}), "federation")
    assert b.count() == 1
    link = hit_link(b, detmold.url(f"/datasets/{werre.id}"))
    b.follow(link, "origin")
    assert b.url.startswith(detmold.http + "/"), f"the hit leads to {b.url}, not to Detmold's portal"
    assert path_of(b.url) == f"/datasets/{werre.id}"
    assert b.h1() == werre.title
    assert b.all("svg.chart polyline")


@pytest.mark.parametrize("kind", ["home", "search", "dataset", "view"])
def test_text_meets_wcag_aa_contrast(browser, request, kind):
    node, path, query, _ = portal_page(request, kind)
    browser.open(node.url(path, query), kind)
    failures = browser.low_contrast()
    assert not failures, f"{path}: text below WCAG AA contrast:\n" + "\n".join(failures)


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("kind", PAGE_KINDS + ["accessibility"])
def test_axe_finds_no_wcag_aa_violation(browser, request, werre, dashboard, kind, lang):
    """axe-core (npm), the checker accessibility audits use, on every page type in both
    languages: no violation of WCAG 2.1 A or AA."""
    node, path, query, _ = portal_page(request, kind)
    query = {**(query or {}), "lang": lang}
    browser.open(node.url(path, query), f"axe-{kind}-{lang}")
    violations = browser.axe_violations()
    assert violations == [], f"{path} ({lang}):\n" + "\n".join(map(str, violations))


@pytest.mark.parametrize("kind", ["home", "search", "dataset", "view"])
def test_pages_fit_a_phone_screen(browser, request, kind):
    node, path, query, _ = portal_page(request, kind)
    problems = browser.on_phone(node.url(path, query), f"{kind}-phone")
    assert not problems, f"{path}: " + "; ".join(problems)


# ==== 2. without a browser ==========================================================================


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("kind", PAGE_KINDS)
def test_every_page_is_valid_and_accessible_html(request, kind, lang):
    node, path, query, status = portal_page(request, kind)
    response = fetch_page(node, path, query, lang)
    assert response.status == status, response
    assert response.content_type == "text/html", response
    charset = (response.headers.get("Content-Type") or "").lower()
    assert "charset=utf-8" in charset.replace('"', ""), charset
    problems = html_problems(response.text, lang, node)
    assert not problems, f"{path} ({lang}):\n" + "\n".join(problems)


@pytest.mark.parametrize("kind", PAGE_KINDS)
def test_every_page_carries_the_security_headers(request, kind):
    node, path, query, status = portal_page(request, kind)
    response = fetch_page(node, path, query)
    assert response.status == status, response
    problems = security_header_problems(response)
    assert not problems, f"{path}: " + "; ".join(problems)


def test_the_stylesheet_is_served_by_the_node(werre):
    response = werre.node.get("/assets/portal.css")
    assert response.status == 200 and response.content_type == "text/css", response
    assert response.body.strip(), "an empty stylesheet"
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", response.text), "the stylesheet loads from elsewhere"
    assert "@import" not in response.text


@pytest.mark.parametrize("kind", ["dataset", "view"])
def test_the_dcat_iri_is_the_page_for_browsers_and_rdf_for_clients(request, kind):
    if kind == "dataset":
        werre = request.getfixturevalue("werre")
        node, path, title = werre.node, f"/datasets/{werre.id}", werre.title
    else:
        board = request.getfixturevalue("dashboard")
        node, path, title = board.host, f"/views/{board.view_id}", board.title
    iri = node.http + path

    page = http_request("GET", iri, headers={"Accept": BROWSER_ACCEPT})
    assert page.status == 200 and page.content_type == "text/html", page
    assert title in page.text
    turtle = http_request("GET", iri, headers={"Accept": "text/turtle"})
    assert turtle.status == 200 and turtle.content_type == "text/turtle", turtle
    graph = Graph().parse(data=turtle.body, format="turtle")
    assert (URIRef(iri), RDF.type, DCAT.Dataset) in graph, f"{iri} is not a dcat:Dataset in:\n{turtle.text[:1500]}"
    # One IRI, two representations: caches must keep them apart.
    for response in (page, turtle):
        vary = [v.strip().lower() for v in (response.headers.get("Vary") or "").split(",")]
        assert "accept" in vary, f"{iri} ({response.content_type}) negotiates by Accept without `Vary: Accept`"


def test_search_results_page_through_every_hit(owl):
    node = owl.node("Herford")
    word = "Blättertest"
    ids = [f"portal-blaettern-{k:02d}" for k in range(30)]
    for dataset in ids:
        node.create_dataset({
            "id": dataset, "title": f"Zählstelle {dataset[-2:]} {word}", "description": f"Beispieldaten ({word})",
            "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "n", "type": "int64"}]},
            "time_column": "time", "keywords": [word], "themes": ["TRAN"], "policy": PUBLIC})
    wait_indexed(node, word, len(ids))

    seen: list[str] = []
    url, pages = node.url("/search", {"q": word}), 0
    while url:
        pages += 1
        assert pages <= len(ids), "paging does not end"
        response = http_request("GET", url, headers={"Accept": BROWSER_ACCEPT})
        assert response.status == 200, response
        root = parse_html(response.text)
        by_id = {el.get("id"): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
        assert "count" in by_id and re.search(r"\d+", text_of(by_id["count"])), "no #count"
        assert int(re.search(r"\d+", text_of(by_id["count"])).group()) == len(ids), text_of(by_id["count"])
        hits = [li for li in elements(by_id["results"], "li")] if "results" in by_id else []
        for li in hits:
            links = [path_of(a.get("href")) for a in elements(li, "a") if (a.get("href") or "").find("/datasets/") >= 0]
            assert len(set(links)) == 1, f"a hit links one dataset: {links}"
            seen.append(links[0].rsplit("/", 1)[-1])
        page = int(query_of(url).get("page", "1"))
        navs = [nav for nav in elements(root, "nav") if nav.get("aria-label")]
        following = [a.get("href") for nav in navs for a in elements(nav, "a")
                     if a.get("href") and query_of(a.get("href")).get("page") == str(page + 1)]
        assert all(query_of(href).get("q") == word for href in following), following
        url = urllib.parse.urljoin(url, following[0]) if following else None
    assert pages >= 2, "30 hits should take more than one page (nav[aria-label] paging)"
    assert sorted(seen) == ids, f"paging showed {sorted(seen)}"
