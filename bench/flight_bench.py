"""Benchmarks of one node against pyarrow's own Flight server, measured in the same run.

Prints each figure with the reference and the ratio; see BENCHMARKS.md for recorded runs.
Usage: bench/run (builds the release binary, starts the node, runs this).
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl

from benchlib import OPENER, put_table, report, rss_mb, wait_for

BIN = os.environ.get("URBANMESH_BIN", "target/release/urbanmesh")
ROWS = int(os.environ.get("BENCH_ROWS", "10000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
BATCH = 65536
SCHEMA = pa.schema([
    ("time", pa.timestamp("ms", tz="UTC")), ("station", pa.string()),
    ("value", pa.float64()), ("quality", pa.int64()),
])


class Node:
    def __init__(self, root):
        self.dir = os.path.join(root, "node")
        subprocess.run([BIN, "init", "--data-dir", self.dir, "--name", "Bench"], check=True,
                       stdout=subprocess.DEVNULL)
        self.token = open(os.path.join(self.dir, "admin.token")).read().strip()

    def start(self):
        addresses = os.path.join(self.dir, "addresses.json")
        started = time.monotonic()
        self.log = open(os.path.join(self.dir, "node.log"), "ab")
        self.proc = subprocess.Popen([BIN, "run", "--data-dir", self.dir, "--http", "127.0.0.1:0",
                                      "--flight", "127.0.0.1:0"], stderr=self.log)
        wait_for(lambda: os.path.exists(addresses), "addresses.json")
        self.addresses = json.load(open(addresses))
        self.http = self.addresses["http"]
        wait_for(lambda: self.get("/readyz") == 200, "readyz")
        return time.monotonic() - started

    def get(self, path):
        try:
            with OPENER.open(self.http + path, timeout=5) as response:
                return response.status
        except OSError:
            return None

    def request(self, method, path, body=None, content_type="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.http + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type})
        with OPENER.open(req, timeout=600) as response:
            return json.loads(response.read() or b"null")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def reference_server_process(table_path, port_file):
    """pyarrow's own Flight server, serving the same table from memory, in its own process."""
    code = f"""
import pyarrow as pa, pyarrow.flight as fl
table = pa.ipc.open_file({table_path!r}).read_all()
class Server(fl.FlightServerBase):
    def do_get(self, context, ticket):
        return fl.RecordBatchStream(table)
server = Server("grpc://127.0.0.1:0")
open({port_file!r}, "w").write(str(server.port))
server.serve()
"""
    return subprocess.Popen([sys.executable, "-c", code])


def synthetic_table(rows):
    rng = np.random.default_rng(42)
    stations = np.array([f"station-{i:03d}" for i in range(100)])
    start = 1_767_225_600_000
    return pa.table({
        "time": pa.array(start + np.arange(rows, dtype=np.int64) * 900_000 // 100, pa.timestamp("ms", tz="UTC")),
        "station": pa.array(stations[np.arange(rows) % 100]),
        "value": pa.array(rng.normal(120.0, 30.0, rows)),
        "quality": pa.array(rng.integers(0, 3, rows, dtype=np.int64)),
    }, schema=SCHEMA)


def timed(fn, repeat=REPEAT):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), result


def main():
    root = tempfile.mkdtemp(prefix="urbanmesh-bench-")
    node = Node(root)
    startup = [node.start()]
    idle_rss = rss_mb(node.proc.pid)
    node.stop()
    for _ in range(REPEAT - 1):
        startup.append(node.start())
        node.stop()
    node.start()
    report("start to ready (median)", statistics.median(startup) * 1000, "ms", target="< 1000 ms")
    report("idle RSS, empty node", idle_rss, "MB", target="< 80 MB")

    node.request("POST", "/api/v1/datasets", {
        "id": "series", "title": "Synthetic series", "description": "Synthetic measurements for the benchmark",
        "time_column": "time", "series_key": "station",
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                              {"name": "value", "type": "float64"}, {"name": "quality", "type": "int64"}]},
        "policy": {"visibility": "public"}})
    table = synthetic_table(ROWS)
    client = fl.FlightClient(node.addresses["flight"])
    options = fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {node.token}".encode())])

    # Durable batched ingest: every 64k-row batch acknowledged after fsync.
    started = time.perf_counter()
    acked = put_table(node, "series", table, BATCH)
    ingest_s = time.perf_counter() - started
    assert acked == ROWS, (acked, ROWS)
    report("DoPut durable ingest, 64k-row batches", ROWS / ingest_s, "rows/s", target=">= 1,000,000 rows/s")

    # Let compaction move everything into Parquet segments, the steady state for reads.
    wait_for(lambda: node.request("GET", "/api/v1/datasets/series")["segments"] >= ROWS // 1_000_000,
             "compaction", deadline_s=600)
    report("idle RSS after ingest", rss_mb(node.proc.pid), "MB")

    table_path = os.path.join(root, "table.arrow")
    with pa.OSFile(table_path, "wb") as sink, pa.ipc.new_file(sink, SCHEMA) as ipc:
        ipc.write_table(table)
    port_file = os.path.join(root, "port")
    reference = reference_server_process(table_path, port_file)
    try:
        port = wait_for(lambda: os.path.exists(port_file) and open(port_file).read(), "reference server")
        ref_client = fl.FlightClient(f"grpc://127.0.0.1:{port}")
        nbytes = table.nbytes

        def node_get():
            info = client.get_flight_info(fl.FlightDescriptor.for_path("series"))
            return client.do_get(info.endpoints[0].ticket).read_all()

        def reference_get():
            return ref_client.do_get(fl.Ticket(b"series")).read_all()

        node_s, node_best, got = timed(node_get)
        assert got.num_rows == ROWS
        ref_s, ref_best, ref = timed(reference_get)
        assert ref.num_rows == ROWS
        report("DoGet 10M rows: node (Parquet segments), median", nbytes / node_s / 1e6, "MB/s",
               reference=nbytes / ref_s / 1e6, target=">= 0.8x reference, >= 1000 MB/s")
        report("DoGet 10M rows: node, best", nbytes / node_best / 1e6, "MB/s", reference=nbytes / ref_best / 1e6)

        # Reads under a grant, against the owner's staff reading the same dataset as stored
        # with no grant applied, interleaved round by round in one run: the grant
        # (mask a column and filter rows, with a filter every row passes, so that both reads
        # move the same rows), then each half alone to tell their costs apart.
        def staff_get():
            info = client.get_flight_info(fl.FlightDescriptor.for_path("series"), options=options)
            return client.do_get(info.endpoints[0].ticket, options=options).read_all()

        grants = [("mask + row filter", {"masked": ["quality"], "row_filter": "value > -1e300"}),
                  ("mask only", {"masked": ["quality"]}),
                  ("row filter only", {"row_filter": "value > -1e300"})]
        for name, rule in grants:
            node.request("PUT", "/api/v1/datasets/series/policy",
                         {"visibility": "public", "rules": [{"assignee": "anyone", **rule}]})
            staff_times, shaped_times = [], []
            for _ in range(REPEAT):
                for read, times in ((staff_get, staff_times), (node_get, shaped_times)):
                    started = time.perf_counter()
                    got = read()
                    times.append(time.perf_counter() - started)
                    assert got.num_rows == ROWS
            if "masked" in rule:
                assert got.column("quality").null_count == ROWS, "the shaped read masks quality"
            staff_s, shaped_s = statistics.median(staff_times), statistics.median(shaped_times)
            report(f"DoGet 10M rows under a grant ({name}), median", nbytes / shaped_s / 1e6, "MB/s",
                   reference=nbytes / staff_s / 1e6, target="overhead <= 10% against staff reading as stored")
            report("  grant overhead (median time, grant / staff)", (shaped_s / staff_s - 1) * 100, "%")
            report("  grant overhead (best time)", (min(shaped_times) / min(staff_times) - 1) * 100, "%")
        node.request("PUT", "/api/v1/datasets/series/policy", {"visibility": "public"})

        filtered = {"dataset": "series", "columns": ["time", "value"], "filter": "station = 'station-007'",
                    "from": "2026-01-01T06:00:00Z", "to": "2026-01-05T00:00:00Z"}

        def node_filtered():
            info = client.get_flight_info(fl.FlightDescriptor.for_command(json.dumps(filtered)))
            return client.do_get(info.endpoints[0].ticket).read_all()

        filtered_s, _, part = timed(node_filtered)
        report(f"DoGet with time range + filter ({part.num_rows} rows), median", filtered_s * 1000, "ms")

        # REST JSON of the same rows, per row rate against Flight's.
        json_rows = min(ROWS, 1_000_000)

        def rest_json():
            with OPENER.open(f"{node.http}/api/v1/datasets/series/rows?format=json&limit={json_rows}",
                                        timeout=600) as response:
                size = 0
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                return size

        json_s, _, json_bytes = timed(rest_json, repeat=max(1, REPEAT // 2))
        flight_rows_per_s = ROWS / node_s
        json_rows_per_s = json_rows / json_s
        report(f"REST JSON ({json_rows:,} rows, {json_bytes / 1e6:,.0f} MB), median", json_rows_per_s, "rows/s")
        report("Flight vs REST JSON speed-up (rows/s)", flight_rows_per_s / json_rows_per_s, "x", target=">= 20x")
    finally:
        reference.kill()
        reference.wait()
    single_row_http(node)
    node.stop()


def single_row_http(node):
    """64 concurrent clients, one row per request, each acknowledged after fsync (wrk)."""
    before = node.request("GET", "/api/v1/datasets/series")["rows"]
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "one_row.lua")
    out = subprocess.run(["wrk", "-t2", "-c64", "-d10s", "-s", script, f"{node.http}/api/v1/datasets/series/rows",
                          "--", node.token], check=True, capture_output=True, text=True).stdout
    after = node.request("GET", "/api/v1/datasets/series")["rows"]
    errors = [line for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    assert not errors, out
    seconds = float(next(l for l in out.splitlines() if "requests in" in l).split("requests in")[1].split("s,")[0])
    report("HTTP one row per request, 64 clients, durable", (after - before) / seconds, "rows/s",
           target=">= 20,000 rows/s")


if __name__ == "__main__":
    main()
