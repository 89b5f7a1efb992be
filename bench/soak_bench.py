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

Prints one line per minute (rows, segments, files, WAL/sled bytes, segment bytes, RSS) and
a summary; the run's length is BENCH_SOAK_MINUTES (60).
Usage: URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/soak_bench.py
"""
import json
import os
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from benchlib import OPENER, Node, rss_mb

MINUTES = float(os.environ.get("BENCH_SOAK_MINUTES", "60"))
STATIONS = 50
SEND_EVERY_S = 15.0
DATASET = "pegel-soak"


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


def main():
    root = tempfile.mkdtemp(prefix="urbanmesh-soak-")
    node = Node(root, "Stadt", {"max_tail_age_secs": 60})
    stop = threading.Event()
    counts = {"rows": 0, "reads": 0, "errors": 0}
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
                        counts["errors"] += 1
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
                        counts["errors"] += 1
                n += 1
                stop.wait(1.0)

        threads = [threading.Thread(target=sensors, daemon=True), threading.Thread(target=readers, daemon=True)]
        for thread in threads:
            thread.start()
        meta, segments = os.path.join(node.dir, "meta"), os.path.join(node.dir, "segments")
        print("minute  rows_sent  reads  errors  segments  segment_files  sled_MB  segments_MB  rss_MB", flush=True)
        samples = []
        started = time.monotonic()
        minute = 0
        while time.monotonic() - started < MINUTES * 60:
            time.sleep(60 - (time.monotonic() - started) % 60)
            minute += 1
            record = node.call("GET", f"/api/v1/datasets/{DATASET}")
            sample = (minute, counts["rows"], counts["reads"], counts["errors"], record.get("segments", 0),
                      files(segments), du(meta) / 1e6, du(segments) / 1e6, rss_mb(node.proc.pid))
            samples.append(sample)
            print("{:>6}  {:>9}  {:>5}  {:>6}  {:>8}  {:>13}  {:>7.1f}  {:>11.2f}  {:>6.1f}".format(*sample), flush=True)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        first, last = samples[0], samples[-1]
        print(f"\nafter {last[0]} minutes: {last[1]:,} rows in {counts['rows'] // STATIONS} rounds, {last[2]:,} reads, "
              f"{last[3]} errors; segments {last[4]} ({last[5]} files, most {max(s[5] for s in samples)}); "
              f"sled {first[6]:.1f} -> {last[6]:.1f} MB (most {max(s[6] for s in samples):.1f}); "
              f"segments {last[7]:.2f} MB; RSS {first[8]:.0f} -> {last[8]:.0f} MB (most {max(s[8] for s in samples):.0f})",
              flush=True)
    finally:
        stop.set()
        node.stop()


if __name__ == "__main__":
    main()
