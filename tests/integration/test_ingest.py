"""Writing rows over HTTP: every accepted format stores rows; every bad input is refused
with a precise problem and leaves the dataset untouched (all or nothing)."""

import datetime as dt
import http.client
import io
import itertools
import json
import re
import urllib.parse

import openpyxl
import pytest


_ids = itertools.count()

UTC = dt.timezone.utc


def iso_ms(text: str) -> int:
    """Epoch milliseconds of an ISO/RFC 3339 timestamp (naive is taken as UTC)."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp() * 1000)


def ms(*args) -> int:
    return round(dt.datetime(*args, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def node(shared_node):
    return shared_node


@pytest.fixture
def ds(node, request):
    """A fresh pegel dataset named after the test; yields its id."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:50]
    dataset = f"{name}-{next(_ids)}"
    node.create_dataset(dataset)
    return dataset


def read_all(node, dataset):
    response = node.read_rows(dataset, "json")
    assert response.status == 200, response
    rows = response.json()
    for row in rows:
        row["time"] = iso_ms(row["time"]) if isinstance(row["time"], str) else row["time"]
    return sorted(rows, key=lambda r: (r["time"], r["station"]))


def assert_rejected(node, dataset, response, status=400, before=0):
    """The response is a problem with `status`, and nothing was stored."""
    assert response.status == status, response
    problem = response.problem()
    assert problem["detail"].strip(), problem
    assert node.rows_count(dataset) == before, f"rows were stored despite {problem}"
    return problem


def error_for(problem, column=None, row=None):
    errors = problem.get("errors") or []
    assert errors, f"problem lists no row errors: {problem}"
    for error in errors:
        if (column is None or error.get("column") == column) and (row is None or error.get("row") == row):
            assert error.get("reason"), error
            return error
    raise AssertionError(f"no error for row={row} column={column}: {errors}")


GOOD_ROWS = [
    {"time": "2026-03-01T00:00:00Z", "station": "Dalke", "value": 101.5, "quality": 1},
    {"time": "2026-03-01T01:00:00+01:00", "station": "Lutter", "value": 88.25, "quality": None},
    {"time": ms(2026, 3, 1, 0, 15), "station": "Dalke", "value": 102, "quality": 2},
]
EXPECTED = sorted(
    [
        {"time": ms(2026, 3, 1), "station": "Dalke", "value": 101.5, "quality": 1},
        {"time": ms(2026, 3, 1), "station": "Lutter", "value": 88.25, "quality": None},
        {"time": ms(2026, 3, 1, 0, 15), "station": "Dalke", "value": 102.0, "quality": 2},
    ],
    key=lambda r: (r["time"], r["station"]),
)


# ---- accepted formats ---------------------------------------------------------------


def test_json_array(node, ds):
    response = node.post_json(f"/api/v1/datasets/{ds}/rows", GOOD_ROWS)
    assert response.status == 200, response
    body = response.json()
    assert body["dataset"] == ds and body["rows"] == 3 and isinstance(body["seq"], int)
    assert node.rows_count(ds) == 3
    assert read_all(node, ds) == EXPECTED


def test_seq_increases_per_batch(node, ds):
    seqs = []
    for value in (1.0, 2.0, 3.0):
        response = node.post_json(
            f"/api/v1/datasets/{ds}/rows", [{"time": ms(2026, 3, 1), "station": "a", "value": value}]
        )
        assert response.status == 200, response
        seqs.append(response.json()["seq"])
    assert seqs == sorted(seqs) and len(set(seqs)) == 3, seqs
    assert node.rows_count(ds) == 3


def test_ndjson(node, ds):
    body = "\n".join(json.dumps(row) for row in GOOD_ROWS) + "\n\n"
    response = node.post_rows(ds, body, "application/x-ndjson")
    assert response.status == 200, response
    assert response.json()["rows"] == 3
    assert read_all(node, ds) == EXPECTED


def test_json_with_charset_parameter(node, ds):
    response = node.post_rows(ds, json.dumps(GOOD_ROWS), "application/json; charset=utf-8")
    assert response.status == 200, response
    assert node.rows_count(ds) == 3


def test_optional_column_may_be_left_out(node, ds):
    response = node.post_json(f"/api/v1/datasets/{ds}/rows", [{"time": ms(2026, 3, 1), "station": "a", "value": 1}])
    assert response.status == 200, response
    assert read_all(node, ds) == [{"time": ms(2026, 3, 1), "station": "a", "value": 1.0, "quality": None}]


def test_csv_comma(node, ds):
    body = (
        "time,station,value,quality\r\n"
        "2026-03-01T00:00:00Z,Dalke,101.5,1\r\n"
        "2026-03-01T01:00:00+01:00,Lutter,88.25,\r\n"
        "2026-03-01T00:15:00Z,Dalke,102,2\r\n"
    )
    response = node.post_rows(ds, body, "text/csv")
    assert response.status == 200, response
    assert response.json()["rows"] == 3
    assert read_all(node, ds) == EXPECTED


def test_csv_semicolon_with_decimal_comma_and_bom(node, ds):
    body = (
        "\ufeffstation;time;value;quality\n"
        "Dalke;2026-03-01T00:00:00Z;101,5;1\n"
        "Lutter;2026-03-01T01:00:00+01:00;88,25;\n"
        "Dalke;2026-03-01T00:15:00Z;102;2\n"
    )
    response = node.post_rows(ds, body, "text/csv; charset=utf-8")
    assert response.status == 200, response
    assert read_all(node, ds) == EXPECTED


def test_csv_optional_column_absent_from_header(node, ds):
    body = "time,station,value\n2026-03-01T00:00:00Z,Dalke,1.5\n"
    response = node.post_rows(ds, body, "text/csv")
    assert response.status == 200, response
    assert read_all(node, ds) == [{"time": ms(2026, 3, 1), "station": "Dalke", "value": 1.5, "quality": None}]


def test_csv_epoch_milliseconds(node, ds):
    """The contract allows timestamps as epoch milliseconds; CSV carries them as text."""
    body = f"time,station,value\n{ms(2026, 3, 1)},Dalke,1.5\n"
    response = node.post_rows(ds, body, "text/csv")
    assert response.status == 200, response
    assert read_all(node, ds)[0]["time"] == ms(2026, 3, 1)


def test_csv_upload(node, ds):
    content = "time;station;value\n2026-03-01T00:00:00Z;Dalke;12,5\n2026-03-01T00:15:00Z;Dalke;13\n"
    response = node.upload(ds, "pegel.csv", content.encode(), "text/csv")
    assert response.status == 200, response
    assert response.json()["rows"] == 2
    assert [r["value"] for r in read_all(node, ds)] == [12.5, 13.0]


def xlsx_bytes(rows, header=("time", "station", "value", "quality"), title="Pegel") -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    # A second sheet that must be ignored.
    other = workbook.create_sheet("Notizen")
    other.append(["irrelevant", "columns"])
    other.append(["x", "y"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_upload_with_real_date_cells(node, ds):
    content = xlsx_bytes(
        [
            (dt.datetime(2026, 3, 1, 0, 0), "Dalke", 101.5, 1),
            (dt.datetime(2026, 3, 1, 7, 15), "Lutter", 88.25, None),
            ("2026-03-01T12:30:00+01:00", 4711, 102, 2),  # text timestamp; number in a text column
        ]
    )
    response = node.upload(
        ds, "Pegel März.xlsx", content, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert response.status == 200, response
    assert response.json()["rows"] == 3
    assert read_all(node, ds) == [
        {"time": ms(2026, 3, 1), "station": "Dalke", "value": 101.5, "quality": 1},
        {"time": ms(2026, 3, 1, 7, 15), "station": "Lutter", "value": 88.25, "quality": None},
        {"time": ms(2026, 3, 1, 11, 30), "station": "4711", "value": 102.0, "quality": 2},
    ]


def test_xlsx_stray_far_away_cell_is_cheap_and_ignored(node, ds):
    """A cell at XFD1048576 must not make the node build a dense 17-billion-cell grid."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["time", "station", "value"])
    sheet.append(["2026-03-01T00:00:00Z", "Dalke", 84.5])
    sheet["XFD1048576"] = "stray"
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = node.upload(ds, "pegel.xlsx", buffer.getvalue())
    assert response.status == 200, response
    assert response.json()["rows"] == 1
    assert [r["station"] for r in read_all(node, ds)] == ["Dalke"]


def test_xlsx_date_cell_into_date32(node):
    node.create_dataset(
        {
            "id": "ingest-date32",
            "title": "Abfallkalender",
            "description": "Abholtermine der Müllabfuhr nach Abfallart",
            "schema": {"fields": [{"name": "day", "type": "date32"}, {"name": "kind", "type": "utf8"},
                                  {"name": "ok", "type": "bool"}]},
            "policy": {"visibility": "public"},
        }
    )
    content = xlsx_bytes(
        [(dt.date(2026, 3, 2), "Restmüll", True), (dt.datetime(2026, 12, 31), "Papier", False)],
        header=("day", "kind", "ok"),
    )
    response = node.upload("ingest-date32", "kalender.xlsx", content)
    assert response.status == 200, response
    rows = node.read_rows("ingest-date32", "json").json()
    days = sorted((str(r["day"]), r["kind"], r["ok"]) for r in rows)
    assert days == [("2026-03-02", "Restmüll", True), ("2026-12-31", "Papier", False)], rows


# ---- refused input ------------------------------------------------------------------


def test_malformed_json(node, ds):
    response = node.post_rows(ds, '[{"time": "2026-03-01T00:00:00Z", "station": "a", "value": 1', "application/json")
    problem = assert_rejected(node, ds, response)
    assert "json" in problem["detail"].lower()


@pytest.mark.parametrize("body", ['{"time": 1, "station": "a", "value": 1}', '"rows"', "42"])
def test_non_array_json(node, ds, body):
    response = node.post_rows(ds, body, "application/json")
    problem = assert_rejected(node, ds, response)
    assert "array" in problem["detail"].lower(), problem


def test_array_of_non_objects(node, ds):
    response = node.post_rows(ds, '[[1, "a", 2.0]]', "application/json")
    problem = assert_rejected(node, ds, response)
    assert error_for(problem, row=1)


def test_wrong_types_name_row_and_column(node, ds):
    rows = [
        {"time": "2026-03-01T00:00:00Z", "station": "a", "value": 1.0},
        {"time": "2026-03-01T00:15:00Z", "station": "a", "value": "hoch"},
        {"time": "2026-03-01T00:30:00Z", "station": 17, "value": 1.0},
        {"time": "2026-03-01 00:45", "station": "a", "value": 1.0},
        {"time": "2026-03-01T01:00:00Z", "station": "a", "value": 1.0, "quality": 1.5},
    ]
    response = node.post_json(f"/api/v1/datasets/{ds}/rows", rows)
    problem = assert_rejected(node, ds, response)
    assert problem["total_rows"] == 5 and problem["rejected_rows"] == 4, problem
    assert "hoch" in error_for(problem, row=2, column="value")["reason"]
    assert error_for(problem, row=3, column="station")
    assert "RFC 3339" in error_for(problem, row=4, column="time")["reason"]
    assert error_for(problem, row=5, column="quality")
    assert not any(e["row"] == 1 for e in problem["errors"]), problem


def test_missing_required_column(node, ds):
    rows = [{"time": "2026-03-01T00:00:00Z", "station": "a", "value": 1.0}, {"time": "2026-03-01T00:00:00Z", "station": "b"}]
    problem = assert_rejected(node, ds, node.post_json(f"/api/v1/datasets/{ds}/rows", rows))
    assert "required" in error_for(problem, row=2, column="value")["reason"]


def test_null_in_required_column(node, ds):
    rows = [{"time": "2026-03-01T00:00:00Z", "station": None, "value": 1.0}]
    problem = assert_rejected(node, ds, node.post_json(f"/api/v1/datasets/{ds}/rows", rows))
    assert error_for(problem, row=1, column="station")


def test_unknown_column(node, ds):
    rows = [{"time": "2026-03-01T00:00:00Z", "station": "a", "value": 1.0, "pegel_cm": 3}]
    problem = assert_rejected(node, ds, node.post_json(f"/api/v1/datasets/{ds}/rows", rows))
    error = error_for(problem, row=1, column="pegel_cm")
    assert "unknown" in error["reason"].lower()


def test_csv_missing_required_column(node, ds):
    problem = assert_rejected(node, ds, node.post_rows(ds, "time,station\n2026-03-01T00:00:00Z,a\n", "text/csv"))
    assert "value" in problem["detail"], problem


def test_csv_unknown_column(node, ds):
    body = "time,station,value,pegel_cm\n2026-03-01T00:00:00Z,a,1,3\n"
    problem = assert_rejected(node, ds, node.post_rows(ds, body, "text/csv"))
    assert "pegel_cm" in problem["detail"], problem


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson", "text/csv"])
@pytest.mark.parametrize("body", [b"", b"  \n\t\n"], ids=["empty", "whitespace"])
def test_empty_body(node, ds, content_type, body):
    problem = assert_rejected(node, ds, node.post_rows(ds, body, content_type))
    assert "row" in problem["detail"].lower() or "empty" in problem["detail"].lower(), problem


def test_empty_array(node, ds):
    problem = assert_rejected(node, ds, node.post_rows(ds, "[]", "application/json"))
    assert "row" in problem["detail"].lower(), problem


def test_csv_header_only(node, ds):
    assert_rejected(node, ds, node.post_rows(ds, "time,station,value\n", "text/csv"))


def test_ndjson_bad_line_is_named(node, ds):
    body = (
        '{"time": "2026-03-01T00:00:00Z", "station": "a", "value": 1}\n'
        '{"time": "2026-03-01T00:15:00Z", "station": "a", "value": \n'
        '{"time": "2026-03-01T00:30:00Z", "station": "a", "value": "x"}\n'
    )
    problem = assert_rejected(node, ds, node.post_rows(ds, body, "application/x-ndjson"))
    first = error_for(problem, row=2)
    assert first.get("line") == 2, first
    third = error_for(problem, row=3, column="value")
    assert third.get("line") == 3, third


def test_csv_non_utf8(node, ds):
    body = "time,station,value\n2026-03-01T00:00:00Z,Gütersloh,1\n".encode("cp1252")
    problem = assert_rejected(node, ds, node.post_rows(ds, body, "text/csv"))
    error = error_for(problem, row=1)
    assert error.get("line") == 2, error
    assert "UTF-8" in error["reason"], error


def test_csv_wrong_field_count(node, ds):
    body = (
        "time,station,value\n"
        "2026-03-01T00:00:00Z,a,1\n"
        "2026-03-01T00:15:00Z,a\n"
        "2026-03-01T00:30:00Z,a,1,9\n"
        "2026-03-01T00:45:00Z,a,x\n"
    )
    problem = assert_rejected(node, ds, node.post_rows(ds, body, "text/csv"))
    assert problem["rejected_rows"] == 3 and problem["total_rows"] == 4, problem
    assert error_for(problem, row=2)["line"] == 3
    assert error_for(problem, row=3)["line"] == 4
    bad_value = error_for(problem, row=4, column="value")
    assert bad_value["line"] == 5, bad_value


@pytest.mark.parametrize("quality", ["9223372036854775808", "18446744073709551616", "99999999999999999999999"])
def test_integer_out_of_i64_range(node, ds, quality):
    body = '[{"time": "2026-03-01T00:00:00Z", "station": "a", "value": 1, "quality": %s}]' % quality
    problem = assert_rejected(node, ds, node.post_rows(ds, body, "application/json"))
    error_for(problem, row=1, column="quality")


def test_integer_out_of_range_in_csv(node, ds):
    body = "time,station,value,quality\n2026-03-01T00:00:00Z,a,1,9223372036854775808\n"
    problem = assert_rejected(node, ds, node.post_rows(ds, body, "text/csv"))
    assert error_for(problem, row=1, column="quality")["line"] == 2


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-inf", "inf"])
def test_non_finite_floats(node, ds, value):
    rows = [{"time": "2026-03-01T00:00:00Z", "station": "a", "value": value}]
    problem = assert_rejected(node, ds, node.post_json(f"/api/v1/datasets/{ds}/rows", rows))
    error_for(problem, row=1, column="value")
    body = f"time,station,value\n2026-03-01T00:00:00Z,a,{value}\n"
    problem = assert_rejected(node, ds, node.post_rows(ds, body, "text/csv"))
    error_for(problem, row=1, column="value")


def test_nan_literal_is_not_json(node, ds):
    body = '[{"time": "2026-03-01T00:00:00Z", "station": "a", "value": NaN}]'
    assert_rejected(node, ds, node.post_rows(ds, body, "application/json"))


def test_rejection_leaves_earlier_rows_untouched(node, ds):
    assert node.post_json(f"/api/v1/datasets/{ds}/rows", GOOD_ROWS).status == 200
    bad = GOOD_ROWS + [{"time": "2026-03-02T00:00:00Z", "station": "a", "value": "x"}]
    assert_rejected(node, ds, node.post_json(f"/api/v1/datasets/{ds}/rows", bad), before=3)
    assert read_all(node, ds) == EXPECTED


def test_many_bad_rows_are_counted(node, ds):
    rows = [{"time": "2026-03-01T00:00:00Z", "station": "a", "value": "x"}] * 250
    problem = assert_rejected(node, ds, node.post_json(f"/api/v1/datasets/{ds}/rows", rows))
    assert problem["rejected_rows"] == 250 and problem["total_rows"] == 250, {
        k: v for k, v in problem.items() if k != "errors"
    }
    assert 1 <= len(problem["errors"]) <= 250


def post_oversized(node, path: str, body: bytes) -> tuple[int, str, bytes]:
    """POSTs `body` in pieces; the node may answer and close before it has read all."""
    parsed = urllib.parse.urlparse(node.http)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("Authorization", f"Bearer {node.token}")
        connection.endheaders()
        view = memoryview(body)
        try:
            for start in range(0, len(body), 1 << 20):
                connection.send(view[start : start + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


def test_a_json_body_over_its_route_limit_is_413_naming_the_limit(node, ds):
    # An invitation (or policy, view, description) is small; 2 MiB of it is refused unread.
    body = json.dumps({"invitation": "urbanmesh-invitation:" + "A" * (2 * 1024 * 1024)}).encode()
    status, content_type, payload = post_oversized(node, "/api/v1/federation/join", body)
    assert status == 413, payload[:500]
    assert content_type.startswith("application/problem+json"), content_type
    assert json.loads(payload)["limit"] == "max_json_body_bytes"
    assert node.get("/healthz").status == 200


def test_body_over_64_mib_is_413(node, ds):
    row = b'{"time": "2026-03-01T00:00:00Z", "station": "a", "value": 1.0},'
    count = (70 * 1024 * 1024) // len(row) + 1
    body = b"[" + row * count + row[:-1] + b"]"
    assert len(body) > 70 * 1024 * 1024
    parsed = urllib.parse.urlparse(node.http)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.putrequest("POST", f"/api/v1/datasets/{ds}/rows")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.putheader("Authorization", f"Bearer {node.token}")
        connection.endheaders()
        view = memoryview(body)
        try:
            for start in range(0, len(body), 1 << 20):
                connection.send(view[start : start + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the node may answer and close before reading everything
        response = connection.getresponse()
        status, content_type, payload = response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()
    assert status == 413, payload[:500]
    assert content_type.startswith("application/problem+json"), content_type
    assert json.loads(payload)["status"] == 413
    assert node.rows_count(ds) == 0
    assert node.get("/healthz").status == 200


def test_unknown_dataset_is_404(node):
    response = node.post_json("/api/v1/datasets/gibt-es-nicht/rows", GOOD_ROWS)
    assert response.status == 404, response
    assert "gibt-es-nicht" in response.problem()["detail"]
    response = node.upload("gibt-es-nicht", "a.csv", b"time,station,value\n2026-03-01T00:00:00Z,a,1\n")
    assert response.status == 404, response
    response.problem()


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None, "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(node, ds, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = node.request("POST", f"/api/v1/datasets/{ds}/rows", json.dumps(GOOD_ROWS).encode(), headers, auth=True)
    problem = assert_rejected(node, ds, response, status=415)
    assert "application/json" in problem["detail"], problem


def test_rows_need_the_admin_token(node, ds):
    response = node.post_json(f"/api/v1/datasets/{ds}/rows", GOOD_ROWS, auth=False)
    assert_rejected(node, ds, response, status=401)
    body, ctype = b"time,station,value\n2026-03-01T00:00:00Z,a,1\n", "text/csv"
    response = node.upload(ds, "a.csv", body, ctype, auth=False)
    assert_rejected(node, ds, response, status=401)


def test_corrupt_xlsx(node, ds):
    valid = xlsx_bytes([(dt.datetime(2026, 3, 1), "a", 1.0, None)])
    for content in (b"PK\x03\x04 this is not a workbook", valid[: len(valid) // 2], b"time,station,value\n"):
        response = node.upload(ds, "pegel.xlsx", content)
        problem = assert_rejected(node, ds, response)
        assert "xlsx" in problem["detail"].lower() or "workbook" in problem["detail"].lower(), problem


def test_xlsx_bad_cell_names_sheet_row(node, ds):
    content = xlsx_bytes(
        [
            (dt.datetime(2026, 3, 1), "a", 1.0, None),
            (dt.datetime(2026, 3, 1), "a", "hoch", None),
        ]
    )
    problem = assert_rejected(node, ds, node.upload(ds, "pegel.xlsx", content))
    error = error_for(problem, row=2, column="value")
    assert error["line"] == 3, error


@pytest.mark.parametrize("filename", ["pegel.txt", "pegel.ods", "pegel.xls", "pegel"])
def test_unsupported_upload_extension(node, ds, filename):
    response = node.upload(ds, filename, b"time,station,value\n2026-03-01T00:00:00Z,a,1\n")
    assert response.status in (400, 415), response
    problem = assert_rejected(node, ds, response, status=response.status)
    assert ".csv" in problem["detail"] and ".xlsx" in problem["detail"], problem


def test_upload_without_a_file_field(node, ds):
    boundary = "xyzzy"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\nhallo\r\n--{boundary}--\r\n"
    ).encode()
    response = node.request(
        "POST", f"/api/v1/datasets/{ds}/upload", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        auth=True,
    )
    problem = assert_rejected(node, ds, response)
    assert "file" in problem["detail"].lower()


def test_rejected_rows_do_not_count_as_ingested(node, ds):
    """Rejected batches must not count as ingested rows."""
    node.post_json(f"/api/v1/datasets/{ds}/rows", [{"time": 1, "station": "a", "value": "x"}])
    assert node.post_json(f"/api/v1/datasets/{ds}/rows", GOOD_ROWS).status == 200
    text = node.get("/metrics", auth=True).text
    line = re.search(r'urbanmesh_dataset_rows_ingested_total\{[^}]*dataset="%s"[^}]*\} (\d+)' % re.escape(ds), text, re.M)
    assert line and int(line.group(1)) == 3, text[:2000]


def test_float_values_round_trip_exactly(node, ds):
    """What is sent is what is stored: no float loses its last digits on the way in."""
    import pyarrow.parquet as pq

    values = [0.1 + 0.2, 123.456789012345678, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 2.0**53 + 2,
              4010003.2, 98.76543210987654, 1 / 3]
    rows = [{"time": ms(2026, 3, 1) + i, "station": "a", "value": v} for i, v in enumerate(values)]
    assert node.post_json(f"/api/v1/datasets/{ds}/rows", rows).status == 200
    response = node.read_rows(ds, "parquet")
    assert response.status == 200, response
    table = pq.read_table(io.BytesIO(response.body)).sort_by("time")
    stored = table.column("value").to_pylist()
    assert [v.hex() for v in stored] == [v.hex() for v in values]
