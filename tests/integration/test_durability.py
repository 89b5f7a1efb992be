"""Crash safety: an acknowledged batch survives SIGKILL in full, and no batch is ever
half-stored. Clean restarts keep everything readable over Flight. Failpoints
(URBANMESH_FAILPOINT, read by debug builds) crash the node or fail its fsync at the
instants where that is hardest to get right."""

import collections
import json
import math
import os
import random
import signal
import threading

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pytest
from conftest import http_request, pegel_spec, wait_until

FAILPOINT = "URBANMESH_FAILPOINT"

WRITERS = 8
BATCH_ROWS = 5
ROUNDS = 5
START_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z

CRASH_SPEC = {
    "id": "crash",
    "title": "Absturztest",
    "description": "Messreihe für den Test harter Abstürze während des Schreibens",
    "schema": {
        "fields": [
            {"name": "time", "type": "timestamp[ms, UTC]"},
            {"name": "round", "type": "int64"},
            {"name": "writer", "type": "int64"},
            {"name": "batch", "type": "int64"},
            {"name": "item", "type": "int64"},
            {"name": "value", "type": "float64"},
            {"name": "note", "type": "utf8", "nullable": True},
        ]
    },
    "time_column": "time",
    "policy": {"visibility": "public"},
    "series_key": "writer",
}


class Writer(threading.Thread):
    """Posts small JSON batches until told to stop or the node goes away."""

    def __init__(self, url, token, round_no, writer_id, stop, progress):
        super().__init__(daemon=True, name=f"writer-{round_no}-{writer_id}")
        self.url, self.token = url, token
        self.round_no, self.writer_id = round_no, writer_id
        self.stop, self.progress = stop, progress
        self.acked: dict[int, int] = {}  # batch number -> seq
        self.attempted: list[int] = []
        self.refused: list[tuple[int, int, str]] = []  # non-200 answers while the node was up
        self.failure: str | None = None

    def run(self):
        batch_no = 0
        while not self.stop.is_set():
            rows = [
                {
                    "time": START_MS + (self.round_no * 1000 + batch_no) * 60_000 + item,
                    "round": self.round_no,
                    "writer": self.writer_id,
                    "batch": batch_no,
                    "item": item,
                    "value": self.round_no * 1e6 + self.writer_id * 1e4 + batch_no + item / 10,
                    "note": f"r{self.round_no}w{self.writer_id}b{batch_no}i{item}" * (1 + item),
                }
                for item in range(BATCH_ROWS)
            ]
            self.attempted.append(batch_no)
            try:
                response = http_request(
                    "POST",
                    self.url,
                    json.dumps(rows).encode(),
                    {"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
                    timeout=20,
                )
                if response.status == 200:
                    answer = response.json()
                    assert answer["rows"] == BATCH_ROWS, answer
            except Exception as error:  # refused/reset/truncated: the node was killed
                self.failure = repr(error)
                return
            if response.status == 200:
                self.acked[batch_no] = answer["seq"]
                with self.progress:
                    self.progress.acks += 1
                    self.progress.notify_all()
            else:
                self.refused.append((batch_no, response.status, response.text[:300]))
            batch_no += 1


def read_batches(node) -> tuple[dict, pa.Table]:
    """Rows grouped by (round, writer, batch) -> sorted list of items, read over Flight."""
    client = node.flight_client()
    info = client.get_flight_info(flight.FlightDescriptor.for_path("crash"))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert info.total_records == table.num_rows
    groups = collections.defaultdict(list)
    columns = [table.column(name).to_pylist() for name in ("round", "writer", "batch", "item")]
    for round_no, writer, batch, item in zip(*columns):
        groups[(round_no, writer, batch)].append(item)
    return groups, table


def test_acknowledged_batches_survive_sigkill(node_factory):
    seed = int(os.environ.get("URBANMESH_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"crash test seed {seed} (set URBANMESH_CRASH_SEED to repeat)")

    node = node_factory(start=False)
    node.init()
    # Small segments, so that compaction (segment write, manifest swap, log trim) runs
    # while the node is being killed, not only the write-ahead log.
    node.set_config("segment_rows", 200)
    node.set_config("max_tail_age_secs", 1)
    node.start()
    node.create_dataset(CRASH_SPEC)

    acked: dict[tuple[int, int, int], int] = {}  # (round, writer, batch) -> seq
    attempted: set[tuple[int, int, int]] = set()
    for round_no in range(ROUNDS):
        url = node.url("/api/v1/datasets/crash/rows")
        stop = threading.Event()
        progress = threading.Condition()
        progress.acks = 0
        writers = [Writer(url, node.token, round_no, w, stop, progress) for w in range(WRITERS)]
        for writer in writers:
            writer.start()
        # Kill at a random point once the writers are well under way.
        target = rng.randrange(8, 120)
        with progress:
            reached = progress.wait_for(
                lambda: progress.acks >= target or not any(w.is_alive() for w in writers), timeout=60
            )
        assert reached and progress.acks >= target, (
            f"round {round_no}: only {progress.acks} acks before the deadline; "
            f"writer failures: {[w.failure for w in writers]}"
        )
        in_flight_guess = progress.acks
        node.kill9()
        stop.set()
        for writer in writers:
            writer.join(timeout=30)
            assert not writer.is_alive(), f"{writer.name} hung after the kill"
            assert not writer.refused, f"{writer.name} was refused while the node was up: {writer.refused}"
            for batch_no, seq in writer.acked.items():
                acked[(round_no, writer.writer_id, batch_no)] = seq
            attempted.update((round_no, writer.writer_id, b) for b in writer.attempted)

        node.start()
        groups, table = read_batches(node)

        missing = sorted(key for key in acked if key not in groups)
        assert not missing, (
            f"round {round_no} (seed {seed}): {len(missing)} acknowledged batches lost after SIGKILL, "
            f"e.g. {missing[:10]}"
        )
        partial = {key: items for key, items in groups.items() if sorted(items) != list(range(BATCH_ROWS))}
        assert not partial, (
            f"round {round_no} (seed {seed}): batches stored partially or twice: {dict(list(partial.items())[:10])}"
        )
        phantom = sorted(key for key in groups if key not in attempted)
        assert not phantom, f"rows of batches that were never sent: {phantom[:10]}"
        assert node.rows_count("crash") == len(groups) * BATCH_ROWS == table.num_rows

        # Every acknowledgement carried a distinct sequence number, across crashes too.
        seqs = list(acked.values())
        assert len(set(seqs)) == len(seqs), f"sequence numbers reused after a crash (seed {seed})"

        # Values came through intact, not just the keys.
        values = dict(zip(zip(*(table.column(c).to_pylist() for c in ("round", "writer", "batch", "item"))),
                          table.column("value").to_pylist()))
        for (r, w, b) in list(acked)[:: max(1, len(acked) // 50)]:
            for item in range(BATCH_ROWS):
                assert math.isclose(values[(r, w, b, item)], r * 1e6 + w * 1e4 + b + item / 10, rel_tol=1e-12)

        print(
            f"round {round_no}: killed after >= {in_flight_guess} acks; {len(acked)} acked in total, "
            f"{len(groups)} batches stored, {len(attempted) - len(acked)} unacknowledged attempts"
        )

    assert len(acked) >= ROUNDS * 8
    code = node.terminate()
    assert code == 0, node.log_tail()


def test_clean_restart_keeps_data_readable_over_flight(node):
    node.create_dataset(pegel_spec("pegel"))
    node.create_dataset(
        {"id": "leer", "title": "Leer", "description": "Ein Datensatz ohne Zeilen",
         "schema": {"fields": [{"name": "x", "type": "int64"}]}, "policy": {"visibility": "public"}}
    )
    rows = [
        {"time": START_MS + i * 900_000, "station": ["Dalke", "Lutter"][i % 2], "value": 90 + i / 4,
         "quality": None if i % 5 == 0 else i % 3}
        for i in range(400)
    ]
    assert node.post_json("/api/v1/datasets/pegel/rows", rows[:250]).status == 200
    client = node.flight_client()
    schema = pa.schema([("time", pa.timestamp("ms", tz="UTC")), ("station", pa.string()),
                        ("value", pa.float64()), ("quality", pa.int64())])
    tail = pa.Table.from_pylist(rows[250:], schema=schema)
    writer, reader = client.do_put(flight.FlightDescriptor.for_path("pegel"), schema,
                                   options=node.flight_write_options())
    writer.write_table(tail)
    writer.done_writing()
    acks = []
    while (buffer := reader.read()) is not None:
        acks.append(json.loads(buffer.to_pybytes()))
    writer.close()
    assert sum(ack["rows"] for ack in acks) == 150

    def snapshot():
        client = node.flight_client()
        info = client.get_flight_info(flight.FlightDescriptor.for_path("pegel"))
        table = client.do_get(info.endpoints[0].ticket).read_all()
        return info.total_records, table.sort_by([("time", "ascending"), ("station", "ascending")])

    before_total, before = snapshot()
    assert before_total == 400 and before.num_rows == 400

    for restart in range(2):
        code = node.terminate()
        assert code == 0, f"exit code {code}:\n{node.log_tail()}"
        assert not node.addresses_path.exists()
        node.start()
        total, after = snapshot()
        assert total == 400, f"after restart {restart}: {total} rows"
        assert after.equals(before), f"data changed across restart {restart}"
        listed = {tuple(info.descriptor.path) for info in node.flight_client().list_flights()}
        assert {(b"pegel",), (b"leer",)} <= listed
        assert node.rows_count("leer") == 0

    # Still writable after restarts, and new rows are readable next to the old ones.
    more = [{"time": START_MS - 900_000, "station": "Dalke", "value": 1.0}]
    assert node.post_json("/api/v1/datasets/pegel/rows", more).status == 200
    total, after = snapshot()
    assert total == 401
    first = after.slice(0, 1).to_pylist()[0]
    assert first["value"] == 1.0 and first["quality"] is None
    expected_times = sorted(r["time"] for r in rows + more)
    assert pc.cast(after.column("time"), pa.int64()).to_pylist() == expected_times


def test_compacted_segments_survive_restart(node_factory):
    """With tiny segments the data moves from the log into Parquet; a restart must
    neither lose nor duplicate rows."""
    node = node_factory(start=False)
    node.init()
    node.set_config("segment_rows", 50)
    node.set_config("max_tail_age_secs", 1)
    node.start()
    node.create_dataset(pegel_spec("pegel"))
    for chunk in range(6):
        rows = [{"time": START_MS + (chunk * 40 + i) * 900_000, "station": "Dalke", "value": float(chunk * 40 + i)}
                for i in range(40)]
        assert node.post_json("/api/v1/datasets/pegel/rows", rows).status == 200
    wait_until(lambda: node.dataset("pegel").get("segments", 1) >= 1, 30, "a compacted segment")
    assert node.rows_count("pegel") == 240
    code = node.terminate()
    assert code == 0
    node.start()
    assert node.rows_count("pegel") == 240
    client = node.flight_client()
    table = client.do_get(client.get_flight_info(flight.FlightDescriptor.for_path("pegel")).endpoints[0].ticket).read_all()
    assert sorted(table.column("value").to_pylist()) == [float(i) for i in range(240)]
    node.kill9()
    node.start()
    assert node.rows_count("pegel") == 240


# ---- failpoints ------------------------------------------------------------------------


def pegel_rows(first: int, count: int) -> list[dict]:
    """Measurements whose value is their index."""
    return [{"time": START_MS + i * 900_000, "station": ["Dalke", "Lutter"][i % 2], "value": float(i)}
            for i in range(first, first + count)]


def stored_values(node, dataset: str = "pegel") -> list[float]:
    client = node.flight_client()
    info = client.get_flight_info(flight.FlightDescriptor.for_path(dataset))
    table = client.do_get(info.endpoints[0].ticket).read_all()
    assert info.total_records == table.num_rows
    return sorted(table.column("value").to_pylist())


def wait_for_abort(node, what: str) -> None:
    """The node ends itself at the failpoint, as under kill -9 at that instant."""
    try:
        node.proc.wait(timeout=30)
    except Exception:
        raise AssertionError(f"the node did not abort at {what}:\n{node.log_tail()}")
    assert node.proc.returncode == -signal.SIGABRT, f"exit {node.proc.returncode}:\n{node.log_tail()}"
    node.kill9()  # closes its clients and log
    node.env.pop(FAILPOINT)


def test_a_failed_flush_acknowledges_nothing_and_stops_writes_until_restart(node_factory):
    node = node_factory()
    node.create_dataset(pegel_spec("pegel"))
    assert node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(0, 20)).status == 200
    assert node.terminate() == 0

    # The log really reaches the disk, then the flush reports a failure: only the recorded
    # withdrawal keeps the batch from coming back.
    node.env[FAILPOINT] = "wal-flush:error"
    node.start()
    failed = node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(100, 5))
    assert failed.status == 503 and "nothing was stored" in failed.problem()["detail"], failed
    assert (node.data_dir / "wal-withdrawn.jsonl").exists()
    # No later write is taken, whichever way it comes.
    later = node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(200, 5))
    assert later.status == 503 and "writes are stopped" in later.problem()["detail"], later
    schema = pa.schema([("time", pa.timestamp("ms", tz="UTC")), ("station", pa.string()), ("value", pa.float64())])
    writer, _ = node.flight_client().do_put(flight.FlightDescriptor.for_path("pegel"), schema,
                                            options=node.flight_write_options())
    with pytest.raises(flight.FlightError, match="writes are stopped"):
        writer.write_table(pa.Table.from_pylist(pegel_rows(300, 5), schema=schema))
        writer.done_writing()
        writer.close()
    # Readers keep reading what was acknowledged; readiness says a restart is needed.
    assert stored_values(node) == [float(i) for i in range(20)]
    ready = node.get("/readyz")
    assert ready.status == 503 and "restart" in ready.text, ready

    node.kill9()
    node.env.pop(FAILPOINT)
    node.start()
    assert stored_values(node) == [float(i) for i in range(20)], "an unacknowledged batch came back"
    assert not (node.data_dir / "wal-withdrawn.jsonl").exists()
    assert node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(400, 3)).status == 200
    assert stored_values(node) == [float(i) for i in [*range(20), 400, 401, 402]]
    assert node.terminate() == 0


@pytest.mark.parametrize(
    "point, whole",
    [("before-manifest-delete", True), ("after-manifest-delete", False), ("after-segments-delete", False)],
)
def test_a_crash_while_deleting_leaves_the_whole_dataset_or_none(node_factory, point, whole):
    node = node_factory(start=False)
    node.init()
    node.set_config("segment_rows", 50)
    node.start()
    node.create_dataset(pegel_spec("pegel"))
    assert node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(0, 120)).status == 200
    wait_until(lambda: node.dataset("pegel").get("segments", 0) >= 1, 30, "a compacted segment")
    assert node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(120, 7)).status == 200
    folder = node.data_dir / "segments" / "pegel"
    assert any(folder.iterdir())
    assert node.terminate() == 0

    node.env[FAILPOINT] = f"{point}:abort"
    node.start()
    try:
        answer = node.delete("/api/v1/datasets/pegel")
    except OSError:
        answer = None  # the connection died with the node
    assert answer is None, f"the delete was answered ({answer!r}) instead of crashing at {point}"
    wait_for_abort(node, point)

    node.start()
    if whole:
        assert stored_values(node) == [float(i) for i in range(127)]
        files = sorted(p.name for p in folder.iterdir())
        assert files and all(name.endswith(".parquet") for name in files), files
        assert len(files) == node.dataset("pegel")["segments"], "a file the manifest does not name"
    else:
        # The record may remain (the delete was never answered), but never a row of it
        # and never a manifest naming files that are gone: reads work and find nothing.
        assert stored_values(node) == []
        assert node.rows_count("pegel") == 0
        assert not folder.exists(), "leftover segment files were not cleaned at start"
    assert node.delete("/api/v1/datasets/pegel").status == 204
    assert node.get("/api/v1/datasets/pegel").status == 404
    node.create_dataset(pegel_spec("pegel"))
    assert stored_values(node) == [], "a new dataset of the same id inherited rows"
    assert node.terminate() == 0


def test_a_crash_right_after_the_first_segment_folder_loses_nothing(node_factory):
    node = node_factory(start=False)
    node.init()
    node.set_config("segment_rows", 50)
    node.env[FAILPOINT] = "segment-dir-created:abort"
    node.start()
    node.create_dataset(pegel_spec("pegel"))
    assert not (node.data_dir / "segments").exists()
    assert node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(0, 40)).status == 200
    try:
        # Durable before it is published, so before compaction sees it; the answer may
        # lose the race with the crash it sets off.
        node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(40, 40))
    except OSError:
        pass
    wait_for_abort(node, "the first segment folder")
    assert (node.data_dir / "segments" / "pegel").is_dir()

    node.start()
    assert stored_values(node) == [float(i) for i in range(80)]
    wait_until(lambda: node.dataset("pegel").get("segments", 0) >= 1, 30, "a compacted segment")
    assert stored_values(node) == [float(i) for i in range(80)], "rows lost or doubled by the compaction"
    assert node.terminate() == 0


@pytest.mark.parametrize("point", ["merge-written", "merge-swapped"])
def test_a_crash_while_small_segments_are_merged_loses_nothing(node_factory, point):
    """A trickle-fed dataset gains a small segment at every aged compaction; four in a row
    are merged into one. A crash with the merged segment written but not yet in the
    manifest, or in the manifest with the small ones' files still there, loses no row and
    leaves no file the manifest does not name."""
    node = node_factory(start=False)
    node.init()
    node.set_config("segment_rows", 400)
    node.set_config("max_tail_age_secs", 1)
    node.env[FAILPOINT] = f"{point}:abort"
    node.start()
    node.create_dataset(pegel_spec("pegel"))
    for part in range(4):
        assert node.post_json("/api/v1/datasets/pegel/rows", pegel_rows(part * 10, 10)).status == 200
        if part < 3:
            wait_until(lambda: node.dataset("pegel").get("segments", 0) == part + 1, 30, f"segment {part + 1}")
    wait_for_abort(node, point)

    node.start()
    assert stored_values(node) == [float(i) for i in range(40)]
    folder = node.data_dir / "segments" / "pegel"
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == node.dataset("pegel")["segments"], f"files the manifest does not name: {files}"
    # The merge is done again, and the small segments' files go.
    wait_until(lambda: node.dataset("pegel")["segments"] == 1, 30, "the merge after the restart")
    assert stored_values(node) == [float(i) for i in range(40)]
    assert node.terminate() == 0
