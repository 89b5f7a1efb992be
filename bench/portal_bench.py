"""Portal pages (decision 009) under many concurrent clients, release binary, loopback.

Five nodes in one federation, each with a public water-level dataset (3 stations, 7 days of
15-minute values with lon/lat and state), and a public regional view over the five on the
first node (refresh 1m, the default: visitors within a minute share one assembly). Each
page is loaded with `wrk` (200 connections, 2 threads, 10 s, a browser's Accept header):

- home `/`, search `/search?q=Pegel`, dataset page `/datasets/<id>`, regional dashboard
  `/views/<id>` — p50, p99 and requests/s each; target p99 < 50 ms;
- reference, measured in the same run under the same load: the node's own `/healthz`
  (the HTTP stack without any work), before and after the pages.

Every page is fetched once before its run (it must be HTML, status 200; the dashboard's
first assembly happens there). A run with non-2xx answers or socket errors fails.
Usage: bench/run (or URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/portal_bench.py)
"""
import os
import re
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from benchlib import OPENER, federation, report, wait_for

CONNECTIONS = int(os.environ.get("BENCH_PORTAL_CONNECTIONS", "200"))
THREADS = int(os.environ.get("BENCH_PORTAL_THREADS", "2"))
DURATION = os.environ.get("BENCH_PORTAL_DURATION", "10s")
NODES = 5
STATIONS = 3
DAYS = 7
STEP_MS = 15 * 60 * 1000
VIEW = "pegel-portal-bench"
KEYWORD = "Portalbench"
TARGET_P99_MS = 50.0
ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
STATES = ("low", "normal", "high")


def load(node, index):
    """A public water-level dataset of `node` with a point geometry; returns its id."""
    dataset = f"pegel-bench-{index:02d}"
    node.call("POST", "/api/v1/datasets", {
        "id": dataset, "title": f"Pegelstände {node.name}",
        "description": f"Wasserstände in {node.name}, 15-Minuten-Werte ({KEYWORD})",
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                              {"name": "value", "type": "float64", "unit": "cm"},
                              {"name": "lon", "type": "float64"}, {"name": "lat", "type": "float64"},
                              {"name": "state", "type": "utf8"}]},
        "time_column": "time", "series_key": "station", "geometry": {"lon": "lon", "lat": "lat"},
        "keywords": ["Pegel", KEYWORD], "themes": ["ENVI"], "accrual_periodicity": "15MIN",
        "licence": "dl-by-de/2.0", "attribution": f"Stadt {node.name}", "policy": {"visibility": "public"}})
    end = int(time.time() * 1000) // STEP_MS * STEP_MS
    steps = DAYS * 24 * 4
    rows = []
    for i in range(steps):
        for s in range(STATIONS):
            value = 150.0 + 40.0 * ((i + 17 * s) % 96) / 96
            rows.append({"time": end - (steps - 1 - i) * STEP_MS, "station": f"P-{index:02d}-{s}", "value": value,
                         "lon": 8.3 + 0.1 * index + 0.02 * s, "lat": 51.8 + 0.05 * index + 0.01 * s,
                         "state": STATES[(i // 96 + s) % 3]})
    node.call("POST", f"/api/v1/datasets/{dataset}/rows", rows)
    return dataset


def fetch(url):
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with OPENER.open(request, timeout=60) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def milliseconds(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def hammer(url):
    """wrk with CONNECTIONS clients on one URL: (p50 ms, p99 ms, requests/s)."""
    out = subprocess.run(["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", "-H",
                          f"Accept: {ACCEPT}", url], check=True, capture_output=True, text=True).stdout
    errors = [line for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    assert not errors, f"{url}:\n{out}"
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return milliseconds(percentiles["50"]), milliseconds(percentiles["99"]), rps


def main():
    root = tempfile.mkdtemp(prefix="urbanmesh-portal-bench-")
    nodes = federation(root, NODES)
    try:
        datasets = [load(node, index) for index, node in enumerate(nodes)]
        host = nodes[0]

        def replicated():
            query = urllib.parse.urlencode({"q": KEYWORD, "scope": "federation", "per_page": 100})
            hits = host.call("GET", f"/api/v1/search?{query}")["hits"]
            return set(datasets) <= {hit["id"] for hit in hits}
        wait_for(replicated, f"{host.name} to learn every node's dataset", 120)
        host.call("POST", "/api/v1/views", {
            "id": VIEW, "title": "Pegelstände Benchmark", "description": "Alle Pegel der Knoten",
            "select": {"keywords": [KEYWORD]},
            "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                                  {"name": "value", "type": "float64", "unit": "cm"},
                                  {"name": "lon", "type": "float64", "nullable": True},
                                  {"name": "lat", "type": "float64", "nullable": True},
                                  {"name": "state", "type": "utf8", "nullable": True}]},
            "time_column": "time", "series_key": "station", "window": "7d", "refresh": "1m", "deadline": "2s",
            "keywords": ["Pegel"], "themes": ["ENVI"], "policy": {"visibility": "public"}})

        pages = [("home", "/"), ("search", "/search?q=Pegel"), ("dataset page", f"/datasets/{datasets[0]}"),
                 ("regional dashboard", f"/views/{VIEW}")]
        for name, path in pages:
            status, content_type, body = fetch(host.http + path)
            assert status == 200 and content_type.startswith("text/html"), (path, status, content_type)
            assert b"<h1" in body, (path, body[:300])
            print(f"{name:<20} {path:<40} {len(body):>8,} bytes", flush=True)

        reference = hammer(host.http + "/healthz")
        results = {name: hammer(host.http + path) for name, path in pages}
        after = hammer(host.http + "/healthz")
        ref = reference
        print(f"reference /healthz before: p50 {reference[0]:.2f} ms, p99 {reference[1]:.2f} ms, "
              f"{reference[2]:,.0f} req/s; after: p50 {after[0]:.2f} ms, p99 {after[1]:.2f} ms, {after[2]:,.0f} req/s")
        for name, (p50, p99, rps) in results.items():
            label = f"portal {name}, {CONNECTIONS} clients"
            report(f"{label}, p50", p50, "ms", reference=ref[0])
            report(f"{label}, p99", p99, "ms", reference=ref[1], target=f"< {TARGET_P99_MS:g} ms")
            report(f"{label}, throughput", rps, "req/s", reference=ref[2])
        missed = [name for name, (_, p99, _) in results.items() if p99 >= TARGET_P99_MS]
        print(f"p99 < {TARGET_P99_MS:g} ms: " + (f"missed by {', '.join(missed)}" if missed else "met by every page"),
              flush=True)
    finally:
        for node in nodes:
            node.stop()


if __name__ == "__main__":
    main()
