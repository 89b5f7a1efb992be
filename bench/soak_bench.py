"""Months of uptime, compressed into an hour (issue 19): one node, release build, a
trickle of sensor rows and steady reads, with the space the access log, the write-ahead
log and the segments take, and the node's memory, sampled every minute.

- 50 stations send a row every 15 s each (200 rows/min, one request per station and
  reading, durable before it is acknowledged);
- a reader asks every second for the latest hour of one station (REST), the SensorThings
  layer (every 10 s) and the portal's dataset page (every 10 s): each read writes an
  access-log record;
- `max_tail_age_secs = 60`, so the tail becomes a small segment every minute: the
  segments merge (decision 021) instead of piling up.

Prints one line per minute (rows, reads, refused writes, segments, files, segment bytes,
database bytes, RSS) and a summary, and writes the same samples to `soak-<date>.csv` and a
chart of RSS and disk use (database + segment files) to `soak-<date>.svg` in `--out`
(docs/bench). The run's length is BENCH_SOAK_MINUTES (60).
Usage: URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/soak_bench.py [--out DIR]
"""
import argparse
import csv
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from benchlib import OPENER, Node, rss_mb, svg_line_chart

MINUTES = float(os.environ.get("BENCH_SOAK_MINUTES", "60"))
STATIONS = 50
SEND_EVERY_S = 15.0
DATASET = "pegel-soak"
COLUMNS = ["minute", "rows_sent", "reads", "refused", "failed_reads", "segments", "segment_files", "segment_bytes",
           "database_bytes", "rss_mb"]


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def files(path):
    return sum(len(names) for _, _, names in os.walk(path))


def post(node, rows):
    request = urllib.request.Request(node.http + f"/api/v1/datasets/{DATASET}/rows", data=json.dumps(rows).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {node.token}",
                                                             "Content-Type": "application/json"})
    with OPENER.open(request, timeout=30) as response:
        response.read()


def get(url):
    with OPENER.open(url, timeout=30) as response:
        response.read()


def chart(path, samples):
    """RSS and disk use (database + segment files) over the minutes of the run."""
    svg_line_chart(path, f"Soak: {samples[-1]['rows_sent']:,} rows and {samples[-1]['reads']:,} reads in "
                         f"{samples[-1]['minute']} minutes", "minutes",
                   [s["minute"] for s in samples],
                   [("RSS (MB)", {"RSS": [s["rss_mb"] for s in samples]}),
                    ("disk use (MB)", {"database + segments": [(s["database_bytes"] + s["segment_bytes"]) / 1e6
                                                               for s in samples],
                                       "database": [s["database_bytes"] / 1e6 for s in samples],
                                       "segment files": [s["segment_bytes"] / 1e6 for s in samples]})])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "docs", "bench"),
                        help="directory for soak-<date>.csv and .svg")
    out = parser.parse_args().out
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, "soak-" + time.strftime("%Y-%m-%d"))
    root = tempfile.mkdtemp(prefix="urbanmesh-soak-")
    node = Node(root, "Stadt", {"max_tail_age_secs": 60})
    stop = threading.Event()
    counts = {"rows": 0, "reads": 0, "refused": 0, "failed_reads": 0}
    try:
        node.call("POST", "/api/v1/datasets", {
            "id": DATASET, "title": "Pegel Dauerlauf", "description": "50 Pegel, alle 15 Sekunden",
            "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                                  {"name": "value", "type": "float64", "unit": "cm"},
                                  {"name": "lon", "type": "float64"}, {"name": "lat", "type": "float64"}]},
            "time_column": "time", "series_key": "station", "geometry": {"lon": "lon", "lat": "lat"},
            "policy": {"visibility": "public"}})

        def sensors():
            tick = 0
            while not stop.is_set():
                started = time.monotonic()
                now = int(time.time() * 1000)
                for s in range(STATIONS):
                    row = {"time": now, "station": f"P-{s:02d}", "value": 100.0 + (tick + s) % 40,
                           "lon": 8.0 + 0.01 * s, "lat": 52.0}
                    try:
                        post(node, [row])
                        counts["rows"] += 1
                    except Exception:
                        counts["refused"] += 1
                tick += 1
                stop.wait(max(0.0, SEND_EVERY_S - (time.monotonic() - started)))

        def readers():
            n = 0
            while not stop.is_set():
                since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
                query = urllib.parse.urlencode({"from": since, "filter": f"station = 'P-{n % STATIONS:02d}'"})
                urls = [node.http + f"/api/v1/datasets/{DATASET}/rows?{query}"]
                if n % 10 == 0:
                    urls.append(node.http + "/sta/v1.1/Things?$expand=Locations,Datastreams/Observations("
                                "$orderby=phenomenonTime%20desc;$top=1)")
                    urls.append(node.http + f"/datasets/{DATASET}")
                for url in urls:
                    try:
                        get(url)
                        counts["reads"] += 1
                    except Exception:
                        counts["failed_reads"] += 1
                n += 1
                stop.wait(1.0)

        meta, segments = os.path.join(node.dir, "meta"), os.path.join(node.dir, "segments")
        samples = []

        def sample(minute):
            record = node.call("GET", f"/api/v1/datasets/{DATASET}")
            samples.append({"minute": minute, "rows_sent": counts["rows"], "reads": counts["reads"],
                            "refused": counts["refused"], "failed_reads": counts["failed_reads"],
                            "segments": record.get("segments", 0), "segment_files": files(segments),
                            "segment_bytes": du(segments), "database_bytes": du(meta),
                            "rss_mb": round(rss_mb(node.proc.pid), 1)})
            with open(stem + ".csv", "w", newline="") as file:
                writer = csv.DictWriter(file, COLUMNS)
                writer.writeheader()
                writer.writerows(samples)
            chart(stem + ".svg", samples)
            s = samples[-1]
            print(f"{minute:>6}  {s['rows_sent']:>9}  {s['reads']:>5}  {s['refused']:>7}  {s['failed_reads']:>12}  "
                  f"{s['segments']:>8}  {s['segment_files']:>13}  {s['segment_bytes'] / 1e6:>11.2f}  "
                  f"{s['database_bytes'] / 1e6:>11.1f}  {s['rss_mb']:>6.1f}", flush=True)

        print("minute  rows_sent  reads  refused  failed_reads  segments  segment_files  segments_MB  database_MB  "
              "rss_MB", flush=True)
        sample(0)
        threads = [threading.Thread(target=sensors, daemon=True), threading.Thread(target=readers, daemon=True)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        minute = 0
        while time.monotonic() - started < MINUTES * 60:
            time.sleep(60 - (time.monotonic() - started) % 60)
            minute += 1
            sample(minute)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        first, last = samples[1], samples[-1]

        def most(key):
            return max(s[key] for s in samples)
        print(f"\nafter {last['minute']} minutes: {last['rows_sent']:,} rows in {last['rows_sent'] // STATIONS} "
              f"rounds, {last['reads']:,} reads, {last['refused']} writes refused, "
              f"{last['failed_reads']} reads failed; "
              f"segments {last['segments']} ({last['segment_files']} files, most {most('segment_files')}); "
              f"database {first['database_bytes'] / 1e6:.1f} -> {last['database_bytes'] / 1e6:.1f} MB "
              f"(most {most('database_bytes') / 1e6:.1f}); segments {last['segment_bytes'] / 1e6:.2f} MB; "
              f"RSS {first['rss_mb']:.0f} -> {last['rss_mb']:.0f} MB (most {most('rss_mb'):.0f}); "
              f"{stem}.csv, {stem}.svg", flush=True)
    finally:
        stop.set()
        node.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
