"""Federation benchmarks on loopback, release binary.

- Time until a catalogue change is searchable on every peer (5, 10, 25 nodes).
- Remote DoGet through the members' mutual-TLS path against a local DoGet of the same data.
- Memory per connected peer.
Usage: bench/run (or URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/federation_bench.py)
"""
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl

from benchlib import OPENER, rss_mb, wait_for

BIN = os.environ.get("URBANMESH_BIN", "target/release/urbanmesh")
SIZES = [int(n) for n in os.environ.get("BENCH_FEDERATION_SIZES", "5,10,25").split(",")]
CHANGES = int(os.environ.get("BENCH_CHANGES", "5"))
ROWS = int(os.environ.get("BENCH_REMOTE_ROWS", "2000000"))


class Node:
    def __init__(self, root, name):
        self.name = name
        self.dir = os.path.join(root, name)
        subprocess.run([BIN, "init", "--data-dir", self.dir, "--name", name], check=True, stdout=subprocess.DEVNULL)
        self.token = open(os.path.join(self.dir, "admin.token")).read().strip()
        self.log = open(os.path.join(self.dir, "node.log"), "ab")
        self.proc = subprocess.Popen([BIN, "run", "--data-dir", self.dir, "--http", "127.0.0.1:0",
                                      "--flight", "127.0.0.1:0"], stderr=self.log)
        path = os.path.join(self.dir, "addresses.json")
        wait_for(lambda: os.path.exists(path), "addresses.json")
        self.addresses = json.load(open(path))
        self.http = self.addresses["http"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.http + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with OPENER.open(request, timeout=30) as response:
            text = response.read()
            return json.loads(text) if text else None

    def found(self, title):
        query = urllib.parse.urlencode({"q": f'"{title}"', "scope": "federation"})
        return self.call("GET", f"/api/v1/search?{query}")["total"] > 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def federation(root, n):
    nodes = [Node(root, f"Stadt-{i:02d}") for i in range(n)]
    for node in nodes[1:]:
        invitation = nodes[0].call("POST", "/api/v1/federation/invitations", {"name": node.name})["invitation"]
        node.call("POST", "/api/v1/federation/join", {"invitation": invitation})

    def converged():
        for node in nodes:
            members = node.call("GET", "/api/v1/federation")["members"]
            if sum(1 for m in members if m["status"] == "admitted" and m["connected"]) < n:
                return False
        return True
    wait_for(converged, f"{n} nodes converge", 120)
    return nodes


def propagation(nodes, rounds):
    times = []
    for r in range(rounds):
        title = f"Messreihe {len(nodes)}-{r} {time.monotonic_ns()}"
        spec = {"id": f"bench-{r}", "title": title, "description": "Benchmark",
                "schema": {"fields": [{"name": "v", "type": "float64"}]}, "policy": {"visibility": "federation"}}
        started = time.monotonic()
        nodes[0].call("POST", "/api/v1/datasets", spec)
        pending = set(range(1, len(nodes)))
        while pending:
            pending = {i for i in pending if not nodes[i].found(title)}
            if time.monotonic() - started > 30:
                raise TimeoutError("propagation")
        times.append(time.monotonic() - started)
    return times


def remote_throughput(nodes):
    origin, reader = nodes[0], nodes[1]
    schema = pa.schema([("time", pa.timestamp("ms", tz="UTC")), ("station", pa.string()), ("value", pa.float64())])
    origin.call("POST", "/api/v1/datasets", {
        "id": "series", "title": "Series", "description": "Synthetic series", "time_column": "time",
        "series_key": "station", "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"},
                                                        {"name": "station", "type": "utf8"},
                                                        {"name": "value", "type": "float64"}]},
        "policy": {"visibility": "public"}})
    rng = np.random.default_rng(7)
    table = pa.table({
        "time": pa.array(np.arange(ROWS, dtype=np.int64) * 60_000 + 1_767_225_600_000, pa.timestamp("ms", tz="UTC")),
        "station": pa.array([f"s{i % 100}" for i in range(ROWS)]),
        "value": rng.normal(100, 10, ROWS),
    }, schema=schema)
    options = fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {origin.token}".encode())])
    client = fl.FlightClient(origin.addresses["flight"])
    writer, _ = client.do_put(fl.FlightDescriptor.for_path("series"), schema, options=options)
    for batch in table.to_batches(65536):
        writer.write_batch(batch)
    writer.done_writing()
    writer.close()
    wait_for(lambda: reader.call("GET", "/api/v1/search?q=Series&scope=federation")["total"] > 0, "replica")
    nbytes = table.nbytes

    def read(address, descriptor):
        flight = fl.FlightClient(address)
        info = flight.get_flight_info(descriptor)
        started = time.monotonic()
        got = flight.do_get(info.endpoints[0].ticket).read_all()
        assert got.num_rows == ROWS, got.num_rows
        return nbytes / (time.monotonic() - started) / 1e6

    local = [read(origin.addresses["flight"], fl.FlightDescriptor.for_path("series")) for _ in range(5)]
    remote = [read(reader.addresses["flight"], fl.FlightDescriptor.for_path("remote", origin.name, "series"))
              for _ in range(5)]
    return statistics.median(local), statistics.median(remote)


def main():
    print(f"federation_bench: sizes {SIZES}, {CHANGES} changes each, {ROWS} rows for remote DoGet")
    for n in SIZES:
        with tempfile.TemporaryDirectory() as root:
            lone = Node(root, "Allein")
            idle = rss_mb(lone.proc.pid)
            lone.stop()
            nodes = federation(root, n)
            try:
                times = propagation(nodes, CHANGES)
                rss = [rss_mb(node.proc.pid) for node in nodes]
                per_peer = (statistics.median(rss) - idle) / (n - 1)
                print(f"{n:>3} nodes: change searchable on all peers: median {statistics.median(times) * 1000:.0f} ms, "
                      f"max {max(times) * 1000:.0f} ms; RSS median {statistics.median(rss):.0f} MB "
                      f"(lone node {idle:.0f} MB) = {per_peer:.2f} MB per connected peer")
                if n == SIZES[0]:
                    local, remote = remote_throughput(nodes)
                    print(f"DoGet {ROWS} rows: local {local:.0f} MB/s, remote via member TLS {remote:.0f} MB/s, "
                          f"ratio {remote / local:.2f}")
            finally:
                for node in nodes:
                    node.stop()


if __name__ == "__main__":
    main()
