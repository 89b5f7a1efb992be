"""Regional views (docs/decisions/008-regional-views.md) against real nodes.

Most tests share one federation of the five towns (the module's `owl`); each test gives its
datasets a keyword of its own and selects by it, so that no view sees another test's
sources. The views live on Gütersloh, the founder. Sources are written through the REST
API (CSV), read back at their origin for the expected values, and the views are read with
pyarrow's Flight client (descriptor ["views", id], ticket {"view": id}) and over REST
(json, ndjson, csv, parquet). Most views have `refresh: "0s"`, so that every read assembles.

The tests that stop a member (SIGKILL, or SIGSTOP for a member that hangs) form a small
federation of their own. Waits poll a condition against a deadline; the one time asserted
is the view's own promise: it answers within its source deadline (plus a margin for a
debug build on two shared cores) although a member is gone.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import signal
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.flight as fl
import pyarrow.parquet as pq
import pytest
from rdflib import RDF, Graph, Namespace, URIRef
from rdflib.namespace import DCTERMS

from conftest import (
    PEGEL_SCHEMA,
    Federation,
    Node,
    Response,
    assert_flight_like_absent,
    assert_like_absent,
    audit_records,
    dcat_subjects,
    federated_ids,
    flight_outcome,
    parse_time,
    wait_until,
)

UTC = dt.timezone.utc
DCAT = Namespace("http://www.w3.org/ns/dcat#")
# Set-up: the members' entries reach the view's node (gossip or anti-entropy).
REPLICATION_DEADLINE = 30.0
# A member that comes back is read fresh again (it may have new ports to learn).
RECOVERY_DEADLINE = 30.0
# Audit records are written when a stream ends.
AUDIT_DEADLINE = 10.0
# What a view may take beyond its source deadline: assembling the others, encoding, the
# client (a debug build; client and nodes share two cores).
DEADLINE_MARGIN = 1.5
PEGELONLINE = "https://www.pegelonline.wsv.de/webservice/ueberblick"
START = dt.datetime(2026, 3, 1, tzinfo=UTC)
STEP = dt.timedelta(minutes=15)
ABSENT = "gibt-es-nicht"
PUBLIC = {"visibility": "public"}
JSON = {"Content-Type": "application/json"}

# The target schema of most views: PEGELONLINE's level in cm.
VIEW_SCHEMA = {"fields": [
    {"name": "time", "type": "timestamp[ms, UTC]"},
    {"name": "station", "type": "utf8"},
    {"name": "value", "type": "float64", "unit": "cm"},
]}
# What a view without aggregation answers: the target columns, then the provenance.
RESULT_COLUMNS = ["time", "station", "value", "source_node", "source_dataset"]
# Offsets of consecutive readings, so that neither the first nor the last of an hour is its maximum.
WAVE = [0.5, 3.5, 1.0, 2.25, 0.0, 1.75, 2.5, 0.25]


# ---- data ---------------------------------------------------------------------------------


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(value) -> int:
    """Epoch milliseconds of a time as the API or pyarrow gives it."""
    return round(parse_time(value).timestamp() * 1000)


def level(base: float, k: int, i: int) -> float:
    """The i-th reading of a source's k-th station (exact in binary floating point)."""
    return base + 10 * k + WAVE[i % len(WAVE)] + (i // len(WAVE)) * 4.0


def readings(stations: list[str], steps: int = 8, start: dt.datetime = START, base: float = 100.0,
             value: str = "value", station: str = "station", quality: bool = True) -> list[dict]:
    """15-minute water levels of `stations` from `start`, `steps` per station, in columns
    named `station` and `value`; a quality code 1-3 in `quality` unless left out."""
    rows = []
    for i in range(steps):
        for k, name in enumerate(stations):
            row = {"time": start + i * STEP, station: name, value: level(base, k, i)}
            if quality:
                row["quality"] = 1 + (i + k) % 3
            rows.append(row)
    return rows


def csv_text(rows: list[dict], columns: list[str]) -> str:
    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            return rfc3339(value)
        return str(value)

    return ",".join(columns) + "\n" + "".join(",".join(cell(row.get(c)) for c in columns) + "\n" for row in rows)


def pegel_schema(**changes) -> dict:
    """PEGEL_SCHEMA with some fields replaced ({name: field or None to drop})."""
    fields = []
    for field in json.loads(json.dumps(PEGEL_SCHEMA))["fields"]:
        if field["name"] in changes:
            if changes[field["name"]] is not None:
                fields.append(changes[field["name"]])
        else:
            fields.append(field)
    return {"fields": fields}


def source_spec(dataset_id: str, keyword: str, node: Node, schema: dict | None = None, policy: dict | None = PUBLIC,
                themes: tuple[str, ...] = ("ENVI",), standard: bool = True, **overrides) -> dict:
    """A water-level dataset of `node` found by `keyword` (also in its title)."""
    spec = {
        "id": dataset_id,
        "title": f"Pegelstände {node.name} {keyword}",
        "description": f"Wasserstände in {node.name}, 15-Minuten-Werte ({keyword})",
        "schema": schema or json.loads(json.dumps(PEGEL_SCHEMA)),
        "time_column": "time",
        "series_key": "station",
        "keywords": ["Pegel", keyword],
        "themes": list(themes),
    }
    if standard:
        spec["conforms_to"] = [PEGELONLINE]
    if policy is not None:  # without one, the dataset is tenant-internal
        spec["policy"] = policy
    spec.update(overrides)
    return {k: v for k, v in spec.items() if v is not None}


def add_source(node: Node, spec: dict, rows: list[dict]) -> list[dict]:
    """Creates the dataset and writes `rows` (one CSV request); returns the rows."""
    node.create_dataset(spec)
    if rows:
        columns = [field["name"] for field in spec["schema"]["fields"]]
        response = node.post_rows(spec["id"], csv_text(rows, columns), "text/csv")
        assert response.status == 200, f"{node.name}: rows of {spec['id']}: {response!r}"
    return rows


def wait_replicated(viewer: Node, sources: dict[Node, set[str]]) -> None:
    """Set-up: `viewer`'s catalogue holds the entries of every other node in `sources`
    (as its staff see them: federation-only entries included)."""
    remote = {origin: ids for origin, ids in sources.items() if origin is not viewer}

    def there() -> bool:
        return all(ids <= federated_ids(viewer, origin.name, viewer.auth_headers()) for origin, ids in remote.items())

    wait_until(there, REPLICATION_DEADLINE,
               f"{viewer.name} to hold {({o.name: sorted(i) for o, i in remote.items()})}", interval=0.05)


# ---- rows as comparable tuples ------------------------------------------------------------


def norm(row: dict, columns=("time", "station", "value")) -> tuple:
    """One row (from JSON, CSV, Parquet or Flight) as a tuple: times as epoch ms, values as
    float, quality as int, empty CSV fields as None."""
    out = []
    for column in columns:
        value = row.get(column)
        if value == "":
            value = None
        if value is not None:
            if column == "time":
                value = ms(value)
            elif column == "value":
                value = float(value)
            elif column == "quality":
                value = int(float(value))
        out.append(value)
    return tuple(out)


def ordered(rows) -> list[tuple]:
    return sorted(rows, key=lambda row: [(v is None, "" if v is None else v) for v in row])


def by_source(records: list[dict], columns=("time", "station", "value")) -> dict[tuple[str, str], list[tuple]]:
    """(source_node, source_dataset) -> that source's rows, ordered."""
    grouped: dict[tuple[str, str], list[tuple]] = {}
    for record in records:
        grouped.setdefault((record["source_node"], record["source_dataset"]), []).append(norm(record, columns))
    return {key: ordered(rows) for key, rows in grouped.items()}


def expected_rows(rows: list[dict], columns=("time", "station", "value")) -> list[tuple]:
    return ordered(norm(row, columns) for row in rows)


def origin_rows(node: Node, dataset: str, columns=("time", "station", "value")) -> list[tuple]:
    """What the source holds, read at its origin with the admin token."""
    response = node.get(f"/api/v1/datasets/{dataset}/rows", query={"format": "json"}, auth=True)
    assert response.status == 200, f"{node.name}: rows of {dataset}: {response!r}"
    return ordered(norm(row, columns) for row in response.json())


# ---- views --------------------------------------------------------------------------------


def view_spec(view_id: str, keyword: str, **overrides) -> dict:
    """A view over the datasets with `keyword`, assembled on every read, public unless
    `policy=None` (then tenant-internal, the default)."""
    spec = {
        "id": view_id,
        "title": f"Pegelstände OWL ({keyword})",
        "description": f"Wasserstände aller Städte mit dem Schlagwort {keyword}",
        "select": {"keywords": [keyword]},
        "schema": json.loads(json.dumps(VIEW_SCHEMA)),
        "time_column": "time",
        "series_key": "station",
        "refresh": "0s",
        "deadline": "2s",
        "policy": PUBLIC,
    }
    spec.update(overrides)
    return {k: v for k, v in spec.items() if v is not None}


def view_path(view_id: str, suffix: str = "") -> str:
    return f"/api/v1/views/{urllib.parse.quote(view_id)}{suffix}"


def create_view(node: Node, spec: dict) -> dict:
    response = node.post_json("/api/v1/views", spec)
    assert response.status == 201, f"creating view {spec.get('id')!r}: {response!r}"
    return response.json()


def put_view(node: Node, spec: dict, view_id: str | None = None, auth: bool = True) -> Response:
    return node.request("PUT", view_path(view_id or spec["id"]), json.dumps(spec).encode(), JSON, auth=auth)


def view_rows(node: Node, view_id: str, fmt: str = "json", auth: bool = False) -> Response:
    return node.get(view_path(view_id, "/rows"), query={"format": fmt}, auth=auth)


def view_records(node: Node, view_id: str, fmt: str = "json", auth: bool = False) -> list[dict]:
    """The view's rows over REST in `fmt`, as dicts."""
    response = view_rows(node, view_id, fmt, auth)
    assert response.status == 200, f"{view_id} as {fmt}: {response!r}"
    media = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv",
             "parquet": "application/vnd.apache.parquet"}[fmt]
    assert response.content_type == media, (fmt, response.content_type)
    if fmt == "json":
        return response.json()
    if fmt == "ndjson":
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(response.text))
        return list(reader)
    return pq.read_table(io.BytesIO(response.body)).to_pylist()


def view_status(node: Node, view_id: str, auth: bool = False) -> dict:
    response = node.get(view_path(view_id, "/status"), auth=auth)
    assert response.status == 200, f"status of {view_id}: {response!r}"
    status = response.json()
    assert status["view"] == view_id, status
    return status


def sources_of(status: dict) -> dict[tuple[str, str], dict]:
    """(node, dataset) -> the status of that source."""
    return {(source["node"], source["dataset"]): source for source in status["sources"]}


def options(node: Node | None) -> fl.FlightCallOptions:
    """Flight call options with `node`'s admin token, or anonymous ones."""
    return node.flight_write_options() if node is not None else fl.FlightCallOptions()


def view_ticket(view_id: str) -> fl.Ticket:
    return fl.Ticket(json.dumps({"view": view_id}).encode())


def flight_view(node: Node, view_id: str, auth: bool = False) -> tuple[fl.FlightInfo, pa.Table]:
    """GetFlightInfo of ["views", id] and DoGet of its one endpoint."""
    client = fl.FlightClient(node.flight)
    try:
        call = options(node if auth else None)
        info = client.get_flight_info(fl.FlightDescriptor.for_path("views", view_id), call)
        assert len(info.endpoints) == 1, info.endpoints
        table = client.do_get(info.endpoints[0].ticket, call).read_all()
        return info, table
    finally:
        client.close()


def flight_ticket_view(node: Node, view_id: str, auth: bool = False) -> pa.Table:
    """DoGet of the ticket {"view": id}, without GetFlightInfo (one assembly)."""
    client = fl.FlightClient(node.flight)
    try:
        return client.do_get(view_ticket(view_id), options(node if auth else None)).read_all()
    finally:
        client.close()


def assert_result_schema(table: pa.Table, columns: list[str] = RESULT_COLUMNS) -> None:
    assert table.column_names == columns, table.schema
    schema = table.schema
    assert schema.field("time").type == pa.timestamp("ms", tz="UTC"), schema
    assert schema.field("source_node").type == pa.string(), schema
    assert schema.field("source_dataset").type == pa.string(), schema
    if "value" in columns:
        assert schema.field("value").type == pa.float64(), schema


def assert_fresh(status: dict, expected: dict[tuple[str, str], int]) -> None:
    """Every expected source (and no other) is fresh with its rows and no error."""
    sources = sources_of(status)
    assert set(sources) == set(expected), f"sources {sorted(sources)}, expected {sorted(expected)}: {status}"
    for key, rows in expected.items():
        source = sources[key]
        assert source["status"] == "fresh", (key, source)
        assert source["rows"] == rows, (key, source)
        assert source["error"] is None, (key, source)
        assert isinstance(source["age_seconds"], (int, float)) and 0 <= source["age_seconds"] < 60, (key, source)
        parse_time(source["fetched_at"])
    assert status["rows"] == sum(expected.values()), status


def no_rows(source: dict | None) -> bool:
    """A status entry (or its absence) that contributes no rows."""
    return source is None or source.get("rows") in (0, None)


def audit_count(node: Node, dataset: str, subject_prefix: str | None = None, interface: str | None = None) -> int:
    return len([r for r in audit_records(node, dataset=dataset)
                if (subject_prefix is None or r["subject"].startswith(subject_prefix))
                and (interface is None or r["interface"] == interface)])


# ---- 1. a view is the union of its sources ------------------------------------------------

UNION = "Uniontest"


@dataclass
class UnionView:
    host: Node
    view_id: str
    expected: dict[tuple[str, str], list[tuple]]  # (town, dataset) -> rows as their origin holds them

    @property
    def counts(self) -> dict[tuple[str, str], int]:
        return {key: len(rows) for key, rows in self.expected.items()}


@pytest.fixture(scope="module")
def union(owl) -> UnionView:
    """Each town one public water-level dataset with a different number of stations (1 to
    5, so 8 to 40 rows), all matched by the view's selector; and two datasets of Bielefeld
    that match only part of it (another theme, no standard)."""
    host = owl.node("Gütersloh")
    expected, placed = {}, {}
    for k, node in enumerate(owl.nodes):
        dataset = f"union-{k}"
        rows = add_source(node, source_spec(dataset, UNION, node),
                          readings([f"U{k}-{j}" for j in range(k + 1)], base=100.0 * (k + 1)))
        expected[(node.name, dataset)] = origin_rows(node, dataset)
        assert expected[(node.name, dataset)] == expected_rows(rows), f"{node.name} holds what was written"
        placed[node] = {dataset}
    bielefeld = owl.node("Bielefeld")
    add_source(bielefeld, source_spec("union-other-theme", UNION, bielefeld, themes=("TRAN",)), readings(["UX"]))
    add_source(bielefeld, source_spec("union-no-standard", UNION, bielefeld, standard=False), readings(["UY"]))
    placed[bielefeld] |= {"union-other-theme", "union-no-standard"}
    wait_replicated(host, placed)
    # Every criterion given must match: any theme, any keyword (case-insensitive), any standard.
    create_view(host, view_spec("pegel-union", UNION, select={
        "themes": ["ENVI", "HEAL"], "keywords": ["uniontest", "gibt-es-nicht"], "conforms_to": [PEGELONLINE]},
        keywords=["Pegel"], themes=["ENVI"]))
    return UnionView(host, "pegel-union", expected)


def test_a_view_over_flight_is_the_union_of_its_sources(union):
    info, table = flight_view(union.host, union.view_id)
    assert_result_schema(table)
    if info.total_records >= 0:
        assert info.total_records == table.num_rows, (info.total_records, table.num_rows)
    records = table.to_pylist()
    total = sum(union.counts.values())
    assert table.num_rows == total, (table.num_rows, total)
    assert Counter((r["source_node"], r["source_dataset"]) for r in records) == Counter(union.counts)
    assert {r["source_node"] for r in records} == {"Gütersloh", "Bielefeld", "Herford", "Detmold", "Bad Salzuflen"}
    assert by_source(records) == union.expected
    # The partial matches are no sources.
    assert not {r["source_dataset"] for r in records} & {"union-other-theme", "union-no-standard"}

    # The ticket {"view": id} reads the same, without GetFlightInfo.
    direct = flight_ticket_view(union.host, union.view_id)
    assert direct.column_names == RESULT_COLUMNS
    assert by_source(direct.to_pylist()) == union.expected


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "parquet"])
def test_a_view_over_rest_is_the_union_of_its_sources(union, fmt):
    records = view_records(union.host, union.view_id, fmt)
    assert len(records) == sum(union.counts.values())
    assert by_source(records) == union.expected, fmt
    assert list(records[0]) == RESULT_COLUMNS, (fmt, list(records[0]))


def test_a_view_status_names_every_source_fresh(union):
    flight_ticket_view(union.host, union.view_id)  # an assembly to report on
    status = view_status(union.host, union.view_id)
    assert_fresh(status, union.counts)
    assert isinstance(status["took_ms"], int) and status["took_ms"] >= 0, status
    assert parse_time(status["assembled_at"]) <= dt.datetime.now(UTC) + dt.timedelta(seconds=5), status


# ---- 2. mapping columns, converting units and casting types -------------------------------

MAPPING = "Mappingtest"


def test_columns_map_and_units_convert_to_the_target(owl):
    """The view takes `station` from `shortname` everywhere (PEGELONLINE's name), and the
    level in cm: Gütersloh stores cm, Bielefeld metres in `w` (unit in its schema),
    Herford metres in `pegel_m` (no unit in its schema; the view states it), Detmold whole
    cm as int64 with microsecond timestamps (cast)."""
    guetersloh, bielefeld, herford, detmold = (owl.node(n) for n in ("Gütersloh", "Bielefeld", "Herford", "Detmold"))
    shortname = {"name": "shortname", "type": "utf8"}
    cases = {
        # node: (dataset, schema changes, rows (source columns), level in cm of each row)
        guetersloh: ("map-cm", {"station": shortname},
                     readings(["DALKE", "LUTTER"], station="shortname"), lambda r: r["value"]),
        bielefeld: ("map-m", {"station": shortname, "value": {"name": "w", "type": "float64", "unit": "m"}},
                    readings(["JOELLENBECK"], station="shortname", value="w", base=1.25), lambda r: r["w"] * 100),
        herford: ("map-nounit", {"station": shortname, "value": {"name": "pegel_m", "type": "float64"}},
                  readings(["WERRE", "AA"], station="shortname", value="pegel_m", base=0.875),
                  lambda r: r["pegel_m"] * 100),
        detmold: ("map-int", {"time": {"name": "time", "type": "timestamp[us, UTC]"}, "station": shortname,
                              "value": {"name": "value", "type": "int64", "unit": "cm"}},
                  [dict(r, value=int(r["value"])) for r in readings(["BERLEBECK"], station="shortname", base=93.0)],
                  lambda r: float(r["value"])),
    }
    expected = {}
    for node, (dataset, changes, rows, in_cm) in cases.items():
        add_source(node, source_spec(dataset, MAPPING, node, schema=pegel_schema(**changes), series_key="shortname"),
                   rows)
        expected[(node.name, dataset)] = ordered((ms(r["time"]), r["shortname"], in_cm(r)) for r in rows)
    wait_replicated(guetersloh, {node: {case[0]} for node, case in cases.items()})
    create_view(guetersloh, view_spec("pegel-mapped", MAPPING, columns={"station": "shortname"}, sources={
        "Bielefeld/map-m": {"value": {"column": "w"}},
        "Herford/map-nounit": {"value": {"column": "pegel_m", "unit": "m"}},
    }))

    _, table = flight_view(guetersloh, "pegel-mapped")
    assert_result_schema(table)
    got = by_source(table.to_pylist())
    assert set(got) == set(expected), sorted(got)
    for key, rows in expected.items():
        assert [row[:2] for row in got[key]] == [row[:2] for row in rows], key
        assert [row[2] for row in got[key]] == pytest.approx([row[2] for row in rows], rel=1e-12), key
    # Metres became centimetres: Bielefeld's first reading, 1.75 m, is 175 cm.
    assert got[("Bielefeld", "map-m")][0][2] == pytest.approx(175.0)
    assert by_source(view_records(guetersloh, "pegel-mapped", "csv")).keys() == expected.keys()
    assert_fresh(view_status(guetersloh, "pegel-mapped"), {key: len(rows) for key, rows in expected.items()})


# ---- 3. aggregation and window --------------------------------------------------------------

AGGREGATE = "Aggregattest"


def test_an_aggregating_view_gives_the_hourly_maximum_per_station(owl):
    guetersloh, bielefeld, herford = owl.node("Gütersloh"), owl.node("Bielefeld"), owl.node("Herford")
    sources = {bielefeld: ("agg-bi", ["A-BI-1", "A-BI-2"]), herford: ("agg-hf", ["A-HF-1"])}
    maxima: dict[tuple, float] = {}
    owners: dict[str, tuple[str, str]] = {}
    for node, (dataset, stations) in sources.items():
        rows = add_source(node, source_spec(dataset, AGGREGATE, node), readings(stations, steps=12))  # three hours
        for row in rows:
            hour = ms(row["time"].replace(minute=0))
            key = (hour, row["station"])
            maxima[key] = max(maxima.get(key, float("-inf")), row["value"])
            owners[row["station"]] = (node.name, dataset)
    # The maximum of an hour is neither its first nor its last reading.
    first_hour = [level(100.0, 0, i) for i in range(4)]
    assert maxima[(ms(START), "A-BI-1")] == max(first_hour) not in (first_hour[0], first_hour[-1])
    wait_replicated(guetersloh, {node: {dataset} for node, (dataset, _) in sources.items()})
    create_view(guetersloh, view_spec("pegel-hourly-max", AGGREGATE,
                                      aggregate={"bucket": "1h", "by": ["station"], "values": {"value": "max"}}))

    _, table = flight_view(guetersloh, "pegel-hourly-max")
    assert_result_schema(table)
    records = table.to_pylist()
    got = {}
    for record in records:
        key = (ms(record["time"]), record["station"])
        assert key not in got, f"two rows for {key}: {records}"
        assert key[0] % 3_600_000 == 0, f"not an hour's bucket: {record}"
        assert (record["source_node"], record["source_dataset"]) == owners[record["station"]], record
        got[key] = record["value"]
    assert got == maxima, {"got": got, "expected": maxima}
    assert len(records) == 9  # three hours of three stations
    assert {key: len(rows) for key, rows in by_source(view_records(guetersloh, "pegel-hourly-max")).items()} == {
        ("Bielefeld", "agg-bi"): 6, ("Herford", "agg-hf"): 3}


WINDOW = "Fenstertest"


def test_a_view_window_leaves_out_older_rows(owl):
    guetersloh, detmold = owl.node("Gütersloh"), owl.node("Detmold")
    now = dt.datetime.now(UTC).replace(microsecond=0)
    ages = {dt.timedelta(minutes=30): True, dt.timedelta(hours=20): True, dt.timedelta(days=3): True,
            dt.timedelta(days=6, hours=12): True, dt.timedelta(days=7, hours=12): False,
            dt.timedelta(days=10): False, dt.timedelta(days=40): False}
    expected = {}
    for node, dataset, stations in ((guetersloh, "window-gt", ["W-GT"]), (detmold, "window-dt", ["W-DT-1", "W-DT-2"])):
        rows = [{"time": now - age, "station": station, "value": 50.0 + k + age.total_seconds() / 86_400, "quality": 1}
                for k, station in enumerate(stations) for age in ages]
        add_source(node, source_spec(dataset, WINDOW, node), rows)
        expected[(node.name, dataset)] = expected_rows([r for r in rows if ages[now - r["time"]]])
    wait_replicated(guetersloh, {detmold: {"window-dt"}})
    create_view(guetersloh, view_spec("pegel-week", WINDOW, window="7d"))

    _, table = flight_view(guetersloh, "pegel-week")
    assert by_source(table.to_pylist()) == expected
    assert by_source(view_records(guetersloh, "pegel-week", "json")) == expected
    status = view_status(guetersloh, "pegel-week")
    assert_fresh(status, {key: len(rows) for key, rows in expected.items()})


# ---- 4. policies: a view reads with its widest audience's eyes ----------------------------

POLICY = "Policytest"
POLICY_SCHEMA = {"fields": VIEW_SCHEMA["fields"] + [{"name": "quality", "type": "int64", "nullable": True}]}
FOUR = ("time", "station", "value", "quality")


def aggregate_only(min_group: int = 2) -> dict:
    return {"visibility": "federation",
            "rules": [{"assignee": "federation", "aggregate": {"bucket": "1h", "min_group": min_group}}]}


def masked_quality() -> dict:
    return {"visibility": "federation", "rules": [{"assignee": "federation", "masked": ["quality"]}]}


@dataclass
class Policed:
    host: Node
    rows: dict[tuple[str, str], list[dict]]  # (town, dataset) -> the rows written
    federation_view: str
    internal_view: str
    public_view: str


@pytest.fixture(scope="module")
def policed(owl) -> Policed:
    """Sources under every kind of policy (two stations, two hours of 15-minute readings
    each) and three views of them on Gütersloh: visible to the federation, internal (no
    policy given) and public."""
    guetersloh, bielefeld, herford, detmold, salzuflen = owl.nodes
    layout = [
        (guetersloh, "pol-public-gt", PUBLIC),
        (guetersloh, "pol-agg-gt", aggregate_only()),
        (guetersloh, "pol-internal-gt", None),  # no policy: tenant-internal
        (bielefeld, "pol-agg-bi", aggregate_only()),
        (herford, "pol-masked-hf", masked_quality()),
        (detmold, "pol-fed-dt", {"visibility": "federation"}),
        (salzuflen, "pol-public-bs", PUBLIC),
    ]
    rows, placed = {}, {}
    for k, (node, dataset, policy) in enumerate(layout):
        written = readings([f"P{k}-1", f"P{k}-2"], base=200.0 + 20 * k)
        add_source(node, source_spec(dataset, POLICY, node, policy=policy), written)
        rows[(node.name, dataset)] = written
        placed.setdefault(node, set()).add(dataset)
    wait_replicated(guetersloh, placed)
    create_view(guetersloh, view_spec("pol-federation", POLICY, schema=POLICY_SCHEMA,
                                      policy={"visibility": "federation"}))
    create_view(guetersloh, view_spec("pol-internal", POLICY, schema=POLICY_SCHEMA, policy=None))
    create_view(guetersloh, view_spec("pol-public", POLICY, schema=POLICY_SCHEMA, policy=PUBLIC))
    return Policed(guetersloh, rows, "pol-federation", "pol-internal", "pol-public")


def hourly_means(rows: list[dict]) -> dict[tuple[int, str], float]:
    groups: dict[tuple[int, str], list[float]] = {}
    for row in rows:
        groups.setdefault((ms(row["time"].replace(minute=0)), row["station"]), []).append(row["value"])
    return {key: sum(values) / len(values) for key, values in groups.items()}


@pytest.mark.parametrize("which", ["federation", "internal"])
def test_a_members_view_shows_aggregate_only_sources_aggregated_and_masked_columns_as_nulls(policed, which):
    view_id = policed.federation_view if which == "federation" else policed.internal_view
    _, table = flight_view(policed.host, view_id, auth=True)
    assert_result_schema(table, RESULT_COLUMNS[:3] + ["quality"] + RESULT_COLUMNS[3:])
    got = by_source(table.to_pylist(), FOUR)
    rows = policed.rows

    # Raw where the federation may read raw rows: the public ones and the federation-only one.
    for key in [("Gütersloh", "pol-public-gt"), ("Bad Salzuflen", "pol-public-bs"), ("Detmold", "pol-fed-dt")]:
        assert got.get(key) == expected_rows(rows[key], FOUR), key
    # Masked: the rows, with nulls for the masked column.
    masked = ("Herford", "pol-masked-hf")
    assert got.get(masked) == expected_rows([dict(r, quality=None) for r in rows[masked]], FOUR), got.get(masked)
    assert all(r["quality"] is not None for r in rows[masked])
    # Aggregate-only: hourly buckets per station, a member's own (local) source as well.
    for key in [("Bielefeld", "pol-agg-bi"), ("Gütersloh", "pol-agg-gt")]:
        assert key in got, f"{key} missing: {sorted(got)}"
        means = hourly_means(rows[key])
        assert len(got[key]) == len(means) < len(rows[key]), (key, got[key])
        for time_ms, station, value, _ in got[key]:
            assert time_ms % 3_600_000 == 0, f"{key}: not an hourly bucket: {time_ms}"
            assert value == pytest.approx(means[(time_ms, station)]), (key, time_ms, station)
    # Internal: not for the federation's eyes, so not in the view.
    assert ("Gütersloh", "pol-internal-gt") not in got, sorted(got)
    assert set(got) == set(rows) - {("Gütersloh", "pol-internal-gt")}

    status = view_status(policed.host, view_id, auth=True)
    sources = sources_of(status)
    assert no_rows(sources.get(("Gütersloh", "pol-internal-gt"))), status
    for key in set(rows) - {("Gütersloh", "pol-internal-gt")}:
        assert sources[key]["status"] == "fresh" and sources[key]["rows"] == len(got[key]), (key, sources[key])


def test_a_public_view_leaves_out_what_only_members_may_read(policed):
    _, table = flight_view(policed.host, policed.public_view)  # anonymous
    got = by_source(table.to_pylist(), FOUR)
    public = [("Gütersloh", "pol-public-gt"), ("Bad Salzuflen", "pol-public-bs")]
    assert set(got) == set(public), sorted(got)
    for key in public:
        assert got[key] == expected_rows(policed.rows[key], FOUR), key
    assert by_source(view_records(policed.host, policed.public_view, "json"), FOUR) == got
    # A dataset the public may not see is not hinted at: not a source in the public status.
    status = view_status(policed.host, policed.public_view)
    assert set(sources_of(status)) == set(public), status
    assert_fresh(status, {key: len(policed.rows[key]) for key in public})


def test_views_with_the_default_policy_are_hidden_from_anonymous_callers(policed):
    host = policed.host
    for view_id in (policed.internal_view, policed.federation_view):
        # The admin token sees and reads it.
        assert host.get(view_path(view_id), auth=True).status == 200
        assert view_rows(host, view_id, auth=True).status == 200
        assert host.get(view_path(view_id, "/status"), auth=True).status == 200
        assert view_id in {v["id"] for v in host.get("/api/v1/views", auth=True).json()["views"]}
        # Anonymous callers: answered exactly like a view that does not exist.
        for suffix, query in (("", None), ("/rows", {"format": "json"}), ("/status", None)):
            assert_like_absent(host.get(view_path(view_id, suffix), query=query),
                               host.get(view_path(ABSENT, suffix), query=query), view_id, ABSENT,
                               f"anonymous GET {view_path(view_id, suffix)}")
        listing = host.get("/api/v1/views")
        assert listing.status == 200, listing
        assert view_id not in {v["id"] for v in listing.json()["views"]}
        client = host.flight_client()
        for what, call in [
            ("GetFlightInfo", lambda v: client.get_flight_info(fl.FlightDescriptor.for_path("views", v))),
            ("DoGet", lambda v: client.do_get(view_ticket(v)).read_all()),
        ]:
            _, hidden = flight_outcome(lambda: call(view_id))
            _, absent = flight_outcome(lambda: call(ABSENT))
            assert_flight_like_absent(hidden, absent, view_id, ABSENT, f"anonymous {what} of {view_id}")
    # The public one is listed for everyone.
    assert policed.public_view in {v["id"] for v in host.get("/api/v1/views").json()["views"]}


def test_a_view_policy_takes_no_rules(policed):
    spec = view_spec("pol-rules", POLICY, policy={"visibility": "public", "rules": [{"assignee": "anyone"}]})
    response = policed.host.post_json("/api/v1/views", spec)
    assert response.status == 400, response
    assert response.problem().get("field", "").startswith("policy"), response.problem()
    assert policed.host.get(view_path("pol-rules"), auth=True).status == 404


def test_every_source_read_and_every_serving_is_audited(policed, owl):
    host, bielefeld, salzuflen = policed.host, owl.node("Bielefeld"), owl.node("Bad Salzuflen")
    as_member = f"peer:{host.peer_id}"
    before = {
        "served": audit_count(host, f"views/{policed.federation_view}"),
        "local": audit_count(host, "pol-public-gt", interface="view"),
        "member": audit_count(bielefeld, "pol-agg-bi", subject_prefix=as_member),
        "public": audit_count(salzuflen, "pol-public-bs", subject_prefix=as_member),
    }
    assert view_rows(host, policed.federation_view, auth=True).status == 200
    flight_ticket_view(host, policed.public_view)

    def grew(key, count):
        return lambda: count() > before[key]

    wait_until(grew("served", lambda: audit_count(host, f"views/{policed.federation_view}")), AUDIT_DEADLINE,
               "Gütersloh's record of serving the view")
    wait_until(grew("local", lambda: audit_count(host, "pol-public-gt", interface="view")), AUDIT_DEADLINE,
               "Gütersloh's record of reading its own source for the view")
    wait_until(grew("member", lambda: audit_count(bielefeld, "pol-agg-bi", subject_prefix=as_member)),
               AUDIT_DEADLINE, "Bielefeld's record of Gütersloh reading its source")
    wait_until(grew("public", lambda: audit_count(salzuflen, "pol-public-bs", subject_prefix=as_member)),
               AUDIT_DEADLINE, "Bad Salzuflen's record of Gütersloh reading its source")
    # The federation view read Bielefeld as Gütersloh itself; the public one asked Bad Salzuflen
    # for the public (the federation view read it as Gütersloh too).
    member = [r for r in audit_records(bielefeld, dataset="pol-agg-bi")
              if r["subject"].startswith(as_member)][before["member"]:]
    assert member and all(r["subject"] == as_member and r["decision"] == "permit" for r in member), member
    public = [r for r in audit_records(salzuflen, dataset="pol-public-bs")
              if r["subject"].startswith(as_member)][before["public"]:]
    assert {r["subject"] for r in public} == {as_member, f"{as_member} for the public"}, public
    served = audit_records(host, dataset=f"views/{policed.federation_view}")[before["served"]:]
    assert [(r["subject"], r["decision"]) for r in served] == [("admin-token", "permit")], served


# ---- 5. a member that is gone -----------------------------------------------------------------

OUTAGE = "Ausfalltest"


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.mark.parametrize("how", ["killed", "frozen"])
def test_a_member_gone_mid_query_is_served_stale_or_unavailable_within_the_deadline(federation_factory, how):
    """SIGKILL (connections refused) or SIGSTOP (a member that accepts and never answers)
    one member: the view still answers within its deadline; that source is stale (from the
    last good result, with its age) where it was read before and unavailable where it never
    was; the others are fresh; after the member is back it is fresh again."""
    federation: Federation = federation_factory(3)
    guetersloh, bielefeld, herford = federation.nodes
    counts = {}
    for k, node in enumerate(federation.nodes):
        dataset = f"ausfall-{k}"
        rows = add_source(node, source_spec(dataset, OUTAGE, node), readings([f"K{k}-{j}" for j in range(k + 1)]))
        counts[(node.name, dataset)] = len(rows)
    wait_replicated(guetersloh, {node: {f"ausfall-{k}"} for k, node in enumerate(federation.nodes)})
    deadline = 1.0
    create_view(guetersloh, view_spec("ausfall", OUTAGE, deadline="1s"))
    gone = (herford.name, "ausfall-2")
    others = {key: n for key, n in counts.items() if key != gone}

    table = flight_ticket_view(guetersloh, "ausfall")
    assert Counter((r["source_node"], r["source_dataset"]) for r in table.to_pylist()) == Counter(counts)
    before = view_status(guetersloh, "ausfall")
    assert_fresh(before, counts)
    last_good = sources_of(before)[gone]["fetched_at"]

    pid = herford.proc.pid
    if how == "killed":
        herford.kill9()
    else:
        os.kill(pid, signal.SIGSTOP)
    try:
        # Read before: served from the last good result, within the deadline.
        table, took = timed(lambda: flight_ticket_view(guetersloh, "ausfall"))
        assert took < deadline + DEADLINE_MARGIN, f"Flight DoGet took {took:.2f} s with Herford {how}"
        assert Counter((r["source_node"], r["source_dataset"]) for r in table.to_pylist()) == Counter(counts)
        records, took = timed(lambda: view_records(guetersloh, "ausfall", "json"))
        assert took < deadline + DEADLINE_MARGIN, f"REST rows took {took:.2f} s with Herford {how}"
        assert Counter((r["source_node"], r["source_dataset"]) for r in records) == Counter(counts)
        status, took = timed(lambda: view_status(guetersloh, "ausfall"))
        assert took < deadline + DEADLINE_MARGIN, f"status took {took:.2f} s with Herford {how}"
        source = sources_of(status)[gone]
        assert source["status"] == "stale", source
        assert source["fetched_at"] == last_good, (source, last_good)
        assert isinstance(source["age_seconds"], (int, float)) and source["age_seconds"] >= 0, source
        assert source["rows"] == counts[gone], source
        for key in others:
            assert sources_of(status)[key]["status"] == "fresh", sources_of(status)[key]

        # Never read before: unavailable, with the error, and none of its rows.
        create_view(guetersloh, view_spec("ausfall-neu", OUTAGE, deadline="1s"))
        table, took = timed(lambda: flight_ticket_view(guetersloh, "ausfall-neu"))
        assert took < deadline + DEADLINE_MARGIN, f"a new view took {took:.2f} s with Herford {how}"
        assert Counter((r["source_node"], r["source_dataset"]) for r in table.to_pylist()) == Counter(others)
        status = view_status(guetersloh, "ausfall-neu")
        source = sources_of(status).get(gone)
        assert source is not None and source["status"] == "unavailable", status
        assert isinstance(source["error"], str) and source["error"], source
        assert no_rows(source), source
        for key, n in others.items():
            assert sources_of(status)[key]["status"] == "fresh" and sources_of(status)[key]["rows"] == n, status
    finally:
        if how == "frozen" and herford.running:
            os.kill(pid, signal.SIGCONT)

    if how == "killed":
        herford.start()  # the same data directory, new ports
    for view_id in ("ausfall", "ausfall-neu"):
        def recovered(view_id=view_id):
            flight_ticket_view(guetersloh, view_id)  # refresh "0s": this read assembles
            status = view_status(guetersloh, view_id)
            source = sources_of(status).get(gone)
            return status if source and source["status"] == "fresh" and source["rows"] == counts[gone] else None

        status = wait_until(recovered, RECOVERY_DEADLINE, f"Herford fresh again in {view_id}", interval=0.1)
        assert_fresh(status, counts)


# ---- 6. sources that do not fit ----------------------------------------------------------------
# Mismatched sources are left out with the reason and the others served: node/tests/views.rs,
# in the sandbox, beside a view across members under each owner's policy.


# ---- 7. caching: one assembly per refresh ---------------------------------------------------

CACHE = "Cachetest"


def test_callers_within_refresh_share_one_assembly(owl):
    guetersloh, bielefeld = owl.node("Gütersloh"), owl.node("Bielefeld")
    add_source(guetersloh, source_spec("cache-gt", CACHE, guetersloh), readings(["C-GT"]))
    add_source(bielefeld, source_spec("cache-bi", CACHE, bielefeld), readings(["C-BI-1", "C-BI-2"]))
    wait_replicated(guetersloh, {bielefeld: {"cache-bi"}})
    as_member = f"peer:{guetersloh.peer_id}"
    before_local = audit_count(guetersloh, "cache-gt", interface="view")
    before_remote = audit_count(bielefeld, "cache-bi", subject_prefix=as_member)
    create_view(guetersloh, view_spec("cache-10m", CACHE, refresh="10m"))
    create_view(guetersloh, view_spec("cache-now", CACHE, refresh="0s"))
    total = 8 + 16

    # Eight callers at once, before any assembly: one assembly serves them all.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: view_records(guetersloh, "cache-10m", "json"), range(8)))
    for records in answers:
        assert len(records) == total
        assert by_source(records) == by_source(answers[0])
    wait_until(lambda: audit_count(bielefeld, "cache-bi", subject_prefix=as_member) > before_remote,
               AUDIT_DEADLINE, "Bielefeld's record of the view's read")
    wait_until(lambda: audit_count(guetersloh, "cache-gt", interface="view") > before_local,
               AUDIT_DEADLINE, "Gütersloh's record of the view's local read")
    assert audit_count(bielefeld, "cache-bi", subject_prefix=as_member) == before_remote + 1
    assert audit_count(guetersloh, "cache-gt", interface="view") == before_local + 1
    wait_until(lambda: len(audit_records(guetersloh, dataset="views/cache-10m")) >= 8, AUDIT_DEADLINE,
               "a record of each serving of the view")
    assert len(audit_records(guetersloh, dataset="views/cache-10m")) == 8
    assembled = view_status(guetersloh, "cache-10m")["assembled_at"]

    # A new row: the cached view keeps its table until its refresh is up; "0s" assembles anew.
    response = bielefeld.post_rows("cache-bi", csv_text(
        [{"time": START + 100 * STEP, "station": "C-BI-1", "value": 77.0, "quality": 1}], ["time", "station", "value",
                                                                                           "quality"]), "text/csv")
    assert response.status == 200, response
    assert len(view_records(guetersloh, "cache-10m", "json")) == total
    assert view_status(guetersloh, "cache-10m")["assembled_at"] == assembled
    assert len(view_records(guetersloh, "cache-now", "json")) == total + 1


# ---- 8. definitions: create, list, read, change, delete ---------------------------------------

CRUD = "Crudtest"


@pytest.fixture(scope="module")
def crud_sources(owl) -> Node:
    guetersloh, bielefeld = owl.node("Gütersloh"), owl.node("Bielefeld")
    add_source(guetersloh, source_spec("crud-gt", CRUD, guetersloh), readings(["CR-GT"]))
    add_source(bielefeld, source_spec("crud-bi", CRUD, bielefeld, themes=("TRAN",)), readings(["CR-BI"]))
    wait_replicated(guetersloh, {bielefeld: {"crud-bi"}})
    return guetersloh


def test_views_are_created_listed_read_changed_and_deleted(crud_sources):
    node = crud_sources
    spec = view_spec("crud-view", CRUD, keywords=["Pegel"], themes=["ENVI"])
    created = node.post_json("/api/v1/views", spec)
    assert created.status == 201, created
    record = created.json()
    assert record["id"] == "crud-view" and record["title"] == spec["title"], record
    assert record["select"] == spec["select"] and record["tenant"] == "Gütersloh", record
    assert record["policy"]["visibility"] == "public", record
    again = node.post_json("/api/v1/views", dict(spec, title="Noch einmal"))
    assert again.status == 409, again
    again.problem()

    # Defaults: refreshed every minute, two seconds per source, tenant-internal.
    defaults = view_spec("crud-defaults", CRUD, refresh=None, deadline=None, policy=None)
    record = create_view(node, defaults)
    assert (record["refresh"], record["deadline"], record["policy"]["visibility"]) == ("1m", "2s", "internal"), record

    listing = node.get("/api/v1/views", auth=True)
    assert listing.status == 200, listing
    assert {"crud-view", "crud-defaults"} <= {v["id"] for v in listing.json()["views"]}
    got = node.get(view_path("crud-view"))
    assert got.status == 200 and got.json()["title"] == spec["title"], got
    both = {("Gütersloh", "crud-gt"): 8, ("Bielefeld", "crud-bi"): 8}
    assert {key: len(rows) for key, rows in by_source(view_records(node, "crud-view")).items()} == both
    assert_fresh(view_status(node, "crud-view"), both)

    # PUT: a new title, and a selector that now also wants the theme ENVI (Bielefeld's is TRAN).
    changed = dict(spec, title="Pegelstände Gütersloh (nur Umwelt)", select={"keywords": [CRUD], "themes": ["ENVI"]})
    assert put_view(node, changed, auth=False).status in (401, 403)
    response = put_view(node, changed)
    assert response.status == 200, response
    assert response.json()["title"] == changed["title"]
    assert node.get(view_path("crud-view")).json()["title"] == changed["title"]
    records = view_records(node, "crud-view")
    assert set(by_source(records)) == {("Gütersloh", "crud-gt")}
    assert_fresh(view_status(node, "crud-view"), {("Gütersloh", "crud-gt"): 8})
    assert put_view(node, dict(changed, id=ABSENT)).status == 404
    mismatched_id = put_view(node, changed, view_id="crud-defaults")
    assert mismatched_id.status == 400, mismatched_id

    # DELETE
    assert node.delete(view_path("crud-view"), auth=False).status in (401, 403)
    assert node.get(view_path("crud-view")).status == 200
    deleted = node.delete(view_path("crud-view"))
    assert deleted.status == 204 and deleted.body == b"", deleted
    for path in (view_path("crud-view"), view_path("crud-view", "/rows"), view_path("crud-view", "/status")):
        gone = node.get(path, auth=True)
        assert gone.status == 404, (path, gone)
        assert "crud-view" in gone.problem()["detail"], gone.problem()
    _, error = flight_outcome(lambda: flight_ticket_view(node, "crud-view", auth=True))
    assert isinstance(error, pa.ArrowKeyError), repr(error)
    assert "crud-view" not in {v["id"] for v in node.get("/api/v1/views", auth=True).json()["views"]}
    assert node.delete(view_path("crud-view")).status == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["anonymous", "wrong-token"])
def test_creating_a_view_needs_staff_credentials(crud_sources, headers):
    node = crud_sources
    body = json.dumps(view_spec("crud-unauth", CRUD)).encode()
    response = node.request("POST", "/api/v1/views", body, {**JSON, **headers})
    assert response.status in (401, 403), response
    response.problem()
    assert node.get(view_path("crud-unauth"), auth=True).status == 404


BAD_VIEWS = [
    # (what, change to a valid definition, the field named (or its prefix), a word the detail names)
    ("unknown field", {"selekt": {"keywords": [CRUD]}}, "selekt", "selekt"),
    ("unknown selector field", {"select": {"keywords": [CRUD], "standards": ["x"]}}, "select", "standards"),
    ("bad id", {"id": "Pegel OWL"}, "id", "Pegel OWL"),
    ("empty select", {"select": {}}, "select", None),
    ("select with empty lists", {"select": {"keywords": [], "themes": []}}, "select", None),
    ("unknown theme", {"select": {"themes": ["WASSER"]}}, "select.themes", "WASSER"),
    ("unknown target column in columns", {"columns": {"pegel": "shortname"}}, "columns", "pegel"),
    ("unknown target column in sources", {"sources": {"Bielefeld/crud-bi": {"pegel": {"column": "w", "unit": "m"}}}},
     "sources", "pegel"),
    ("source not named municipality/dataset", {"sources": {"crud-bi": {"value": "w"}}}, "sources", "crud-bi"),
    ("bad window", {"window": "7 Tage"}, "window", "7 Tage"),
    ("bad refresh", {"refresh": "bald"}, "refresh", "bald"),
    ("bad deadline", {"deadline": "2 Sekunden"}, "deadline", "2 Sekunden"),
    ("bad bucket", {"aggregate": {"bucket": "1 Stunde", "by": ["station"], "values": {"value": "max"}}},
     "aggregate.bucket", "1 Stunde"),
    ("unknown aggregate function", {"aggregate": {"bucket": "1h", "by": ["station"], "values": {"value": "median"}}},
     "aggregate", "median"),
    ("aggregate of an unknown column", {"aggregate": {"bucket": "1h", "values": {"pegel": "max"}}}, "aggregate",
     "pegel"),
    ("a provenance column in the schema", {"schema": {"fields": VIEW_SCHEMA["fields"] + [
        {"name": "source_node", "type": "utf8"}]}}, "schema", "source_node"),
    ("policy with rules", {"policy": {"visibility": "public", "rules": [{"assignee": "anyone"}]}}, "policy", None),
]


def names(field: str | None, expected: str) -> bool:
    """The problem's field is `expected` or a part of it (`expected.x`, `expected[0]`)."""
    return field is not None and (field == expected or field.startswith((expected + ".", expected + "[")))


@pytest.mark.parametrize("what, change, field_name, needle", BAD_VIEWS, ids=[case[0] for case in BAD_VIEWS])
def test_bad_definitions_are_refused_naming_the_field(crud_sources, what, change, field_name, needle):
    node = crud_sources
    spec = view_spec("crud-bad", CRUD)
    spec.update(change)
    response = node.post_json("/api/v1/views", spec)
    assert response.status == 400, f"{what}: {response!r}"
    problem = response.problem()
    assert names(problem.get("field"), field_name), f"{what}: field {problem.get('field')!r}, expected {field_name}"
    if needle:
        assert needle in problem["detail"] or needle in problem["field"], f"{what}: {problem}"
    assert node.get(view_path("crud-bad"), auth=True).status == 404, f"{what}: a view was created"
    # A PUT of the same definition is refused the same way and changes nothing.
    if "id" not in change:
        create_view(node, view_spec("crud-bad", CRUD))
        try:
            refused = put_view(node, spec)
            assert refused.status == 400 and names(refused.problem().get("field"), field_name), f"{what}: {refused!r}"
            assert node.get(view_path("crud-bad"), auth=True).json()["select"] == {"keywords": [CRUD]}
        finally:
            assert node.delete(view_path("crud-bad")).status == 204


# ---- 9. the DCAT export -------------------------------------------------------------------------


def test_views_are_in_the_dcat_export_for_those_who_may_see_them(crud_sources):
    node = crud_sources
    create_view(node, view_spec("dcat-public", CRUD, title="Pegelstände OWL öffentlich", keywords=["Pegel"],
                                themes=["ENVI"]))
    create_view(node, view_spec("dcat-internal", CRUD, title="Pegelstände OWL intern", policy=None))
    public_iri, internal_iri = f"{node.http}/views/dcat-public", f"{node.http}/views/dcat-internal"

    anonymous = node.get("/catalog.ttl")
    subjects = dcat_subjects(anonymous)
    assert public_iri in subjects, sorted(subjects)
    assert internal_iri not in subjects and "dcat-internal" not in anonymous.text
    assert internal_iri in dcat_subjects(node.get("/catalog.ttl", auth=True))

    graph = Graph().parse(data=anonymous.body, format="turtle")
    view = URIRef(public_iri)
    assert "Pegelstände OWL öffentlich" in {str(t) for t in graph.objects(view, DCTERMS.title)}
    downloads = {str(url) for d in graph.objects(view, DCAT.distribution) for url in graph.objects(d, DCAT.downloadURL)}
    for fmt in ("csv", "json", "parquet"):
        assert f"{node.http}/api/v1/views/dcat-public/rows?format={fmt}" in downloads, sorted(downloads)
    assert (view, RDF.type, DCAT.Dataset) in graph
    # The distributions lead to the view's rows.
    for url in downloads:
        assert node.get(url[len(node.http):]).status == 200, url


# ---- sharing ------------------------------------------------------------------------------

SHARED = "sharedviewtest"


def remote_flight_view(node: Node, origin: str, view_id: str) -> pa.Table:
    """A member's view read through `node` (its staff) as ["remote", origin, id]."""
    client = fl.FlightClient(node.flight)
    try:
        call = options(node)
        info = client.get_flight_info(fl.FlightDescriptor.for_path("remote", origin, view_id), call)
        return client.do_get(info.endpoints[0].ticket, call).read_all()
    finally:
        client.close()


def test_a_shared_view_reaches_the_members_like_a_dataset(owl):
    host, member = owl.node("Gütersloh"), owl.node("Herford")
    rows = add_source(host, source_spec("shared-source", SHARED, host), readings(["S1", "S2"]))
    create_view(host, view_spec("shared-federation", SHARED, policy={"visibility": "federation"}))
    create_view(host, view_spec("shared-internal", SHARED, policy=None))
    staff = member.auth_headers()
    wait_until(lambda: "shared-federation" in federated_ids(member, host.name, staff), REPLICATION_DEADLINE,
               "Herford to learn Gütersloh's federation view")
    assert "shared-internal" not in federated_ids(member, host.name, staff), "internal views are never announced"

    # Herford's staff read it through Herford's node, over Flight and REST, as Gütersloh assembles it.
    table = remote_flight_view(member, host.name, "shared-federation")
    assert table.column_names == RESULT_COLUMNS
    assert by_source(table.to_pylist()) == {(host.name, "shared-source"): expected_rows(rows)}
    path = f"/api/v1/federation/{urllib.parse.quote(host.name)}/datasets/shared-federation/rows"
    rest = member.get(path, query={"format": "json"}, auth=True)
    assert rest.status == 200 and len(rest.json()) == len(rows), rest
    # Its anonymous visitors do not (a federation-only entry); a view is read whole.
    assert member.get(path, query={"format": "json"}).status == 404
    narrowed = member.get(path, query={"format": "json", "limit": "1"}, auth=True)
    assert narrowed.status == 400 and "whole" in narrowed.text, narrowed

    # A member's own view never takes a shared view for a source (no views of views).
    create_view(member, view_spec("shared-on-member", SHARED, policy=None))
    status = view_status(member, "shared-on-member", auth=True)
    assert {(s["node"], s["dataset"]) for s in status["sources"]} == {(host.name, "shared-source")}, status

    # Kept inside again, it is withdrawn from the members.
    response = put_view(host, view_spec("shared-federation", SHARED, policy={"visibility": "internal"}))
    assert response.status == 200, response
    wait_until(lambda: "shared-federation" not in federated_ids(member, host.name, staff), REPLICATION_DEADLINE,
               "Herford to forget the withdrawn view")

    # Views and datasets share one namespace: members name both `<node>/<id>`.
    taken = host.post_json("/api/v1/views", view_spec("shared-source", SHARED))
    assert taken.status == 409, taken
    spec = source_spec("shared-internal", SHARED, host)
    assert host.request("POST", "/api/v1/datasets", json.dumps(spec).encode(), JSON, auth=True).status == 409
