"""Arrow Flight against a real node, with the pyarrow client: a month of 15-minute gauge
readings for three stations is written with DoPut and read back every way the node offers,
including the same queries over REST, which must agree with Flight."""

import csv
import datetime as dt
import io
import json
import math
import random
import re
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from conftest import Node, pegel_spec

UTC = dt.timezone.utc
START = dt.datetime(2026, 3, 1, tzinfo=UTC)
STEP = dt.timedelta(minutes=15)
DAYS = 30
STATIONS = ["Dalke", "Lutter", "Ems"]
DATASET = "pegel"
SCHEMA = pa.schema(
    [
        pa.field("time", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("station", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("quality", pa.int64(), nullable=True),
    ]
)


def rfc3339(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def epoch_ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


def make_month() -> pa.Table:
    rng = random.Random(20260301)
    times, stations, values, qualities = [], [], [], []
    steps = DAYS * 24 * 4
    for i in range(steps):
        moment = START + i * STEP
        for offset, station in enumerate(STATIONS):
            times.append(moment)
            stations.append(station)
            wave = 12 * math.sin(2 * math.pi * i / 96 + offset)
            values.append(round(92 + 6 * offset + wave + rng.uniform(-3, 3), 2))
            qualities.append(None if rng.random() < 0.1 else rng.randrange(0, 4))
    return pa.Table.from_arrays(
        [
            pa.array(times, pa.timestamp("ms", tz="UTC")),
            pa.array(stations, pa.string()),
            pa.array(values, pa.float64()),
            pa.array(qualities, pa.int64()),
        ],
        schema=SCHEMA,
    )


def rows_of(table: pa.Table) -> list[tuple]:
    """Rows as comparable tuples, timestamps as epoch milliseconds, sorted by time, station."""
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = pc.cast(column.cast(pa.timestamp("ms", tz="UTC")), pa.int64())
        columns[name] = column.to_pylist()
    rows = list(zip(*(columns[name] for name in table.column_names)))
    order = [i for i, name in enumerate(table.column_names) if name in ("time", "station")]
    return sorted(rows, key=lambda row: tuple(row[i] for i in order) + tuple(str(v) for v in row))


def put(client, dataset, batches, schema, options):
    """One DoPut stream; returns the decoded acknowledgements. Server errors surface as raised."""
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(dataset), schema, options=options)
    acks = []
    try:
        for batch in batches:
            writer.write_batch(batch)
        writer.done_writing()
        while True:
            buffer = reader.read()
            if buffer is None:
                break
            acks.append(json.loads(buffer.to_pybytes()))
    except pa.ArrowException as first:
        try:
            writer.close()
        except pa.ArrowException as server_error:
            raise server_error from first
        raise
    writer.close()
    return acks


def command(**request) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(json.dumps(request).encode())


def read(client, descriptor) -> tuple[flight.FlightInfo, pa.Table]:
    info = client.get_flight_info(descriptor)
    assert len(info.endpoints) == 1, info.endpoints
    table = client.do_get(info.endpoints[0].ticket).read_all()
    if info.total_records >= 0:
        assert info.total_records == table.num_rows, (info.total_records, table.num_rows)
    return info, table


@pytest.fixture(scope="module")
def pegel(tmp_path_factory):
    node = Node(tmp_path_factory.mktemp("flight-node"))
    node.start()
    try:
        node.create_dataset(pegel_spec(DATASET))
        node.create_dataset(pegel_spec("put-errors"))
        table = make_month()
        assert 8000 < table.num_rows < 9000
        client = node.flight_client()
        options = node.flight_write_options()

        first, second = table.slice(0, 3000), table.slice(3000, 3000)
        exact_acks = put(client, DATASET, first.to_batches() + second.to_batches(), SCHEMA, options)

        # The last part with types a client commonly has: naive nanoseconds, large strings,
        # int32 — the node widens them to the dataset's types.
        rest = table.slice(6000)
        wide_schema = pa.schema(
            [
                pa.field("time", pa.timestamp("ns")),
                pa.field("station", pa.large_string()),
                pa.field("value", pa.float64()),
                pa.field("quality", pa.int32()),
            ]
        )
        naive_ns = pc.multiply(pc.cast(rest.column("time"), pa.int64()), 1_000_000).cast(pa.timestamp("ns"))
        wide = pa.Table.from_arrays(
            [
                naive_ns,
                rest.column("station").cast(pa.large_string()),
                rest.column("value"),
                rest.column("quality").cast(pa.int32()),
            ],
            schema=wide_schema,
        )
        wide_acks = put(client, DATASET, wide.to_batches(max_chunksize=1000), wide_schema, options)
        yield SimpleNamespace(node=node, client=client, table=table, exact_acks=exact_acks, wide_acks=wide_acks)
    finally:
        node.close()


# ---- writing --------------------------------------------------------------------------


def test_do_put_acknowledges_every_batch(pegel):
    assert [ack["rows"] for ack in pegel.exact_acks] == [3000, 3000], pegel.exact_acks
    assert sum(ack["rows"] for ack in pegel.wide_acks) == pegel.table.num_rows - 6000, pegel.wide_acks
    assert all(ack["rows"] <= 1000 for ack in pegel.wide_acks)
    seqs = [ack["seq"] for ack in pegel.exact_acks + pegel.wide_acks]
    assert len(set(seqs)) == len(seqs), seqs
    assert pegel.node.rows_count(DATASET) == pegel.table.num_rows


def test_do_put_batches_are_stored_in_stream_order(pegel):
    """The acknowledgements come in stream order; their sequence numbers must follow it,
    as they do for HTTP writes, or a client cannot tell from a seq what came before it."""
    for acks in (pegel.exact_acks, pegel.wide_acks):
        seqs = [ack["seq"] for ack in acks]
        assert seqs == sorted(seqs), f"seq out of stream order: {acks}"


# ---- reading --------------------------------------------------------------------------


def test_list_flights(pegel):
    infos = {tuple(info.descriptor.path): info for info in pegel.client.list_flights()}
    assert (DATASET.encode(),) in infos, list(infos)
    assert (b"put-errors",) in infos
    info = infos[(DATASET.encode(),)]
    assert info.total_records == pegel.table.num_rows
    assert info.schema.names == ["time", "station", "value", "quality"]


def test_get_flight_info_by_path(pegel):
    info = pegel.client.get_flight_info(flight.FlightDescriptor.for_path(DATASET))
    assert info.total_records == pegel.table.num_rows
    assert info.schema.names == SCHEMA.names
    assert [f.type for f in info.schema] == [f.type for f in SCHEMA]
    assert len(info.endpoints) == 1
    result = pegel.client.do_get(info.endpoints[0].ticket).read_all()
    assert result.num_rows == pegel.table.num_rows


def test_do_get_whole_table_equals_what_was_put(pegel):
    _, result = read(pegel.client, flight.FlightDescriptor.for_path(DATASET))
    assert [(f.name, f.type, f.nullable) for f in result.schema] == [(f.name, f.type, f.nullable) for f in SCHEMA]
    expected = rows_of(pegel.table)
    actual = rows_of(result)
    assert len(actual) == len(expected)
    assert actual == expected


def test_command_for_the_whole_dataset(pegel):
    _, result = read(pegel.client, command(dataset=DATASET))
    assert rows_of(result) == rows_of(pegel.table)


def test_projection(pegel):
    info, result = read(pegel.client, command(dataset=DATASET, columns=["value", "time"]))
    assert info.schema.names == ["value", "time"]
    assert result.column_names == ["value", "time"]
    assert info.total_records in (-1, pegel.table.num_rows)
    assert rows_of(result) == rows_of(pegel.table.select(["value", "time"]))


def test_time_range_from_inclusive_to_exclusive(pegel):
    start = START + dt.timedelta(days=10)
    end = START + dt.timedelta(days=12)
    # `from` with an offset: the same instant as `start` in UTC.
    from_text = start.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    _, result = read(pegel.client, command(dataset=DATASET, **{"from": from_text, "to": rfc3339(end)}))
    times = pc.cast(result.column("time"), pa.int64()).to_pylist()
    assert min(times) == epoch_ms(start), "`from` must be inclusive"
    assert epoch_ms(end) not in times, "`to` must be exclusive"
    assert max(times) == epoch_ms(end - STEP)
    assert result.num_rows == 2 * 96 * len(STATIONS)
    mask = pc.and_(
        pc.greater_equal(pegel.table.column("time"), pa.scalar(start, pa.timestamp("ms", tz="UTC"))),
        pc.less(pegel.table.column("time"), pa.scalar(end, pa.timestamp("ms", tz="UTC"))),
    )
    assert rows_of(result) == rows_of(pegel.table.filter(mask))


def test_open_ended_ranges(pegel):
    cut = START + dt.timedelta(days=29, hours=12)
    _, tail = read(pegel.client, command(dataset=DATASET, **{"from": rfc3339(cut)}))
    _, head = read(pegel.client, command(dataset=DATASET, to=rfc3339(cut)))
    assert tail.num_rows == 48 * len(STATIONS)
    assert head.num_rows + tail.num_rows == pegel.table.num_rows


def test_filter(pegel):
    predicate = "value > 100 AND station = 'Ems'"
    _, result = read(pegel.client, command(dataset=DATASET, filter=predicate))
    table = pegel.table
    mask = pc.and_(pc.greater(table.column("value"), 100), pc.equal(table.column("station"), "Ems"))
    expected = table.filter(mask)
    assert 100 < expected.num_rows < table.num_rows / 3
    assert rows_of(result) == rows_of(expected)


def test_filter_on_nullable_column(pegel):
    _, result = read(pegel.client, command(dataset=DATASET, filter="quality IS NULL", columns=["time", "station"]))
    expected = pegel.table.filter(pc.is_null(pegel.table.column("quality"))).select(["time", "station"])
    assert expected.num_rows > 0
    assert rows_of(result) == rows_of(expected)


def test_limit(pegel):
    _, result = read(pegel.client, command(dataset=DATASET, limit=10))
    assert result.num_rows == 10
    everything = set(rows_of(pegel.table))
    assert set(rows_of(result)) <= everything
    _, result = read(pegel.client, command(dataset=DATASET, filter="station = 'Dalke'", limit=25, columns=["station"]))
    assert result.num_rows == 25 and set(result.column("station").to_pylist()) == {"Dalke"}
    _, result = read(pegel.client, command(dataset=DATASET, limit=0))
    assert result.num_rows == 0


def test_get_schema(pegel):
    schema = pegel.client.get_schema(flight.FlightDescriptor.for_path(DATASET)).schema
    assert [(f.name, f.type, f.nullable) for f in schema] == [(f.name, f.type, f.nullable) for f in SCHEMA]
    projected = pegel.client.get_schema(command(dataset=DATASET, columns=["station", "quality"])).schema
    assert projected.names == ["station", "quality"]
    assert projected.field("quality").type == pa.int64()


# ---- REST reads agree with Flight -------------------------------------------------------

QUERY = {
    "columns": ["time", "station", "value", "quality"],
    "from": rfc3339(START + dt.timedelta(days=3)),
    "to": rfc3339(START + dt.timedelta(days=9, hours=6)),
    "filter": "value > 100 AND station = 'Ems'",
}


def iso_ms(text: str) -> int:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def from_records(records: list[dict]) -> list[tuple]:
    rows = [
        (
            iso_ms(r["time"]) if isinstance(r["time"], str) else r["time"],
            r["station"],
            float(r["value"]),
            None if r["quality"] in (None, "") else int(r["quality"]),
        )
        for r in records
    ]
    return sorted(rows, key=lambda row: (row[0], row[1]) + tuple(str(v) for v in row))


@pytest.fixture(scope="module")
def flight_result(pegel):
    _, result = read(pegel.client, command(dataset=DATASET, **QUERY))
    assert result.num_rows > 50
    return rows_of(result)


def rest(pegel, fmt, query=QUERY):
    params = dict(query)
    params["columns"] = ",".join(params["columns"])
    response = pegel.node.read_rows(DATASET, fmt, **params)
    assert response.status == 200, response
    return response


def test_rest_json_equals_flight(pegel, flight_result):
    response = rest(pegel, "json")
    assert response.content_type == "application/json"
    assert from_records(response.json()) == flight_result


def test_rest_ndjson_equals_flight(pegel, flight_result):
    response = rest(pegel, "ndjson")
    records = [json.loads(line) for line in response.text.splitlines() if line.strip()]
    assert from_records(records) == flight_result


def test_rest_csv_equals_flight(pegel, flight_result):
    response = rest(pegel, "csv")
    assert response.content_type == "text/csv"
    reader = csv.DictReader(io.StringIO(response.text))
    assert reader.fieldnames == QUERY["columns"]
    assert from_records(list(reader)) == flight_result


def test_rest_parquet_equals_flight(pegel, flight_result):
    response = rest(pegel, "parquet")
    table = pq.read_table(io.BytesIO(response.body))
    assert table.column_names == QUERY["columns"]
    assert rows_of(table) == flight_result


def test_rest_whole_dataset_equals_put(pegel):
    response = pegel.node.read_rows(DATASET, "parquet")
    assert response.status == 200, response
    assert rows_of(pq.read_table(io.BytesIO(response.body))) == rows_of(pegel.table)


def test_rest_limit_and_empty_results(pegel):
    response = pegel.node.read_rows(DATASET, "json", limit=7)
    assert response.status == 200 and len(response.json()) == 7, response
    empty = {"filter": "station = 'Weser'"}
    assert pegel.node.read_rows(DATASET, "json", **empty).json() == []
    header = pegel.node.read_rows(DATASET, "csv", **empty).text.strip()
    assert header.split(",") == ["time", "station", "value", "quality"], header
    table = pq.read_table(io.BytesIO(pegel.node.read_rows(DATASET, "parquet", **empty).body))
    assert table.num_rows == 0 and table.column_names == ["time", "station", "value", "quality"]


@pytest.mark.parametrize(
    "query, needle",
    [
        ({"filter": "value >>> 100"}, "filter"),
        ({"filter": "pegel_cm > 1"}, "pegel_cm"),
        ({"columns": "time,pegel_cm"}, "pegel_cm"),
        ({"from": "gestern"}, "from"),
        ({"from": rfc3339(START + STEP), "to": rfc3339(START)}, "to"),
        ({"format": "xml"}, "xml"),
        ({"limit": "zehn"}, ""),
    ],
)
def test_rest_read_errors(pegel, query, needle):
    response = pegel.node.get(f"/api/v1/datasets/{DATASET}/rows", query=query)
    assert response.status == 400, response
    assert needle in response.problem()["detail"], response.text


# ---- errors -----------------------------------------------------------------------------


def flight_error(callable_, *args):
    with pytest.raises(pa.ArrowException) as caught:
        callable_(*args)
    return caught.value


def read_via_ticket(client, descriptor):
    info = client.get_flight_info(descriptor)
    return client.do_get(info.endpoints[0].ticket).read_all()


@pytest.mark.parametrize(
    "cmd, needle",
    [
        (b"{not json", "JSON"),
        (b'{"dataset": "pegel", "colums": ["time"]}', "colums"),
        (b'{"columns": ["time"]}', "dataset"),
        (b'{"dataset": "pegel", "from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}', "before"),
        (b'{"dataset": "pegel", "limit": -1}', "-1"),
    ],
)
def test_bad_command_is_invalid_argument(pegel, cmd, needle):
    error = flight_error(pegel.client.get_flight_info, flight.FlightDescriptor.for_command(cmd))
    assert isinstance(error, pa.ArrowInvalid), f"{type(error).__name__}: {error}"
    assert needle in str(error), str(error)


@pytest.mark.parametrize("predicate", ["value >>> 100", "pegel_cm > 1", "station = ", "value > 'hoch' AND"])
def test_bad_filter_is_invalid_argument(pegel, predicate):
    error = flight_error(read_via_ticket, pegel.client, command(dataset=DATASET, filter=predicate))
    assert isinstance(error, pa.ArrowInvalid), f"{type(error).__name__}: {error}"
    assert "filter" in str(error), str(error)


def test_unknown_column_is_invalid_argument(pegel):
    error = flight_error(pegel.client.get_flight_info, command(dataset=DATASET, columns=["time", "pegel_cm"]))
    assert isinstance(error, pa.ArrowInvalid), f"{type(error).__name__}: {error}"
    assert "pegel_cm" in str(error)
    error = flight_error(pegel.client.get_schema, command(dataset=DATASET, columns=["pegel_cm"]))
    assert "pegel_cm" in str(error)


def test_unknown_dataset_is_not_found(pegel):
    for call, descriptor in [
        (pegel.client.get_flight_info, flight.FlightDescriptor.for_path("gibt-es-nicht")),
        (pegel.client.get_flight_info, command(dataset="gibt-es-nicht")),
        (pegel.client.get_schema, flight.FlightDescriptor.for_path("gibt-es-nicht")),
    ]:
        error = flight_error(call, descriptor)
        assert isinstance(error, pa.ArrowKeyError), f"{type(error).__name__}: {error}"
        assert "gibt-es-nicht" in str(error)
    forged = flight.Ticket(json.dumps({"dataset": "gibt-es-nicht"}).encode())
    error = flight_error(lambda: pegel.client.do_get(forged).read_all())
    assert isinstance(error, pa.ArrowKeyError), f"{type(error).__name__}: {error}"
    assert "gibt-es-nicht" in str(error)


@pytest.mark.parametrize("ticket", [b"garbage", b"", b"\x00\xff\x10", b"[1, 2, 3]"])
def test_garbage_ticket_is_invalid_argument(pegel, ticket):
    error = flight_error(lambda: pegel.client.do_get(flight.Ticket(ticket)).read_all())
    assert isinstance(error, pa.ArrowInvalid), f"{type(error).__name__}: {error}"
    assert "ticket" in str(error).lower(), str(error)


def batch(n=5, start=0, **overrides) -> pa.RecordBatch:
    columns = {
        "time": pa.array([START + (start + i) * STEP for i in range(n)], pa.timestamp("ms", tz="UTC")),
        "station": pa.array(["Fehler"] * n, pa.string()),
        "value": pa.array([float(i) for i in range(n)], pa.float64()),
        "quality": pa.array([1] * n, pa.int64()),
    }
    columns.update(overrides)
    columns = {k: v for k, v in columns.items() if v is not None}
    return pa.RecordBatch.from_pydict(columns)


def assert_put_refused(pegel, batches, token=None, error_type=pa.ArrowException, needle=None):
    node = pegel.node
    before = node.rows_count("put-errors")
    options = node.flight_write_options(token) if token != "" else flight.FlightCallOptions()
    error = flight_error(put, pegel.client, "put-errors", batches, batches[0].schema, options)
    assert isinstance(error, error_type), f"{type(error).__name__}: {error}"
    if needle:
        assert needle in str(error), str(error)
    assert node.rows_count("put-errors") == before, f"rows stored despite: {error}"
    return error


def test_do_put_without_token(pegel):
    assert_put_refused(pegel, [batch()], token="", error_type=flight.FlightUnauthenticatedError)
    assert_put_refused(pegel, [batch()], token="falsch", error_type=flight.FlightUnauthenticatedError)


def test_do_put_float_into_int64(pegel):
    assert_put_refused(pegel, [batch(quality=pa.array([1.5] * 5))], needle="quality")
    assert_put_refused(pegel, [batch(quality=pa.array([1.0] * 5))], needle="quality")


def test_do_put_text_into_float(pegel):
    assert_put_refused(pegel, [batch(value=pa.array(["hoch"] * 5))], needle="value")


def test_do_put_missing_required_column(pegel):
    assert_put_refused(pegel, [batch(value=None)], needle="value")


def test_do_put_unknown_column(pegel):
    assert_put_refused(pegel, [batch(pegel_cm=pa.array([1] * 5, pa.int64()))], needle="pegel_cm")


def test_do_put_null_in_required_column(pegel):
    values = pa.array([1.0, None, 3.0, 4.0, 5.0], pa.float64())
    assert_put_refused(pegel, [batch(value=values)], needle="value")


def test_do_put_to_unknown_dataset(pegel):
    before = pegel.node.rows_count(DATASET)
    error = flight_error(
        put, pegel.client, "gibt-es-nicht", [batch()], batch().schema, pegel.node.flight_write_options()
    )
    assert isinstance(error, pa.ArrowKeyError), f"{type(error).__name__}: {error}"
    assert "gibt-es-nicht" in str(error)
    assert pegel.node.rows_count(DATASET) == before


def test_do_put_bad_batch_after_good_one(pegel):
    """A rejected batch is not stored; an earlier acknowledged batch of the same stream is."""
    node = pegel.node
    before = node.rows_count("put-errors")
    schema = pa.schema([pa.field("time", pa.timestamp("ms", tz="UTC")), pa.field("station", pa.string()),
                        pa.field("value", pa.float64()), pa.field("quality", pa.int64())])
    good = batch(n=100, start=1000).cast(schema)
    bad = batch(n=50, start=2000, value=pa.array([None] * 50, pa.float64())).cast(schema)
    error = flight_error(put, pegel.client, "put-errors", [good, bad], schema, node.flight_write_options())
    assert "value" in str(error), str(error)
    after = node.rows_count("put-errors")
    assert after in (before, before + 100), (before, after, str(error))
    stored = re.search(r"(\d+) rows of \d+ earlier batch", str(error))
    if stored:
        assert after == before + int(stored.group(1)), (after, before, str(error))
    _, result = read(pegel.client, command(dataset="put-errors", filter="value IS NULL"))
    assert result.num_rows == 0


def test_do_put_then_read_back_small(pegel):
    """The error dataset still accepts good data after all those refusals."""
    node = pegel.node
    before = node.rows_count("put-errors")
    acks = put(pegel.client, "put-errors", [batch(n=7, start=5000)], batch().schema, node.flight_write_options())
    assert [ack["rows"] for ack in acks] == [7]
    assert node.rows_count("put-errors") == before + 7


def test_do_put_of_compressed_batches_is_refused_and_the_node_stays_up(pegel):
    """A compressed batch states the size it decompresses to, and a decoder would allocate
    it unchecked: such batches are refused with a clear error, nothing is stored."""
    node = pegel.node
    before = node.rows_count("put-errors")
    for codec in ("lz4", "zstd"):
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {node.token}".encode())],
                                           write_options=pa.ipc.IpcWriteOptions(compression=codec))
        error = flight_error(put, pegel.client, "put-errors", [batch()], batch().schema, options)
        assert isinstance(error, pa.ArrowException) and "compressed" in str(error), f"{codec}: {error}"
    assert node.rows_count("put-errors") == before
    assert put(pegel.client, "put-errors", [batch(start=900)], batch().schema, node.flight_write_options())
    assert node.rows_count("put-errors") == before + 5
