"""The OGC SensorThings API 1.1 (read) at /sta/v1.1, against real nodes.

Two nodes serve the module: "Gütersloh" (`town`) holds public datasets only — water levels
of three stations (`pegel-sta`, labelled by their `shortname`, 15-minute values with gaps
in `quality`, the Aa moving for its last reading) and 105 weather stations
(`wetter-sta`, an integer series key, labelled by `name`), so that Masterportal's
unfiltered layer request needs a second page — and two datasets that are no sensors (no
geometry, no series key). "Herford" (`herford`) holds the same water levels under one
usage policy each (`p-…`), read anonymously and with the node's admin token.

Clients: Masterportal's sensor layer request as it sends it (`$expand=Locations,
Datastreams/Observations($orderby=phenomenonTime%20desc;$top=1)`, `$count=true` added,
`st_within(Locations/location,geography'POLYGON ((…))')` for the map extent, every
`@iot.nextLink` followed), FROST's Python client `frost_sta_client`, and plain HTTP for
the query options of OGC 18-088 section 9.3, bad options and hostile input. A node of
their own is restarted (SIGTERM, then SIGKILL) for the ids and the latest values.

Expected values come from the rows written here; ids from the API itself (then they are
checked to be stable and to name what they should). Waits poll a condition against a
deadline.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from dataclasses import dataclass, field

import frost_sta_client
import pytest

from conftest import Node, Response, audit_records, http_request, parse_time, wait_until

UTC = dt.timezone.utc
STA = "/sta/v1.1"
START = dt.datetime(2026, 3, 1, tzinfo=UTC)
STEP = dt.timedelta(minutes=15)
READINGS = 12
AUDIT_DEADLINE = 10.0
# requests (under frost_sta_client) must not take a proxy from the environment for loopback.
NO_PROXIES = {"http": None, "https": None, "all": None}
# Masterportal's sensor layer: `<url>/v1.1/Things?$expand=…`, with `$count=true` added to
# every request it sends (SensorThingsHttp.addCountToUrl).
MASTERPORTAL_EXPAND = "Locations,Datastreams/Observations($orderby=phenomenonTime%20desc;$top=1)"
ENTITY_SETS = ["Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors", "ObservedProperties",
               "Observations", "FeaturesOfInterest"]

# ---- data ------------------------------------------------------------------------------------

PEGEL_FIELDS = [
    {"name": "time", "type": "timestamp[ms, UTC]"},
    {"name": "station", "type": "utf8"},
    {"name": "shortname", "type": "utf8"},
    {"name": "value", "type": "float64", "unit": "cm", "description": "Wasserstand am Pegel"},
    {"name": "quality", "type": "int64", "nullable": True},
    {"name": "km", "type": "float64", "nullable": True},
    {"name": "lon", "type": "float64"},
    {"name": "lat", "type": "float64"},
]
# station -> (label, lon, lat, base level in cm)
PEGEL_STATIONS = {
    "Dalke": ("Dalke Gütersloh", 8.3791, 51.9062, 80.0),
    "Lutter": ("Lutter Gütersloh", 8.4015, 51.9121, 60.0),
    "Aa": ("Aa Bielefeld", 8.5325, 52.0302, 120.0),
}
AA_MOVED = (8.54, 52.04)  # where the Aa's last reading was taken
# A box around Gütersloh (lon 8.30-8.45, lat 51.85-51.95): the Dalke and the Lutter, no one else.
GUETERSLOH_RING = [(8.30, 51.85), (8.45, 51.85), (8.45, 51.95), (8.30, 51.95), (8.30, 51.85)]
WETTER_FIELDS = [
    {"name": "time", "type": "timestamp[ms, UTC]"},
    {"name": "sensor", "type": "int64"},
    {"name": "name", "type": "utf8"},
    {"name": "temperature", "type": "float64", "unit": "°C"},
    {"name": "lon", "type": "float64"},
    {"name": "lat", "type": "float64"},
]
WETTER_STATIONS = 105  # with the three gauges more than one page (100) of Things


@dataclass
class Source:
    """A sensor dataset as written: its rows, series key, label column and measured columns."""

    id: str
    title: str
    key: str
    label: str
    measures: list[str]
    units: dict[str, str]
    rows: list[dict]

    def stations(self) -> list[str]:
        return sorted({str(row[self.key]) for row in self.rows})

    def station_rows(self, key: str) -> list[dict]:
        return sorted((r for r in self.rows if str(r[self.key]) == key), key=lambda r: r["time"])

    def latest_row(self, key: str) -> dict:
        return self.station_rows(key)[-1]

    def observations(self, key: str, column: str) -> list[tuple[dt.datetime, float]]:
        """(time, result) of the rows with a value in `column`, in time order."""
        return [(r["time"], r[column]) for r in self.station_rows(key) if r[column] is not None]

    def label_of(self, key: str) -> str:
        return self.latest_row(key)[self.label]


def pegel_rows() -> list[dict]:
    """12 readings a station from START; values are multiples of 0.5 (exact in binary);
    the Lutter's quality is missing every fourth reading (its last one among them); the Aa's
    last reading was taken elsewhere."""
    rows = []
    for i in range(READINGS):
        for k, (station, (label, lon, lat, base)) in enumerate(PEGEL_STATIONS.items()):
            if station == "Aa" and i == READINGS - 1:
                lon, lat = AA_MOVED
            rows.append({
                "time": START + i * STEP, "station": station, "shortname": label,
                "value": base + 0.5 * i + 1.5 * (i % 2),
                "quality": None if station == "Lutter" and i % 4 == 3 else 1 + (i + k) % 3,
                "km": 12.5 if station == "Dalke" else None, "lon": lon, "lat": lat,
            })
    return rows


def wetter_rows() -> list[dict]:
    return [{"time": START + j * dt.timedelta(hours=1), "sensor": k, "name": f"Wetterstation {k:03d}",
             "temperature": 5.0 + 0.25 * k + 0.5 * j, "lon": round(8.0 + 0.01 * k, 4),
             "lat": round(51.5 + 0.005 * k, 4)}
            for j in range(2) for k in range(1, WETTER_STATIONS + 1)]


def csv_of(rows: list[dict], columns: list[str]) -> str:
    def cell(value):
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        return str(value)

    return ",".join(columns) + "\n" + "".join(",".join(cell(row[c]) for c in columns) + "\n" for row in rows)


def sensor_spec(dataset: str, title: str, fields: list[dict], key: str | None = "station",
                geometry: bool = True, policy: dict | None = None) -> dict:
    spec = {
        "id": dataset,
        "title": title,
        "description": f"{title}: Messwerte für die SensorThings-Tests",
        "schema": {"fields": json.loads(json.dumps(fields))},
        "time_column": "time",
    }
    if key:
        spec["series_key"] = key
    if geometry:
        spec["geometry"] = {"lon": "lon", "lat": "lat"}
    if policy is not None:  # without one, the dataset is tenant-internal
        spec["policy"] = policy
    return spec


def write(node: Node, spec: dict, rows: list[dict]) -> None:
    node.create_dataset(spec)
    columns = [f["name"] for f in spec["schema"]["fields"]]
    response = node.post_rows(spec["id"], csv_of(rows, columns), "text/csv")
    assert response.status == 200, f"rows of {spec['id']}: {response!r}"


# ---- HTTP --------------------------------------------------------------------------------------


def options(**opts) -> str:
    """`?$filter=…&$top=…` from keyword arguments (`filter=` for `$filter`), percent-encoded as
    a browser encodes a query (spaces as %20)."""
    if not opts:
        return ""
    return "?" + "&".join(f"%24{name}={urllib.parse.quote(str(value), safe='')}" for name, value in opts.items())


def sta(node: Node, path: str, headers: dict | None = None) -> Response:
    """GET /sta/v1.1`path`, the path and query sent exactly as written."""
    return http_request("GET", node.http + STA + path, headers=headers)


def sta_json(node: Node, path: str, headers: dict | None = None) -> dict:
    response = sta(node, path, headers)
    assert response.status == 200, f"GET {STA}{path}: {response!r}"
    assert response.content_type == "application/json", response
    return response.json()


def follow(node: Node, url: str, headers: dict | None = None, limit: int = 500) -> tuple[list[dict], list[dict]]:
    """Every entity of a collection, following @iot.nextLink; returns (entities, pages)."""
    entities, pages = [], []
    while url:
        assert len(pages) < limit, f"more than {limit} pages: the nextLinks go round in circles ({url})"
        response = http_request("GET", url, headers=headers)
        assert response.status == 200, f"GET {url}: {response!r}"
        page = response.json()
        pages.append(page)
        entities.extend(page["value"])
        url = page.get("@iot.nextLink")
    return entities, pages


def every(node: Node, path: str, headers: dict | None = None) -> list[dict]:
    return follow(node, node.http + STA + path, headers)[0]


def assert_error(response: Response, status: int, *fragments: str) -> dict:
    """The FROST-shaped error body: {"code": status, "type": "error", "message": …} naming
    each of `fragments`."""
    assert response.status == status, response
    assert response.content_type == "application/json", response
    body = response.json()
    assert set(body) == {"code", "type", "message"} and body["code"] == status and body["type"] == "error", body
    for fragment in fragments:
        assert fragment in body["message"], f"{fragment!r} not in the message: {body}"
    return body


def micros(at: dt.datetime) -> int:
    return int(at.timestamp()) * 1_000_000 + at.microsecond


def iso(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def polygon(ring: list[tuple[float, float]], space: str = "") -> str:
    """WKT as `geography'…'` literals carry it; Masterportal writes `POLYGON ((x y,x y,…))`."""
    return f"POLYGON{space}((" + ",".join(f"{x} {y}" for x, y in ring) + "))"


# ---- the graph a caller sees ---------------------------------------------------------------------


@dataclass
class Ids:
    """The ids of a node's entities as one caller sees them, by what they stand for."""

    things: dict[tuple[str, str], int] = field(default_factory=dict)  # (dataset, key) -> Thing
    streams: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (dataset, key, column)
    sensors: dict[str, int] = field(default_factory=dict)  # dataset -> Sensor

    def stream(self, source: Source, key: str, column: str) -> int:
        return self.streams[(source.id, key, column)]


def ids_of(node: Node, headers: dict | None = None) -> Ids:
    ids = Ids()
    for thing in every(node, "/Things" + options(top=10000), headers):
        ids.things[(thing["properties"]["dataset"], thing_key(thing))] = thing["@iot.id"]
    for stream in every(node, "/Datastreams" + options(top=10000, expand="Thing($select=properties)"), headers):
        props = stream["properties"]
        ids.streams[(props["dataset"], thing_key(stream["Thing"]), props["column"])] = stream["@iot.id"]
    for sensor in every(node, "/Sensors" + options(top=10000), headers):
        ids.sensors[sensor["properties"]["dataset"]] = sensor["@iot.id"]
    return ids


def thing_key(thing: dict) -> str:
    """The series key of a Thing, from its properties (the key column's value)."""
    props = thing["properties"]
    for key in ("station", "sensor"):
        if key in props:
            return str(props[key])
    raise AssertionError(f"no series key in {props}")


def observation_id(stream: int, at: dt.datetime) -> str:
    return f"{stream}-{micros(at)}"


def assert_masterportal_view(things: list[dict], sources: list[Source], ids: Ids, where=None) -> None:
    """Every Thing of `sources` (those whose latest position `where` accepts) is there once,
    at its latest position, each Datastream with exactly one Observation: the station's newest
    value of that column."""
    expected = {}
    for source in sources:
        for key in source.stations():
            latest = source.latest_row(key)
            if where is None or where(latest["lon"], latest["lat"]):
                expected[ids.things[(source.id, key)]] = (source, key)
    seen = [thing["@iot.id"] for thing in things]
    assert sorted(seen) == sorted(expected), (
        f"Things {sorted(set(seen) ^ set(expected))} differ; duplicates {[t for t in seen if seen.count(t) > 1]}")
    for thing in things:
        source, key = expected[thing["@iot.id"]]
        latest = source.latest_row(key)
        assert thing["name"] == source.label_of(key), thing
        assert [loc["location"] for loc in thing["Locations"]] == [
            {"type": "Point", "coordinates": [latest["lon"], latest["lat"]]}], thing
        streams = {ds["@iot.id"]: ds for ds in thing["Datastreams"]}
        assert sorted(streams) == sorted(ids.stream(source, key, c) for c in source.measures), thing["Datastreams"]
        for column in source.measures:
            ds = streams[ids.stream(source, key, column)]
            at, value = source.observations(key, column)[-1]
            assert len(ds["Observations"]) == 1, ds
            obs = ds["Observations"][0]
            assert obs["@iot.id"] == observation_id(ds["@iot.id"], at), obs
            assert parse_time(obs["phenomenonTime"]) == at and obs["result"] == value, (
                f"{source.id} {key} {column}: expected {value} at {iso(at)}, got {obs}")


# ---- the public node ---------------------------------------------------------------------------


@dataclass
class Town:
    node: Node
    pegel: Source
    wetter: Source
    ids: Ids

    @property
    def sources(self) -> list[Source]:
        return [self.pegel, self.wetter]


@pytest.fixture(scope="module")
def town(tmp_path_factory) -> Town:
    node = Node(tmp_path_factory.mktemp("sta-town"), name="Gütersloh")
    node.start()
    try:
        pegel = Source("pegel-sta", "Pegelstände Dalke, Lutter und Aa", "station", "shortname",
                       ["value", "quality"], {"value": "cm", "quality": ""}, pegel_rows())
        wetter = Source("wetter-sta", "Wetterstationen im Kreis", "sensor", "name", ["temperature"],
                        {"temperature": "°C"}, wetter_rows())
        write(node, sensor_spec(pegel.id, pegel.title, PEGEL_FIELDS, policy={"visibility": "public"}), pegel.rows)
        write(node, sensor_spec(wetter.id, wetter.title, WETTER_FIELDS, key="sensor",
                                policy={"visibility": "public"}), wetter.rows)
        # Public, but no sensors: one without a geometry, one without a series key.
        write(node, sensor_spec("pegel-ohne-ort", "Pegel ohne Ort", PEGEL_FIELDS, geometry=False,
                                policy={"visibility": "public"}), pegel.rows)
        write(node, sensor_spec("pegel-ohne-reihe", "Pegel ohne Reihen", PEGEL_FIELDS, key=None,
                                policy={"visibility": "public"}), pegel.rows)
        yield Town(node, pegel, wetter, ids_of(node))
    finally:
        node.close()


# ---- 1. frost-sta-client ------------------------------------------------------------------------


def frost(node: Node) -> frost_sta_client.SensorThingsService:
    return frost_sta_client.SensorThingsService(node.http + STA, proxies=NO_PROXIES)


def test_frost_client_lists_and_navigates_things_datastreams_and_observations(town):
    service = frost(town.node)
    things = service.things().query().list()
    # Iterating follows @iot.nextLink: the three gauges and the 105 weather stations.
    names = sorted(thing.name for thing in things)
    expected_names = sorted(s.label_of(k) for s in town.sources for k in s.stations())
    assert names == expected_names

    dalke = next(t for t in service.things().query().filter("name eq 'Dalke Gütersloh'").list())
    assert dalke.id == town.ids.things[("pegel-sta", "Dalke")]
    assert dalke.properties["dataset"] == "pegel-sta" and dalke.properties["km"] == 12.5
    [location] = list(dalke.get_locations().query().list())
    assert location.location == {"type": "Point", "coordinates": [8.3791, 51.9062]}
    assert location.encoding_type == "application/geo+json"

    datastreams = {ds.name: ds for ds in dalke.get_datastreams().query().list()}
    assert sorted(datastreams) == ["Dalke Gütersloh quality", "Dalke Gütersloh value"]
    value = datastreams["Dalke Gütersloh value"]
    assert value.unit_of_measurement.symbol == "cm" and value.unit_of_measurement.name == "cm"
    assert value.description == "Wasserstand am Pegel"

    expected = town.pegel.observations("Dalke", "value")
    newest = value.get_observations().query().top(3).orderby("phenomenonTime", "desc").list()
    assert [(parse_time(o.phenomenon_time), o.result) for o in newest.entities] == expected[::-1][:3]
    assert newest.next_link, "three of twelve observations: a next page follows"
    walked = list(value.get_observations().query().top(5).list())  # follows the nextLinks
    assert [(parse_time(o.phenomenon_time), o.result) for o in walked] == expected
    high = value.get_observations().query().filter("result sub 5 gt 80").list()
    assert [o.result for o in high] == [v for _, v in expected if v - 5 > 80]

    # find() by id: a Thing and a Datastream (numbers), an Observation (a string id).
    assert service.things().find(dalke.id).name == "Dalke Gütersloh"
    assert service.datastreams().find(value.id).name == "Dalke Gütersloh value"
    last = newest.entities[0]
    assert isinstance(last.id, str)
    found = service.observations().find(last.id)
    assert (found.id, found.result, found.phenomenon_time) == (last.id, last.result, last.phenomenon_time)

    sensors = {sensor.name for sensor in service.sensors().query().list()}
    assert sensors == {town.pegel.title, town.wetter.title}
    properties = sorted(p.name for p in service.observed_properties().query().list())
    assert properties == ["quality", "temperature", "value"]
    features = list(service.features_of_interest().query().list())
    assert len(features) == len(expected_names)
    assert all(f.feature["type"] == "Point" for f in features)


def test_frost_client_orders_with_its_default_direction(town):
    """`query().orderby(criteria)` sends `criteria DESC` (the client's default, upper case)."""
    stream = town.ids.stream(town.pegel, "Lutter", "value")
    value = frost(town.node).datastreams().find(stream)
    newest = value.get_observations().query().top(2).orderby("phenomenonTime").list()
    expected = town.pegel.observations("Lutter", "value")[::-1][:2]
    assert [(parse_time(o.phenomenon_time), o.result) for o in newest.entities] == expected


# ---- 2. Masterportal ------------------------------------------------------------------------------


def masterportal(node: Node, filter_: str | None = None, headers: dict | None = None) -> tuple[list[dict], list[dict]]:
    """The sensor layer's Things request, and every nextLink after it, each with $count=true."""
    query = f"$expand={MASTERPORTAL_EXPAND}"
    if filter_ is not None:
        query = f"$filter={filter_}&{query}"
    return follow(node, f"{node.http}{STA}/Things?{query}&$count=true", headers)


def test_masterportals_layer_request_shows_every_station_with_its_newest_values(town):
    things, pages = masterportal(town.node)
    assert len(pages) == 2, "108 Things: the default page (100) and one nextLink"
    assert all(page["@iot.count"] == len(things) for page in pages), [p.get("@iot.count") for p in pages]
    assert_masterportal_view(things, town.sources, town.ids)


def test_masterportals_request_for_the_map_extent(town):
    """`st_within(Locations/location, …)` as Masterportal encodes it when it loads only the
    Things in the current extent, and geo.intersects as the standard names it."""
    inside = lambda lon, lat: 8.30 <= lon <= 8.45 and 51.85 <= lat <= 51.95  # noqa: E731
    encoded = ("st_within(Locations%2Flocation%2Cgeography'" + urllib.parse.quote(polygon(GUETERSLOH_RING, " "), safe="()'")
               + "')")
    things, _ = masterportal(town.node, encoded)
    assert sorted(t["name"] for t in things) == ["Dalke Gütersloh", "Lutter Gütersloh"]
    assert_masterportal_view(things, town.sources, town.ids, where=inside)
    plain = urllib.parse.quote(f"geo.intersects(Locations/location, geography'{polygon(GUETERSLOH_RING)}')", safe="")
    assert masterportal(town.node, plain)[0] == things


def test_masterportals_request_with_a_filter_on_the_things_properties(town):
    filter_ = urllib.parse.quote("properties/dataset eq 'pegel-sta' and startswith(name, 'Aa')", safe="")
    things, pages = masterportal(town.node, filter_)
    assert [t["name"] for t in things] == ["Aa Bielefeld"] and pages[0]["@iot.count"] == 1
    # The Aa's Location is where its last reading was taken.
    assert things[0]["Locations"][0]["location"]["coordinates"] == list(AA_MOVED)
    assert_masterportal_view(things, [town.pegel], town.ids, where=lambda lon, lat: (lon, lat) == AA_MOVED)


# ---- 3. query options (OGC 18-088 section 9.3) -------------------------------------------------------


def expected_observation_ids(town: Town) -> list[str]:
    return [observation_id(town.ids.stream(source, key, column), at)
            for source in town.sources for key in source.stations() for column in source.measures
            for at, _ in source.observations(key, column)]


def test_paging_walks_every_observation_exactly_once(town):
    expected = expected_observation_ids(town)
    first = sta_json(town.node, "/Observations" + options(top=1, count="true"))
    assert first["@iot.count"] == len(expected)
    for top, orderby in ((100, None), (97, "result desc,phenomenonTime asc")):
        query = options(top=top, **({"orderby": orderby} if orderby else {}))
        observations, pages = follow(town.node, town.node.http + STA + "/Observations" + query)
        ids = [o["@iot.id"] for o in observations]
        assert len(ids) == len(set(ids)), f"{query}: observations repeated across pages"
        assert sorted(ids) == sorted(expected), f"{query}: {len(ids)} observations for {len(expected)}"
        assert [len(p["value"]) for p in pages[:-1]] == [top] * (len(pages) - 1)
        assert len(pages) == -(-len(expected) // top)
    results = [o["result"] for o in observations]
    assert results == sorted(results, reverse=True)


@pytest.mark.parametrize("top", [1, 2, 5])
def test_paging_one_datastream_newest_first_walks_all_of_it(town, top):
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    expected = town.pegel.observations("Dalke", "value")[::-1]
    observations, pages = follow(town.node, f"{town.node.http}{STA}/Datastreams({stream})/Observations"
                                 + options(orderby="phenomenonTime desc", top=top))
    assert [(parse_time(o["phenomenonTime"]), o["result"]) for o in observations] == expected, (
        f"$top={top}: {len(observations)} of {len(expected)} observations in {len(pages)} pages")


def test_skip_and_top_slice_the_ordered_observations(town):
    stream = town.ids.stream(town.pegel, "Aa", "value")
    expected = town.pegel.observations("Aa", "value")
    page = sta_json(town.node, f"/Datastreams({stream})/Observations" + options(skip=3, top=4, count="true"))
    assert [(parse_time(o["phenomenonTime"]), o["result"]) for o in page["value"]] == expected[3:7]
    assert page["@iot.count"] == len(expected)
    assert parse_qs(page["@iot.nextLink"])["$skip"] == "7"
    tail = sta_json(town.node, f"/Datastreams({stream})/Observations" + options(skip=10, top=4))
    assert len(tail["value"]) == 2 and "@iot.nextLink" not in tail


def parse_qs(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def test_top_zero_counts_without_a_nextlink_to_the_same_page(town):
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    path = f"/Datastreams({stream})/Observations" + options(top=0, count="true")
    page = sta_json(town.node, path)
    assert page["value"] == [] and page["@iot.count"] == READINGS
    next_link = page.get("@iot.nextLink")
    assert next_link is None or parse_qs(next_link).get("$skip") != "0", (
        f"GET {STA}{path} answers a nextLink to itself (a client following it never ends): {next_link}")


def test_count_select_and_orderby_on_things(town):
    page = sta_json(town.node, "/Things" + options(count="true", top=2, select="id,name", orderby="name desc"))
    total = len(town.pegel.stations()) + WETTER_STATIONS
    assert page["@iot.count"] == total
    names = sorted((s.label_of(k) for s in town.sources for k in s.stations()), reverse=True)
    assert [set(t) for t in page["value"]] == [{"@iot.id", "name"}] * 2
    assert [t["name"] for t in page["value"]] == names[:2]
    # Several keys: the dataset ascending, then the name descending.
    things = every(town.node, "/Things" + options(orderby="properties/dataset asc,name desc", select="name", top=50))
    by_dataset = [s.label_of(k) for s in town.sources for k in sorted(s.stations(), key=s.label_of, reverse=True)]
    assert [t["name"] for t in things] == by_dataset


def test_observations_order_by_several_keys(town):
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    observations = sta_json(town.node, f"/Datastreams({stream})/Observations"
                            + options(orderby="result desc,phenomenonTime asc", select="result,phenomenonTime"))
    expected = sorted(town.pegel.observations("Dalke", "value"), key=lambda o: (-o[1], o[0]))
    assert [(parse_time(o["phenomenonTime"]), o["result"]) for o in observations["value"]] == expected
    assert all(set(o) == {"result", "phenomenonTime"} for o in observations["value"])


def test_select_and_nested_expand_with_filters_inside(town):
    thing = town.ids.things[("pegel-sta", "Lutter")]
    stream = town.ids.stream(town.pegel, "Lutter", "value")
    doc = sta_json(town.node, f"/Things({thing})" + options(
        select="name",
        expand="Datastreams($filter=properties/column eq 'value';$select=id,name;"
               "$expand=Observations($filter=result ge 63;$orderby=phenomenonTime asc;$select=result;$count=true),"
               "ObservedProperty($select=name)),Locations($select=location)"))
    assert set(doc) == {"name", "Datastreams", "Locations"}, doc
    assert doc["Locations"] == [{"location": {"type": "Point", "coordinates": [8.4015, 51.9121]}}]
    [ds] = doc["Datastreams"]
    assert ds["@iot.id"] == stream and ds["name"] == "Lutter Gütersloh value"
    assert ds["ObservedProperty"] == {"name": "value"}
    expected = [v for _, v in town.pegel.observations("Lutter", "value") if v >= 63]
    assert [o["result"] for o in ds["Observations"]] == expected
    assert ds.get("Observations@iot.count") == len(expected), (
        f"$count=true inside $expand: the count of the expanded Observations is missing: {sorted(ds)}")


def test_expanded_collections_cut_by_top_link_to_the_rest(town):
    """Masterportal walks `<collection>@iot.nextLink` inside entities too."""
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    doc = sta_json(town.node, f"/Datastreams({stream})" + options(expand="Observations($top=5)"))
    assert len(doc["Observations"]) == 5
    link = doc.get("Observations@iot.nextLink")
    assert link, f"5 of {READINGS} Observations expanded and no Observations@iot.nextLink: {sorted(doc)}"
    rest, _ = follow(town.node, link)
    assert len(doc["Observations"]) + len(rest) == READINGS


def test_time_comparisons_on_observations(town):
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    expected = town.pegel.observations("Dalke", "value")
    cases = {
        "phenomenonTime ge 2026-03-01T00:05:00Z": lambda t: t >= START + dt.timedelta(minutes=5),
        "phenomenonTime gt 2026-03-01T01:00:00Z and resultTime lt 2026-03-01T02:00:00Z":
            lambda t: START + dt.timedelta(hours=1) < t < START + dt.timedelta(hours=2),
        "phenomenonTime eq 2026-03-01T01:30:00.000+01:00": lambda t: t == START + dt.timedelta(minutes=30),
        "hour(phenomenonTime) eq 2 and minute(phenomenonTime) ge 30": lambda t: t.hour == 2 and t.minute >= 30,
        "year(resultTime) eq 2026 and phenomenonTime lt now()": lambda t: True,
    }
    for expression, keep in cases.items():
        page = sta_json(town.node, f"/Datastreams({stream})/Observations" + options(filter=expression, count="true"))
        got = [(parse_time(o["phenomenonTime"]), o["result"]) for o in page["value"]]
        want = [(t, v) for t, v in expected if keep(t)]
        assert got == want and page["@iot.count"] == len(want), expression


def test_arithmetic_on_results(town):
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    expected = town.pegel.observations("Dalke", "value")
    cases = {
        "result sub 5 gt 80": lambda v: v - 5 > 80,
        "result add 2.5 le 84": lambda v: v + 2.5 <= 84,
        "result mul 2 eq 166 or result div 2 eq 41": lambda v: v * 2 == 166 or v / 2 == 41,
        "result mod 2 eq 1 and not (result lt 82)": lambda v: v % 2 == 1 and not v < 82,
        "round(result) eq 84 or floor(result) eq 85 or ceiling(result) eq 86": lambda v: v in (84, 85, 86),
    }
    for expression, keep in cases.items():
        page = sta_json(town.node, f"/Datastreams({stream})/Observations" + options(filter=expression, select="result"))
        assert [o["result"] for o in page["value"]] == [v for _, v in expected if keep(v)], expression


def test_string_functions_on_thing_names(town):
    cases = {
        "startswith(name, 'Dalke')": ["Dalke Gütersloh"],
        "endswith(name, 'Gütersloh')": ["Dalke Gütersloh", "Lutter Gütersloh"],
        "substringof('Bielef', name)": ["Aa Bielefeld"],
        "contains(name, 'utter')": ["Lutter Gütersloh"],
        "length(name) eq 12 and properties/dataset eq 'pegel-sta'": ["Aa Bielefeld"],
        "indexof(name, 'Gütersloh') eq 6": ["Dalke Gütersloh"],
        "tolower(name) eq 'lutter gütersloh' or toupper(name) eq 'AA BIELEFELD'": ["Aa Bielefeld", "Lutter Gütersloh"],
        "trim(concat(' ', name)) eq 'Wetterstation 007'": ["Wetterstation 007"],
        "name eq 'Wetterstation 010' or name eq 'Wetterstation 011'": ["Wetterstation 010", "Wetterstation 011"],
        "not startswith(name, 'Wetter') and name ne 'Aa Bielefeld'": ["Dalke Gütersloh", "Lutter Gütersloh"],
    }
    for expression, names in cases.items():
        things = sta_json(town.node, "/Things" + options(filter=expression, select="name"))["value"]
        assert sorted(t["name"] for t in things) == names, expression


def test_a_long_flat_disjunction_of_station_names(town):
    """Twenty stations by name, as a layer configured for a list of stations asks: a flat
    `or`, nested nowhere."""
    names = [f"Wetterstation {k:03d}" for k in range(1, 21)]
    expression = " or ".join(f"name eq '{n}'" for n in names)
    response = sta(town.node, "/Things" + options(filter=expression, select="name"))
    assert response.status == 200, f"GET {STA}/Things?$filter=<20 names joined by or>: {response!r}"
    assert sorted(t["name"] for t in response.json()["value"]) == names


def test_geo_intersects_a_bounding_box(town):
    box = f"geography'{polygon(GUETERSLOH_RING)}'"
    things = sta_json(town.node, "/Things" + options(filter=f"geo.intersects(Locations/location, {box})", select="name"))
    assert sorted(t["name"] for t in things["value"]) == ["Dalke Gütersloh", "Lutter Gütersloh"]
    locations = sta_json(town.node, "/Locations" + options(filter=f"st_intersects(location, {box})", select="name"))
    assert sorted(t["name"] for t in locations["value"]) == ["Dalke Gütersloh", "Lutter Gütersloh"]
    streams = sta_json(town.node, "/Datastreams" + options(filter=f"st_within(Thing/Locations/location, {box})",
                                                           select="name"))
    assert sorted(s["name"] for s in streams["value"]) == [
        "Dalke Gütersloh quality", "Dalke Gütersloh value", "Lutter Gütersloh quality", "Lutter Gütersloh value"]
    # The Aa's Location is its latest one: the box around its old place finds it no more.
    old_place = [(8.52, 52.02), (8.535, 52.02), (8.535, 52.035), (8.52, 52.035), (8.52, 52.02)]
    gone = sta_json(town.node, "/Things" + options(filter=f"geo.intersects(Locations/location, geography'{polygon(old_place)}')"))
    assert gone["value"] == []


def test_the_service_root_paths_properties_values_and_references(town):
    root = sta_json(town.node, "")
    assert [s["name"] for s in root["value"]] == ENTITY_SETS
    assert all(s["url"] == f"{town.node.http}{STA}/{s['name']}" for s in root["value"])
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel" in root["serverSettings"]["conformance"]

    thing = town.ids.things[("pegel-sta", "Dalke")]
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    assert sta_json(town.node, f"/Things({thing})/name") == {"name": "Dalke Gütersloh"}
    raw = sta(town.node, f"/Things({thing})/name/$value")
    assert raw.status == 200 and raw.content_type == "text/plain" and raw.text == "Dalke Gütersloh", raw
    refs = sta_json(town.node, f"/Things({thing})/Datastreams/$ref")
    assert sorted(r["@iot.selfLink"] for r in refs["value"]) == sorted(
        f"{town.node.http}{STA}/Datastreams({town.ids.stream(town.pegel, 'Dalke', c)})" for c in town.pegel.measures)
    assert all(set(r) == {"@iot.selfLink"} for r in refs["value"])
    things_refs = sta_json(town.node, "/Things/$ref" + options(top=3))
    assert len(things_refs["value"]) == 3 and "@iot.nextLink" in things_refs

    at, value = town.pegel.observations("Dalke", "value")[4]
    oid = observation_id(stream, at)
    obs = sta_json(town.node, f"/Observations('{oid}')")
    assert (obs["@iot.id"], obs["result"], parse_time(obs["resultTime"])) == (oid, value, at)
    assert obs["@iot.selfLink"] == f"{town.node.http}{STA}/Observations('{oid}')"
    assert sta_json(town.node, f"/Observations('{oid}')/Datastream/Thing")["@iot.id"] == thing
    assert sta_json(town.node, f"/Observations('{oid}')/result") == {"result": value}
    assert sta_json(town.node, f"/Datastreams({stream})/Observations('{oid}')")["@iot.id"] == oid
    sensor = sta_json(town.node, f"/Datastreams({stream})/Sensor")
    assert sensor["@iot.id"] == town.ids.sensors["pegel-sta"] and sensor["name"] == town.pegel.title
    feature = sta_json(town.node, f"/Observations('{oid}')/FeatureOfInterest")
    assert feature["feature"] == {"type": "Point", "coordinates": [8.3791, 51.9062]}
    of_feature = sta_json(town.node, f"/FeaturesOfInterest({feature['@iot.id']})/Observations" + options(count="true", top=1))
    assert of_feature["@iot.count"] == sum(len(town.pegel.observations("Dalke", c)) for c in town.pegel.measures)
    location = sta_json(town.node, f"/Things({thing})/Locations")["value"][0]
    assert [t["@iot.id"] for t in sta_json(town.node, f"/Locations({location['@iot.id']})/Things")["value"]] == [thing]
    prop = sta_json(town.node, f"/Datastreams({stream})/ObservedProperty")
    assert sorted(d["name"] for d in sta_json(town.node, f"/ObservedProperties({prop['@iot.id']})/Datastreams")["value"]) \
        == sorted(f"{town.pegel.label_of(k)} value" for k in town.pegel.stations())
    assert sta_json(town.node, "/HistoricalLocations")["value"] == []
    assert sta_json(town.node, f"/Things({thing})/HistoricalLocations")["value"] == []
    # Datasets without a geometry or without a series key are no sensors.
    assert set(town.ids.sensors) == {"pegel-sta", "wetter-sta"}


def test_an_observation_id_names_exactly_one_observation(town):
    """An id one microsecond off an observation's is no observation (the time column holds
    milliseconds)."""
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    at, _ = town.pegel.observations("Dalke", "value")[0]
    for wrong in (f"{stream}-{micros(at) + 1}", f"{stream}-{micros(at) + 999}"):
        response = sta(town.node, f"/Observations('{wrong}')")
        assert response.status == 404, f"GET {STA}/Observations('{wrong}') answered {response!r}"


# ---- 5. bad options, bad paths, hostile input ------------------------------------------------------


BAD_OPTIONS = [
    ("/Things?$top=-1", "$top"),
    ("/Things?$top=10001", "$top"),
    ("/Things?$top=x", "$top"),
    ("/Things?$skip=-3", "$skip"),
    ("/Things?$count=yes", "$count"),
    ("/Things?$orderby=name%20sideways", "$orderby"),
    ("/Things?$select=colour", "$select"),
    ("/Things?$expand=Cars", "$expand"),
    ("/Things?$expand=Datastreams($top=x)", "$top"),
    ("/Things?$expand=Datastreams($top=1", "$expand"),
    ("/Things?$foo=1", "unknown query option `$foo`"),
    ("/Things?$top=1&$top=2", "$top"),
    ("/Things?$filter=name%20eq", "$filter"),
    ("/Things?$filter=frobnicate(name)", "$filter"),
    ("/Things?$resultFormat=dataArray", "$resultFormat"),
    ("/Observations?$filter=Datastream/name%20eq%20'x'", "$filter"),
    ("/Observations?$orderby=Datastream/name", "$orderby"),
]


@pytest.mark.parametrize("path,names", BAD_OPTIONS, ids=[p for p, _ in BAD_OPTIONS])
def test_bad_options_are_400_naming_the_option(town, path, names):
    assert_error(sta(town.node, path), 400, names)


BAD_PATHS = [
    ("/Cars", 404, "Cars"),
    ("/Things(1)", 404, "1"),
    ("/Datastreams(7)/Observations", 404, "7"),
    ("/Observations('kein-Messwert')", 404, "kein-Messwert"),
    ("/Things(1)/Colour", 404, "Colour"),
    ("/Things/Datastreams", 400, "Things"),
    ("/Things(abc)", 400, "abc"),
    ("/Things(1", 400, "Things(1"),
    ("/Things/name", 400, "name"),
]


@pytest.mark.parametrize("path,status,names", BAD_PATHS, ids=[p for p, _, _ in BAD_PATHS])
def test_bad_paths_are_answered_with_the_error_shape(town, path, status, names):
    assert_error(sta(town.node, path), status, names)


def hostile_queries(stream: int) -> list[tuple[str, str]]:
    obs = f"/Datastreams({stream})/Observations"
    return [
        ("a huge $top", "/Things?$top=99999999999999999999999999"),
        ("a huge $skip on Things", "/Things?$skip=18446744073709551615"),
        ("a huge $skip on Observations", f"{obs}?$skip=18446744073709551615&$top=10000"),
        ("deep parentheses", "/Things?$filter=" + "(" * 2000 + "name" + ")" * 2000),
        ("deep not", "/Things?$filter=" + "not%20" * 3000 + "true"),
        ("deep $expand", "/Things?$expand=" + "/".join(["Datastreams", "Thing"] * 40)),
        ("a 20 KiB query", "/Things?$filter=" + urllib.parse.quote(" or ".join(["name eq 'x'"] * 1700), safe="")),
        ("an unterminated quote", "/Things?$filter=name%20eq%20'Dalke"),
        ("an unterminated geography", "/Things?$filter=geo.intersects(Locations/location,geography'POLYGON((1%202"),
        ("an unknown function", f"{obs}?$filter=frobnicate(result)"),
        ("a result compared with text", f"{obs}?$filter=result%20gt%20'viel'"),
        ("a result compared with a boolean", f"{obs}?$filter=result%20eq%20true"),
        ("a result compared with a time", f"{obs}?$filter=phenomenonTime%20eq%20result"),
        ("a time added to a result", f"{obs}?$filter=result%20add%20phenomenonTime%20gt%201"),
        ("a number as a condition", f"{obs}?$filter=result"),
        ("not of a number", f"{obs}?$filter=not%20result"),
        ("and of a number", f"{obs}?$filter=result%20and%20true"),
        ("the year of a number", f"{obs}?$filter=year(result)%20eq%202026"),
        ("a time rounded", f"{obs}?$filter=round(phenomenonTime)%20eq%201"),
        ("text functions on results", f"{obs}?$filter=length(result)%20gt%201"),
        ("a geometry on observations", f"{obs}?$filter=geo.intersects(result,geography'POLYGON((0%200,1%200,1%201,0%200))')"),
        ("a bad time literal", f"{obs}?$filter=phenomenonTime%20gt%202026-13-45T99:00:00Z"),
        ("control characters", "/Things?$filter=name%20eq%20'%00%01%1b'"),
        ("invalid percent-encoding", "/Things?$filter=%ZZ%E0%80"),
        ("a quote in an id", "/Observations('''%3B%20DROP%20TABLE%20x%3B--')"),
        ("a huge number id", "/Things(99999999999999999999999999999)"),
    ]


def test_hostile_input_is_refused_and_the_node_answers_on(town):
    stream = town.ids.stream(town.pegel, "Dalke", "value")
    answers = {}
    for what, path in hostile_queries(stream):
        response = sta(town.node, path)
        answers[what] = response
        assert town.node.get("/healthz").status == 200, f"after {what}: the node no longer answers"
        if response.status in (400, 404):
            assert_error(response, response.status)
    assert town.node.running
    server_errors = {what: f"{r.status} {r.text[:200]}" for what, r in answers.items() if r.status not in (200, 400, 404)}
    assert not server_errors, f"answered as server errors, not as the caller's: {json.dumps(server_errors, indent=1)}"


# ---- 4. usage policies -----------------------------------------------------------------------------------

POLICY_FIELDS = [f for f in PEGEL_FIELDS if f["name"] not in ("shortname", "km")]
ALL_COLUMNS = [f["name"] for f in POLICY_FIELDS]
# dataset -> its policy (None: tenant-internal); all hold the same water levels.
POLICIES = {
    "p-offen": {"visibility": "public"},
    "p-intern": None,
    "p-spalten": {"visibility": "public", "rules": [
        {"assignee": "anyone", "columns": ["time", "station", "value", "lon", "lat"]}]},
    "p-gefiltert": {"visibility": "public", "rules": [{"assignee": "anyone", "row_filter": "value < 85"}]},
    "p-stationen": {"visibility": "public", "rules": [{"assignee": "anyone", "row_filter": "station <> 'Aa'"}]},
    "p-maskiert": {"visibility": "public", "rules": [{"assignee": "anyone", "masked": ["quality"]}]},
    "p-stuendlich": {"visibility": "public", "rules": [
        {"assignee": "anyone", "aggregate": {"bucket": "1h", "min_group": 1, "by": ["station"]}}]},
    "p-ohne-reihe": {"visibility": "public", "rules": [
        {"assignee": "anyone", "columns": ["time", "value", "quality", "lon", "lat"]}]},
    "p-ohne-zeit": {"visibility": "public", "rules": [
        {"assignee": "anyone", "columns": ["station", "value", "quality", "lon", "lat"]}]},
    "p-summe": {"visibility": "public", "rules": [
        {"assignee": "anyone", "aggregate": {"bucket": "1h", "min_group": 1, "by": []}}]},
    "p-zweck": {"visibility": "public", "rules": [{"assignee": "anyone", "purposes": ["research"]}]},
}
ANONYMOUS_SENSORS = {"p-offen", "p-spalten", "p-gefiltert", "p-stationen", "p-maskiert", "p-stuendlich"}


def policy_source(dataset: str) -> Source:
    rows = [{k: v for k, v in row.items() if k not in ("shortname", "km")} for row in pegel_rows()]
    return Source(dataset, f"Pegel {dataset}", "station", "station", ["value", "quality"],
                  {"value": "cm", "quality": ""}, rows)


@dataclass
class Herford:
    node: Node
    anonymous: Ids
    staff: Ids

    @property
    def admin(self) -> dict:
        return self.node.auth_headers()


@pytest.fixture(scope="module")
def herford(tmp_path_factory) -> Herford:
    node = Node(tmp_path_factory.mktemp("sta-herford"), name="Herford")
    node.start()
    try:
        for dataset, policy in POLICIES.items():
            source = policy_source(dataset)
            write(node, sensor_spec(dataset, source.title, POLICY_FIELDS, policy=policy), source.rows)
        yield Herford(node, ids_of(node), ids_of(node, node.auth_headers()))
    finally:
        node.close()


def test_anonymous_callers_see_the_datasets_their_grants_serve_as_sensors(herford):
    assert set(herford.anonymous.sensors) == ANONYMOUS_SENSORS
    # The node's staff read every dataset as it is stored.
    assert set(herford.staff.sensors) == set(POLICIES)
    assert herford.staff.sensors["p-offen"] == herford.anonymous.sensors["p-offen"], "ids are the same for everyone"


def test_a_grant_of_some_columns_serves_only_their_datastreams(herford):
    streams = sta_json(herford.node, "/Datastreams" + options(filter="properties/dataset eq 'p-spalten'", top=100))
    assert sorted(ds["name"] for ds in streams["value"]) == ["Aa value", "Dalke value", "Lutter value"]
    props = sta_json(herford.node, "/ObservedProperties" + options(filter="properties/dataset eq 'p-spalten'"))
    assert [p["name"] for p in props["value"]] == ["value"]
    source = policy_source("p-spalten")
    source.measures = ["value"]
    things, _ = masterportal(herford.node, urllib.parse.quote("properties/dataset eq 'p-spalten'", safe=""))
    assert_masterportal_view(things, [source], herford.anonymous)


def test_a_row_filter_serves_the_latest_released_row_as_the_latest_observation(herford):
    """`value < 85`: the Dalke's newest reading under 85 is its latest observation (not its
    stored latest), the Lutter's all pass, the Aa (all above) is no Thing at all."""
    source = policy_source("p-gefiltert")
    source.rows = [row for row in source.rows if row["value"] < 85]
    assert source.stations() == ["Dalke", "Lutter"]
    things, _ = masterportal(herford.node, urllib.parse.quote("properties/dataset eq 'p-gefiltert'", safe=""))
    assert_masterportal_view(things, [source], herford.anonymous)
    dalke = herford.anonymous.stream(source, "Dalke", "value")
    every_value = every(herford.node, f"/Datastreams({dalke})/Observations")
    assert [o["result"] for o in every_value] == [v for _, v in source.observations("Dalke", "value")]
    withheld = policy_source("p-gefiltert").observations("Dalke", "value")[-1][0]
    assert_error(sta(herford.node, f"/Observations('{observation_id(dalke, withheld)}')"), 404)
    # The staff see the stored latest.
    staff_things, _ = masterportal(herford.node, urllib.parse.quote("properties/dataset eq 'p-gefiltert'", safe=""),
                                   herford.admin)
    assert_masterportal_view(staff_things, [policy_source("p-gefiltert")], herford.staff)


def test_a_row_filter_on_the_series_key_serves_only_those_stations(herford):
    source = policy_source("p-stationen")
    source.rows = [row for row in source.rows if row["station"] != "Aa"]
    things, _ = masterportal(herford.node, urllib.parse.quote("properties/dataset eq 'p-stationen'", safe=""))
    assert_masterportal_view(things, [source], herford.anonymous)


def test_masked_columns_have_datastreams_without_observations(herford):
    source = policy_source("p-maskiert")
    things, _ = masterportal(herford.node, urllib.parse.quote("properties/dataset eq 'p-maskiert'", safe=""))
    assert sorted(t["name"] for t in things) == ["Aa", "Dalke", "Lutter"]
    for thing in things:
        streams = {ds["properties"]["column"]: ds for ds in thing["Datastreams"]}
        assert streams["quality"]["Observations"] == [], streams["quality"]
        at, value = source.observations(thing_key(thing), "value")[-1]
        [obs] = streams["value"]["Observations"]
        assert (parse_time(obs["phenomenonTime"]), obs["result"]) == (at, value)
        page = sta_json(herford.node, f"/Datastreams({streams['quality']['@iot.id']})/Observations"
                        + options(count="true"))
        assert page == {"@iot.count": 0, "value": []}


def hourly(source: Source, key: str, column: str) -> list[tuple[dt.datetime, float, int]]:
    """(bucket start, result, rows) of each hour: floats averaged, integers summed."""
    buckets: dict[dt.datetime, list] = {}
    for row in source.station_rows(key):
        buckets.setdefault(row["time"].replace(minute=0), []).append(row)
    out = []
    for start, rows in sorted(buckets.items()):
        values = [r[column] for r in rows if r[column] is not None]
        result = sum(values) / len(values) if column == "value" else sum(values)
        out.append((start, result, len(rows)))
    return out


def test_an_aggregate_only_grant_serves_buckets_as_observations(herford):
    source = policy_source("p-stuendlich")
    things, _ = masterportal(herford.node, urllib.parse.quote("properties/dataset eq 'p-stuendlich'", safe=""))
    assert sorted(t["name"] for t in things) == ["Aa", "Dalke", "Lutter"]
    for thing in things:
        key = thing_key(thing)
        for ds in thing["Datastreams"]:
            column = ds["properties"]["column"]
            start, result, rows = hourly(source, key, column)[-1]
            [obs] = ds["Observations"]
            assert obs["phenomenonTime"] == f"{iso(start)}/{iso(start + dt.timedelta(hours=1))}", obs
            assert obs["resultTime"] == iso(start + dt.timedelta(hours=1)), obs
            assert obs["result"] == result and obs["parameters"] == {"records": rows}, (key, column, obs)
    lutter = herford.anonymous.stream(source, "Lutter", "quality")
    buckets = every(herford.node, f"/Datastreams({lutter})/Observations")
    assert [(o["phenomenonTime"].split("/")[0], o["result"], o["parameters"]["records"]) for o in buckets] == [
        (iso(s), r, n) for s, r, n in hourly(source, "Lutter", "quality")]
    oid = buckets[1]["@iot.id"]
    assert sta_json(herford.node, f"/Observations('{oid}')") == buckets[1]


def test_filters_on_buckets_agree_with_the_times_they_show(herford):
    """An Observation that a `resultTime` (or `phenomenonTime`) filter lets through shows a
    time that passes the filter."""
    stream = herford.anonymous.stream(policy_source("p-stuendlich"), "Dalke", "value")
    bound = START + dt.timedelta(hours=2)
    page = sta_json(herford.node, f"/Datastreams({stream})/Observations" + options(filter=f"resultTime le {iso(bound)}"))
    shown = [o["resultTime"] for o in page["value"]]
    assert all(parse_time(t) <= bound for t in shown), (
        f"$filter=resultTime le {iso(bound)} answered Observations with resultTime {shown}")
    assert len(shown) == 2


@pytest.mark.parametrize("dataset,why", [
    ("p-intern", "internal: not visible to anonymous callers"),
    ("p-ohne-reihe", "the grant withholds the series key"),
    ("p-ohne-zeit", "the grant withholds the time column"),
    ("p-summe", "the grant aggregates the stations together"),
    ("p-zweck", "reading needs a purpose, which SensorThings cannot state"),
])
def test_datasets_a_grant_cannot_serve_as_sensors_are_absent(herford, dataset, why):
    assert dataset not in herford.anonymous.sensors, why
    for entity_set in ("Things", "Datastreams", "Sensors", "ObservedProperties"):
        found = sta_json(herford.node, f"/{entity_set}" + options(filter=f"properties/dataset eq '{dataset}'", count="true"))
        assert found == {"@iot.count": 0, "value": []}, (entity_set, why)
    # The staff read it whole.
    things = sta_json(herford.node, "/Things" + options(filter=f"properties/dataset eq '{dataset}'"), herford.admin)
    assert sorted(t["name"] for t in things["value"]) == ["Aa", "Dalke", "Lutter"]


def anonymous_snapshot(node: Node) -> dict[str, tuple[int, str]]:
    paths = [f"/{s}" + options(count="true", top=10000) for s in ENTITY_SETS if s != "Observations"]
    paths += ["/Observations" + options(count="true", top=1), "/Things" + options(expand=MASTERPORTAL_EXPAND, count="true")]
    return {path: (r.status, r.text) for path in paths for r in [sta(node, path)]}


def test_an_internal_dataset_is_invisible_to_anonymous_callers_down_to_counts_and_errors(herford):
    node = herford.node
    before = anonymous_snapshot(node)
    source = policy_source("p-geheim")
    source.rows = [{**row, "station": f"Geheim-{row['station']}"} for row in source.rows]
    write(node, sensor_spec("p-geheim", "Geheime Pegel", POLICY_FIELDS), source.rows)
    staff = ids_of(node, herford.admin)
    assert "p-geheim" in staff.sensors
    after = anonymous_snapshot(node)
    for path in before:
        assert after[path] == before[path], f"GET {STA}{path} changed for anonymous callers with an internal dataset"

    # Its entities answer exactly as entities that do not exist.
    thing = staff.things[("p-geheim", "Geheim-Dalke")]
    stream = staff.streams[("p-geheim", "Geheim-Dalke", "value")]
    observation = observation_id(stream, START)
    location = sta_json(node, f"/Things({thing})/Locations", herford.admin)["value"][0]["@iot.id"]
    feature = sta_json(node, f"/Observations('{observation}')/FeatureOfInterest", herford.admin)["@iot.id"]
    prop = sta_json(node, f"/Datastreams({stream})/ObservedProperty", herford.admin)["@iot.id"]
    absent_stream = 4242424242
    cases = [
        (f"/Things({thing})", "/Things(4242424242)", str(thing), "4242424242"),
        (f"/Things({thing})/Datastreams", "/Things(4242424242)/Datastreams", str(thing), "4242424242"),
        (f"/Datastreams({stream})", f"/Datastreams({absent_stream})", str(stream), str(absent_stream)),
        (f"/Datastreams({stream})/Observations", f"/Datastreams({absent_stream})/Observations", str(stream),
         str(absent_stream)),
        (f"/Observations('{observation}')", f"/Observations('{absent_stream}-{micros(START)}')", str(stream),
         str(absent_stream)),
        (f"/Sensors({staff.sensors['p-geheim']})", "/Sensors(4242424242)", str(staff.sensors["p-geheim"]), "4242424242"),
        (f"/Locations({location})", "/Locations(4242424242)", str(location), "4242424242"),
        (f"/FeaturesOfInterest({feature})", "/FeaturesOfInterest(4242424242)", str(feature), "4242424242"),
        (f"/ObservedProperties({prop})", "/ObservedProperties(4242424242)", str(prop), "4242424242"),
    ]
    for hidden_path, absent_path, hidden_id, absent_id in cases:
        hidden, absent = sta(node, hidden_path), sta(node, absent_path)
        assert absent.status == 404, (absent_path, absent)
        assert hidden.status == absent.status and hidden.text.replace(hidden_id, absent_id) == absent.text, (
            f"{hidden_path} answered {hidden!r}, the absent {absent_path} {absent!r}")
    for text in ("p-geheim", "Geheim", "Geheime Pegel"):
        found = sta_json(node, "/Things" + options(filter=f"substringof('{text}', name) or properties/dataset eq '{text}'",
                                                   count="true"))
        assert found == {"@iot.count": 0, "value": []}


def test_sensorthings_reads_are_audited_per_dataset(herford):
    node = herford.node
    before = len(audit_records(node, dataset="p-offen", subject="anonymous"))
    stream = herford.anonymous.stream(policy_source("p-offen"), "Dalke", "value")
    observations = sta_json(node, f"/Datastreams({stream})/Observations")["value"]
    assert len(observations) == READINGS

    # The latest rows (one a station) for the graph, then the rows the grant released for the
    # Observations (all of the dataset's: the station and the page are chosen past the seal).
    def written():
        records = audit_records(node, dataset="p-offen", subject="anonymous")[before:]
        return records if any(r["rows"] >= READINGS for r in records) else None

    try:
        records = wait_until(written, AUDIT_DEADLINE, "the audit records of the read")
    except TimeoutError:
        records = audit_records(node, dataset="p-offen", subject="anonymous")[before:]
        raise AssertionError(f"no record of the {READINGS} observations read: {records}") from None
    assert any(r["rows"] == len(PEGEL_STATIONS) for r in records), records
    assert {(r["interface"], r["decision"]) for r in records} == {("sensorthings", "permit")}, records
    # A purpose-bound dataset is left out of the listing: not read, and no refusal is
    # recorded for a read the caller never asked for.
    assert [r for r in audit_records(node, dataset="p-zweck", subject="anonymous") if r["interface"] == "sensorthings"] == []
    # Nothing of the internal dataset was read for anonymous callers.
    assert [r for r in audit_records(node, dataset="p-intern", subject="anonymous") if r["decision"] == "permit"] == []
    staff_reads = audit_records(node, dataset="p-intern", subject="admin-token")
    assert any(r["interface"] == "sensorthings" and r["decision"] == "permit" for r in staff_reads), staff_reads


# ---- 6. restarts -----------------------------------------------------------------------------------------


def all_ids(node: Node) -> dict[str, list]:
    out = {name: sorted(e["@iot.id"] for e in every(node, f"/{name}" + options(top=10000)))
           for name in ENTITY_SETS if name != "Observations"}
    out["Observations"] = sorted(o["@iot.id"] for o in every(node, "/Observations" + options(top=10000)))
    return out


def test_ids_and_latest_values_survive_restarts_and_sigkill(tmp_path):
    node = Node(tmp_path / "restart", name="Verl")
    node.start()
    source = Source("pegel-neustart", "Pegel Neustart", "station", "shortname", ["value", "quality"],
                    {"value": "cm", "quality": ""}, pegel_rows())
    write(node, sensor_spec(source.id, source.title, PEGEL_FIELDS, policy={"visibility": "public"}), source.rows)
    ids = ids_of(node)
    before = all_ids(node)
    assert len(before["Things"]) == 3 and len(before["Observations"]) == sum(
        len(source.observations(k, c)) for k in source.stations() for c in source.measures)

    def add(rows: list[dict]) -> None:
        columns = [f["name"] for f in PEGEL_FIELDS]
        response = node.post_rows(source.id, csv_of(rows, columns), "text/csv")
        assert response.status == 200, response
        source.rows.extend(rows)

    def reading(station: str, at: dt.datetime, value: float, lon: float = 8.45, lat: float = 51.92) -> dict:
        return {"time": at, "station": station, "shortname": f"{station} Verl", "value": value, "quality": 2,
                "km": None, "lon": lon, "lat": lat}

    node.restart()  # SIGTERM
    assert all_ids(node) == before
    assert ids_of(node) == ids
    # New rows after the restart, before any SensorThings read: the Dalke's newest moves on,
    # a reading older than the Lutter's newest changes nothing, a new station appears.
    end = START + READINGS * STEP
    add([reading("Dalke", end, 99.5, 8.40, 51.91), reading("Lutter", START - STEP, 1.0),
         reading("Ems", end + STEP, 42.0, 8.33, 51.89)])
    things, _ = masterportal(node)
    ids = ids_of(node)
    assert_masterportal_view(things, [source], ids)
    assert ids.things[("pegel-neustart", "Dalke")] == before_thing(before, ids, "Dalke")

    node.kill9()
    node.start()
    assert ids_of(node) == ids
    add([reading("Aa", end + 2 * STEP, 130.0), reading("Ems", end + 2 * STEP, 43.5)])
    things, _ = masterportal(node)
    assert_masterportal_view(things, [source], ids_of(node))
    assert set(before["Things"]) <= set(all_ids(node)["Things"])


def before_thing(before: dict, ids: Ids, station: str) -> int:
    thing = ids.things[("pegel-neustart", station)]
    assert thing in before["Things"], f"the {station}'s Thing has a new id after the restart"
    return thing
