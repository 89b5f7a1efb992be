"""The README's main command: `urbanmesh demo` starts five federated towns with data."""
import json
import os
import re
import signal
import subprocess
import urllib.parse

import pyarrow.flight as fl

from conftest import binary, http_request, wait_until

TOWNS = {"guetersloh": "Gütersloh", "bielefeld": "Bielefeld", "herford": "Herford", "detmold": "Detmold",
         "bad-salzuflen": "Bad Salzuflen"}
DEADLINE = 120.0
# Stations per town, as the demo defines them.
STATIONS = {"guetersloh": 3, "bielefeld": 2, "herford": 2, "detmold": 2, "bad-salzuflen": 2}


def start_demo(base, log):
    # As a newcomer runs it: no RUST_LOG of the test run's.
    env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
    env["URBANMESH_STORAGE__BALLAST_BYTES"] = "0"  # five towns, three runs: no ballast on the test disk
    return subprocess.Popen([str(binary()), "demo", "--base-dir", str(base)], stdout=log, stderr=subprocess.STDOUT,
                            env=env)


def addresses(base, slugs=tuple(TOWNS)):
    found = {}
    for slug in slugs:
        path = base / slug / "addresses.json"
        if not path.exists():
            return None
        found[slug] = json.loads(path.read_text())
    return found


def federated_ids(http):
    query = urllib.parse.urlencode({"q": "Pegelstände", "scope": "federation", "per_page": 50})
    try:
        response = http_request("GET", f"{http}/api/v1/search?{query}", None, {}, 10)
    except OSError:  # still starting
        return set()
    if response.status != 200:
        return set()
    return {hit["id"] for hit in response.json()["hits"]}


def knows_current(node, name, other):
    status = http_request("GET", f"{node['http']}/api/v1/federation", None, {}, 10).json()
    return any(m["name"] == name and m.get("peer_flight") == other["peer_flight"] for m in status["members"])


def check_town_centre(base, guetersloh):
    """Herford's pedestrian counts reach Gütersloh's staff as hourly sums over at least ten
    people, without the sensors' serials; Gütersloh's anonymous visitors do not see them."""
    path = "/api/v1/federation/Herford/datasets/passanten-herford/rows?format=json"
    token = (base / "guetersloh" / "admin.token").read_text().strip()
    staff = {"Authorization": f"Bearer {token}"}
    response = wait_until(lambda: (r := http_request("GET", guetersloh["http"] + path, None, staff, 30)).status == 200
                          and r, DEADLINE, "Herford's counts through Gütersloh")
    rows = response.json()
    assert rows and all(row["count"] >= 10 and row["records"] >= 1 for row in rows), rows[:3]
    assert all(row.get("sensor_serial") is None for row in rows), rows[:3]
    assert len(rows) < 30 * 24 * 3, "quiet night hours are left out"
    anonymous = http_request("GET", guetersloh["http"] + path, None, {}, 30)
    assert anonymous.status == 404, anonymous
    weather = http_request("GET", guetersloh["http"] + "/api/v1/federation/Herford/datasets/wetter-herford/rows?format=json",
                           None, {}, 30)
    assert weather.status == 200 and len(weather.json()) == 30 * 24, weather


def view_status(node):
    response = http_request("GET", f"{node['http']}/api/v1/views/pegel-owl/status", None, {}, 30)
    assert response.status == 200, response
    return response.json()


def check_regional_view(node, what):
    """Pegelstände OWL answers on the node with every town's stations of the last week, fresh."""
    towns = sorted(TOWNS.values())
    status = wait_until(lambda: (s := view_status(node)) and sorted(src["node"] for src in s["sources"]
                                                                     if src["status"] == "fresh") == towns and s,
                        DEADLINE, f"{what} to have every town fresh")
    assert all(src["rows"] > 0 for src in status["sources"]), status
    client = fl.FlightClient(node["flight"])
    info = client.get_flight_info(fl.FlightDescriptor.for_path("views", "pegel-owl"))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert sorted(set(table.column("source_node").to_pylist())) == towns
    assert table.num_rows == sum(src["rows"] for src in status["sources"])
    stations = sum(STATIONS.values())
    assert len(set(table.column("uuid").to_pylist())) == stations
    # Seven days of 15-minute steps per station, give or take the steps at the window's edges.
    assert abs(table.num_rows - stations * 7 * 96) <= stations * 2, table.num_rows


def check_printed_sql(log, node):
    """The SQL statement the demo prints runs as printed, anonymously, across the five towns."""
    import adbc_driver_flightsql.dbapi as flight_sql

    printed = re.search(r'cur\.execute\("""(.*?)"""\)', log.read_text(errors="replace"), re.S)
    assert printed, "the demo prints an SQL statement"
    with flight_sql.connect(node["flight"], autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(printed.group(1))
        rows = cursor.fetch_arrow_table().to_pylist()
    assert {row["town"] for row in rows} == set(TOWNS.values()), rows


def check_printed_portals(log, nodes):
    """The demo first names each town's portal, on the fixed ports where they are free, and
    its log is quiet: no INFO lines between the newcomer and the instructions."""
    text = log.read_text(errors="replace")
    portals = re.findall(r"^  (\S[^\n]*?)\s+(http://127\.0\.0\.1:\d+)/$", text.split("Their APIs")[0], re.M)
    assert [name for name, _ in portals] == list(TOWNS.values())[:len(portals)] and len(portals) == len(nodes), portals
    for (name, url), slug in zip(portals, TOWNS):
        assert url == nodes[slug]["http"], (name, url, nodes[slug])
        page = http_request("GET", url + "/", None, {"Accept": "text/html"}, 30)
        assert page.status == 200 and page.content_type.startswith("text/html"), page
    assert " INFO " not in text, "the demo's log is quiet by default"


def check_printed_maps(log, node, town):
    """The map layers the demo prints answer as printed: the town's stations by the
    SensorThings API, each with its latest value, and every town's stations as GeoJSON."""
    text = log.read_text(errors="replace")
    sta = re.search(r"curl '(http://[^']*/sta/v1\.1/Things\?[^']*)'", text)
    geojson = re.search(r"curl '(http://[^']*/latest\.geojson)'", text)
    assert sta and geojson, "the demo prints its map layers"
    things = http_request("GET", sta.group(1), None, {}, 30)
    assert things.status == 200, things
    things = things.json()["value"]
    assert len(things) == STATIONS[town], things
    for thing in things:
        assert thing["Locations"][0]["location"]["type"] == "Point", thing
        level = next(d for d in thing["Datastreams"] if d["unitOfMeasurement"]["symbol"] == "cm")
        assert len(level["Observations"]) == 1, level
    features = http_request("GET", geojson.group(1), None, {}, 30)
    assert features.status == 200 and features.content_type == "application/geo+json", features
    assert len(features.json()["features"]) == sum(STATIONS.values())


def test_demo_starts_five_federated_towns_and_reuses_its_data(tmp_path):
    base = tmp_path / "demo"
    expected = {f"pegel-{slug}" for slug in TOWNS}
    for run in (1, 2):
        with open(tmp_path / f"demo-{run}.log", "wb") as log:
            demo = start_demo(base, log)
            try:
                nodes = wait_until(lambda: addresses(base), DEADLINE, "all five towns to write addresses.json")
                for slug, node in nodes.items():
                    wait_until(lambda node=node: federated_ids(node["http"]) >= expected, DEADLINE,
                               f"{slug} to find every town's water levels")
                    status = http_request("GET", f"{node['http']}/api/v1/federation", None, {}, 10).json()
                    assert status["federation"]["name"] == "Pegelverbund OWL"
                    admitted = sorted(m["name"] for m in status["members"] if m["status"] == "admitted")
                    assert admitted == sorted(TOWNS.values()), admitted

                # On the second run every town has new ports: Gütersloh learns Detmold's.
                wait_until(lambda: knows_current(nodes["guetersloh"], "Detmold", nodes["detmold"]), DEADLINE,
                           "Gütersloh to know Detmold's current member endpoint")
                # Detmold's Werre through Gütersloh's node, as the printed snippet does it.
                client = fl.FlightClient(nodes["guetersloh"]["flight"])
                info = client.get_flight_info(fl.FlightDescriptor.for_path("remote", "Detmold", "pegel-detmold"))
                table = client.do_get(info.endpoints[0].ticket).read_all()
                assert table.num_rows == 2 * 30 * 96
                assert set(table.column("water").to_pylist()) == {"Werre", "Berlebecke"}
                assert "high" in table.column("state").to_pylist(), "the flood wave reaches Detmold"
                # Shaped like PEGELONLINE's stations and measurements.
                for column in ("uuid", "number", "shortname", "longname", "km", "agency", "lon", "lat", "value",
                               "gauge_zero"):
                    assert column in table.column_names, (column, table.column_names)
                assert len(set(table.column("uuid").to_pylist())) == 2
                check_printed_sql(tmp_path / f"demo-{run}.log", nodes["guetersloh"])
                check_printed_maps(tmp_path / f"demo-{run}.log", nodes["guetersloh"], "guetersloh")
                check_printed_portals(tmp_path / f"demo-{run}.log", nodes)
                check_town_centre(base, nodes["guetersloh"])
                for slug, node in nodes.items():
                    check_regional_view(node, f"{slug}'s Pegelstände OWL")
            finally:
                demo.send_signal(signal.SIGINT)
                assert demo.wait(timeout=60) == 0
        text = (tmp_path / f"demo-{run}.log").read_text(errors="replace")
        assert "pegel-detmold" in text and "Pegelverbund OWL" in text
    # The second run found its data: still one water-level dataset per town.
    assert not (base / "guetersloh" / "addresses.json").exists()


def test_demo_starts_as_many_towns_as_asked(tmp_path):
    base = tmp_path / "demo"
    with open(tmp_path / "demo.log", "wb") as log:
        demo = subprocess.Popen([str(binary()), "demo", "--base-dir", str(base), "--nodes", "2"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            nodes = wait_until(lambda: addresses(base, ("guetersloh", "bielefeld")), DEADLINE, "two towns to write addresses.json")
            wait_until(lambda: federated_ids(nodes["guetersloh"]["http"]) >= {"pegel-guetersloh", "pegel-bielefeld"},
                       DEADLINE, "Gütersloh to find Bielefeld's water levels")
        finally:
            demo.send_signal(signal.SIGINT)
            assert demo.wait(timeout=60) == 0
    assert sorted(p.name for p in base.iterdir()) == ["bielefeld", "guetersloh"]
    text = (tmp_path / "demo.log").read_text(errors="replace")
    assert "of 2 towns" in text and "pegel-bielefeld" in text, text[-2000:]
    refused = subprocess.run([str(binary()), "demo", "--base-dir", str(base), "--nodes", "6"], capture_output=True)
    assert refused.returncode != 0 and b"--nodes" in refused.stderr

