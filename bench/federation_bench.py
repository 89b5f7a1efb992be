"""Federation benchmarks on loopback, release binary.

- Time until a catalogue change is searchable on every peer (5, 10, 25 nodes).
- Remote DoGet through the members' mutual-TLS path against a local DoGet of the same data.
- Memory per connected peer.
Usage: bench/run (or URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/federation_bench.py)
"""
import os
import statistics
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.flight as fl

from benchlib import Node, federation, rss_mb, wait_for

SIZES = [int(n) for n in os.environ.get("BENCH_FEDERATION_SIZES", "5,10,25").split(",")]
CHANGES = int(os.environ.get("BENCH_CHANGES", "5"))
ROWS = int(os.environ.get("BENCH_REMOTE_ROWS", "2000000"))


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
