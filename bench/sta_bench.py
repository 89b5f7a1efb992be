"""SensorThings API (decision 019), release binary, loopback, one node.

A public water-level dataset of 200 stations x 30 days of 15-minute values (576,000 rows,
stored with one DoPut) is read as map portals read it:

- Masterportal's layer request,
  `Things?$expand=Locations,Datastreams/Observations($orderby=phenomenonTime desc;$top=1)`
  (every station, its position and its latest value): goal p99 < 50 ms;
- `Datastreams(<id>)/Observations` of one station for one week (672 values):
  goal p99 < 20 ms.

Each is timed one request after another (a map's poll) and under 16 concurrent clients (wrk).
References measured in the same run on the same rows: DuckDB answering the same question
from the same Arrow table in memory (latest value per station with arg_max; one station's
week with a filter), and the node's own `/healthz` under the same load.
Usage: bench/run (or URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/sta_bench.py)
"""
import datetime
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
import urllib.parse

import duckdb
import pyarrow as pa

from benchlib import OPENER, Node, put_table, report, wait_compacted

STATIONS = int(os.environ.get("BENCH_STA_STATIONS", "200"))
DAYS = int(os.environ.get("BENCH_STA_DAYS", "30"))
REQUESTS = int(os.environ.get("BENCH_STA_REQUESTS", "300"))
CONNECTIONS = 16
DURATION = "10s"
STEP_MS = 15 * 60 * 1000
DATASET = "pegel-sta-bench"
LAYER = "Things?$expand=Locations,Datastreams/Observations($orderby=phenomenonTime%20desc;$top=1)"


def table():
    end = int(time.time() * 1000) // STEP_MS * STEP_MS
    steps = DAYS * 24 * 4
    times = [end - (steps - 1 - i) * STEP_MS for i in range(steps) for _ in range(STATIONS)]
    stations = [f"P-{s:03d}" for _ in range(steps) for s in range(STATIONS)]
    values = [150.0 + 40.0 * ((i + 17 * s) % 96) / 96 for i in range(steps) for s in range(STATIONS)]
    lons = [8.0 + 0.01 * s for _ in range(steps) for s in range(STATIONS)]
    lats = [51.5 + 0.005 * s for _ in range(steps) for s in range(STATIONS)]
    return pa.table({
        "time": pa.array(times, pa.timestamp("ms", tz="UTC")),
        "station": pa.array(stations, pa.string()),
        "value": pa.array(values, pa.float64()),
        "lon": pa.array(lons, pa.float64()),
        "lat": pa.array(lats, pa.float64()),
    })


def get(url):
    with OPENER.open(url, timeout=60) as response:
        return json.loads(response.read())


def latencies(url, n=REQUESTS):
    """(p50, p99) in ms of `n` requests one after another."""
    taken = []
    for _ in range(n):
        start = time.perf_counter()
        with OPENER.open(url, timeout=60) as response:
            response.read()
        taken.append((time.perf_counter() - start) * 1000)
    taken.sort()
    return statistics.median(taken), taken[min(len(taken) - 1, int(len(taken) * 0.99))]


def reference(query, n=REQUESTS):
    taken = []
    for _ in range(n):
        start = time.perf_counter()
        query()
        taken.append((time.perf_counter() - start) * 1000)
    taken.sort()
    return statistics.median(taken), taken[min(len(taken) - 1, int(len(taken) * 0.99))]


def milliseconds(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def hammer(url):
    """wrk with CONNECTIONS clients on one URL: (p50 ms, p99 ms, requests/s)."""
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", url],
                         check=True, capture_output=True, text=True).stdout
    errors = [line for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    assert not errors, f"{url}:\n{out}"
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return milliseconds(percentiles["50"]), milliseconds(percentiles["99"]), rps


def measure(node, rows, where):
    """The layer request and one week of one datastream, one client after another and 16 at
    once, with DuckDB on the same rows and /healthz as references."""
    base = node.http + "/sta/v1.1/"
    layer = base + LAYER + f"&$top={STATIONS}"
    things = get(layer)["value"]
    assert len(things) == STATIONS, len(things)
    assert all(len(t["Datastreams"][0]["Observations"]) == 1 for t in things)
    con = duckdb.connect()
    con.register("rows", rows)
    latest_sql = "SELECT station, arg_max(value, time), max(time), any_value(lon), any_value(lat) FROM rows GROUP BY station"
    assert len(con.execute(latest_sql).fetchall()) == STATIONS
    p50, p99 = latencies(layer)
    ref50, ref99 = reference(lambda: con.execute(latest_sql).fetchall())
    report(f"layer request ({STATIONS} stations + latest), {where}, p50", p50, "ms", reference=ref50)
    report(f"layer request ({STATIONS} stations + latest), {where}, p99", p99, "ms", reference=ref99, target="< 50 ms")

    stream = things[0]["Datastreams"][0]["@iot.id"]
    station = things[0]["name"]
    since = (rows.column("time")[-1].as_py() - datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    week = (base + f"Datastreams({stream})/Observations?"
            + urllib.parse.urlencode({"$filter": f"phenomenonTime gt {since}", "$top": "1000",
                                      "$orderby": "phenomenonTime asc"}))
    assert len(get(week)["value"]) == 7 * 96
    week_sql = (f"SELECT time, value FROM rows WHERE station = '{station}' AND time > TIMESTAMPTZ '{since}' "
                "ORDER BY time")
    assert len(con.execute(week_sql).fetchall()) == 7 * 96
    p50, p99 = latencies(week)
    ref50, ref99 = reference(lambda: con.execute(week_sql).fetchall())
    report(f"one datastream, one week (672 values), {where}, p50", p50, "ms", reference=ref50)
    report(f"one datastream, one week (672 values), {where}, p99", p99, "ms", reference=ref99, target="< 20 ms")

    health = hammer(node.http + "/healthz")
    for name, url in (("layer request", layer), ("one week", week)):
        p50, p99, rps = hammer(url)
        report(f"{name}, {where}, {CONNECTIONS} clients, p50", p50, "ms", reference=health[0])
        report(f"{name}, {where}, {CONNECTIONS} clients, p99", p99, "ms", reference=health[1])
        report(f"{name}, {where}, {CONNECTIONS} clients, throughput", rps, "req/s", reference=health[2])


def main():
    root = tempfile.mkdtemp(prefix="urbanmesh-sta-bench-")
    node = Node(root, "Stadt", {"max_tail_age_secs": 5})
    try:
        node.call("POST", "/api/v1/datasets", {
            "id": DATASET, "title": "Pegelstände Benchmark", "description": "200 Pegel, 15-Minuten-Werte",
            "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                                  {"name": "value", "type": "float64", "unit": "cm"},
                                  {"name": "lon", "type": "float64"}, {"name": "lat", "type": "float64"}]},
            "time_column": "time", "series_key": "station", "geometry": {"lon": "lon", "lat": "lat"},
            "policy": {"visibility": "public"}})
        rows = table()
        acked = put_table(node, DATASET, rows)
        assert acked == rows.num_rows, acked
        print(f"{rows.num_rows:,} rows: {STATIONS} stations x {DAYS} days of 15-minute values", flush=True)
        start = time.perf_counter()
        things = get(node.http + "/sta/v1.1/" + LAYER + f"&$top={STATIONS}")["value"]
        report("layer request, first after start (builds the latest index)", (time.perf_counter() - start) * 1000, "ms")
        assert len(things) == STATIONS, len(things)
        # Fresh rows are still in the log's tail in memory until their segment is written.
        wait_compacted(node, DATASET, rows.num_rows)
        measure(node, rows, "rows in Parquet")
    finally:
        node.stop()


if __name__ == "__main__":
    main()
