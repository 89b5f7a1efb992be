"""Regional views (decision 008) on loopback, release binary.

Assembly of a view with `refresh: "0s"` (every request assembles), measured as the time
from the request to the whole table with pyarrow's Flight DoGet of the ticket
{"view": id} (what GetFlightInfo of the descriptor ["views", id] answers; calling that too
could assemble twice), median and p95 of several runs,
with the `took_ms` the view's status reports; against a reference measured in the same
run: pyarrow reading the same sources directly from each node's Flight endpoint in
parallel threads (one thread per node) and concatenating them.

- 5 nodes x 20 stations x 30 days of 15-minute values (288,000 rows)
- 25 nodes x 4 stations, the same 288,000 rows
- 25 nodes x 20 stations (1,440,000 rows)

The view lives on the first node, which also holds a source. Its deadline is generous
(30 s): a source that missed it would make the figure meaningless, so every run checks
that all sources were fresh. Segments are compacted before measuring (the steady state
of reads). Targets: 5 nodes < 300 ms; 25 nodes (same rows) < 2x the 5-node time.
Usage: bench/run (or URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/views_bench.py)
"""
import json
import os
import statistics
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl

from benchlib import federation, put_table, report, wait_for

DAYS = int(os.environ.get("BENCH_VIEW_DAYS", "30"))
RUNS = int(os.environ.get("BENCH_VIEW_RUNS", "15"))
BATCH = 65536
STEP_MS = 15 * 60 * 1000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEPS = DAYS * 24 * 4
# Compact a tail after a second, so that the reads measured come from Parquet segments.
NODE_CONFIG = {"max_tail_age_secs": 1}
SCHEMA = pa.schema([("time", pa.timestamp("ms", tz="UTC")), ("station", pa.string()), ("value", pa.float64()),
                    ("quality", pa.int64())])
VIEW_SCHEMA = {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                          {"name": "value", "type": "float64", "unit": "cm"},
                          {"name": "quality", "type": "int64", "nullable": True}]}


def levels(node_index, stations, seed):
    """`stations` series of STEPS 15-minute water levels, time-sorted."""
    rng = np.random.default_rng(seed)
    rows = STEPS * stations
    names = np.array([f"pegel-{node_index:02d}-{s:02d}" for s in range(stations)])
    return pa.table({
        "time": pa.array(START_MS + np.repeat(np.arange(STEPS, dtype=np.int64) * STEP_MS, stations),
                         pa.timestamp("ms", tz="UTC")),
        "station": pa.array(np.tile(names, STEPS)),
        "value": pa.array(rng.normal(150.0, 40.0, rows)),
        "quality": pa.array(rng.integers(0, 3, rows, dtype=np.int64)),
    }, schema=SCHEMA)


def load(node, index, dataset, keyword, stations):
    """A public water-level dataset found by `keyword`, written with one DoPut; returns its rows."""
    node.call("POST", "/api/v1/datasets", {
        "id": dataset, "title": f"Pegelstände {node.name} {keyword}",
        "description": f"Wasserstände, 15-Minuten-Werte ({keyword})", "time_column": "time", "series_key": "station",
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                              {"name": "value", "type": "float64", "unit": "cm"},
                              {"name": "quality", "type": "int64", "nullable": True}]},
        "keywords": ["Pegel", keyword], "themes": ["ENVI"], "policy": {"visibility": "public"}})
    table = levels(index, stations, seed=index * 1000 + stations)
    acked = put_table(node, dataset, table, BATCH)
    assert acked == table.num_rows, (acked, table.num_rows)
    return table.num_rows


def compacted(nodes, dataset):
    """Every node's `dataset` is in a Parquet segment (each was written by one DoPut of
    fewer rows than a segment holds, so nothing is left in the log's tail)."""
    for node in nodes:
        record = node.call("GET", f"/api/v1/datasets/{dataset}")
        if not record.get("segments"):
            return False
    return True


def prepare(nodes, dataset, keyword, stations):
    """Loads `dataset` on every node, waits for compaction and for the view's node to know
    every member's entry, and creates the view. Returns (view id, rows)."""
    with ThreadPoolExecutor(max_workers=min(len(nodes), 4)) as pool:
        rows = sum(pool.map(lambda item: load(item[1], item[0], dataset, keyword, stations), enumerate(nodes)))
    wait_for(lambda: compacted(nodes, dataset), f"compaction of {dataset}", deadline_s=120, interval=0.2)
    host = nodes[0]
    query = urllib.parse.urlencode({"scope": "federation", "per_page": 100})

    def known():
        hits = host.call("GET", f"/api/v1/search?{query}")["hits"]
        return sum(1 for hit in hits if hit["id"] == dataset) >= len(nodes)

    wait_for(known, f"the {dataset} entries of all {len(nodes)} nodes at {host.name}", deadline_s=120, interval=0.05)
    view_id = f"bench-{keyword.lower()}"
    host.call("POST", "/api/v1/views", {
        "id": view_id, "title": f"Pegelstände {keyword}", "description": "Benchmark view",
        "select": {"keywords": [keyword]}, "schema": VIEW_SCHEMA, "time_column": "time", "series_key": "station",
        "refresh": "0s", "deadline": "30s", "policy": {"visibility": "public"}})
    return view_id, rows


def percentile(values, q):
    return float(np.percentile(np.array(values), q))


def measure(nodes, dataset, view_id, rows, label):
    """Interleaved runs of the view and of the direct reference; returns their times (s)."""
    host = nodes[0]
    view_client = fl.FlightClient(host.addresses["flight"])
    ticket = fl.Ticket(json.dumps({"view": view_id}).encode())
    direct_clients = [fl.FlightClient(node.addresses["flight"]) for node in nodes]
    direct_ticket = fl.Ticket(json.dumps({"dataset": dataset}).encode())
    pool = ThreadPoolExecutor(max_workers=len(nodes))

    def view():
        return view_client.do_get(ticket).read_all()

    def direct():
        return pa.concat_tables(pool.map(lambda client: client.do_get(direct_ticket).read_all(), direct_clients))

    def status():
        return host.call("GET", f"/api/v1/views/{urllib.parse.quote(view_id)}/status")

    def check(table, state, what):
        assert table.num_rows == rows, f"{label}: {what} read {table.num_rows} rows, expected {rows}"
        if state is not None:
            stale = [s for s in state["sources"] if s["status"] != "fresh"]
            assert len(state["sources"]) == len(nodes) and not stale, f"{label}: sources not fresh: {stale}"

    # Warm-up: connections, caches of the file system, the members' TLS sessions; and the
    # descriptor ["views", id] reads what the ticket measured below reads.
    info = view_client.get_flight_info(fl.FlightDescriptor.for_path("views", view_id))
    check(view_client.do_get(info.endpoints[0].ticket).read_all(), None, "the view's descriptor")
    check(view(), status(), "the view")
    check(direct(), None, "the direct reads")
    view_times, took, direct_times = [], [], []
    try:
        for _ in range(RUNS):
            started = time.perf_counter()
            table = view()
            view_times.append(time.perf_counter() - started)
            state = status()
            check(table, state, "the view")
            took.append(state["took_ms"] / 1000)
            started = time.perf_counter()
            table = direct()
            direct_times.append(time.perf_counter() - started)
            check(table, None, "the direct reads")
    finally:
        pool.shutdown()
        view_client.close()
        for client in direct_clients:
            client.close()

    ms = lambda seconds: seconds * 1000  # noqa: E731
    name = f"{label} ({rows:,} rows)"
    print(f"\n{name}, {RUNS} runs", flush=True)
    report("  view DoGet, request to whole table, median", ms(statistics.median(view_times)), "ms",
           reference=ms(statistics.median(direct_times)))
    report("  view DoGet, p95", ms(percentile(view_times, 95)), "ms", reference=ms(percentile(direct_times, 95)))
    report("  view status took_ms, median", ms(statistics.median(took)), "ms")
    report("  view status took_ms, p95", ms(percentile(took, 95)), "ms")
    report("  direct parallel DoGets + concat (reference), median", ms(statistics.median(direct_times)), "ms")
    return {"view": view_times, "took": took, "direct": direct_times}


def main():
    print(f"views_bench: {DAYS} days of 15-minute values, {RUNS} runs per figure, refresh 0s")
    results = {}
    with tempfile.TemporaryDirectory() as root:
        nodes = federation(root, 5, NODE_CONFIG)
        try:
            view_id, rows = prepare(nodes, "pegel20", "Benchzwanzig", 20)
            results["5x20"] = measure(nodes, "pegel20", view_id, rows, "5 nodes x 20 stations")
        finally:
            for node in nodes:
                node.stop()
    with tempfile.TemporaryDirectory() as root:
        nodes = federation(root, 25, NODE_CONFIG)
        try:
            view_id, rows = prepare(nodes, "pegel4", "Benchvier", 4)
            results["25x4"] = measure(nodes, "pegel4", view_id, rows, "25 nodes x 4 stations")
            view_id, rows = prepare(nodes, "pegel20", "Benchzwanzig", 20)
            results["25x20"] = measure(nodes, "pegel20", view_id, rows, "25 nodes x 20 stations")
        finally:
            for node in nodes:
                node.stop()

    five = statistics.median(results["5x20"]["view"])
    print("\nSummary", flush=True)
    report("view over 5 nodes, median", five * 1000, "ms", target="< 300 ms")
    for key, what, target in [("25x4", "25 nodes, same rows (4 stations each)", "< 2x"),
                              ("25x20", "25 nodes, 20 stations each (5x the rows)", None)]:
        median = statistics.median(results[key]["view"])
        report(f"{what} / 5 nodes, median", median / five, "x", target=target)
    for key, what in [("5x20", "5 nodes"), ("25x4", "25 nodes x 4"), ("25x20", "25 nodes x 20")]:
        view = statistics.median(results[key]["view"])
        direct = statistics.median(results[key]["direct"])
        report(f"view / direct parallel reads, {what}, median", view / direct, "x")


if __name__ == "__main__":
    main()
