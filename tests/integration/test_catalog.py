"""The catalogue: DCAT-AP.de metadata on datasets, the RDF export and the search API.

Exports are checked against the official DCAT-AP.de 3.0 shapes with
``validate_dcat.py --strict`` from the conformance folder (``URBANMESH_CONFORMANCE``,
default ``../shared/conformance`` beside the repository), and parsed with rdflib to
check concrete triples.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF

from conftest import REPO, parse_time, pegel_spec, wait_until

CONFORMANCE = Path(os.environ.get("URBANMESH_CONFORMANCE", str(REPO.parent / "shared" / "conformance")))

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCATDE = Namespace("http://dcat-ap.de/def/dcatde/")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
LICENCE = "http://dcat-ap.de/def/licenses/"
THEME = "http://publications.europa.eu/resource/authority/data-theme/"
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
GEOCODING = "http://dcat-ap.de/def/politicalGeocoding/"
XSD_DATE = URIRef("http://www.w3.org/2001/XMLSchema#date")

# rdflib's JSON-LD parser uses its own deprecated ConjunctiveGraph.
pytestmark = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")

UTC = dt.timezone.utc
SYNTAXES = [  # (extension, rdflib format, media type)
    ("ttl", "turtle", "text/turtle"),
    ("jsonld", "json-ld", "application/ld+json"),
    ("rdf", "xml", "application/rdf+xml"),
]
# Changes to the catalogue (create, PUT, DELETE) are searchable within this.
SEARCHABLE_DEADLINE = 1.0
# Derived metadata (rows, first, last) follows ingest "within about a second".
DERIVED_DEADLINE = 2.0
# Set-up waits (e.g. for datasets a search test starts from) are generous.
SETUP_DEADLINE = 10.0
JSON = {"Content-Type": "application/json"}
PEGEL_FIELDS = pegel_spec()["schema"]["fields"]


# ---- helpers ----------------------------------------------------------------------------


def rich_spec(dataset_id: str, **overrides) -> dict:
    """A pegel dataset with every optional DCAT-AP.de field filled in."""
    spec = pegel_spec(
        dataset_id,
        title="Pegelstände der Dalke",
        description="Wasserstände der Dalke an drei Messstellen in Gütersloh, alle 15 Minuten gemessen.",
        keywords=["Hochwasser", "Gewässer"],
        themes=["ENVI", "TRAN"],
        publisher={
            "name": "Kreis Gütersloh, Abteilung Umwelt",
            "type": "RegionalAuthority",
            "uri": "https://www.kreis-guetersloh.de/umwelt",
        },
        contact_point={
            "name": "Fachbereich Umwelt",
            "email": "umwelt@guetersloh.de",
            "url": "https://www.guetersloh.de/umwelt",
        },
        spatial={
            "geocoding": "municipalityKey/05754008",
            "level": "municipality",
            "bbox": [8.30, 51.85, 8.45, 51.95],
        },
        temporal={"start": "2025-01-01", "end": "2026-12-31T23:59:59Z"},
        accrual_periodicity="15MIN",
        licence="dl-by-de/2.0",
        attribution="Stadt Gütersloh, Fachbereich Umwelt",
        conforms_to=["https://www.pegelonline.wsv.de/webservice/dokuRestapi"],
        issued="2025-01-15",
        landing_page="https://www.guetersloh.de/pegel",
    )
    spec.update(overrides)
    return spec


def json_body(obj) -> bytes:
    return json.dumps(obj).encode()


def put(node, spec: dict, auth: bool = True, dataset_id: str | None = None):
    return node.request("PUT", f"/api/v1/datasets/{dataset_id or spec['id']}", json_body(spec), JSON, auth=auth)


def validate(path: Path, fmt: str | None = None) -> str:
    """Runs the official DCAT-AP.de validator in strict mode; asserts that `path` conforms."""
    script = CONFORMANCE / "validate_dcat.py"
    assert script.exists(), f"conformance material not found at {CONFORMANCE} (set URBANMESH_CONFORMANCE)"
    args = [sys.executable, str(script), "--strict", str(path)] + ([fmt] if fmt else [])
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"{path.name} does not conform to DCAT-AP.de 3.0 (exit {result.returncode}):\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    )
    return result.stdout


def export(node, path: str, tmp_path: Path, name: str, headers: dict | None = None, query: dict | None = None):
    """GETs an export, saves it as tmp_path/name and returns (file, response)."""
    response = node.get(path, query=query, headers=headers)
    assert response.status == 200, response
    file = tmp_path / name
    file.write_bytes(response.body)
    return file, response


def fetch_export(node, path: str):
    """GETs a streamed export; a stream that breaks off fails the test instead of erroring."""
    try:
        response = node.get(path)
    except (http.client.HTTPException, ConnectionError):
        response = None  # failed below, outside the handler, to keep the report short
    if response is None:
        pytest.fail(f"GET {path}: the response broke off; node log:\n{node.log_tail(1500)}")
    assert response.status == 200, response
    return response


def parse(data: bytes | Path, fmt: str) -> Graph:
    graph = Graph()
    if isinstance(data, Path):
        graph.parse(str(data), format=fmt)
    else:
        graph.parse(data=data, format=fmt)
    return graph


def dataset_iri(node, dataset_id: str) -> URIRef:
    return URIRef(f"{node.http}/datasets/{dataset_id}")


def ingest(node, dataset_id: str, times: list[str], station: str = "Dalke") -> None:
    rows = [{"time": t, "station": station, "value": 80.0 + i} for i, t in enumerate(times)]
    response = node.post_json(f"/api/v1/datasets/{dataset_id}/rows", rows)
    assert response.status == 200, response


def wait_derived(node, dataset_id: str, rows: int, last: str) -> dict:
    """Polls the record until ingest's derived fields show `rows` rows ending at `last`."""
    def current():
        record = node.dataset(dataset_id)
        return record if record.get("rows") == rows and record.get("last") == last else None

    return wait_until(current, DERIVED_DEADLINE, f"{dataset_id}: rows={rows}, last={last}")


def search(node, **params) -> dict:
    response = node.get("/api/v1/search", query={k: v for k, v in params.items() if v is not None})
    assert response.status == 200, response
    return response.json()


def search_ids(node, **params) -> list[str]:
    return [hit["id"] for hit in search(node, **params)["hits"]]


def wait_search(node, condition, what: str, timeout: float = SEARCHABLE_DEADLINE, **params) -> dict:
    """Polls a search until `condition(ids)` holds; returns the last results."""
    def check():
        results = search(node, **params)
        return results if condition([h["id"] for h in results["hits"]]) else None

    return wait_until(check, timeout, what, interval=0.01)


def facet(results: dict, dimension: str) -> dict[str, int]:
    return {entry["value"]: entry["count"] for entry in results["facets"][dimension]}


def create_all(node, *specs: dict) -> None:
    """Creates the datasets and waits until search sees all of them.

    Set-up only: the one-second promise is asserted by the tests about changes."""
    for spec in specs:
        node.create_dataset(spec)
    total = len(node.get("/api/v1/datasets").json()["datasets"])
    wait_until(lambda: search(node)["total"] == total, SETUP_DEADLINE, f"{total} datasets to be searchable")


# ---- dataset descriptions ---------------------------------------------------------------------


def test_rich_description_round_trips(node):
    spec = rich_spec("pegel-dalke")
    created = node.create_dataset(spec)
    record = node.dataset("pegel-dalke")
    for key in (
        "title", "description", "keywords", "themes", "publisher", "contact_point", "spatial", "temporal",
        "accrual_periodicity", "licence", "attribution", "conforms_to", "issued", "landing_page",
    ):
        assert record.get(key) == spec[key], (key, record)
        assert created.get(key) == spec[key], (key, created)
    assert record["rows"] == 0 and record.get("first") is None and record.get("last") is None, record


def test_description_is_mandatory(node):
    spec = pegel_spec("ohne-beschreibung")
    del spec["description"]
    for body in (spec, {**spec, "description": "   "}):
        response = node.post_json("/api/v1/datasets", body)
        assert response.status == 400, response
        assert response.problem().get("field") == "description"
    assert node.get("/api/v1/datasets/ohne-beschreibung").status == 404


@pytest.mark.parametrize(
    "overrides, field, detail_mentions",
    [
        ({"themes": ["ENVI", "UMWELT"]}, "themes[1]", "ENVI"),
        ({"themes": ["envi"]}, "themes[0]", "TRAN"),
        ({"licence": "mit"}, "licence", "dl-zero-de/2.0"),
        ({"accrual_periodicity": "VIERTELSTÜNDLICH"}, "accrual_periodicity", "15MIN"),
        ({"publisher": {"name": "Stadt", "type": "Kommune"}}, "publisher.type", "LocalAuthority"),
        ({"publisher": {"name": " "}}, "publisher.name", None),
        ({"publisher": {"name": "Stadt", "uri": "kein iri"}}, "publisher.uri", None),
        ({"contact_point": {"name": "Umweltamt"}}, "contact_point", None),
        ({"contact_point": {"name": "Umweltamt", "email": "umwelt at guetersloh"}}, "contact_point.email", None),
        ({"spatial": {"bbox": [8.45, 51.85, 8.30, 51.95]}}, "spatial.bbox", None),
        ({"spatial": {"bbox": [8.30, 91.0, 8.45, 92.0]}}, "spatial.bbox", None),
        ({"spatial": {"level": "Stadt"}}, "spatial.level", "municipality"),
        ({"spatial": {"geocoding": "Gütersloh"}}, "spatial.geocoding", None),
        ({"temporal": {"start": "01.03.2026"}}, "temporal.start", "YYYY-MM-DD"),
        ({"temporal": {"start": "2026-03-01", "end": "2025-03-01"}}, "temporal.end", None),
        ({"issued": "gestern"}, "issued", None),
        ({"conforms_to": ["DIN 4049"]}, "conforms_to[0]", None),
        ({"landing_page": "www.guetersloh.de/pegel"}, "landing_page", None),
        ({"keywords": ["Pegel", ""]}, "keywords[1]", None),
        ({"attribution": ""}, "attribution", None),
    ],
)
def test_invalid_metadata_is_refused_with_the_field_named(shared_node, overrides, field, detail_mentions):
    node = shared_node
    spec = pegel_spec("invalid-metadata", **overrides)
    response = node.post_json("/api/v1/datasets", spec)
    assert response.status == 400, response
    problem = response.problem()
    assert problem.get("field") == field, problem
    if detail_mentions:
        assert detail_mentions in problem["detail"], problem
    assert node.get("/api/v1/datasets/invalid-metadata").status == 404


def test_full_vocabulary_iris_are_accepted(node):
    spec = pegel_spec(
        "iri-codes",
        themes=[THEME + "ENVI"],
        licence=LICENCE + "cc-by/4.0",
        spatial={"geocoding": GEOCODING + "municipalityKey/05754008"},
    )
    node.create_dataset(spec)
    graph = parse(node.get("/datasets/iri-codes.ttl").body, "turtle")
    subject = dataset_iri(node, "iri-codes")
    assert (subject, DCAT.theme, URIRef(THEME + "ENVI")) in graph
    assert (subject, DCTERMS.spatial, URIRef(GEOCODING + "municipalityKey/05754008")) in graph
    licences = {graph.value(d, DCTERMS.license) for d in graph.objects(subject, DCAT.distribution)}
    assert licences == {URIRef(LICENCE + "cc-by/4.0")}
    results = wait_search(node, lambda ids: ids == ["iri-codes"], "iri-codes by licence", licence="cc-by/4.0")
    assert facet(results, "theme") == {"ENVI": 1}


def test_put_replaces_the_description_but_not_the_shape(node):
    node.create_dataset(pegel_spec("pegel", themes=["ENVI"]))
    replaced = pegel_spec(
        "pegel",
        title="Hochwassermeldepegel Lutter",
        description="Meldestufen und Wasserstände der Lutter",
        themes=["TRAN"],
        licence="cc-by/4.0",
    )
    response = put(node, replaced)
    assert response.status == 200, response
    record = node.dataset("pegel")
    assert record["title"] == "Hochwassermeldepegel Lutter"
    assert record["themes"] == ["TRAN"] and record["licence"] == "cc-by/4.0", record
    assert parse_time(record["modified"]) > parse_time(record["created"]), record

    # A PUT replaces the whole description: fields left out are gone.
    graph = parse(node.get("/datasets/pegel.ttl").body, "turtle")
    subject = dataset_iri(node, "pegel")
    assert set(graph.objects(subject, DCAT.theme)) == {URIRef(THEME + "TRAN")}

    shape_changes = {
        "schema": {"fields": PEGEL_FIELDS + [{"name": "extra", "type": "utf8", "nullable": True}]},
        "time_column": None,
        "series_key": None,
        "geometry": {"lon": "value", "lat": "value"},
    }
    for key, value in shape_changes.items():
        changed = {k: v for k, v in replaced.items() if k != key}
        if value is not None:
            changed[key] = value
        response = put(node, changed)
        assert response.status == 409, (key, response)
        response.problem()
    assert node.dataset("pegel")["title"] == "Hochwassermeldepegel Lutter"


def test_put_is_checked_like_a_create(node):
    node.create_dataset(pegel_spec("pegel"))
    response = put(node, pegel_spec("pegel", licence="mit"))
    assert response.status == 400 and response.problem().get("field") == "licence", response
    no_description = {k: v for k, v in pegel_spec("pegel").items() if k != "description"}
    response = put(node, no_description)
    assert response.status == 400 and response.problem().get("field") == "description", response
    response = put(node, pegel_spec("anders"), dataset_id="pegel")  # the body names another dataset
    assert response.status == 400, response
    response.problem()
    response = put(node, pegel_spec("pegel", title="Ohne Token"), auth=False)
    assert response.status == 401, response
    response = put(node, pegel_spec("fehlt"))
    assert response.status == 404, response
    assert node.dataset("pegel")["title"] == "Pegelstände Gütersloh"


def test_derived_fields_follow_ingest(node):
    node.create_dataset(pegel_spec("pegel"))
    record = node.dataset("pegel")
    assert record["rows"] == 0 and "first" not in record and "last" not in record, record

    ingest(node, "pegel", ["2026-03-01T06:15:00Z", "2026-03-01T06:00:00Z", "2026-03-01T06:30:00Z"])
    record = wait_derived(node, "pegel", 3, "2026-03-01T06:30:00Z")
    assert record["first"] == "2026-03-01T06:00:00Z", record
    modified = record["data_modified"]
    assert modified, record

    ingest(node, "pegel", ["2026-02-28T23:45:00Z", "2026-03-02T00:00:00Z"], station="Lutter")
    record = wait_derived(node, "pegel", 5, "2026-03-02T00:00:00Z")
    assert record["first"] == "2026-02-28T23:45:00Z", record
    assert parse_time(record["data_modified"]) > parse_time(modified), record


def test_derived_fields_follow_upload_and_flight_ingest(node):
    import pyarrow as pa
    import pyarrow.flight as flight

    node.create_dataset(pegel_spec("pegel"))
    content = "time;station;value\n2026-03-01T00:00:00Z;Dalke;12,5\n2026-03-01T00:15:00Z;Dalke;13\n"
    response = node.upload("pegel", "pegel.csv", content.encode(), "text/csv")
    assert response.status == 200, response
    record = wait_derived(node, "pegel", 2, "2026-03-01T00:15:00Z")
    assert record["first"] == "2026-03-01T00:00:00Z", record

    schema = pa.schema([("time", pa.timestamp("ms", tz="UTC")), ("station", pa.string()),
                        ("value", pa.float64()), ("quality", pa.int64())])
    batch = pa.record_batch(
        [pa.array([dt.datetime(2026, 3, 4, 12, tzinfo=UTC)], pa.timestamp("ms", tz="UTC")), pa.array(["Lutter"]),
         pa.array([70.5]), pa.array([None], pa.int64())],
        schema=schema,
    )
    writer, reader = node.flight_client().do_put(
        flight.FlightDescriptor.for_path("pegel"), schema, options=node.flight_write_options()
    )
    writer.write_batch(batch)
    writer.done_writing()
    assert reader.read() is not None  # the acknowledgement
    writer.close()
    record = wait_derived(node, "pegel", 3, "2026-03-04T12:00:00Z")
    assert record["first"] == "2026-03-01T00:00:00Z", record


# ---- DCAT-AP.de export -----------------------------------------------------------------------


@pytest.fixture
def catalog_node(node):
    """A node with four datasets covering the licences, themes and optional parts.

    - ``abfall``: only mandatory fields (default licence dl-zero-de/2.0, no rows, no time column)
    - ``luft``: cc-by/4.0, two themes, rows ingested (the temporal extent is derived)
    - ``pegel-dalke``: every optional field (dl-by-de/2.0, declared temporal), rows ingested
    - ``verkehr``: own publisher without IRI, contact by web page only, bbox without geocoding
    """
    node.create_dataset(
        {
            "id": "abfall",
            "title": "Abfallkalender",
            "description": "Abholtermine der Müllabfuhr nach Bezirk und Abfallart",
            "schema": {"fields": [{"name": "tag", "type": "date32"}, {"name": "art", "type": "utf8"}]},
            "policy": {"visibility": "public"},
        }
    )
    node.create_dataset(
        pegel_spec(
            "luft",
            title="Luftqualität Innenstadt",
            description="Stickstoffdioxid-Messwerte der Station Berliner Straße",
            themes=["ENVI", "HEAL"],
            licence="cc-by/4.0",
            keywords=["Luft", "NO2"],
        )
    )
    node.create_dataset(rich_spec("pegel-dalke"))
    node.create_dataset(
        pegel_spec(
            "verkehr",
            title="Verkehrszählung B61",
            description="Fahrzeuge je Viertelstunde an der Zählstelle B61",
            themes=["TRAN"],
            licence="dl-by-de/2.0",
            publisher={"name": "Straßen.NRW"},
            contact_point={"name": "Verkehrszentrale", "url": "https://www.strassen.nrw.de/kontakt"},
            spatial={"bbox": [8.35, 51.88, 8.40, 51.91]},
            accrual_periodicity="HOURLY",
        )
    )
    ingest(node, "luft", ["2026-03-01T00:00:00Z", "2026-03-01T01:00:00Z", "2026-03-03T12:00:00Z"])
    ingest(node, "pegel-dalke", ["2026-03-01T06:00:00Z", "2026-03-01T06:15:00Z"])
    wait_derived(node, "luft", 3, "2026-03-03T12:00:00Z")
    wait_derived(node, "pegel-dalke", 2, "2026-03-01T06:15:00Z")
    return node


CATALOG_IDS = ["abfall", "luft", "pegel-dalke", "verkehr"]


@pytest.mark.parametrize("extension, fmt, media_type", SYNTAXES)
def test_catalog_export_conforms(catalog_node, tmp_path, extension, fmt, media_type):
    file, response = export(catalog_node, f"/catalog.{extension}", tmp_path, f"catalog.{extension}")
    assert response.content_type == media_type, response
    validate(file, fmt)
    graph = parse(file, fmt)
    catalog = URIRef(f"{catalog_node.http}/catalog")
    assert (catalog, RDF.type, DCAT.Catalog) in graph
    listed = sorted(str(d) for d in graph.objects(catalog, DCAT.dataset))
    assert listed == [str(dataset_iri(catalog_node, i)) for i in CATALOG_IDS]
    assert not list(graph.subjects(RDF.type, HYDRA.PagedCollection)), "an unpaged export has no paging node"


def test_a_located_series_lists_its_map_services(node, tmp_path):
    """A dataset with a series key and a geometry is also served as GeoJSON and by the
    SensorThings API: the export lists both, it still conforms, and both addresses answer."""
    schema = {"fields": [*pegel_spec()["schema"]["fields"],
                         {"name": "lon", "type": "float64", "nullable": True},
                         {"name": "lat", "type": "float64", "nullable": True}]}
    node.create_dataset(pegel_spec("pegel-karte", schema=schema, geometry={"lon": "lon", "lat": "lat"}))
    rows = [{"time": "2026-03-01T06:00:00Z", "station": "Dalke", "value": 81.5, "lon": 8.38, "lat": 51.90}]
    assert node.post_json("/api/v1/datasets/pegel-karte/rows", rows).status == 200
    file, _ = export(node, "/datasets/pegel-karte.ttl", tmp_path, "pegel-karte.ttl")
    validate(file, "turtle")
    graph = parse(file, "turtle")
    subject = dataset_iri(node, "pegel-karte")
    distributions = set(graph.objects(subject, DCAT.distribution))
    assert len(distributions) == 6, distributions
    urls = {str(graph.value(d, DCAT.accessURL)): d for d in distributions}
    geojson = f"{node.http}/api/v1/datasets/pegel-karte/latest.geojson"
    sta = f"{node.http}/sta/v1.1/Things?$filter=properties/dataset%20eq%20%27pegel-karte%27"
    assert geojson in urls and sta in urls, sorted(urls)
    assert str(graph.value(urls[geojson], DCTERMS.format)).endswith("/file-type/GEOJSON")
    collection = node.get(geojson[len(node.http):])
    assert collection.status == 200 and collection.content_type == "application/geo+json", collection
    [feature] = collection.json()["features"]
    assert feature["geometry"] == {"type": "Point", "coordinates": [8.38, 51.90]}
    assert feature["properties"]["station"] == "Dalke" and feature["properties"]["value"] == 81.5
    things = node.get(sta[len(node.http):]).json()["value"]
    assert [t["name"] for t in things] == ["Dalke"], things
    # Without a geometry there is no map to serve.
    node.create_dataset(pegel_spec("pegel-ohne-karte"))
    file, _ = export(node, "/datasets/pegel-ohne-karte.ttl", tmp_path, "pegel-ohne-karte.ttl")
    assert len(set(parse(file, "turtle").objects(dataset_iri(node, "pegel-ohne-karte"), DCAT.distribution))) == 4
    assert node.get("/api/v1/datasets/pegel-ohne-karte/latest.geojson").status == 400


def test_a_map_tells_nobody_of_a_dataset_they_may_not_see(node):
    """An internal dataset's GeoJSON answers an anonymous visitor exactly as a dataset that
    does not exist; staff get its stations."""
    schema = {"fields": [*pegel_spec()["schema"]["fields"],
                         {"name": "lon", "type": "float64", "nullable": True},
                         {"name": "lat", "type": "float64", "nullable": True}]}
    node.create_dataset(pegel_spec("pegel-intern", schema=schema, geometry={"lon": "lon", "lat": "lat"},
                                   policy={"visibility": "internal"}))
    rows = [{"time": "2026-03-01T06:00:00Z", "station": "Dalke", "value": 81.5, "lon": 8.38, "lat": 51.90}]
    assert node.post_json("/api/v1/datasets/pegel-intern/rows", rows).status == 200
    hidden = node.get("/api/v1/datasets/pegel-intern/latest.geojson")
    missing = node.get("/api/v1/datasets/pegel-nirgends/latest.geojson")
    assert hidden.status == missing.status == 404, (hidden, missing)
    assert hidden.problem()["detail"].replace("pegel-intern", "X") == missing.problem()["detail"].replace("pegel-nirgends", "X")
    staff = node.get("/api/v1/datasets/pegel-intern/latest.geojson", auth=True)
    assert staff.status == 200 and len(staff.json()["features"]) == 1, staff
    assert node.get("/api/v1/views/nirgends/latest.geojson").status == 404


def test_the_catalogue_and_dataset_pages_answer_304_while_nothing_changed(node):
    """ETag and If-None-Match: a harvester or a browser that has the current answer gets
    304 without a body; a change of the catalogue, another syntax or another caller gets
    a new answer."""
    node.create_dataset(pegel_spec("pegel-etag"))
    browser = {"Accept": "text/html"}
    for path, headers in (("/catalog.ttl", {}), ("/datasets/pegel-etag.ttl", {}), ("/datasets/pegel-etag", browser)):
        first = node.get(path, headers=headers)
        tag = first.headers.get("ETag")
        assert first.status == 200 and tag and tag.startswith('W/"'), (path, first.headers)
        again = node.get(path, headers={**headers, "If-None-Match": tag})
        assert again.status == 304 and again.body == b"" and again.headers.get("ETag") == tag, (path, again)
        assert node.get(path, headers={**headers, "If-None-Match": '"other"'}).status == 200
    tag = node.get("/catalog.ttl").headers["ETag"]
    assert node.get("/catalog.jsonld", headers={"If-None-Match": tag}).status == 200, "another syntax, another tag"
    assert node.get("/catalog.ttl", headers={"If-None-Match": tag}, auth=True).status == 200, "staff see more"
    # The tags tell nothing of the catalogue's state, and shared caches keep no answer.
    assert len(tag) == len('W/"0123456789abcdef"'), tag
    assert "private" in node.get("/catalog.ttl").headers["Cache-Control"]
    # A view is part of the catalogue too.
    view = {"id": "etag-view", "title": "Sicht", "description": "Eine Sicht", "select": {"keywords": ["x"]},
            "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}]}, "time_column": "time"}
    assert node.post_json("/api/v1/views", view).status == 201
    assert node.get("/catalog.ttl", headers={"If-None-Match": tag}).status == 200, "a new view, a new catalogue"
    tag = node.get("/catalog.ttl").headers["ETag"]
    page_tag = node.get("/datasets/pegel-etag", headers=browser).headers["ETag"]
    ingest(node, "pegel-etag", ["2026-03-01T00:00:00Z"])
    wait_derived(node, "pegel-etag", 1, "2026-03-01T00:00:00Z")
    assert node.get("/catalog.ttl", headers={"If-None-Match": tag}).status == 200, "new rows, new catalogue"
    assert node.get("/datasets/pegel-etag", headers={**browser, "If-None-Match": page_tag}).status == 200


def test_catalog_syntaxes_state_the_same_triples(catalog_node):
    graphs = {fmt: parse(catalog_node.get(f"/catalog.{ext}").body, fmt) for ext, fmt, _ in SYNTAXES}
    turtle = set(graphs["turtle"])
    assert len(turtle) > 100
    for fmt in ("json-ld", "xml"):
        assert set(graphs[fmt]) == turtle, (
            f"{fmt} differs from turtle: only in {fmt}: {set(graphs[fmt]) - turtle}, "
            f"only in turtle: {turtle - set(graphs[fmt])}"
        )


def test_catalog_export_states_the_description(catalog_node):
    node = catalog_node
    graph = parse(node.get("/catalog.ttl").body, "turtle")
    rich = dataset_iri(node, "pegel-dalke")

    # Licence, attribution and formats are stated on each distribution.
    distributions = set(graph.objects(rich, DCAT.distribution))
    assert len(distributions) == 4, distributions
    for distribution in distributions:
        assert (distribution, RDF.type, DCAT.Distribution) in graph
        assert graph.value(distribution, DCTERMS.license) == URIRef(LICENCE + "dl-by-de/2.0")
        assert str(graph.value(distribution, DCATDE.licenseAttributionByText)) == "Stadt Gütersloh, Fachbereich Umwelt"
    formats = {graph.value(d, DCTERMS.format) for d in distributions} - {None}
    assert formats == {URIRef(FILE_TYPE + f) for f in ("CSV", "JSON", "PARQUET")}
    by_format = {str(graph.value(d, DCTERMS.format)).rsplit("/", 1)[-1]: d for d in distributions}
    assert graph.value(by_format["CSV"], DCAT.downloadURL) == URIRef(
        f"{node.http}/api/v1/datasets/pegel-dalke/rows?format=csv"
    )
    services = [d for d in distributions if graph.value(d, DCAT.accessService) is not None]
    assert len(services) == 1, services
    service = graph.value(services[0], DCAT.accessService)
    assert (service, RDF.type, DCAT.DataService) in graph
    assert graph.value(service, DCAT.endpointURL) == URIRef(node.flight)
    assert (service, DCAT.servesDataset, rich) in graph

    # The rest of the owner's description.
    assert set(graph.objects(rich, DCAT.theme)) == {URIRef(THEME + "ENVI"), URIRef(THEME + "TRAN")}
    assert {str(k) for k in graph.objects(rich, DCAT.keyword)} == {"Hochwasser", "Gewässer"}
    assert graph.value(rich, DCTERMS.title) == Literal("Pegelstände der Dalke", lang="de")
    assert graph.value(rich, DCTERMS.accrualPeriodicity) == URIRef(FREQUENCY + "15MIN")
    assert graph.value(rich, DCTERMS.conformsTo) == URIRef("https://www.pegelonline.wsv.de/webservice/dokuRestapi")
    assert graph.value(rich, DCAT.landingPage) == URIRef("https://www.guetersloh.de/pegel")
    assert graph.value(rich, DCTERMS.issued) == Literal("2025-01-15", datatype=XSD_DATE)
    publisher = graph.value(rich, DCTERMS.publisher)
    assert publisher == URIRef("https://www.kreis-guetersloh.de/umwelt")
    assert str(graph.value(publisher, FOAF.name)) == "Kreis Gütersloh, Abteilung Umwelt"
    assert graph.value(publisher, DCTERMS.type) == URIRef("http://purl.org/adms/publishertype/RegionalAuthority")
    contact = graph.value(rich, DCAT.contactPoint)
    assert graph.value(contact, VCARD.hasEmail) == URIRef("mailto:umwelt@guetersloh.de")
    assert graph.value(contact, VCARD.hasURL) == URIRef("https://www.guetersloh.de/umwelt")
    places = set(graph.objects(rich, DCTERMS.spatial))
    assert URIRef(GEOCODING + "municipalityKey/05754008") in places
    boxes = [graph.value(p, DCAT.bbox) for p in places if graph.value(p, DCAT.bbox) is not None]
    assert len(boxes) == 1 and "8.3 51.85" in str(boxes[0]) and "8.45 51.95" in str(boxes[0]), boxes
    # A declared period wins over the rows' extent.
    period = graph.value(rich, DCTERMS.temporal)
    assert graph.value(period, DCAT.startDate).toPython() == dt.date(2025, 1, 1)
    assert graph.value(period, DCAT.endDate).toPython() == dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_catalog_export_derives_and_defaults(catalog_node):
    node = catalog_node
    graph = parse(node.get("/catalog.ttl").body, "turtle")
    catalog_publisher = graph.value(URIRef(f"{node.http}/catalog"), DCTERMS.publisher)
    assert str(graph.value(catalog_publisher, FOAF.name)) == node.name

    def licences(dataset_id):
        subject = dataset_iri(node, dataset_id)
        return {graph.value(d, DCTERMS.license) for d in graph.objects(subject, DCAT.distribution)}

    # Default licence and publisher; no temporal without rows or declaration.
    abfall = dataset_iri(node, "abfall")
    assert licences("abfall") == {URIRef(LICENCE + "dl-zero-de/2.0")}
    assert graph.value(abfall, DCTERMS.publisher) == catalog_publisher
    assert graph.value(abfall, DCTERMS.temporal) is None
    assert not list(graph.objects(abfall, DCAT.theme))
    for distribution in graph.objects(abfall, DCAT.distribution):
        assert graph.value(distribution, DCATDE.licenseAttributionByText) is None

    # The temporal extent of ingested rows when none is declared.
    luft = dataset_iri(node, "luft")
    assert licences("luft") == {URIRef(LICENCE + "cc-by/4.0")}
    assert set(graph.objects(luft, DCAT.theme)) == {URIRef(THEME + "ENVI"), URIRef(THEME + "HEAL")}
    period = graph.value(luft, DCTERMS.temporal)
    assert period is not None, "luft has rows but no dct:temporal"
    assert graph.value(period, DCAT.startDate).toPython() == dt.datetime(2026, 3, 1, tzinfo=UTC)
    assert graph.value(period, DCAT.endDate).toPython() == dt.datetime(2026, 3, 3, 12, tzinfo=UTC)
    modified = graph.value(luft, DCTERMS.modified).toPython()
    assert modified >= parse_time(node.dataset("luft")["data_modified"]).replace(microsecond=0)

    # A licence asking for attribution gets the publisher's name by default.
    verkehr = dataset_iri(node, "verkehr")
    assert licences("verkehr") == {URIRef(LICENCE + "dl-by-de/2.0")}
    attributions = {
        str(graph.value(d, DCATDE.licenseAttributionByText)) for d in graph.objects(verkehr, DCAT.distribution)
    }
    assert attributions == {"Straßen.NRW"}
    publisher = graph.value(verkehr, DCTERMS.publisher)
    assert publisher != catalog_publisher and str(graph.value(publisher, FOAF.name)) == "Straßen.NRW"
    contact = graph.value(verkehr, DCAT.contactPoint)
    assert graph.value(contact, VCARD.hasURL) == URIRef("https://www.strassen.nrw.de/kontakt")


@pytest.mark.parametrize("accept, fmt, media_type", [
    ("text/turtle", "turtle", "text/turtle"),
    ("application/ld+json", "json-ld", "application/ld+json"),
    ("application/rdf+xml", "xml", "application/rdf+xml"),
    ("text/turtle;q=0.5, application/rdf+xml;q=0.9", "xml", "application/rdf+xml"),
])
def test_catalog_by_accept_header(catalog_node, tmp_path, accept, fmt, media_type):
    file, response = export(catalog_node, "/catalog", tmp_path, "catalog-negotiated", headers={"Accept": accept})
    assert response.content_type == media_type, response
    graph = parse(file, fmt)
    assert len(list(graph.subjects(RDF.type, DCAT.Dataset))) == len(CATALOG_IDS)


def test_unacceptable_media_type_is_406(catalog_node):
    response = catalog_node.get("/catalog", headers={"Accept": "image/png"})
    assert response.status == 406, response
    response.problem()
    response = catalog_node.get("/datasets/luft", headers={"Accept": "image/png"})
    assert response.status == 406, response


def test_single_dataset_export(catalog_node, tmp_path):
    node = catalog_node
    for extension, fmt, media_type in SYNTAXES:
        file, response = export(node, f"/datasets/pegel-dalke.{extension}", tmp_path, f"pegel-dalke.{extension}")
        assert response.content_type == media_type, response
        validate(file, fmt)
        graph = parse(file, fmt)
        assert [str(s) for s in graph.subjects(RDF.type, DCAT.Dataset)] == [str(dataset_iri(node, "pegel-dalke"))]
        assert len(set(graph.objects(dataset_iri(node, "pegel-dalke"), DCAT.distribution))) == 4

    file, response = export(
        node, "/datasets/luft", tmp_path, "luft-negotiated", headers={"Accept": "application/ld+json"}
    )
    assert response.content_type == "application/ld+json", response
    graph = parse(file, "json-ld")
    period = graph.value(dataset_iri(node, "luft"), DCTERMS.temporal)
    assert graph.value(period, DCAT.startDate).toPython() == dt.datetime(2026, 3, 1, tzinfo=UTC)
    validate(file, "json-ld")

    for path, headers in (("/datasets/fehlt.ttl", None), ("/datasets/fehlt", {"Accept": "text/turtle"})):
        response = node.get(path, headers=headers)
        assert response.status == 404, response
        response.problem()


def test_export_escapes_text_in_every_syntax(node, tmp_path):
    title = 'Pegel "Dalke" <Nord> & Süd \\ Ost'
    description = "Zeile 1\nZeile 2\t„Anführung“ 🌊 ]]> </rdf:RDF> {\"json\": true}"
    node.create_dataset(pegel_spec("zeichen", title=title, description=description,
                                   keywords=['a"b', "<x>", "Straße/Weg"], publisher={"name": "Stadt/Kreis & Co"}))
    graphs = []
    for extension, fmt, _ in SYNTAXES:
        file = tmp_path / f"zeichen.{extension}"
        file.write_bytes(fetch_export(node, f"/catalog.{extension}").body)
        validate(file, fmt)
        graph = parse(file, fmt)
        subject = dataset_iri(node, "zeichen")
        assert graph.value(subject, DCTERMS.title) == Literal(title, lang="de"), extension
        assert graph.value(subject, DCTERMS.description) == Literal(description, lang="de"), extension
        assert {str(k) for k in graph.objects(subject, DCAT.keyword)} == {'a"b', "<x>", "Straße/Weg"}
        graphs.append(set(graph))
    assert graphs[0] == graphs[1] == graphs[2]


@pytest.mark.parametrize("email", ["umwelt|amt@guetersloh.de", "{umwelt}@guetersloh.de", "100%umwelt@guetersloh.de"])
def test_an_accepted_contact_email_never_breaks_the_export(node, tmp_path, email):
    """Unusual but well-formed addresses are either refused at the API or exported as a valid IRI:
    one dataset must not break the whole catalogue."""
    node.create_dataset(pegel_spec("andere"))
    spec = pegel_spec("post", contact_point={"name": "Poststelle", "email": email})
    response = node.post_json("/api/v1/datasets", spec)
    if response.status == 400:
        assert response.problem().get("field") == "contact_point.email"
        return
    assert response.status == 201, response
    for extension, fmt, _ in SYNTAXES:
        file = tmp_path / f"catalog.{extension}"
        file.write_bytes(fetch_export(node, f"/catalog.{extension}").body)
        validate(file, fmt)
    assert node.get("/datasets/post.ttl").status == 200


def test_paged_catalog_export(node, tmp_path):
    ids = [f"messreihe-{i:02d}" for i in range(7)]
    for i, dataset_id in enumerate(reversed(ids)):  # created out of id order
        node.create_dataset(pegel_spec(dataset_id, title=f"Messreihe {dataset_id}", themes=[["ENVI", "TRAN"][i % 2]]))

    file, _ = export(node, "/catalog.ttl", tmp_path, "page2.ttl", query={"page": 2, "per_page": 3})
    validate(file, "turtle")
    graph = parse(file, "turtle")
    catalog = URIRef(f"{node.http}/catalog")
    listed = sorted(str(d).rsplit("/", 1)[-1] for d in graph.objects(catalog, DCAT.dataset))
    assert listed == ids[3:6]
    assert sorted(str(s).rsplit("/", 1)[-1] for s in graph.subjects(RDF.type, DCAT.Dataset)) == ids[3:6]

    pages = list(graph.subjects(RDF.type, HYDRA.PagedCollection))
    assert len(pages) == 1, pages
    page = pages[0]
    assert int(graph.value(page, HYDRA.totalItems)) == 7
    assert int(graph.value(page, HYDRA.itemsPerPage)) == 3
    links = {p: graph.value(page, p) for p in (HYDRA.firstPage, HYDRA.lastPage, HYDRA.nextPage, HYDRA.previousPage)}
    for predicate, value in links.items():
        assert isinstance(value, Literal), (predicate, value)
    assert str(links[HYDRA.firstPage]).endswith("/catalog.ttl?page=1&per_page=3")
    assert str(links[HYDRA.lastPage]).endswith("/catalog.ttl?page=3&per_page=3")
    assert str(links[HYDRA.nextPage]).endswith("/catalog.ttl?page=3&per_page=3")
    assert str(links[HYDRA.previousPage]).endswith("/catalog.ttl?page=1&per_page=3")

    # The first page has no previous page, the last no next page and holds the rest.
    first = parse(node.get("/catalog.jsonld", query={"page": 1, "per_page": 3}).body, "json-ld")
    page = next(first.subjects(RDF.type, HYDRA.PagedCollection))
    assert first.value(page, HYDRA.previousPage) is None and first.value(page, HYDRA.nextPage) is not None
    last = parse(node.get("/catalog.rdf", query={"page": 3, "per_page": 3}).body, "xml")
    page = next(last.subjects(RDF.type, HYDRA.PagedCollection))
    assert last.value(page, HYDRA.nextPage) is None
    assert [str(d).rsplit("/", 1)[-1] for d in last.objects(URIRef(f"{node.http}/catalog"), DCAT.dataset)] == ids[6:]

    # Walking the pages yields every dataset once.
    seen = []
    for number in (1, 2, 3):
        graph = parse(node.get("/catalog.ttl", query={"page": number, "per_page": 3}).body, "turtle")
        seen += sorted(str(d).rsplit("/", 1)[-1] for d in graph.objects(catalog, DCAT.dataset))
    assert seen == ids


@pytest.mark.parametrize("query", [{"page": 1, "per_page": 1001}, {"page": 0, "per_page": 10}, {"per_page": 0}])
def test_export_paging_is_bounded(shared_node, query):
    response = shared_node.get("/catalog.ttl", query=query)
    assert response.status == 400, response
    response.problem()


def test_export_with_the_node_geocoding(node_factory, tmp_path):
    node = node_factory(ars="057540008008")
    node.create_dataset(pegel_spec("pegel"))
    file, _ = export(node, "/catalog.rdf", tmp_path, "geocoded.rdf")
    validate(file, "xml")
    graph = parse(file, "xml")
    subject = dataset_iri(node, "pegel")
    assert graph.value(subject, DCTERMS.spatial) == URIRef(GEOCODING + "regionalKey/057540008008")
    assert graph.value(subject, DCATDE.politicalGeocodingLevelURI) == URIRef(GEOCODING + "Level/municipality")


# ---- search -----------------------------------------------------------------------------------


@pytest.fixture
def german_node(node):
    create_all(
        node,
        pegel_spec("ems", title="Pegelstand Ems bei Rheda", description="Tageswerte des Wasserstands der Ems"),
        pegel_spec("lutter", title="Wasserstände der Lutter", description="Messwerte in Zentimetern",
                   keywords=["Fluss"]),
        pegel_spec("dalke", title="Pegelstände Dalke", description="Gewässerkunde: 15-Minuten-Werte"),
        pegel_spec("luft", title="Luftqualität Innenstadt", description="Stickstoffdioxid am Rathaus",
                   keywords=["Umwelt"]),
    )
    return node


def test_search_folds_umlauts_and_stems_german_words(german_node):
    node = german_node
    assert "ems" in search_ids(node, q="Pegelstände")
    assert set(search_ids(node, q="Pegelstand")) >= {"ems", "dalke"}
    assert "lutter" in search_ids(node, q="Wasserstande")
    assert "lutter" in search_ids(node, q="wasserstand")
    assert "luft" in search_ids(node, q="LUFTQUALITAT")


def test_search_finds_a_word_inside_a_compound(german_node):
    ids = search_ids(german_node, q="Stand")
    assert {"ems", "dalke", "lutter"} <= set(ids), ids
    assert "luft" not in ids
    assert "luft" in search_ids(german_node, q="qualität")


def test_search_query_syntax(german_node):
    node = german_node
    assert search_ids(node, q="Pegelstand Rheda") == ["ems"]  # words are ANDed
    assert set(search_ids(node, q="Pegelstand -Rheda")) == {"dalke"}
    assert search_ids(node, q='"Wasserstände der Lutter"') == ["lutter"]
    assert search_ids(node, q='"Lutter der Wasserstände"') == []
    assert search_ids(node, q="title:Luftqualität") == ["luft"]
    assert search_ids(node, q="title:Rathaus") == []
    assert search_ids(node, q="description:Rathaus") == ["luft"]
    assert search_ids(node, q="Fluss") == ["lutter"]  # keywords are searched too
    assert sorted(search_ids(node, q="Zentimetern OR Stickstoffdioxid")) == ["luft", "lutter"]


def test_search_hits_carry_record_links_and_highlights(german_node):
    node = german_node
    ingest(node, "dalke", ["2026-03-01T06:00:00Z", "2026-03-01T07:00:00Z"])
    wait_derived(node, "dalke", 2, "2026-03-01T07:00:00Z")
    results = search(node, q="Pegelstände Dalke")
    assert results["total"] == 1 and results["page"] == 1 and results["pages"] == 1, results
    hit = results["hits"][0]
    assert hit["id"] == "dalke" and hit["title"] == "Pegelstände Dalke", hit
    assert hit["description"] == "Gewässerkunde: 15-Minuten-Werte"
    assert hit["rows"] == 2 and hit["first"] == "2026-03-01T06:00:00Z" and hit["last"] == "2026-03-01T07:00:00Z"
    assert hit["score"] > 0
    assert "<mark>Pegelstände</mark>" in hit["highlights"]["title"], hit
    assert "<mark>Dalke</mark>" in hit["highlights"]["title"], hit
    assert hit["links"] == {
        "self": "/api/v1/datasets/dalke",
        "rows": "/api/v1/datasets/dalke/rows",
        "dcat": "/datasets/dalke.ttl",
    }
    for link in hit["links"].values():
        assert node.get(link).status == 200, link


def test_search_highlights_escape_html(node):
    create_all(node, pegel_spec("html", title="Pegel <b>fett</b> & mehr", description="Pegel an der Ems"))
    hit = search(node, q="Pegel")["hits"][0]
    title = hit["highlights"]["title"]
    assert "<mark>Pegel</mark>" in title and "<b>" not in title and "&lt;b&gt;" in title, title


@pytest.mark.parametrize("q", ["title:( )", "foo:bar", "title:", '"Pegel', "(Pegel", "Pegel AND", "-Pegel",
                               "title:[a TO", "Pegel^", "*", "ä:ö", "\\", "~2"])
def test_search_syntax_errors_are_client_errors(german_node, q):
    response = german_node.get("/api/v1/search", query={"q": q})
    assert response.status in (200, 400), f"q={q!r}: {response!r}"
    if response.status == 400:
        assert response.problem().get("field") == "q", response


@pytest.mark.parametrize("q", ["title:( )", "foo:bar"])
def test_named_syntax_errors_are_400(german_node, q):
    response = german_node.get("/api/v1/search", query={"q": q})
    assert response.status == 400, response
    assert response.problem().get("field") == "q"


@pytest.mark.parametrize(
    "query, field",
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"per_page": "zehn"}, "per_page"),
        ({"page": 0}, "page"),
        ({"page": 101, "per_page": 100}, "page"),
        ({"page": 10001}, "page"),
        ({"bbox": "8.3,51.8,8.6"}, "bbox"),
        ({"bbox": "8.6,51.8,8.3,52.1"}, "bbox"),
        ({"from": "01.03.2026"}, "from"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({"sort": "beliebt"}, "sort"),
    ],
)
def test_search_parameters_are_checked(shared_node, query, field):
    response = shared_node.get("/api/v1/search", query=query)
    assert response.status == 400, response
    assert response.problem().get("field") == field


def test_search_paging_limits_accept_the_edges(shared_node):
    for query in ({"per_page": 1}, {"per_page": 100}, {"page": 100, "per_page": 100}, {"page": 10000, "per_page": 1}):
        response = shared_node.get("/api/v1/search", query=query)
        assert response.status == 200, (query, response)
        assert response.json()["per_page"] == query["per_page"]


LANUV = "Landesamt für Natur Umwelt und Verbraucherschutz NRW"


@pytest.fixture
def faceted_node(node):
    create_all(
        node,
        pegel_spec("pegel-ems", themes=["ENVI"], licence="dl-by-de/2.0"),
        pegel_spec("pegel-lutter", themes=["ENVI", "TRAN"]),
        pegel_spec("luft", title="Luftqualität", themes=["ENVI", "HEAL"], licence="cc-by/4.0",
                   publisher={"name": LANUV, "type": "RegionalAuthority"}),
        pegel_spec("verkehr", title="Verkehrszählung", themes=["TRAN"], licence="dl-by-de/2.0"),
        pegel_spec("haushalt", title="Haushaltsplan", themes=["GOVE", "ECON"]),
    )
    return node


def test_facets_count_all_hits(faceted_node):
    node = faceted_node
    results = search(node, per_page=1)
    assert results["total"] == 5 and results["pages"] == 5 and len(results["hits"]) == 1, results
    assert results["facets"]["theme"][0] == {"value": "ENVI", "count": 3}
    assert facet(results, "theme") == {"ENVI": 3, "TRAN": 2, "HEAL": 1, "GOVE": 1, "ECON": 1}
    assert facet(results, "licence") == {"dl-zero-de/2.0": 2, "dl-by-de/2.0": 2, "cc-by/4.0": 1}
    assert facet(results, "publisher") == {node.name: 4, LANUV: 1}
    assert facet(results, "format") == {"CSV": 5, "JSON": 5, "PARQUET": 5}
    assert facet(results, "municipality") == {node.name: 5}
    for dimension, values in results["facets"].items():
        counts = [v["count"] for v in values]
        assert counts == sorted(counts, reverse=True), (dimension, values)

    # Facets follow the query.
    results = search(node, q="Pegelstände")
    assert facet(results, "theme") == {"ENVI": 2, "TRAN": 1}
    assert facet(results, "licence") == {"dl-by-de/2.0": 1, "dl-zero-de/2.0": 1}


def test_facet_filters(faceted_node):
    node = faceted_node
    assert sorted(search_ids(node, theme="ENVI")) == ["luft", "pegel-ems", "pegel-lutter"]
    assert sorted(search_ids(node, theme="HEAL,GOVE")) == ["haushalt", "luft"]  # OR within a facet
    assert sorted(search_ids(node, theme="ENVI", licence="dl-by-de/2.0")) == ["pegel-ems"]  # AND across facets
    assert sorted(search_ids(node, licence="dl-by-de/2.0,cc-by/4.0")) == ["luft", "pegel-ems", "verkehr"]
    assert search_ids(node, publisher=LANUV) == ["luft"]
    assert sorted(search_ids(node, publisher=node.name)) == ["haushalt", "pegel-ems", "pegel-lutter", "verkehr"]
    assert len(search_ids(node, format="PARQUET")) == 5
    assert search_ids(node, format="XLSX") == []
    assert len(search_ids(node, municipality=node.name)) == 5
    assert search_ids(node, municipality="Bielefeld") == []
    assert search_ids(node, q="Pegelstände", theme="TRAN") == ["pegel-lutter"]
    results = search(node, theme="TRAN")
    assert results["total"] == 2 and facet(results, "theme") == {"TRAN": 2, "ENVI": 1}


def test_bbox_filter(node):
    create_all(
        node,
        pegel_spec("innenstadt", spatial={"bbox": [8.37, 51.90, 8.40, 51.92]}),
        pegel_spec("kreis", spatial={"bbox": [8.10, 51.70, 8.70, 52.10]}),
        pegel_spec("bielefeld", spatial={"bbox": [8.45, 51.95, 8.65, 52.10]}),
        pegel_spec("ohne-ort"),
        pegel_spec("nur-schluessel", spatial={"geocoding": "municipalityKey/05754008"}),
    )

    assert sorted(search_ids(node, bbox="8.38,51.905,8.39,51.91")) == ["innenstadt", "kreis"]  # inside
    assert sorted(search_ids(node, bbox="8.0,51.0,9.0,53.0")) == ["bielefeld", "innenstadt", "kreis"]  # around
    assert sorted(search_ids(node, bbox="8.60,52.00,8.80,52.20")) == ["bielefeld", "kreis"]  # overlapping a corner
    assert sorted(search_ids(node, bbox="8.40,51.92,8.42,51.94")) == ["innenstadt", "kreis"]  # touching a corner
    assert search_ids(node, bbox="6.9,50.9,7.1,51.0") == []  # Köln
    # Datasets without a box never match a box filter.
    assert sorted(search_ids(node, bbox="-180,-90,180,90")) == ["bielefeld", "innenstadt", "kreis"]


def test_time_filters_use_declared_or_derived_coverage(node):
    create_all(
        node,
        pegel_spec("jahr-2020", temporal={"start": "2020-01-01", "end": "2020-12-31T23:59:59Z"}),
        pegel_spec("seit-2024", temporal={"start": "2024-01-01T00:00:00Z"}),
        pegel_spec("gemessen"),
        pegel_spec("leer"),
    )
    ingest(node, "gemessen", ["2026-03-01T06:00:00Z", "2026-03-05T18:00:00Z"])
    wait_derived(node, "gemessen", 2, "2026-03-05T18:00:00Z")
    wait_search(node, lambda ids: "gemessen" in ids, "the rows' extent to be searchable", timeout=DERIVED_DEADLINE,
                **{"from": "2026-03-02", "to": "2026-03-03"})

    def ids(**window):
        return sorted(search_ids(node, **window))

    assert ids(**{"from": "2020-06-01", "to": "2020-06-30"}) == ["jahr-2020"]
    assert ids(**{"from": "2021-01-01", "to": "2023-12-31"}) == []
    assert ids(**{"from": "2026-03-02", "to": "2026-03-03"}) == ["gemessen", "seit-2024"]
    assert ids(**{"from": "2026-03-06"}) == ["seit-2024"]
    assert ids(to="2019-12-31") == []
    assert ids(to="2020-01-01T00:00:00Z") == ["jahr-2020"]  # touching the start
    assert ids(**{"from": "2020-12-31T23:59:59Z", "to": "2021-06-01"}) == ["jahr-2020"]  # touching the end
    assert ids(**{"from": "2026-03-05T18:00:00Z", "to": "2026-03-05T18:00:00Z"}) == ["gemessen", "seit-2024"]
    assert ids(**{"from": "2026-03-05T18:00:01Z", "to": "2026-03-06"}) == ["seit-2024"]
    assert "leer" not in ids(**{"from": "1900-01-01"})
    # Rows arriving later widen the derived extent.
    ingest(node, "gemessen", ["2027-01-01T00:00:00Z"])
    wait_search(node, lambda found: "gemessen" in found, "gemessen to cover 2027", timeout=DERIVED_DEADLINE,
                **{"from": "2026-12-01", "to": "2027-02-01"})


def test_time_filter_treats_a_declared_end_date_as_the_whole_day(node):
    """`temporal.end: 2020-12-31` covers that day: a window later that day overlaps it."""
    create_all(node, pegel_spec("jahr-2020", temporal={"start": "2020-01-01", "end": "2020-12-31"}))
    assert search_ids(node, **{"from": "2020-12-31T12:00:00Z", "to": "2021-01-31"}) == ["jahr-2020"]


def test_sort_by_modified_puts_the_latest_change_first(node):
    create_all(node, *(pegel_spec(name, title=f"Pegel {name}") for name in ("erste", "zweite", "dritte")))
    assert search_ids(node) == ["dritte", "zweite", "erste"]  # without q: newest first
    response = put(node, pegel_spec("erste", title="Pegel erste, neu"))
    assert response.status == 200, response
    wait_search(node, lambda ids: ids == ["erste", "dritte", "zweite"], "erste first after its PUT", sort="modified")
    ingest(node, "zweite", ["2026-03-01T00:00:00Z"])
    wait_search(node, lambda ids: ids[0] == "zweite", "zweite first after ingest", timeout=DERIVED_DEADLINE,
                q="Pegel", sort="modified")


def test_changes_are_searchable_within_a_second(node):
    node.create_dataset(pegel_spec("neu", title="Grundwassermessstellen Avenwedde", themes=["ENVI"]))
    wait_search(node, lambda ids: ids == ["neu"], "a created dataset", q="Grundwassermessstellen")

    replaced = pegel_spec("neu", title="Regenmengen Avenwedde", themes=["TRAN"])
    response = put(node, replaced)
    assert response.status == 200, response
    wait_search(node, lambda ids: ids == ["neu"], "the new title", q="Regenmengen")
    assert search_ids(node, q="Grundwassermessstellen") == []
    assert search_ids(node, theme="ENVI") == [] and search_ids(node, theme="TRAN") == ["neu"]

    assert node.delete("/api/v1/datasets/neu").status == 204
    # Gone from the hits, the total and the facets alike.
    wait_until(lambda: search(node, q="Regenmengen")["total"] == 0, SEARCHABLE_DEADLINE, "q=Regenmengen to count 0")
    results = search(node)
    assert results["total"] == 0 and results["hits"] == [] and facet(results, "theme") == {}, results

    graph = parse(node.get("/catalog.ttl").body, "turtle")
    assert not list(graph.subjects(RDF.type, DCAT.Dataset))
    assert node.get("/datasets/neu.ttl").status == 404


def test_deleted_dataset_leaves_the_catalogue_export(node):
    create_all(node, pegel_spec("bleibt"), pegel_spec("geht"))
    ingest(node, "geht", ["2026-03-01T00:00:00Z"])
    assert node.delete("/api/v1/datasets/geht").status == 204
    for extension, fmt, _ in SYNTAXES:
        graph = parse(node.get(f"/catalog.{extension}").body, fmt)
        datasets = {str(s).rsplit("/", 1)[-1] for s in graph.subjects(RDF.type, DCAT.Dataset)}
        assert datasets == {"bleibt"}, (extension, datasets)
        assert not [t for t in graph if "/datasets/geht" in " ".join(str(x) for x in t)], extension
    wait_until(lambda: search(node)["total"] == 1, SEARCHABLE_DEADLINE, "search to count only `bleibt`")
    assert search_ids(node) == ["bleibt"]


def test_recreated_dataset_is_found_with_its_new_description(node):
    node.create_dataset(pegel_spec("wechsel", title="Niederschlag Spexard"))
    assert node.delete("/api/v1/datasets/wechsel").status == 204
    node.create_dataset(pegel_spec("wechsel", title="Bodentemperatur Spexard"))
    wait_search(node, lambda ids: ids == ["wechsel"], "the recreated dataset", q="Bodentemperatur")
    assert search(node, q="Niederschlag")["total"] == 0
    assert search(node)["total"] == 1


def test_search_paging_is_stable(node):
    ids = {f"reihe-{i:02d}" for i in range(25)}
    create_all(node, *(
        pegel_spec(dataset_id, title=f"Messreihe Nummer {i}", themes=[["ENVI", "TRAN"][i % 2]])
        for i, dataset_id in enumerate(sorted(ids))
    ))

    for params in ({}, {"q": "Messreihe"}, {"q": "Messreihe", "sort": "modified"}, {"theme": "ENVI,TRAN"}):
        def walk():
            order = []
            for page in (1, 2, 3):
                results = search(node, page=page, per_page=10, **params)
                assert results["total"] == 25 and results["pages"] == 3, (params, results["total"])
                assert results["page"] == page and results["per_page"] == 10
                assert len(results["hits"]) == (10 if page < 3 else 5), (params, page)
                order += [h["id"] for h in results["hits"]]
            return order

        first = walk()
        assert sorted(first) == sorted(ids) and len(set(first)) == 25, (params, first)
        assert walk() == first, params
        beyond = search(node, page=4, per_page=10, **params)
        assert beyond["hits"] == [] and beyond["total"] == 25, params


def damage_delete(index: Path) -> None:
    shutil.rmtree(index)


def damage_meta(index: Path) -> None:
    (index / "meta.json").write_bytes(b"\x00garbage{{{ not json")


def damage_empty_meta(index: Path) -> None:
    (index / "meta.json").write_bytes(b"")


def damage_segments(index: Path) -> None:
    for file in index.iterdir():
        if file.name not in ("meta.json", ".managed.json") and file.is_file() and not file.name.startswith(".tantivy"):
            file.write_bytes(b"garbage")


@pytest.mark.parametrize("damage", [damage_delete, damage_meta, damage_empty_meta, damage_segments],
                         ids=["deleted", "garbage-meta", "empty-meta", "garbage-segments"])
def test_search_index_is_rebuilt_on_start(node, damage):
    create_all(
        node,
        pegel_spec("pegel", themes=["ENVI"], licence="cc-by/4.0"),
        pegel_spec("luft", title="Luftqualität Innenstadt", themes=["HEAL"]),
        pegel_spec("verkehr", title="Verkehrszählung B61", themes=["TRAN"]),
    )
    ingest(node, "pegel", ["2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"])
    wait_derived(node, "pegel", 2, "2026-03-02T00:00:00Z")
    before = search(node)

    assert node.terminate() == 0, node.log_tail()
    index = node.data_dir / "index"
    assert index.is_dir(), list(node.data_dir.iterdir())
    damage(index)
    node.start()

    after = search(node)
    assert sorted(h["id"] for h in after["hits"]) == ["luft", "pegel", "verkehr"], after
    assert after["facets"] == before["facets"]
    assert search_ids(node, q="Luftqualität") == ["luft"]
    assert search_ids(node, q="Stand") == ["pegel"]
    assert search_ids(node, **{"from": "2026-03-01T12:00:00Z", "to": "2026-03-01T13:00:00Z"}) == ["pegel"]
    # The rebuilt index takes changes as before.
    node.create_dataset(pegel_spec("neu", title="Grundwasser Isselhorst"))
    wait_search(node, lambda ids: ids == ["neu"], "a dataset created after the rebuild", q="Grundwasser")


def test_search_index_behind_the_records_is_rebuilt(node):
    create_all(node, pegel_spec("alt", title="Altbestand Pegel"))
    assert node.terminate() == 0
    old_index = node.base / "index-copy"
    shutil.copytree(node.data_dir / "index", old_index)

    node.start()
    node.create_dataset(pegel_spec("spaet", title="Spätere Messreihe"))
    assert node.delete("/api/v1/datasets/alt").status == 204
    wait_search(node, lambda ids: ids == ["spaet"], "spaet indexed")
    assert node.terminate() == 0
    shutil.rmtree(node.data_dir / "index")
    shutil.copytree(old_index, node.data_dir / "index")  # an index that missed the last changes

    node.start()
    results = search(node)
    assert results["total"] == 1 and [h["id"] for h in results["hits"]] == ["spaet"], results
    assert search(node, q="Altbestand")["total"] == 0
    assert search_ids(node, q="Spätere") == ["spaet"]


def test_search_and_derived_fields_survive_a_clean_restart(node):
    create_all(node, pegel_spec("pegel", themes=["ENVI"]))
    ingest(node, "pegel", ["2026-03-01T00:00:00Z", "2026-03-01T00:15:00Z"])
    before = wait_derived(node, "pegel", 2, "2026-03-01T00:15:00Z")
    node.restart()
    assert search_ids(node, q="Pegelstände") == ["pegel"]
    assert facet(search(node), "theme") == {"ENVI": 1}
    after = node.dataset("pegel")
    for key in ("rows", "first", "last", "data_modified"):
        assert after.get(key) == before.get(key), (key, before, after)
    assert search_ids(node, **{"from": "2026-03-01T00:10:00Z", "to": "2026-03-01T00:20:00Z"}) == ["pegel"]


def test_derived_fields_are_rederived_after_a_crash(node):
    node.create_dataset(pegel_spec("pegel"))
    ingest(node, "pegel", ["2026-03-01T00:00:00Z", "2026-03-01T00:15:00Z"])
    node.kill9()
    node.start()
    record = wait_derived(node, "pegel", 2, "2026-03-01T00:15:00Z")
    assert record["first"] == "2026-03-01T00:00:00Z", record
    wait_search(node, lambda ids: ids == ["pegel"], "the re-derived extent to be searchable", timeout=DERIVED_DEADLINE,
                **{"from": "2026-03-01T00:10:00Z", "to": "2026-03-01T00:20:00Z"})



@pytest.mark.parametrize("path", ["/catalog.ttl", "/api/v1/datasets", "/", "/datasets/luft.ttl"])
def test_text_is_gzipped_for_clients_that_ask_and_plain_for_the_others(catalog_node, path):
    import gzip

    plain = catalog_node.get(path)
    assert plain.status == 200, plain
    assert plain.headers.get("Content-Encoding") is None, "no compression unasked"
    packed = catalog_node.get(path, headers={"Accept-Encoding": "gzip"})
    assert packed.status == 200, packed
    assert packed.headers.get("Content-Encoding") == "gzip", dict(packed.headers)
    vary = ", ".join(packed.headers.get_all("Vary") or []).lower()
    assert "accept-encoding" in vary, vary
    assert packed.content_type == plain.content_type
    unpacked = gzip.decompress(packed.body)
    assert len(packed.body) < len(unpacked), "compressed"
    assert unpacked == plain.body, path


def test_workspace_pages_are_never_compressed(node):
    """They carry CSRF tokens beside what staff typed: compressed, their size would tell (BREACH)."""
    response = node.get("/admin", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("Content-Encoding") is None, dict(response.headers)
