"""Dataset records: create, list, get, delete, and how invalid requests are refused."""

import json

import pytest

from conftest import pegel_spec

ALLOWED_TYPES = ["int64", "float64", "utf8", "bool", "date32", "timestamp[ms, UTC]", "timestamp[us, UTC]"]


@pytest.fixture
def node(shared_node):
    return shared_node


def create(node, spec, auth=True):
    return node.post_json("/api/v1/datasets", spec, auth=auth)


def test_create_returns_the_dataset(node):
    response = create(node, pegel_spec("ds-create"))
    assert response.status == 201, response
    body = response.json()
    assert body["id"] == "ds-create"
    assert body["title"] == "Pegelstände Gütersloh"
    assert body["rows"] == 0
    assert body["tenant"] == "Gütersloh"
    assert body["time_column"] == "time"
    assert body["series_key"] == "station"
    names = [f["name"] for f in body["schema"]["fields"]]
    assert names == ["time", "station", "value", "quality"]


def test_list_get_and_delete(node):
    for dataset in ("ds-list-b", "ds-list-a"):
        create(node, pegel_spec(dataset))
    listing = node.get("/api/v1/datasets")
    assert listing.status == 200, listing
    ids = [d["id"] for d in listing.json()["datasets"]]
    assert {"ds-list-a", "ds-list-b"} <= set(ids)
    assert all("rows" in d for d in listing.json()["datasets"])

    got = node.get("/api/v1/datasets/ds-list-a")
    assert got.status == 200, got
    assert got.json()["id"] == "ds-list-a" and got.json()["rows"] == 0

    deleted = node.delete("/api/v1/datasets/ds-list-a")
    assert deleted.status == 204, deleted
    assert deleted.body == b""
    assert node.get("/api/v1/datasets/ds-list-a").status == 404
    ids = [d["id"] for d in node.get("/api/v1/datasets").json()["datasets"]]
    assert "ds-list-a" not in ids and "ds-list-b" in ids


def test_delete_then_recreate_starts_empty(node):
    create(node, pegel_spec("ds-recreate"))
    stored = node.post_json(
        "/api/v1/datasets/ds-recreate/rows",
        [{"time": "2026-03-01T00:00:00Z", "station": "Dalke", "value": 1.0}],
    )
    assert stored.status == 200, stored
    assert node.rows_count("ds-recreate") == 1
    assert node.delete("/api/v1/datasets/ds-recreate").status == 204
    other = {"fields": [{"name": "n", "type": "int64"}]}
    response = create(
        node, {"id": "ds-recreate", "title": "Zähler", "description": "Zählerstände, ganzzahlig", "schema": other,
               "policy": {"visibility": "public"}}
    )
    assert response.status == 201, response
    assert response.json()["rows"] == 0
    rows = node.read_rows("ds-recreate", "json")
    assert rows.status == 200, rows
    assert rows.json() == []
    stored = node.post_json("/api/v1/datasets/ds-recreate/rows", [{"n": 7}])
    assert stored.status == 200, stored
    assert node.read_rows("ds-recreate", "json").json() == [{"n": 7}]


def test_unknown_type_names_the_field_and_lists_allowed_types(node):
    spec = pegel_spec("ds-badtype")
    spec["schema"]["fields"][2]["type"] = "double"
    response = create(node, spec)
    assert response.status == 400, response
    problem = response.problem()
    assert "field" in problem, problem
    assert "schema.fields" in problem["field"] and "type" in problem["field"], problem
    assert "double" in problem["detail"], problem
    for type_name in ALLOWED_TYPES:
        assert type_name in problem["detail"], f"{type_name} not listed: {problem['detail']}"
    assert node.get("/api/v1/datasets/ds-badtype").status == 404


@pytest.mark.parametrize("bad_id", ["Pegel", "../etc", "", "pegel güt", "-lead", "x" * 65])
def test_bad_id_names_the_field(node, bad_id):
    response = create(node, pegel_spec(bad_id))
    assert response.status == 400, response
    problem = response.problem()
    assert problem.get("field") == "id", problem


@pytest.mark.parametrize("name", ["Time", "zeit stempel", "1st", "wert-cm", ""])
def test_bad_column_name_names_the_field(node, name):
    spec = pegel_spec("ds-badcol")
    spec["schema"]["fields"].append({"name": name, "type": "int64"})
    response = create(node, spec)
    assert response.status == 400, response
    problem = response.problem()
    assert problem.get("field", "").startswith("schema.fields"), problem
    assert node.get("/api/v1/datasets/ds-badcol").status == 404


def test_duplicate_column_is_refused(node):
    spec = pegel_spec("ds-dupcol")
    spec["schema"]["fields"].append({"name": "value", "type": "int64"})
    response = create(node, spec)
    assert response.status == 400, response
    assert "schema.fields" in response.problem().get("field", "")


def test_time_column_must_exist(node):
    response = create(node, pegel_spec("ds-notime", time_column="zeit"))
    assert response.status == 400, response
    problem = response.problem()
    assert problem.get("field") == "time_column", problem
    assert "zeit" in problem["detail"], problem


def test_time_column_must_be_a_timestamp(node):
    response = create(node, pegel_spec("ds-timetype", time_column="value"))
    assert response.status == 400, response
    problem = response.problem()
    assert problem.get("field") == "time_column", problem


def test_series_key_must_exist(node):
    response = create(node, pegel_spec("ds-nokey", series_key="pegel"))
    assert response.status == 400, response
    assert response.problem().get("field") == "series_key"


def test_empty_schema_is_refused(node):
    response = create(node, pegel_spec("ds-noschema", schema={"fields": []}, time_column=None, series_key=None))
    assert response.status == 400, response
    assert "schema" in response.problem().get("field", "")


def test_missing_title_or_malformed_body_is_a_client_error(node):
    spec = pegel_spec("ds-notitle")
    del spec["title"]
    response = create(node, spec)
    assert 400 <= response.status < 500, response
    response.problem()
    response = node.request(
        "POST", "/api/v1/datasets", b'{"id": "ds-broken", ', {"Content-Type": "application/json"}, auth=True
    )
    assert response.status == 400, response
    response.problem()
    assert node.get("/api/v1/datasets/ds-broken").status == 404


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
    ids=["no-token", "wrong-token", "basic"],
)
def test_writes_need_the_admin_token(node, headers):
    body = json.dumps(pegel_spec("ds-unauth")).encode()
    response = node.request("POST", "/api/v1/datasets", body, {"Content-Type": "application/json", **headers})
    assert response.status == 401, response
    response.problem()
    assert node.get("/api/v1/datasets/ds-unauth").status == 404

    create(node, pegel_spec("ds-protected"))
    response = node.request("DELETE", "/api/v1/datasets/ds-protected", headers=headers)
    assert response.status == 401, response
    response.problem()
    assert node.get("/api/v1/datasets/ds-protected").status == 200


def test_duplicate_id_is_409(node):
    assert create(node, pegel_spec("ds-dup")).status == 201
    again = create(node, pegel_spec("ds-dup", title="Anders"))
    assert again.status == 409, again
    problem = again.problem()
    assert "ds-dup" in problem["detail"]
    assert node.get("/api/v1/datasets/ds-dup").json()["title"] == "Pegelstände Gütersloh"


def test_unknown_dataset_is_404(node):
    for response in (
        node.get("/api/v1/datasets/nope"),
        node.delete("/api/v1/datasets/nope"),
        node.read_rows("nope", "json"),
    ):
        assert response.status == 404, response
        assert "nope" in response.problem()["detail"]


def test_datasets_survive_a_restart(node_factory):
    node = node_factory()
    node.create_dataset("ds-persist")
    node.restart()
    body = node.dataset("ds-persist")
    assert body["tenant"] == "Gütersloh" and body["rows"] == 0
    assert [f["name"] for f in body["schema"]["fields"]] == ["time", "station", "value", "quality"]
