"""Memory of empty nodes before and after they federate (issue 19), release build.

Two, then three empty nodes start; their RSS is read 3 s after start (alone). The first
invites the others; once every node sees every member admitted and connected, RSS is read
again 3 s, 30 s and 120 s later. Alone and at 120 s it is also split into anonymous memory
and file-backed pages (`/proc/<pid>/smaps_rollup`). BENCH_MEMORY_RUNS (3) runs of each size.
Usage: URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/memory_bench.py
"""
import os
import statistics
import tempfile
import time

from benchlib import Node, federate, rss_mb

RUNS = int(os.environ.get("BENCH_MEMORY_RUNS", "3"))
AFTER_JOINING_S = [3, 30, 120]


def rollup_mb(pid):
    """Resident memory from smaps_rollup: (anonymous, file-backed) in MB."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return fields["Anonymous"], fields["Rss"] - fields["Anonymous"]


def fmt(values):
    return " / ".join(f"{v:.0f}" for v in values)


def split(nodes):
    rollups = [rollup_mb(node.proc.pid) for node in nodes]
    return f"(anonymous {fmt(a for a, _ in rollups)}, file-backed {fmt(f for _, f in rollups)})"


def main():
    print(f"memory_bench: {RUNS} runs of 2 and 3 empty nodes; RSS in MB per node (Stadt-00 / -01 / -02)", flush=True)
    for n in (2, 3):
        for run in range(1, RUNS + 1):
            with tempfile.TemporaryDirectory(prefix="urbanmesh-memory-") as root:
                nodes = [Node(root, f"Stadt-{i:02d}") for i in range(n)]
                try:
                    time.sleep(3)
                    figures = [f"{n} nodes, run {run}: alone {fmt(rss_mb(node.proc.pid) for node in nodes)} "
                               + split(nodes)]
                    started = time.monotonic()
                    federate(nodes)
                    joined = time.monotonic()
                    figures.append(f"connected after {joined - started:.1f} s")
                    for after in AFTER_JOINING_S:
                        time.sleep(max(0.0, joined + after - time.monotonic()))
                        rss = [rss_mb(node.proc.pid) for node in nodes]
                        figures.append(f"+{after} s {fmt(rss)} (median {statistics.median(rss):.0f})")
                    figures[-1] += " " + split(nodes)
                    print("; ".join(figures), flush=True)
                finally:
                    for node in nodes:
                        node.stop()


if __name__ == "__main__":
    main()
