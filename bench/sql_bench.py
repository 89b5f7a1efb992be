"""Flight SQL (decision 018) on loopback, release binary, through the ADBC Flight SQL driver.

1. `SELECT station, avg(value), count(*) FROM <t> GROUP BY station` over 1M and 10M rows
   (200 stations) stored in one node, written with DoPut and compacted into Parquet
   segments; against DuckDB running the same query over the same rows in a Parquet file,
   interleaved in the same run. Target: <= 1.5x DuckDB.
2. The same aggregate over five towns of 2M rows each, in a federation, asked at one node:
   a GROUP BY over a UNION ALL of the five towns' tables (the querying node pulls the
   members' rows and aggregates them), against a UNION ALL of per-town GROUP BYs, which the
   node sends to each town so that only the groups travel (decision 018). For reference, a
   client that asks each town itself: five ADBC connections in parallel, the partial
   results combined in pandas.
3. The memory (RSS) of the querying node after the runs.

Every figure is the median of several runs (the best run too), after one warm-up run
that also checks that both sides agree.
Usage: bench/run (or URBANMESH_BIN=target/release/urbanmesh .venv/bin/python bench/sql_bench.py);
`--quick` for a smoke run (200k rows, 2 towns of 50k), `--rows N` for the single-node table.
"""
import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import adbc_driver_flightsql.dbapi as flightsql
import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchlib import OPENER, Node, federation, put_table, report, rss_mb, wait_compacted, wait_for

BATCH = 65536
STATIONS = pa.array([f"station-{i:03d}" for i in range(200)])
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
# Compact a tail after a second, so that every query reads Parquet segments (the steady state).
NODE_CONFIG = {"max_tail_age_secs": 1}
SCHEMA = pa.schema([("time", pa.timestamp("ms", tz="UTC")), ("station", pa.string()),
                    ("value", pa.float64()), ("quality", pa.int64())])
SPEC_SCHEMA = {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                          {"name": "value", "type": "float64"}, {"name": "quality", "type": "int64"}]}


def machine():
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    return f"machine: {len(os.sched_getaffinity(0))} cores, {model}, {mem_kb // 1024 ** 2} GiB RAM"


def synthetic(rows, seed):
    """`rows` measurements of 200 stations in turn, a value every 9 s."""
    rng = np.random.default_rng(seed)
    return pa.table({
        "time": pa.array(START_MS + np.arange(rows, dtype=np.int64) * 9_000, pa.timestamp("ms", tz="UTC")),
        "station": pc.take(STATIONS, pa.array(np.arange(rows) % len(STATIONS))),
        "value": pa.array(rng.normal(120.0, 30.0, rows)),
        "quality": pa.array(rng.integers(0, 3, rows, dtype=np.int64)),
    }, schema=SCHEMA)


def ready(node):
    def answers():
        try:
            with OPENER.open(node.http + "/readyz", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False
    wait_for(answers, f"{node.name} ready", 60, 0.05)


def load(node, dataset, title, visibility, table):
    """Describes `dataset` and writes `table` into it with one DoPut of 64k-row batches."""
    node.call("POST", "/api/v1/datasets", {
        "id": dataset, "title": title, "description": "Synthetic measurements for the SQL benchmark",
        "time_column": "time", "series_key": "station", "schema": SPEC_SCHEMA, "policy": {"visibility": visibility}})
    acked = put_table(node, dataset, table, BATCH)
    assert acked == table.num_rows, (acked, table.num_rows)


def schema_of(town):
    """The SQL schema of a town (decision 018): lowercase, runs of other characters one `_`."""
    folded = "".join(c.lower() if c.isalnum() else " " for c in town)
    return "_".join(folded.split())


def connect(node):
    return flightsql.connect(f"grpc://{node.addresses['flight'].split('://')[-1]}", autocommit=True,
                             db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {node.token}"})


def query(conn, sql):
    with conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetch_arrow_table()


def by_station(table):
    """An aggregate's result as a DataFrame by station, columns `avg` and `n`."""
    return table.rename_columns(["station", "avg", "n"]).to_pandas().set_index("station").sort_index()


def agree(got, expected, rows, what):
    got, expected = by_station(got), by_station(expected)
    assert list(got.index) == list(expected.index), f"{what}: other stations"
    assert (got["n"] == expected["n"]).all() and expected["n"].sum() == rows, f"{what}: other counts"
    assert np.allclose(got["avg"], expected["avg"], rtol=1e-9), f"{what}: other averages"


def interleaved(runs, *queries):
    """One warm-up run of each query, then `runs` rounds of all of them in turn; returns the
    warm-up results and each query's times (s)."""
    warm = [run() for run in queries]
    times = [[] for _ in queries]
    for _ in range(runs):
        for run, spent in zip(queries, times):
            started = time.perf_counter()
            run()
            spent.append(time.perf_counter() - started)
    return warm, times


def ms(seconds):
    return seconds * 1000


def single_node(root, sizes, runs):
    """Goal 1: one node against DuckDB over the same rows in Parquet."""
    node = Node(root, "Einzelstadt", NODE_CONFIG)
    ready(node)
    conn = connect(node)
    try:
        for rows in sizes:
            dataset = f"messwerte-{rows}"
            table = synthetic(rows, seed=rows)
            load(node, dataset, f"Messwerte {rows}", "public", table)
            parquet = os.path.join(root, f"{dataset}.parquet")
            pq.write_table(table, parquet)
            del table
            wait_compacted(node, dataset, rows)
            node_sql = f'SELECT station, avg(value), count(*) FROM "{dataset}" GROUP BY station'
            duck_sql = f"SELECT station, avg(value), count(*) FROM read_parquet('{parquet}') GROUP BY station"
            # DuckDB 2 answers `.arrow()` with a RecordBatchReader: read it to the end.
            (got, expected), (node_times, duck_times) = interleaved(
                runs, lambda: query(conn, node_sql), lambda: duckdb.sql(duck_sql).arrow().read_all())
            agree(got, expected, rows, "node against DuckDB")
            report(f"GROUP BY station, {rows:,} rows: ADBC, median", ms(statistics.median(node_times)), "ms",
                   reference=ms(statistics.median(duck_times)), target="<= 1.5x DuckDB")
            report(f"GROUP BY station, {rows:,} rows: ADBC, best", ms(min(node_times)), "ms",
                   reference=ms(min(duck_times)))
        report("RSS of the single node after the runs", rss_mb(node.proc.pid), "MB")
    finally:
        conn.close()
        node.stop()


def federated(root, towns, rows, runs):
    """Goal 2: UNION ALL at one node against aggregation at the origins."""
    nodes = federation(root, towns, NODE_CONFIG)
    for node in nodes:
        ready(node)

    def load_town(index):
        load(nodes[index], "pegel", f"Messwerte {nodes[index].name}", "federation", synthetic(rows, seed=index))
        wait_compacted(nodes[index], "pegel", rows)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(load_town, range(towns)))
    reader = nodes[0]
    for member in nodes[1:]:
        wait_for(lambda: reader.found(f"Messwerte {member.name}"), f"{member.name} in {reader.name}'s catalogue",
                 120, 0.05)

    tables = ['"pegel"'] + [f'{schema_of(member.name)}."pegel"' for member in nodes[1:]]
    union = " UNION ALL ".join(f"SELECT station, value FROM {table}" for table in tables)
    union_sql = f"SELECT station, avg(value), count(*) FROM ({union}) AS towns GROUP BY station"
    # The same figures from a GROUP BY per town: the node sends each to its town
    # (AggregateAtMember), and only the groups travel.
    per_town = " UNION ALL ".join(
        f"SELECT station, sum(value) AS s, count(*) AS n FROM {table} GROUP BY station" for table in tables)
    pushed_sql = f"SELECT station, sum(s) / sum(n), sum(n) FROM ({per_town}) AS towns GROUP BY station"
    origin_sql = 'SELECT station, avg(value) AS avg, count(*) AS n FROM "pegel" GROUP BY station'
    conns = [connect(node) for node in nodes]
    pool = ThreadPoolExecutor(max_workers=towns)

    def at_origins():
        parts = pa.concat_tables(list(pool.map(lambda conn: query(conn, origin_sql), conns))).to_pandas()
        parts["sum"] = parts["avg"] * parts["n"]
        whole = parts.groupby("station", as_index=False)[["sum", "n"]].sum()
        whole["avg"] = whole["sum"] / whole["n"]
        return pa.Table.from_pandas(whole[["station", "avg", "n"]], preserve_index=False)

    try:
        (union_result, pushed_result, origins_result), (union_times, pushed_times, origins_times) = interleaved(
            runs, lambda: query(conns[0], union_sql), lambda: query(conns[0], pushed_sql), at_origins)
        agree(union_result, origins_result, towns * rows, "UNION ALL against aggregation at the origins")
        agree(pushed_result, origins_result, towns * rows, "per-town GROUP BYs against aggregation at the origins")
        union_ms, pushed_ms = ms(statistics.median(union_times)), ms(statistics.median(pushed_times))
        origins_ms = ms(statistics.median(origins_times))
        print(f"\n{towns} towns x {rows:,} rows, GROUP BY station asked at {reader.name}", flush=True)
        report("  raw rows pulled: GROUP BY over a UNION ALL, median", union_ms, "ms", reference=pushed_ms)
        report("  raw rows pulled, best", ms(min(union_times)), "ms", reference=ms(min(pushed_times)))
        report("  pushed to the origins: UNION ALL of GROUP BYs, median", pushed_ms, "ms")
        report("  pushed to the origins, best", ms(min(pushed_times)), "ms")
        report(f"  client fan-out: {towns} ADBC connections in parallel, median", origins_ms, "ms", reference=pushed_ms)
        report("  RSS of the querying node after the runs", rss_mb(reader.proc.pid), "MB")
    finally:
        pool.shutdown()
        for conn in conns:
            conn.close()


def children():
    """The processes this script started that are still there (its nodes)."""
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read() if entry.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
            yield int(entry)


def stop_nodes():
    """Ends every node still running, also those of a federation that failed to form."""
    pids = list(children())
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    for pid in pids:
        try:
            wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, f"process {pid} to end", 30, 0.05)
        except ChildProcessError:
            pass  # already reaped by its Popen
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, help="rows of the single-node table (default 10M)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200k rows, 2 towns of 50k, 3 runs")
    parser.add_argument("--runs", type=int, help="timed runs per figure (default 5, 3 with --quick)")
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else 10_000_000)
    sizes = sorted({min(rows, 1_000_000), rows})
    towns, town_rows = (2, 50_000) if args.quick else (5, 2_000_000)
    runs = args.runs or (3 if args.quick else 5)
    # A SIGTERM ends the run through `finally`, which stops the nodes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(machine(), flush=True)
    print(f"sql_bench: {', '.join(f'{n:,}' for n in sizes)} rows at one node; {towns} towns x {town_rows:,} rows; "
          f"{runs} runs per figure", flush=True)
    with tempfile.TemporaryDirectory(prefix="urbanmesh-sql-bench-") as root:
        try:
            single_node(root, sizes, runs)
            federated(root, towns, town_rows, runs)
        finally:
            stop_nodes()


if __name__ == "__main__":
    main()
