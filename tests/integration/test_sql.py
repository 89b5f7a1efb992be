"""Flight SQL (issue 14) against real nodes, through the real ADBC Flight SQL driver.

One federation of three towns serves the module: Gütersloh (the founder, whose node most
statements go to), Bielefeld and Bad Salzuflen, each with a public dataset of 15-minute
water levels written through the REST API; Gütersloh also holds one dataset per policy
kind (internal, federation-only, masked, row-filtered, aggregate-only), Bielefeld one
federation-only dataset, and Gütersloh serves a regional view over the three towns. A
separate node ("Lemgo", in no federation) runs with small query budgets for the limits.

Callers connect with `adbc_driver_flightsql.dbapi.connect` to a node's Flight port:
anonymously, with a node's admin token (`Bearer`), and with a purpose in the header
`x-urbanmesh-purpose`. Names: catalog `urbanmesh`, one schema per town (its name folded:
`gütersloh`, `bielefeld`, `bad_salzuflen`), `views` for the regional views; the table is the
dataset's id. The DB-API cursor prepares every statement (CreatePreparedStatement, then
GetFlightInfo of the prepared statement; bound parameters go in a DoPut first); plain
CommandStatementQuery/CommandStatementUpdate are sent through the ADBC statement itself.

Errors: the Go driver writes "[FlightSQL] <server message> (<gRPC code>; <call>)" and gives
the gRPC code's number as `vendor_code`. Waits poll a condition against a deadline.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from conftest import (
    Federation,
    Node,
    audit_records,
    federated_ids,
    pegel_spec,
    wait_until,
)

UTC = dt.timezone.utc
CATALOG = "urbanmesh"
ABSENT = "gibt-es-nicht"
# Set-up: the members' catalogue entries reach the other nodes (gossip or anti-entropy).
REPLICATION_DEADLINE = 30.0
# Audit records are written when a stream ends.
AUDIT_DEADLINE = 10.0
AUTHORIZATION = adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value
CALL_HEADER = adbc_driver_flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value
FETCH_TIMEOUT = adbc_driver_flightsql.DatabaseOptions.TIMEOUT_FETCH.value
QUERY_TIMEOUT = adbc_driver_flightsql.DatabaseOptions.TIMEOUT_QUERY.value
# gRPC status codes, by the number the driver reports as vendor_code.
GRPC_CODES = {3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 7: "PERMISSION_DENIED",
              8: "RESOURCE_EXHAUSTED", 13: "INTERNAL", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED"}

# ---- data ------------------------------------------------------------------------------------

START = dt.datetime(2026, 3, 1, tzinfo=UTC)
STEP = dt.timedelta(minutes=15)
READINGS = 8  # two hours of 15-minute values per station
KEYWORD = "SQLPegel"  # the regional view selects the three towns' public datasets by it
# town -> (its public dataset, base level in cm, stations); the Lutter flows through two towns.
TOWN_DATA = {
    "Gütersloh": ("pegel-guetersloh", 80.0, ["Dalke", "Lutter"]),
    "Bielefeld": ("pegel-bielefeld", 120.0, ["Aa", "Lutter", "Johannisbach"]),
    "Bad Salzuflen": ("pegel-salzuflen", 40.0, ["Salze"]),
}
SCHEMAS = {"Gütersloh": "gütersloh", "Bielefeld": "bielefeld", "Bad Salzuflen": "bad_salzuflen"}
# Gütersloh's datasets under each policy kind, all holding Gütersloh's levels.
POLICIES = {
    "messstellen-intern": None,  # no policy: internal
    "pegel-verbund": {"visibility": "federation"},
    "pegel-maskiert": {"visibility": "public", "rules": [{"assignee": "anyone", "masked": ["quality"]}]},
    "pegel-gefiltert": {"visibility": "public", "rules": [{"assignee": "anyone", "row_filter": "station = 'Dalke'"}]},
    "pegel-stuendlich": {"visibility": "public", "rules": [
        {"assignee": "anyone", "aggregate": {"bucket": "1h", "min_group": 1}}]},
}
BIELEFELD_VERBUND = "pegel-bielefeld-verbund"  # Bielefeld's federation-only dataset
VIEW = "pegel-owl-sql"


def levels(base: float, stations: list[str], readings: int = READINGS) -> list[dict]:
    """15-minute water levels from START (exact in binary floating point), quality 1-3."""
    return [{"time": START + i * STEP, "station": station, "value": base + 10 * k + 0.25 * i + 1.5 * (i % 2),
             "quality": 1 + (i + k) % 3}
            for i in range(readings) for k, station in enumerate(stations)]


def csv_of(rows: list[dict]) -> str:
    return "time,station,value,quality\n" + "".join(
        f"{r['time']:%Y-%m-%dT%H:%M:%SZ},{r['station']},{r['value']},{r['quality']}\n" for r in rows)


def add_dataset(node: Node, dataset: str, rows: list[dict], policy: dict | None = None, **overrides) -> list[dict]:
    """Creates a water-level dataset (internal without `policy`) and writes `rows` as CSV."""
    spec = pegel_spec(dataset, title=f"Pegelstände {node.name} ({dataset})", **overrides)
    if policy is None:
        del spec["policy"]
    else:
        spec["policy"] = policy
    node.create_dataset(spec)
    response = node.post_rows(dataset, csv_of(rows), "text/csv")
    assert response.status == 200, f"{node.name}: rows of {dataset}: {response!r}"
    return rows


def tuples(rows: list[dict], *columns: str) -> list[tuple]:
    return sorted(tuple(row[c] for c in columns) for row in rows)


# ---- ADBC ------------------------------------------------------------------------------------


@contextmanager
def connect(node: Node, token: str | None = None, purpose: str | None = None, timeout: float | None = None):
    """A DB-API connection to `node`'s Flight SQL endpoint: anonymous without `token`."""
    options = {}
    if token:
        options[AUTHORIZATION] = f"Bearer {token}"
    if purpose:
        options[CALL_HEADER + "x-urbanmesh-purpose"] = purpose
    if timeout:
        options[QUERY_TIMEOUT] = str(timeout)
        options[FETCH_TIMEOUT] = str(timeout)
    conn = flight_sql.connect(node.flight, db_kwargs=options, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def query(conn, sql: str, parameters=None) -> list[dict]:
    """The statement's rows (prepared, as the DB-API cursor does), as dicts."""
    with conn.cursor() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetch_arrow_table().to_pylist()


def unprepared(conn, sql: str) -> pa.Table:
    """CommandStatementQuery without a prepared statement (the DB-API cursor always prepares)."""
    statement = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
    try:
        statement.set_sql_query(sql)
        handle, _ = statement.execute_query()
        return pa.RecordBatchReader._import_from_c(handle.address).read_all()
    finally:
        statement.close()


def update(conn, sql: str) -> int:
    """CommandStatementUpdate, as a client's executeUpdate sends DML and DDL."""
    statement = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
    try:
        statement.set_sql_query(sql)
        return statement.execute_update()
    finally:
        statement.close()


def failure(call) -> Exception:
    """The error `call` raises (an ADBC error, or pyarrow's while reading a stream imported
    without the driver manager's error translation)."""
    try:
        result = call()
    except (adbc_driver_manager.Error, pa.ArrowException, OSError) as error:
        return error
    raise AssertionError(f"expected an error, got {result!r}"[:2000])


def grpc_code(error: Exception) -> str:
    """The gRPC status the server answered with: the driver's vendor code, or the code it
    names in its message ("(ResourceExhausted; DoGet: ...)")."""
    vendor = getattr(error, "vendor_code", None)
    if vendor in GRPC_CODES:
        return GRPC_CODES[vendor]
    match = re.search(r"\((\w+); ", str(error))
    assert match, f"no gRPC code in {error!r}"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", match.group(1)).upper()


def objects(conn, **filters) -> dict[str, dict[str, dict[str, list[str]]]]:
    """adbc_get_objects (depth all) as catalog -> schema -> table -> its column names in order."""
    listing: dict = {}
    for catalog in conn.adbc_get_objects(depth="all", **filters).read_all().to_pylist():
        schemas = listing.setdefault(catalog["catalog_name"], {})
        for schema in catalog["catalog_db_schemas"] or []:
            tables = schemas.setdefault(schema["db_schema_name"], {})
            for table in schema["db_schema_tables"] or []:
                columns = sorted(table["table_columns"] or [], key=lambda c: c["ordinal_position"] or 0)
                tables[table["table_name"]] = [column["column_name"] for column in columns]
    return listing


def table_types(conn) -> set[str]:
    """Every table_type adbc_get_objects names."""
    return {table["table_type"]
            for catalog in conn.adbc_get_objects(depth="tables").read_all().to_pylist()
            for schema in catalog["catalog_db_schemas"] or []
            for table in schema["db_schema_tables"] or []}


def assert_like_absent(hidden: Exception, absent: Exception, hidden_name: str, absent_name: str, what: str) -> None:
    """A table the caller may not see fails exactly like one that does not exist."""
    assert type(hidden) is type(absent), f"{what}: hidden raised {hidden!r}, absent {absent!r}"
    assert getattr(hidden, "vendor_code", None) == getattr(absent, "vendor_code", None), (what, hidden, absent)
    assert getattr(hidden, "status_code", None) == getattr(absent, "status_code", None), (what, hidden, absent)
    assert str(hidden).replace(hidden_name, absent_name) == str(absent), f"{what}: {hidden!s} vs {absent!s}"


# ---- the module's federation -------------------------------------------------------------------


@dataclass
class Towns:
    federation: Federation
    gt: Node  # Gütersloh
    bi: Node  # Bielefeld
    bs: Node  # Bad Salzuflen
    rows: dict[str, list[dict]]  # dataset id -> the rows written to it


@pytest.fixture(scope="module")
def towns(tmp_path_factory) -> Towns:
    federation = Federation.form(tmp_path_factory.mktemp("sql"), 3, names=list(TOWN_DATA), name="Pegelverbund OWL")
    try:
        gt, bi, bs = (federation.node(name) for name in TOWN_DATA)
        rows = {}
        for name, (dataset, base, stations) in TOWN_DATA.items():
            rows[dataset] = add_dataset(federation.node(name), dataset, levels(base, stations),
                                        {"visibility": "public"}, keywords=["Pegel", KEYWORD], themes=["ENVI"])
        for dataset, policy in POLICIES.items():
            rows[dataset] = add_dataset(gt, dataset, rows["pegel-guetersloh"], policy)
        rows[BIELEFELD_VERBUND] = add_dataset(bi, BIELEFELD_VERBUND, levels(200.0, ["Aa"]), {"visibility": "federation"})

        expected = {
            gt: {"Bielefeld": {"pegel-bielefeld", BIELEFELD_VERBUND}, "Bad Salzuflen": {"pegel-salzuflen"}},
            bi: {"Gütersloh": {"pegel-guetersloh", "pegel-verbund"}},
        }
        for viewer, origins in expected.items():
            wait_until(lambda: all(ids <= federated_ids(viewer, origin, viewer.auth_headers())
                                   for origin, ids in origins.items()),
                       REPLICATION_DEADLINE, f"{viewer.name} to hold {origins}", interval=0.05)

        view = {
            "id": VIEW, "title": "Pegelstände OWL (SQL)", "description": "Wasserstände der drei Städte",
            "select": {"keywords": [KEYWORD]},
            "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                                  {"name": "value", "type": "float64", "unit": "cm"}]},
            "time_column": "time", "series_key": "station", "refresh": "0s", "deadline": "5s",
            "policy": {"visibility": "public"},
        }
        response = gt.post_json("/api/v1/views", view)
        assert response.status == 201, f"creating the view: {response!r}"
        yield Towns(federation, gt, bi, bs, rows)
    finally:
        federation.close()


# ---- discovery ---------------------------------------------------------------------------------


def test_the_catalog_lists_a_schema_per_town_and_the_views_with_their_tables_and_columns(towns):
    columns = ["time", "station", "value", "quality"]
    with connect(towns.gt, towns.gt.token) as conn:
        listing = objects(conn)
    assert set(listing) == {CATALOG}, listing
    schemas = listing[CATALOG]
    assert set(schemas) == {"gütersloh", "bielefeld", "bad_salzuflen", "views"}, schemas
    # Staff of Gütersloh see every dataset of their own node, and the members' entries this node holds.
    assert set(schemas["gütersloh"]) == {"pegel-guetersloh", *POLICIES}, schemas["gütersloh"]
    assert set(schemas["bielefeld"]) == {"pegel-bielefeld", BIELEFELD_VERBUND}, schemas["bielefeld"]
    assert set(schemas["bad_salzuflen"]) == {"pegel-salzuflen"}, schemas["bad_salzuflen"]
    assert set(schemas["views"]) == {VIEW}, schemas["views"]
    for schema, table in [("gütersloh", "pegel-guetersloh"), ("gütersloh", "messstellen-intern"),
                          ("bielefeld", "pegel-bielefeld"), ("bad_salzuflen", "pegel-salzuflen")]:
        assert schemas[schema][table] == columns, (schema, table, schemas[schema][table])
    assert schemas["views"][VIEW][:3] == ["time", "station", "value"], schemas["views"][VIEW]


def test_anonymous_callers_see_no_internal_or_federation_only_tables(towns):
    with connect(towns.gt) as conn:
        schemas = objects(conn)[CATALOG]
    assert set(schemas["gütersloh"]) == {"pegel-guetersloh", "pegel-maskiert", "pegel-gefiltert",
                                         "pegel-stuendlich"}, schemas["gütersloh"]
    assert set(schemas.get("bielefeld", {})) == {"pegel-bielefeld"}, schemas.get("bielefeld")
    assert set(schemas.get("bad_salzuflen", {})) == {"pegel-salzuflen"}, schemas.get("bad_salzuflen")
    assert set(schemas.get("views", {})) == {VIEW}, schemas.get("views")
    everything = json.dumps(schemas, ensure_ascii=False)
    for hidden in ("messstellen-intern", "pegel-verbund", BIELEFELD_VERBUND):
        assert f'"{hidden}"' not in everything, f"{hidden} listed to an anonymous caller: {everything}"


def test_a_members_own_node_lists_its_town_and_the_federation_only_tables_shared_with_it(towns):
    with connect(towns.bi, towns.bi.token) as conn:
        schemas = objects(conn)[CATALOG]
    assert set(schemas) >= {"bielefeld", "gütersloh", "bad_salzuflen"}, schemas
    assert set(schemas["bielefeld"]) == {"pegel-bielefeld", BIELEFELD_VERBUND}, schemas["bielefeld"]
    assert {"pegel-guetersloh", "pegel-verbund"} <= set(schemas["gütersloh"]), schemas["gütersloh"]
    assert "messstellen-intern" not in schemas["gütersloh"], schemas["gütersloh"]
    with connect(towns.bi) as conn:
        anonymous = objects(conn)[CATALOG]
    assert "pegel-verbund" not in anonymous.get("gütersloh", {}), anonymous
    assert BIELEFELD_VERBUND not in anonymous.get("bielefeld", {}), anonymous


def test_filters_table_schema_table_types_and_sql_info(towns):
    with connect(towns.gt) as conn:
        filtered = objects(conn, catalog_filter=CATALOG, db_schema_filter="bielefeld")
        assert set(filtered.get(CATALOG, {})) == {"bielefeld"}, filtered
        schema = conn.adbc_get_table_schema("pegel-salzuflen", catalog_filter=CATALOG, db_schema_filter="bad_salzuflen")
        assert schema.names == ["time", "station", "value", "quality"], schema
        assert schema.field("time").type == pa.timestamp("ms", tz="UTC"), schema
        assert schema.field("station").type in (pa.string(), pa.large_string(), pa.string_view()), schema
        assert schema.field("value").type == pa.float64() and schema.field("quality").type == pa.int64(), schema
        types = conn.adbc_get_table_types()
        assert types and all(isinstance(t, str) and t for t in types), types
        assert table_types(conn) <= set(types), (table_types(conn), types)
        info = conn.adbc_get_info()
        assert isinstance(info.get("vendor_name"), str) and info["vendor_name"], info


def test_discovery_describes_each_table_as_the_caller_reads_it(towns):
    """What GetTables says of a table's columns is what a SELECT * of it returns, for
    callers whose grant reshapes the rows (the aggregate-only table) too."""
    with connect(towns.gt) as conn:
        for schema, table in [("gütersloh", "pegel-stuendlich"), ("gütersloh", "pegel-maskiert"),
                              ("bielefeld", "pegel-bielefeld")]:
            described = conn.adbc_get_table_schema(table, catalog_filter=CATALOG, db_schema_filter=schema)
            read = unprepared(conn, f'SELECT * FROM {schema}."{table}"')
            assert described.names == read.schema.names, (schema, table, described.names, read.schema.names)


# ---- statements across towns -------------------------------------------------------------------

UNION_BY_TOWN = """
SELECT town, station, count(*) AS readings, sum(value) AS total, max(value) AS highest
FROM (
    SELECT 'Gütersloh' AS town, station, value FROM Gütersloh."pegel-guetersloh"
    UNION ALL SELECT 'Bielefeld' AS town, station, value FROM bielefeld."pegel-bielefeld"
    UNION ALL SELECT 'Bad Salzuflen' AS town, station, value FROM urbanmesh.bad_salzuflen."pegel-salzuflen"
) AS levels
GROUP BY town, station
ORDER BY town, station
"""


def test_union_all_with_group_by_across_the_three_towns(towns):
    expected = sorted(
        (town, station, len(values), sum(values), max(values))
        for town, (dataset, _, stations) in TOWN_DATA.items()
        for station in stations
        for values in [[r["value"] for r in towns.rows[dataset] if r["station"] == station]])
    with connect(towns.gt) as conn:  # everything here is public
        rows = query(conn, UNION_BY_TOWN)
        assert [(r["town"], r["station"], r["readings"], r["total"], r["highest"]) for r in rows] == expected
        # The Lutter's readings from two towns fall into one group.
        by_station = query(conn, """
            SELECT station, count(*) AS readings FROM (
                SELECT station FROM gütersloh."pegel-guetersloh"
                UNION ALL SELECT station FROM bielefeld."pegel-bielefeld"
                UNION ALL SELECT station FROM bad_salzuflen."pegel-salzuflen") AS s
            GROUP BY station ORDER BY station""")
    assert {r["station"]: r["readings"] for r in by_station} == {
        "Aa": READINGS, "Dalke": READINGS, "Johannisbach": READINGS, "Lutter": 2 * READINGS, "Salze": READINGS}


def test_a_join_across_two_towns(towns):
    gt = {r["time"]: r["value"] for r in towns.rows["pegel-guetersloh"] if r["station"] == "Lutter"}
    bi = {r["time"]: r["value"] for r in towns.rows["pegel-bielefeld"] if r["station"] == "Lutter"}
    with connect(towns.gt, towns.gt.token) as conn:
        rows = query(conn, """
            SELECT g.time, g.value AS guetersloh, b.value AS bielefeld, b.value - g.value AS difference
            FROM gütersloh."pegel-guetersloh" AS g
            JOIN urbanmesh.bielefeld."pegel-bielefeld" AS b ON g.time = b.time AND g.station = b.station
            ORDER BY g.time""")
    assert [(r["time"], r["guetersloh"], r["bielefeld"], r["difference"]) for r in rows] == [
        (t, gt[t], bi[t], bi[t] - gt[t]) for t in sorted(gt)]
    assert len(rows) == READINGS


def test_the_own_towns_tables_need_no_schema_and_hyphenated_ids_need_quotes(towns):
    with connect(towns.gt) as conn:
        assert query(conn, 'SELECT count(*) AS n FROM "pegel-guetersloh"') == [{"n": 2 * READINGS}]
        assert unprepared(conn, 'SELECT count(*) AS n FROM gütersloh."pegel-guetersloh"').to_pylist() == [
            {"n": 2 * READINGS}]
        unquoted = failure(lambda: query(conn, "SELECT count(*) FROM gütersloh.pegel-guetersloh"))
        assert grpc_code(unquoted) == "INVALID_ARGUMENT", unquoted


def test_a_bound_parameter(towns):
    rows = towns.rows["pegel-guetersloh"]
    sql = 'SELECT time, station, value FROM gütersloh."pegel-guetersloh" WHERE value > ? ORDER BY time, station'
    with connect(towns.gt) as conn, conn.cursor() as cursor:
        for threshold in (90.0, 81.0):  # the same prepared statement, bound twice
            cursor.execute(sql, parameters=(threshold,))
            got = cursor.fetch_arrow_table().to_pylist()
            assert tuples(got, "time", "station", "value") == tuples(
                [r for r in rows if r["value"] > threshold], "time", "station", "value"), threshold
            assert got, f"no rows over {threshold}: the threshold should select some"
        # A parameter in a statement over a member's table.
        cursor.execute('SELECT count(*) AS n FROM bielefeld."pegel-bielefeld" WHERE station = ?', parameters=("Aa",))
        assert cursor.fetchall() == [(READINGS,)]


def test_results_read_into_pandas_and_duckdb(towns):
    rows = towns.rows["pegel-bielefeld"]
    with connect(towns.gt) as conn, conn.cursor() as cursor:
        cursor.execute('SELECT time, station, value, quality FROM bielefeld."pegel-bielefeld" ORDER BY time, station')
        df = cursor.fetch_df()
        assert isinstance(df, pd.DataFrame) and list(df.columns) == ["time", "station", "value", "quality"]
        assert len(df) == len(rows)
        assert str(df["time"].dt.tz) == "UTC", df.dtypes
        means = df.groupby("station")["value"].mean().to_dict()
        for station in TOWN_DATA["Bielefeld"][2]:
            values = [r["value"] for r in rows if r["station"] == station]
            assert means[station] == pytest.approx(sum(values) / len(values)), (station, means)
        assert df["time"].min() == pd.Timestamp(START)

        cursor.execute('SELECT * FROM bad_salzuflen."pegel-salzuflen"')
        tbl = cursor.fetch_arrow_table()
        assert tbl.num_rows == READINGS
        got = duckdb.sql("select station, count(*) as n, max(value) as top, min(time) as first from tbl "
                         "group by station").fetchall()
    salze = [r["value"] for r in towns.rows["pegel-salzuflen"]]
    assert len(got) == 1, got
    station, n, top, first = got[0]
    assert (station, n, top) == ("Salze", READINGS, max(salze)), got
    assert first.astimezone(UTC) == START, got


@pytest.mark.parametrize("table", ['"pegel-guetersloh"', 'bielefeld."pegel-bielefeld"'])
def test_time_bounds_keep_the_rows_on_the_bound(towns, table):
    """Bounds on the time column narrow what is read, at this node or at the member; the
    rows exactly on a bound stay in."""
    dataset = table.split(".")[-1].strip('"')
    rows = towns.rows[dataset]
    low, high = START + 2 * STEP, START + 5 * STEP
    expected = sum(low <= r["time"] <= high for r in rows)
    bounds = f"time >= TIMESTAMP '{low:%Y-%m-%d %H:%M:%S}' AND time <= TIMESTAMP '{high:%Y-%m-%d %H:%M:%S}'"
    between = f"time BETWEEN TIMESTAMP '{low:%Y-%m-%d %H:%M:%S}' AND TIMESTAMP '{high:%Y-%m-%d %H:%M:%S}'"
    on_bound = f"time = TIMESTAMP '{high:%Y-%m-%d %H:%M:%S}'"
    with connect(towns.gt, towns.gt.token) as conn:
        for where, count in [(bounds, expected), (between, expected), (on_bound, sum(r["time"] == high for r in rows))]:
            got = query(conn, f"SELECT count(*) AS n FROM {table} WHERE {where}")
            assert got == [{"n": count}], (where, got)


def test_people_sign_in_with_their_providers_bearer_jwt(node_factory, oidc_provider):
    """A JWT of the municipality's OpenID provider: its staff see the internal table, a
    citizen does not (as if it did not exist), a token for another audience is refused."""
    herford = node_factory("Herford", start=False)
    herford.use_oidc(oidc_provider, "herford")
    herford.start()
    add_dataset(herford, "zaehlstellen", levels(10.0, ["Radewig"]))  # internal
    add_dataset(herford, "pegel-herford", levels(60.0, ["Werre"]), {"visibility": "public"})
    staff, citizen = oidc_provider.access_token("staff-viewer"), oidc_provider.access_token("citizen")
    foreign = oidc_provider.access_token("staff-admin", client_id="other-app")
    sql = 'SELECT count(*) AS n FROM "zaehlstellen"'
    with connect(herford, staff) as conn:
        assert query(conn, sql) == [{"n": READINGS}]
    with connect(herford, citizen) as conn:
        hidden = failure(lambda: query(conn, sql))
        assert grpc_code(hidden) == "INVALID_ARGUMENT" and "not found" in str(hidden), hidden
        assert query(conn, 'SELECT count(*) AS n FROM "pegel-herford"') == [{"n": READINGS}]

    def with_foreign_token():
        with connect(herford, foreign) as conn:
            return query(conn, 'SELECT count(*) AS n FROM "pegel-herford"')

    refused = failure(with_foreign_token)
    assert grpc_code(refused) == "UNAUTHENTICATED", refused


def test_the_dataset_page_shows_the_tables_sql_name_and_a_snippet_that_runs(towns):
    page = towns.bs.get("/datasets/pegel-salzuflen", headers={"Accept": "text/html"})
    assert page.status == 200, page
    name = 'urbanmesh.bad_salzuflen."pegel-salzuflen"'
    text = html.unescape(page.text)
    assert name in text, "the dataset page names the table as SQL writes it"
    match = re.search(r"cur\.execute\('(SELECT [^']+)'\)", text)
    assert match, "the page shows a query to run"
    # The snippet's statement runs as printed, anonymously, at the node that serves the page.
    with connect(towns.bs) as conn, conn.cursor() as cur:
        cur.execute(match.group(1))
        table = cur.fetch_arrow_table()
    assert table.num_rows == len(towns.rows["pegel-salzuflen"]), table


def test_a_regional_view_is_a_table_in_schema_views(towns):
    with connect(towns.gt) as conn:
        rows = query(conn, f'SELECT source_node, count(*) AS n, max(value) AS top FROM views."{VIEW}" '
                           'GROUP BY source_node ORDER BY source_node')
    expected = {town: (len(towns.rows[dataset]), max(r["value"] for r in towns.rows[dataset]))
                for town, (dataset, _, _) in TOWN_DATA.items()}
    assert {r["source_node"]: (r["n"], r["top"]) for r in rows} == expected, rows


# ---- policies through SQL ------------------------------------------------------------------------


def test_internal_and_federation_only_tables_are_absent_to_anonymous_callers(towns):
    with connect(towns.gt) as conn:
        absent = failure(lambda: query(conn, f'SELECT * FROM gütersloh."{ABSENT}"'))
        assert grpc_code(absent) in ("INVALID_ARGUMENT", "NOT_FOUND") and ABSENT in str(absent), absent
        for hidden in ("messstellen-intern", "pegel-verbund"):
            error = failure(lambda: query(conn, f'SELECT * FROM gütersloh."{hidden}"'))
            assert_like_absent(error, absent, hidden, ABSENT, f"anonymous SELECT from {hidden}")
            # Without the schema (the own town's is the default), and without a prepared statement.
            assert_like_absent(failure(lambda: unprepared(conn, f'SELECT * FROM "{hidden}"')),
                               failure(lambda: unprepared(conn, f'SELECT * FROM "{ABSENT}"')),
                               hidden, ABSENT, f"anonymous unprepared SELECT from {hidden}")
            assert_like_absent(
                failure(lambda: conn.adbc_get_table_schema(hidden, catalog_filter=CATALOG, db_schema_filter="gütersloh")),
                failure(lambda: conn.adbc_get_table_schema(ABSENT, catalog_filter=CATALOG, db_schema_filter="gütersloh")),
                hidden, ABSENT, f"anonymous table schema of {hidden}")
        # A member's federation-only table, through this node.
        assert_like_absent(failure(lambda: query(conn, f'SELECT * FROM bielefeld."{BIELEFELD_VERBUND}"')),
                           failure(lambda: query(conn, f'SELECT * FROM bielefeld."{ABSENT}"')),
                           BIELEFELD_VERBUND, ABSENT, "anonymous SELECT from Bielefeld's federation-only table")
    # The node's staff read them all.
    with connect(towns.gt, towns.gt.token) as conn:
        for dataset in ("messstellen-intern", "pegel-verbund"):
            assert query(conn, f'SELECT count(*) AS n FROM gütersloh."{dataset}"') == [{"n": 2 * READINGS}], dataset
        assert query(conn, f'SELECT count(*) AS n FROM bielefeld."{BIELEFELD_VERBUND}"') == [{"n": READINGS}]


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    length, prefix = len(payload), b""
    while True:
        byte, length = length & 0x7F, length >> 7
        prefix += bytes([byte | (0x80 if length else 0)])
        if not length:
            return bytes([number << 3 | 2]) + prefix + payload


def test_a_statement_ticket_grants_nothing_to_whoever_replays_it(towns):
    """A ticket carries the statement only: a staff member's ticket for an internal table,
    replayed by an anonymous caller, is planned for that caller and finds no such table."""
    import pyarrow.flight as fl

    query = _field(1, b'SELECT count(*) AS n FROM "messstellen-intern"')
    command = _field(1, b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery") + _field(2, query)
    staff = fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {towns.gt.token}".encode())])
    client = fl.FlightClient(towns.gt.flight)
    info = client.get_flight_info(fl.FlightDescriptor.for_command(command), staff)
    ticket = info.endpoints[0].ticket
    assert client.do_get(ticket, staff).read_all().to_pylist() == [{"n": len(towns.rows["messstellen-intern"])}]
    with pytest.raises(pa.ArrowException) as replayed:
        client.do_get(ticket).read_all()
    assert "not found" in str(replayed.value) and "messstellen-intern" in str(replayed.value), replayed.value


def test_asking_as_for_the_public_only_narrows(towns):
    """`x-urbanmesh-for-public` (what a member sends for a caller who is not its staff) makes
    even the admin token see only what the public may see."""
    options = {AUTHORIZATION: f"Bearer {towns.gt.token}", CALL_HEADER + "x-urbanmesh-for-public": "1"}
    with flight_sql.connect(towns.gt.flight, db_kwargs=options, autocommit=True) as conn:
        listed = objects(conn)[CATALOG]["gütersloh"]
        hidden = failure(lambda: query(conn, 'SELECT count(*) AS n FROM "messstellen-intern"'))
        masked = query(conn, 'SELECT count(quality) AS q FROM "pegel-maskiert"')
    assert "messstellen-intern" not in listed and "pegel-verbund" not in listed, listed
    assert "not found" in str(hidden), hidden
    assert masked == [{"q": 0}], masked


def test_federation_only_tables_are_read_by_members_staff_through_their_own_node(towns):
    expected = tuples(towns.rows["pegel-verbund"], "time", "station", "value", "quality")
    with connect(towns.bi, towns.bi.token) as conn:
        rows = query(conn, 'SELECT * FROM gütersloh."pegel-verbund"')
        assert tuples(rows, "time", "station", "value", "quality") == expected
        # Internal stays internal, for members too.
        assert_like_absent(failure(lambda: query(conn, 'SELECT * FROM gütersloh."messstellen-intern"')),
                           failure(lambda: query(conn, f'SELECT * FROM gütersloh."{ABSENT}"')),
                           "messstellen-intern", ABSENT, "Bielefeld's staff reading Gütersloh's internal table")
    with connect(towns.bi) as conn:
        assert_like_absent(failure(lambda: query(conn, 'SELECT * FROM gütersloh."pegel-verbund"')),
                           failure(lambda: query(conn, f'SELECT * FROM gütersloh."{ABSENT}"')),
                           "pegel-verbund", ABSENT, "anonymous at Bielefeld reading Gütersloh's federation-only table")


def test_masked_columns_come_back_null(towns):
    written = towns.rows["pegel-maskiert"]
    with connect(towns.gt) as conn:
        rows = query(conn, 'SELECT time, station, value, quality FROM gütersloh."pegel-maskiert"')
        assert tuples(rows, "time", "station", "value") == tuples(written, "time", "station", "value")
        assert all(r["quality"] is None for r in rows), rows
        # A filter on the masked column meets the nulls, not the stored values.
        assert query(conn, 'SELECT * FROM gütersloh."pegel-maskiert" WHERE quality = 2') == []
        assert query(conn, 'SELECT count(*) AS n FROM gütersloh."pegel-maskiert" WHERE quality IS NULL') == [
            {"n": len(written)}]
    with connect(towns.gt, towns.gt.token) as conn:
        staff = query(conn, 'SELECT quality FROM gütersloh."pegel-maskiert"')
        assert sorted(r["quality"] for r in staff) == sorted(r["quality"] for r in written)


def test_a_row_filter_releases_only_the_matching_rows(towns):
    dalke = [r for r in towns.rows["pegel-gefiltert"] if r["station"] == "Dalke"]
    with connect(towns.gt) as conn:
        rows = query(conn, 'SELECT time, station, value FROM gütersloh."pegel-gefiltert"')
        assert tuples(rows, "time", "station", "value") == tuples(dalke, "time", "station", "value")
        assert query(conn, """SELECT * FROM gütersloh."pegel-gefiltert" WHERE station = 'Lutter'""") == []
        assert query(conn, 'SELECT count(*) AS n, count(DISTINCT station) AS stations FROM gütersloh."pegel-gefiltert"'
                     ) == [{"n": len(dalke), "stations": 1}]


def test_aggregate_only_tables_release_only_their_aggregates(towns):
    groups: dict[tuple, list[dict]] = {}
    for row in towns.rows["pegel-stuendlich"]:
        groups.setdefault((row["time"].replace(minute=0), row["station"]), []).append(row)
    with connect(towns.gt) as conn:
        rows = query(conn, 'SELECT * FROM gütersloh."pegel-stuendlich"')
        assert set(rows[0]) == {"time", "station", "records", "value", "quality"}, rows[0]
        assert len(rows) == len(groups), f"raw rows left the node: {len(rows)} rows for {len(groups)} buckets"
        got = {(r["time"], r["station"]): r for r in rows}
        assert set(got) == set(groups), sorted(got)
        for key, members in groups.items():
            row = got[key]
            assert row["records"] == len(members), (key, row)
            assert row["value"] == pytest.approx(sum(m["value"] for m in members) / len(members)), (key, row)
            assert row["quality"] == sum(m["quality"] for m in members), (key, row)
        # The rows under the aggregates cannot be counted, filtered or grouped finer.
        assert query(conn, 'SELECT count(*) AS n FROM gütersloh."pegel-stuendlich"') == [{"n": len(groups)}]
        quarter = START + STEP
        assert query(conn, f"""SELECT * FROM gütersloh."pegel-stuendlich" WHERE time = '{quarter:%Y-%m-%dT%H:%M:%SZ}'"""
                     ) == []


# ---- read-only -----------------------------------------------------------------------------------

REFUSED = {
    "CREATE TABLE": "CREATE TABLE kopie (time TIMESTAMP, value DOUBLE)",
    "CREATE TABLE AS": 'CREATE TABLE kopie AS SELECT * FROM gütersloh."pegel-guetersloh"',
    "CREATE VIEW": 'CREATE VIEW kopie AS SELECT * FROM gütersloh."pegel-guetersloh"',
    "DROP": 'DROP TABLE gütersloh."pegel-guetersloh"',
    "INSERT": """INSERT INTO gütersloh."pegel-guetersloh" VALUES ('2026-03-02T00:00:00Z', 'Dalke', 1.0, 1)""",
    "DELETE": 'DELETE FROM gütersloh."pegel-guetersloh"',
    "UPDATE": 'UPDATE gütersloh."pegel-guetersloh" SET value = 0',
    "COPY": 'COPY gütersloh."pegel-guetersloh" TO \'{target}\' STORED AS CSV',
    "SET": "SET datafusion.execution.batch_size = 1",
    "CREATE EXTERNAL TABLE": "CREATE EXTERNAL TABLE kopie STORED AS CSV LOCATION '{source}'",
}


def assert_read_only(error: Exception, what: str) -> None:
    assert grpc_code(error) == "INVALID_ARGUMENT", f"{what}: {error!r}"
    text = str(error).lower()
    assert "read-only" in text or "not allowed" in text, f"{what}: {error}"


@pytest.mark.parametrize("what", list(REFUSED))
def test_statements_that_change_anything_are_refused(towns, what, tmp_path):
    target, source = tmp_path / "kopie.csv", tmp_path / "quelle.csv"
    source.write_text("a\n1\n")
    sql = REFUSED[what].format(target=target, source=source)
    with connect(towns.gt, towns.gt.token) as conn:  # not even the node's staff
        assert_read_only(failure(lambda: query(conn, sql)), f"{what}, prepared")
        assert_read_only(failure(lambda: unprepared(conn, sql)), f"{what}, CommandStatementQuery")
        assert_read_only(failure(lambda: update(conn, sql)), f"{what}, CommandStatementUpdate")
        assert not target.exists(), f"{what} wrote {target}"
        assert query(conn, 'SELECT count(*) AS n, sum(value) AS total FROM gütersloh."pegel-guetersloh"') == [
            {"n": 2 * READINGS, "total": sum(r["value"] for r in towns.rows["pegel-guetersloh"])}]
        assert "kopie" not in json.dumps(objects(conn), ensure_ascii=False), f"{what} left a table behind"


@pytest.mark.parametrize("sql, says", [
    ("SELECT length(repeat('x', 1000000000000)) AS n", "repeat"),
    ("SELECT lpad('x', 1000000000000) AS n", "lpad"),
    ("SELECT count(*) AS n FROM generate_series(1, 1000000000000)", "generate_series"),
    ("SELECT " + "1+" * 2500 + "1 AS n", "operators"),
])
def test_what_grows_without_bound_is_refused_before_it_runs(towns, sql, says):
    with connect(towns.gt) as conn:
        error = failure(lambda: query(conn, sql))
        assert grpc_code(error) == "INVALID_ARGUMENT" and says in str(error), error
        assert query(conn, "SELECT 1 AS one") == [{"one": 1}]


def test_bad_sql_is_invalid_argument_naming_the_position(towns):
    sql = 'SELECT station FROM gütersloh."pegel-guetersloh" WHERE value > > 80'
    with connect(towns.gt) as conn:
        for how, call in [("prepared", lambda: query(conn, sql)), ("unprepared", lambda: unprepared(conn, sql))]:
            error = failure(call)
            assert grpc_code(error) == "INVALID_ARGUMENT", (how, error)
            position = re.search(r"Line: 1, Column: (\d+)", str(error))
            assert position, f"{how}: no position in {error}"
            # The column (counted in characters, from 1) is the second `>`, where an expression was expected.
            assert sql[int(position.group(1)) - 1:] == "> 80", (how, error)
        # A statement that parses but names no such column: the planner says where.
        unknown = 'SELECT station, depth FROM gütersloh."pegel-guetersloh"'
        error = failure(lambda: query(conn, unknown))
        assert grpc_code(error) == "INVALID_ARGUMENT", error
        position = re.search(r"Line: 1, Column: (\d+)", str(error))
        assert position and unknown[int(position.group(1)) - 1:].startswith("depth"), error
        # The connection is fine afterwards.
        assert query(conn, "SELECT 1 AS one") == [{"one": 1}]


# ---- the access log -----------------------------------------------------------------------------


def new_records(node: Node, purpose: str, count: int) -> list[dict]:
    """`node`'s audit records with `purpose` (used by one test only), once there are `count`."""
    def written():
        records = [r for r in audit_records(node) if r.get("purpose") == purpose]
        return records if len(records) >= count else None

    try:
        return wait_until(written, AUDIT_DEADLINE, f"{count} audit records at {node.name} for {purpose!r}")
    except TimeoutError:
        return [r for r in audit_records(node) if r.get("purpose") == purpose]


def summary(records: list[dict], towns: Towns) -> list[tuple]:
    """(dataset, interface, subject, decision, rows) of each record, sorted; a member's table
    named by its PeerId ("<peer>/<id>") is written with the member's name instead (the
    contract does not say which of the two a relaying node writes)."""
    names = {node.peer_id: node.name for node in (towns.gt, towns.bi, towns.bs)}

    def dataset(name: str) -> str:
        head, _, tail = name.partition("/")
        return f"{names[head]}/{tail}" if tail and head in names else name

    return sorted((dataset(r["dataset"]), r["interface"], r["subject"], r["decision"], r["rows"]) for r in records)


def test_each_statement_is_audited_once_per_table_and_by_the_member_it_read_at(towns):
    gt, bi = towns.gt, towns.bi
    purpose = "statistics"
    with connect(gt, gt.token, purpose=purpose) as conn:
        rows = query(conn, """
            SELECT time, station, value FROM gütersloh."pegel-guetersloh"
            UNION ALL SELECT time, station, value FROM bielefeld."pegel-bielefeld" """)
    gt_rows, bi_rows = len(towns.rows["pegel-guetersloh"]), len(towns.rows["pegel-bielefeld"])
    assert len(rows) == gt_rows + bi_rows
    got = {"Gütersloh": summary(new_records(gt, purpose, 2), towns),
           "Bielefeld": summary(new_records(bi, purpose, 1), towns)}
    assert got == {
        "Gütersloh": [("Bielefeld/pegel-bielefeld", "flight-sql", "admin-token", "permit", bi_rows),
                      ("pegel-guetersloh", "flight-sql", "admin-token", "permit", gt_rows)],
        "Bielefeld": [("pegel-bielefeld", "peer-flight", f"peer:{gt.peer_id}", "permit", bi_rows)],
    }, got


def test_an_anonymous_callers_read_of_a_members_table_is_audited_as_for_the_public(towns):
    gt, bs = towns.gt, towns.bs
    purpose = "public information"
    with connect(gt, purpose=purpose) as conn:
        rows = query(conn, 'SELECT time, value FROM bad_salzuflen."pegel-salzuflen"')
    assert len(rows) == READINGS
    got = {"Gütersloh": summary(new_records(gt, purpose, 1), towns),
           "Bad Salzuflen": summary(new_records(bs, purpose, 1), towns),
           "Bielefeld": summary([r for r in audit_records(towns.bi) if r.get("purpose") == purpose], towns)}
    assert got == {
        "Gütersloh": [("Bad Salzuflen/pegel-salzuflen", "flight-sql", "anonymous", "permit", READINGS)],
        "Bad Salzuflen": [("pegel-salzuflen", "peer-flight", f"peer:{gt.peer_id} for the public", "permit",
                           READINGS)],
        "Bielefeld": [],
    }, got


def test_a_members_table_is_read_with_the_filter_and_time_range_pushed_to_the_member(towns):
    """The member serves only the rows the statement asks for: its own audit record counts them."""
    purpose = "emergency management"
    since = START + dt.timedelta(hours=1)
    wanted = [r for r in towns.rows["pegel-bielefeld"] if r["station"] == "Aa" and r["time"] >= since]
    with connect(towns.gt, towns.gt.token, purpose=purpose) as conn:
        rows = query(conn, f"""SELECT time, value FROM bielefeld."pegel-bielefeld"
                               WHERE station = 'Aa' AND time >= '{since:%Y-%m-%dT%H:%M:%SZ}' ORDER BY time""")
    assert [(r["time"], r["value"]) for r in rows] == [(r["time"], r["value"]) for r in wanted]
    there = new_records(towns.bi, purpose, 1)
    assert [(r["dataset"], r["rows"]) for r in there] == [("pegel-bielefeld", len(wanted))], (
        f"Bielefeld served more than the {len(wanted)} rows asked for: {there}")


@pytest.mark.parametrize("who", ["staff", "anonymous"])
def test_an_aggregate_over_a_members_table_is_computed_at_the_member(towns, who):
    """Only the groups travel: the member answers the GROUP BY itself (its audit record counts
    the groups it sent), for this node's staff as for this node, for anyone else as for the
    public."""
    purpose = f"statistics ({who})"
    since = START + dt.timedelta(minutes=30)
    rows = [r for r in towns.rows["pegel-bielefeld"] if r["time"] >= since]
    stations = sorted({r["station"] for r in rows})
    expected = [{"station": s, "n": sum(r["station"] == s for r in rows),
                 "top": max(r["value"] for r in rows if r["station"] == s),
                 "mean": sum(r["value"] for r in rows if r["station"] == s) / sum(r["station"] == s for r in rows)}
                for s in stations]
    token = towns.gt.token if who == "staff" else None
    with connect(towns.gt, token, purpose=purpose) as conn:
        got = query(conn, f"""SELECT station, count(*) AS n, max(value) AS top, avg(value) AS mean
                              FROM bielefeld."pegel-bielefeld" WHERE time >= '{since:%Y-%m-%dT%H:%M:%SZ}'
                              GROUP BY station ORDER BY station""")
    assert got == expected
    # Bielefeld ran the statement itself (its record: an SQL read of the rows it aggregated) ...
    there = new_records(towns.bi, purpose, 1)
    assert [(r["dataset"], r["interface"], r["rows"]) for r in there] == [("pegel-bielefeld", "flight-sql", len(rows))]
    member = f"peer:{towns.gt.peer_id}"
    assert there[0]["subject"] == (member if who == "staff" else f"{member} for the public"), there
    # ... and sent Gütersloh the groups only.
    here = new_records(towns.gt, purpose, 1)
    assert [(r["dataset"], r["rows"]) for r in here] == [("Bielefeld/pegel-bielefeld", len(stations))], here


# ---- limits ---------------------------------------------------------------------------------------

LIMITED_ROWS = 2000
MEMORY_BUDGET = 8 * 1024 * 1024
TIME_BUDGET = 2
# The client gives up after this, so that a budget not kept fails the test instead of hanging it.
CLIENT_DEADLINE = 30


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Node:
    """A node (in no federation) whose queries may take 8 MiB and 2 seconds, with 2000 rows."""
    node = Node(tmp_path_factory.mktemp("sql-limits"), name="Lemgo")
    try:
        node.init()
        node.add_config("limits", "query_memory_bytes", MEMORY_BUDGET)
        node.add_config("limits", "query_timeout_secs", TIME_BUDGET)
        node.start()
        add_dataset(node, "pegel-lemgo", levels(60.0, ["Bega", "Ilse"], LIMITED_ROWS // 2), {"visibility": "public"})
        yield node
    finally:
        node.close()


def assert_still_answering(node: Node) -> None:
    with connect(node) as conn:
        assert query(conn, 'SELECT count(*) AS n FROM "pegel-lemgo"') == [{"n": LIMITED_ROWS}]
    assert node.get("/readyz").status == 200
    assert node.running


def test_a_query_over_the_memory_budget_is_resource_exhausted_and_the_node_answers_on(limited):
    # Sorting four million rows needs far more than 8 MiB, and nothing may spill to disk.
    sql = ('SELECT a.station, a.value + b.value AS level FROM "pegel-lemgo" a, "pegel-lemgo" b '
           "ORDER BY level, a.time, b.time")
    with connect(limited, timeout=CLIENT_DEADLINE) as conn:
        error = failure(lambda: query(conn, sql))
    assert grpc_code(error) == "RESOURCE_EXHAUSTED", error
    assert "query_memory_bytes" in str(error), error
    assert_still_answering(limited)


def test_a_query_over_the_time_budget_is_deadline_exceeded_and_the_node_answers_on(limited):
    sql = 'SELECT count(*) FROM "pegel-lemgo" a, "pegel-lemgo" b, "pegel-lemgo" c, "pegel-lemgo" d'
    started = time.monotonic()
    with connect(limited, timeout=CLIENT_DEADLINE) as conn:
        error = failure(lambda: query(conn, sql))
    took = time.monotonic() - started
    assert grpc_code(error) == "DEADLINE_EXCEEDED", f"after {took:.1f} s: {error}"
    # The client's own deadline says DEADLINE_EXCEEDED too, but names no key.
    assert "query_timeout_secs" in str(error), f"after {took:.1f} s: {error}"
    assert took < 10 * TIME_BUDGET, f"the {TIME_BUDGET} s budget ended the query only after {took:.1f} s"
    assert_still_answering(limited)
