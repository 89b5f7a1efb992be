"""The OpenAPI document of /api/v1 (issue 19), checked against the real responses.

The document is generated from the handlers: the router and the document come from the
same registrations. Schemathesis (PyPI) reads it from the running node and sends what it
derives from it, examples, boundary values and fuzzed requests, both well-formed and
malformed, as an anonymous visitor and as the admin. Every answer must be documented:
its status, its Content-Type, its body's schema and its headers; and none may be a
server error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Node, PEGEL_SCHEMA, pegel_spec

# The operations tools outside the repository rely on: adding one is fine, losing one is not.
CONTRACT = {
    "/datasets": {"get", "post"},
    "/datasets/{id}": {"get", "put", "delete"},
    "/datasets/{id}/rows": {"get", "post"},
    "/datasets/{id}/upload": {"post"},
    "/datasets/{id}/latest.geojson": {"get"},
    "/datasets/{id}/policy": {"get", "put"},
    "/views": {"get", "post"},
    "/views/{id}": {"get", "put", "delete"},
    "/views/{id}/rows": {"get"},
    "/views/{id}/status": {"get"},
    "/views/{id}/latest.geojson": {"get"},
    "/audit": {"get"},
    "/me": {"get"},
    "/search": {"get"},
    "/federation": {"get"},
    "/federation/invitations": {"post"},
    "/federation/join": {"post"},
    "/federation/members/{peer}": {"delete"},
    "/federation/{node}/datasets/{id}/rows": {"get"},
    "/dashboards": {"get", "post"},
    "/dashboards/{id}": {"get", "put", "delete"},
}
METHODS = {"get", "put", "post", "delete", "patch"}
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
])
# Dataset and view that exist, so that operations on one reach past "not found". Deleting
# operations get an id of their own, so that they do not pull the ground from the others.
SUBJECT = "pegel"
VIEW = "pegel-owl"
MAP_SCHEMA = {"fields": PEGEL_SCHEMA["fields"] + [
    {"name": "lon", "type": "float64"},
    {"name": "lat", "type": "float64"},
]}


@pytest.fixture(scope="module")
def api_node(tmp_path_factory) -> Node:
    node = Node(tmp_path_factory.mktemp("openapi"))
    node.start()
    spec = pegel_spec(SUBJECT, schema=MAP_SCHEMA, geometry={"lon": "lon", "lat": "lat"})
    node.create_dataset(spec)
    rows = [{"time": "2026-11-30T10:00:00Z", "station": "Dalke", "value": 87.0, "quality": 1, "lon": 8.38, "lat": 51.9}]
    assert node.post_json(f"/api/v1/datasets/{SUBJECT}/rows", rows).status == 200
    view = {"id": VIEW, "title": "Pegel OWL", "description": "Wasserstände der Städte", "select": {"keywords": ["pegel"]},
            "schema": PEGEL_SCHEMA, "time_column": "time", "series_key": "station", "policy": {"visibility": "public"}}
    assert node.post_json("/api/v1/views", view).status == 201
    yield node
    node.close()


def document(node: Node) -> dict:
    response = node.get("/api/v1/openapi.json")
    assert response.status == 200, response
    assert response.content_type == "application/json"
    return response.json()


def test_the_document_names_every_operation_with_its_errors(api_node):
    doc = document(api_node)
    assert doc["openapi"].startswith("3.1"), doc["openapi"]
    assert doc["servers"] == [{"url": "/api/v1"}]
    served = {path: {m for m in item if m in METHODS} for path, item in doc["paths"].items()}
    for path, methods in CONTRACT.items():
        assert methods <= served.get(path, set()), f"{path}: {served.get(path)}"
    schemas = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method in METHODS & item.keys():
            operation = item[method]
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), f"{where} has no summary"
            assert operation.get("tags"), f"{where} has no tag"
            default = operation["responses"]["default"]["content"]
            assert default["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}, where
            for ref in refs(operation):
                assert ref.rsplit("/", 1)[1] in schemas, f"{where}: {ref} is not defined"
    # Staff-only operations say so; anonymous ones allow no credentials at all.
    assert {} not in doc["paths"]["/audit"]["get"]["security"]
    assert {} in doc["paths"]["/datasets"]["get"]["security"]
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "session"}


def test_a_request_body_refuses_unknown_fields_but_a_record_flattening_it_has_more(api_node):
    schemas = document(api_node)["components"]["schemas"]
    # The description is a request body and the first part of the dataset record.
    assert "additionalProperties" not in schemas["DatasetSpec"]
    assert "unknown fields are refused" in schemas["DatasetSpec"]["description"]
    assert {"$ref": "#/components/schemas/DatasetSpec"} in schemas["Dataset"]["allOf"]
    # A body nothing flattens keeps the keyword.
    assert schemas["JoinRequest"]["additionalProperties"] is False
    # And the node does refuse one.
    spec = pegel_spec("unknown-field", colour="blau")
    problem = api_node.post_json("/api/v1/datasets", spec).problem()
    assert "colour" in problem["detail"], problem


def refs(value) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [r for v in value.values() for r in refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in refs(v)]
    return []


@pytest.mark.parametrize("caller", ["anonymous", "admin"])
def test_every_answer_is_as_documented(api_node, tmp_path, caller):
    """Schemathesis against the running node; fails on any undocumented answer or 5xx."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f'[parameters]\n"path.id" = "{SUBJECT}"\n\n'
        f'[[operations]]\ninclude-path-regex = "^/views/"\nexclude-method = "DELETE"\nparameters = {{ "path.id" = "{VIEW}" }}\n\n'
        '[[operations]]\ninclude-method = "DELETE"\nparameters = { "path.id" = "doomed" }\n'
    )
    headers = ["-H", f"Authorization: Bearer {api_node.token}"] if caller == "admin" else []
    base = api_node.url("/api/v1")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run",
            f"{base}/openapi.json", "--url", base, *headers,
            "--checks", CHECKS, "--mode", "all", "--max-examples", "25", "--seed", "19",
            "--phases", "examples,coverage,fuzzing", "--workers", "2",
            "--generation-database", "none", "--no-color", "--request-timeout", "20",
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    operations = sum(len(METHODS & item.keys()) for item in document(api_node)["paths"].values())
    assert f"Tested: {operations}" in result.stdout, report
    # The node survived all of it.
    assert api_node.get("/readyz").status == 200, api_node.log_tail()


def test_dashboards_through_the_api_are_checked_like_the_workspace_s(api_node):
    board = {"id": "pegel-board", "title": "Pegel", "range": "24h", "visibility": "internal",
             "tiles": [{"kind": "chart", "source": {"dataset": SUBJECT}, "column": "value"},
                       {"kind": "text", "text": "Stand der Pegel"}]}
    bad = dict(board, tiles=[{"kind": "chart", "source": {"dataset": SUBJECT}, "column": "station"}])
    problem = api_node.post_json("/api/v1/dashboards", bad).problem()
    assert problem["status"] == 400 and problem["field"] == "tiles[0].column" and "value" in problem["detail"], problem
    missing = dict(board, tiles=[{"kind": "map", "source": {"view": "gibt-es-nicht"}}])
    assert api_node.post_json("/api/v1/dashboards", missing).problem()["field"] == "tiles[0].source"
    assert api_node.get("/api/v1/dashboards/pegel-board", auth=True).status == 404, "nothing stored of either"

    created = api_node.post_json("/api/v1/dashboards", board)
    assert created.status == 201 and created.headers["Location"] == "/api/v1/dashboards/pegel-board", created
    assert api_node.post_json("/api/v1/dashboards", board).status == 409
    # Internal: staff see it, a visitor finds nothing, on the API and on the portal.
    assert api_node.get("/api/v1/dashboards/pegel-board", auth=True).json() == dict(board, description="")
    assert api_node.get("/api/v1/dashboards/pegel-board").status == 404
    assert api_node.get("/api/v1/dashboards").json() == {"dashboards": []}
    assert api_node.get("/dashboards/pegel-board", headers={"Accept": "text/html"}).status == 404
    public = dict(board, visibility="public", range="30d")
    assert api_node.request("PUT", "/api/v1/dashboards/pegel-board", json.dumps(public).encode(),
                            {"Content-Type": "application/json"}, auth=True).status == 200
    assert [d["id"] for d in api_node.get("/api/v1/dashboards").json()["dashboards"]] == ["pegel-board"]
    page = api_node.get("/dashboards/pegel-board", headers={"Accept": "text/html"})
    assert page.status == 200 and "<polyline" in page.text and "Stand der Pegel" in page.text, page
    assert api_node.post_json("/api/v1/dashboards", dict(board, id="x"), auth=False).status == 401
    assert api_node.delete("/api/v1/dashboards/pegel-board").status == 204


def test_a_public_dashboard_shows_visitors_nothing_of_an_internal_dataset(api_node):
    """The dashboard is public, its source is not: a visitor learns neither the rows nor the
    dataset's title from the page; staff see the chart."""
    secret = pegel_spec("geheim-pegel", title="Geheimer Messpunkt Kläranlage", policy={"visibility": "internal"})
    api_node.create_dataset(secret)
    rows = [{"time": "2026-12-02T10:00:00Z", "station": "KA", "value": 12.5, "quality": 1}]
    assert api_node.post_json("/api/v1/datasets/geheim-pegel/rows", rows).status == 200
    board = {"id": "offen-board", "title": "Offen", "range": "30d", "visibility": "public",
             "tiles": [{"kind": kind, "source": {"dataset": "geheim-pegel"}} for kind in ("chart", "latest", "table")]}
    assert api_node.post_json("/api/v1/dashboards", board).status == 201
    visitor = api_node.get("/dashboards/offen-board", headers={"Accept": "text/html"})
    assert visitor.status == 200
    assert "Geheimer Messpunkt" not in visitor.text and "<polyline" not in visitor.text, visitor.text
    assert "12,5" not in visitor.text and 'data-series="KA"' not in visitor.text
    staff = api_node.get("/dashboards/offen-board", headers={"Accept": "text/html"}, auth=True)
    assert "Geheimer Messpunkt" in staff.text and "<polyline" in staff.text


def test_oversized_dashboards_are_refused_naming_the_limit(api_node):
    text = {"kind": "text", "text": "x" * 4001}
    problem = api_node.post_json("/api/v1/dashboards", {"id": "gross", "title": "Groß", "tiles": [text]}).problem()
    assert problem["status"] == 400 and problem["field"] == "tiles[0].text", problem
    many = [{"kind": "text", "text": "x"}] * 25
    problem = api_node.post_json("/api/v1/dashboards", {"id": "gross", "title": "Groß", "tiles": many}).problem()
    assert problem["status"] == 400 and problem["field"] == "tiles", problem
    assert api_node.get("/api/v1/dashboards/gross", auth=True).status == 404
