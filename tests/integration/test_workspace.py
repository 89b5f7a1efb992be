"""The staff workspace at /admin (issue 7 part 2, docs/decisions/009-portal.md "The workspace")
against real nodes and the real OpenID provider of tests/oidc.

Two towns form the module's federation: Herford, the node under test, signs its staff in at
the provider (tenant "herford": staff-admin, staff-editor, staff-viewer, citizen …; see
test_login.py), and Detmold, a member whose portal must find what Herford's clerk publishes.

1. The issue's flow in headless Chromium: /admin -> the provider's login form -> back on
   /admin; a new dataset through the form; an .xlsx with two bad rows (both listed, nothing
   stored); the corrected sheet (stored); the policy set to public (said in plain words); the
   dataset found from Detmold's portal and its link leading to Herford's dataset page.
2. Access: anonymous visitors are sent to the login, people without a staff role get 403,
   viewers read but may not change, every form refuses a POST without the session's CSRF token
   and changes nothing, the policy editor is for admins.
3. The policy editor: invalid rules are refused naming the field; rules with an aggregate and
   a masked column are summarised with both.
4. The federation page: invite (the invitation is used by a third town), members, remove.
5. The views editor: a saved definition is a view (portal page and API); invalid JSON keeps
   the draft.
6. The access log: rows with their decision, filtered by dataset, subject and date.
7. Every workspace page (and every answer to a form) is valid, accessible HTML with the
   portal's security headers; in Chromium the text meets WCAG AA contrast and the pages fit
   a phone.

Browser steps leave screenshots in target/test-artifacts/workspace/. The checks that need an
HTTP status or a tampered form use a scripted browser with the same login (oidc.Browser).
Waits poll a condition against a deadline.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from browser import (Browser, attr, content, data_rows, html_problems, parse_html, path_of, query_of, row_text,
                     security_header_problems, text_of)
from conftest import Federation, Node, audit_records, federated_ids, wait_until
from oidc import Browser as HttpBrowser
from oidc import HttpResult, OidcProvider, parse_forms

UTC = dt.timezone.utc
TENANT = "herford"
PASSWORD = "secret"  # the provider takes any password
SESSION_COOKIE = "urbanmesh_session"
# Set-up: the federation forms; a public entry reaches the other town's search.
REPLICATION_DEADLINE = 30.0
# A write to show in the dataset's row count or the access log.
SETTLE_DEADLINE = 15.0
STEP = dt.timedelta(minutes=15)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SCHEMA_LINES = "time timestamp[ms, UTC]\nstation utf8\nvalue float64 cm"
FIELDS = [
    {"name": "time", "type": "timestamp[ms, UTC]"},
    {"name": "station", "type": "utf8"},
    {"name": "value", "type": "float64", "unit": "cm"},
    {"name": "sensor", "type": "utf8", "nullable": True},
]


# ---- the towns ---------------------------------------------------------------------------------------


@dataclass
class Towns:
    federation: Federation
    herford: Node  # the node under test, with [oidc]
    detmold: Node  # a member
    provider: OidcProvider


@pytest.fixture(scope="module")
def towns(tmp_path_factory, oidc_provider) -> Towns:
    """Herford (signing its staff in at the provider) founds the federation, Detmold joins."""
    federation = Federation(tmp_path_factory.mktemp("workspace"), name="OWL")
    herford = federation.new_node("Herford", start=False)
    detmold = federation.new_node("Detmold", start=False)
    herford.use_oidc(oidc_provider, TENANT)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda n: n.start(), [herford, detmold]))
    federation.found(herford)
    federation.admit(detmold, inviter=herford)
    federation.wait_converged()
    yield Towns(federation, herford, detmold, oidc_provider)
    federation.close()


_made = 0


def unique(prefix: str) -> str:
    global _made
    _made += 1
    return f"{prefix}-{_made:02d}"


def now_slot() -> dt.datetime:
    """The current 15-minute slot (UTC, naive, as a spreadsheet holds it)."""
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None)
    return now - dt.timedelta(minutes=now.minute % 15)


def rfc3339(moment: dt.datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_dataset(node: Node, dataset: str, word: str, policy: dict | None = None, rows: int = 4) -> None:
    """A water-level dataset (with a `sensor` column) made through the API with the admin
    token, `rows` rows of the last hours; internal unless `policy`."""
    spec = {
        "id": dataset, "title": f"Pegel {word} {dataset}", "description": f"Wasserstände ({word})",
        "schema": {"fields": FIELDS}, "time_column": "time", "series_key": "station",
        "keywords": ["Pegel", word], "themes": ["ENVI"], "licence": "dl-by-de/2.0",
    }
    if policy is not None:
        spec["policy"] = policy
    node.create_dataset(spec)
    if rows:
        latest = now_slot()
        body = "time,station,value,sensor\n" + "".join(
            f"{rfc3339(latest - (rows - 1 - i) * STEP)},AA-{i % 2},{200 + i}.0,S{i}\n" for i in range(rows))
        stored = node.post_rows(dataset, body, "text/csv")
        assert stored.status == 200, stored


def staff_view(node: Node, dataset: str):
    """The dataset as the node's staff see it through the API (the admin token); None if absent."""
    response = node.get(f"/api/v1/datasets/{dataset}", auth=True)
    if response.status == 404:
        return None
    assert response.status == 200, response
    return response.json()


def policy_of(node: Node, dataset: str) -> dict:
    response = node.get(f"/api/v1/datasets/{dataset}/policy", auth=True)
    assert response.status == 200, response
    return response.json()


def stored_rows(node: Node, dataset: str) -> list[dict]:
    response = node.get(f"/api/v1/datasets/{dataset}/rows", query={"format": "json"}, auth=True)
    assert response.status == 200, response
    return response.json()


def xlsx(rows: list[tuple]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Pegel"
    sheet.append(["time", "station", "value"])
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# ---- signing in ---------------------------------------------------------------------------------------


def sign_in(b: Browser, towns: Towns, user: str, path: str = "/admin") -> None:
    """`user` opens `path` of Herford's workspace in Chromium, is sent to the provider's login
    form, signs in there and is brought back to `path`."""
    herford, issuer = towns.herford, towns.provider.issuer
    b.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    b.open(herford.http + path, f"{user}-login-form")
    assert b.url.startswith(issuer + "/interaction/"), f"{path} did not lead to the provider's login form: {b.url}"
    form = b.one("form#login")
    b.type_into("input[name=login]", user, form)
    b.type_into("input[name=password]", PASSWORD, form)
    b.submit(form, f"{user}-signed-in")
    assert b.url == herford.http + path, f"after the login {user} is at {b.url}, not at {path}"


# The session's own CSRF token (the default of the form helpers).
SESSION_TOKEN = object()


class Clerk:
    """A person signed in at a node's workspace through the provider's form, without a
    browser: for statuses, tampered forms and the HTML of every answer."""

    def __init__(self, towns: Towns, user: str):
        self.node = towns.herford
        self.user = user
        self.http: HttpBrowser = towns.provider.browser_login(self.node.url("/auth/login", {"next": "/admin"}), user)
        assert self.http.cookies(self.node.http).get(SESSION_COOKIE), f"no session for {user}: {self.http.history}"
        me = self.http.get(self.node.url("/api/v1/me"))
        assert me.status == 200 and me.json()["id"] == user, me
        self.csrf: str = me.json()["csrf"]

    def get(self, path: str) -> HttpResult:
        return self.http.get(self.node.http + path)

    def post(self, path: str, fields: dict[str, str], csrf: str | None | object = SESSION_TOKEN) -> HttpResult:
        """A form POST (urlencoded) with the session's token in `csrf`, or `csrf` (None: no field)."""
        token = self.csrf if csrf is SESSION_TOKEN else csrf
        pairs = ([("csrf", token)] if token is not None else []) + list(fields.items())
        return self.http.request("POST", self.node.http + path, urllib.parse.urlencode(pairs).encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})

    def upload(self, dataset: str, filename: str, data: bytes, csrf: str | None | object = SESSION_TOKEN,
               csrf_after_file: bool = False) -> HttpResult:
        """The upload form's POST: multipart with the `csrf` field (before the file unless
        `csrf_after_file`) and the file in `file`."""
        token = self.csrf if csrf is SESSION_TOKEN else csrf
        boundary = "----workspace-" + os.urandom(8).hex()
        token_part = (f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n'.encode()
                      if token is not None else b"")
        file_part = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                     f"Content-Type: {XLSX}\r\n\r\n").encode() + data + b"\r\n"
        parts = file_part + token_part if csrf_after_file else token_part + file_part
        body = parts + f"--{boundary}--\r\n".encode()
        return self.http.request("POST", self.node.http + f"/admin/datasets/{dataset}/upload", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def page_text(result: HttpResult) -> str:
    return text_of(parse_html(result.text))


def description_fields(title: str) -> dict[str, str]:
    """The description form of an existing dataset, filled in."""
    return {"title": title, "description": f"Beschreibung von {title}", "keywords": "Pegel", "theme": "ENVI",
            "licence": "dl-by-de/2.0", "frequency": "15MIN"}


def new_dataset_fields(dataset: str, title: str, word: str) -> dict[str, str]:
    return {"id": dataset, "title": title, "description": f"Wasserstände ({word})", "keywords": f"Pegel, {word}",
            "theme": "ENVI", "licence": "dl-by-de/2.0", "frequency": "15MIN", "schema": SCHEMA_LINES,
            "time_column": "time", "series_key": "station"}


# ==== 1. the flow ==================================================================================

FLOW_WORD = "Werkstattflusstest"


def upload_in_browser(b: Browser, path: Path, step: str) -> None:
    form = b.one("form#upload")
    b.one("input[type=file][name=file]", form).send_keys(str(path))
    b.submit(form, step)


def error_rows(b: Browser) -> dict[int, list[str]]:
    """#upload-errors: row number -> the row's cells (row, line in the file, column, reason)."""
    table = b.one("table#upload-errors")
    out = {}
    for tr in b.all("tbody tr", table):
        cells = [content(cell) for cell in b.all("th, td", tr)]
        assert attr(tr, "data-row") == cells[0], f"data-row {attr(tr, 'data-row')!r} but the row says {cells}"
        out[int(cells[0])] = cells
    return out


def test_a_clerk_signs_in_uploads_fixes_two_rows_publishes_and_the_neighbour_finds_it(browser, towns, tmp_path):
    b, herford, detmold = browser, towns.herford, towns.detmold
    dataset, title = "werkstatt-pegel", f"Pegelstände Herford {FLOW_WORD}"

    # Signing in: /admin -> the provider's form -> back on /admin.
    sign_in(b, towns, "staff-admin")
    assert b.status() == 200 and b.h1() == "Datensätze"
    assert b.all("table#datasets"), "the datasets list"

    # A new dataset through the form, with the DCAT-AP.de vocabularies as choices.
    b.follow(b.one('main a[href="/admin/datasets/new"]:not(nav a)'), "new-dataset-form")
    form = b.one("form#description")
    themes = [attr(o, "value") for o in b.all("select[name=theme] option", form)]
    licences = [attr(o, "value") for o in b.all("select[name=licence] option", form)]
    assert "ENVI" in themes and "TRAN" in themes, themes
    assert "dl-by-de/2.0" in licences and "dl-zero-de/2.0" in licences, licences
    b.type_into("input[name=id]", dataset, form)
    b.type_into("input[name=title]", title, form)
    b.type_into("textarea[name=description]", f"Wasserstände der Aa und der Werre in Herford ({FLOW_WORD})", form)
    b.type_into("input[name=keywords]", f"Pegel, Aa, {FLOW_WORD}", form)
    b.choose("select[name=theme]", "ENVI", form)
    b.choose("select[name=licence]", "dl-by-de/2.0", form)
    b.choose("select[name=frequency]", "15MIN", form)
    b.type_into("textarea[name=schema]", SCHEMA_LINES, form)
    b.type_into("input[name=time_column]", "time", form)
    b.type_into("input[name=series_key]", "station", form)
    b.shot("new-dataset-filled")
    b.submit(form, "created")
    assert path_of(b.url) == f"/admin/datasets/{dataset}", f"after creating: {b.url} ({b.status()})"
    assert b.status() == 200 and b.h1() == title

    created = staff_view(herford, dataset)
    assert created is not None, "the form did not create the dataset"
    fields = [(f["name"], f["type"], f.get("unit")) for f in created["schema"]["fields"]]
    assert fields == [("time", "timestamp[ms, UTC]", None), ("station", "utf8", None), ("value", "float64", "cm")], (
        created["schema"])
    assert (created["time_column"], created["series_key"]) == ("time", "station"), created
    assert FLOW_WORD in created["keywords"] and "ENVI" in json.dumps(created["themes"]), created
    assert "dl-by-de/2.0" in json.dumps(created.get("licence")), created
    assert policy_of(herford, dataset)["visibility"] == "internal", "a new dataset starts internal"

    # An Excel sheet with two bad rows: both listed (row, line in the sheet, column), nothing stored.
    latest = now_slot()
    good = [(latest - (5 - i) * STEP, "AA" if i % 2 == 0 else "WERRE", 120.0 + i) for i in range(6)]
    bad = list(good)
    bad[1] = (good[1][0], good[1][1], "hoch")  # row 2, sheet line 3: not a number
    bad[3] = ("gestern 14 Uhr", good[3][1], good[3][2])  # row 4, sheet line 5: not a time
    sheet = tmp_path / "Pegel Herford.xlsx"
    sheet.write_bytes(xlsx(bad))
    upload_in_browser(b, sheet, "upload-two-bad-rows")
    assert b.status() == 400, b.status()
    errors = error_rows(b)
    assert sorted(errors) == [2, 4], f"#upload-errors lists rows {sorted(errors)}: {list(errors.values())}"
    assert errors[2][1:3] == ["3", "value"], f"row 2 is line 3 of the sheet, column value: {errors[2]}"
    assert errors[4][1:3] == ["5", "time"], f"row 4 is line 5 of the sheet, column time: {errors[4]}"
    assert all(cells[3] for cells in errors.values()), f"every error gives a reason: {errors}"
    result = content(b.one("#upload-result"))
    assert "nicht gespeichert" in result and sheet.name in result, f"#upload-result: {result!r}"
    assert staff_view(herford, dataset)["rows"] == 0 and stored_rows(herford, dataset) == [], "rows were stored"

    # The corrected sheet.
    sheet.write_bytes(xlsx(good))
    upload_in_browser(b, sheet, "upload-corrected")
    assert b.status() == 200, b.status()
    assert not b.all("#upload-errors")
    result = content(b.one("#upload-result"))
    assert f"{len(good)} Zeilen gespeichert" in result, f"#upload-result: {result!r}"
    rows = stored_rows(herford, dataset)
    assert sorted(r["value"] for r in rows) == [row[2] for row in good], rows
    wait_until(lambda: staff_view(herford, dataset)["rows"] == len(good), SETTLE_DEADLINE,
               f"{dataset} to count {len(good)} rows")

    # Who may see it: public, said in plain words.
    b.follow(b.one(f'main a[href="/admin/datasets/{dataset}/policy"]'), "policy-editor")
    before = content(b.one("#policy-summary"))
    assert "Beschäftigten" in before and "Bürgerinnen" not in before, f"an internal dataset's summary: {before!r}"
    form = b.one("form#policy")
    assert b.one("#visibility-internal", form).is_selected()
    b.one("#visibility-public", form).click()
    b.type_into("input[name=attribution]", "Stadt Herford", form)
    b.shot("policy-public-chosen")
    b.submit(form, "policy-saved")
    assert path_of(b.url) == f"/admin/datasets/{dataset}" and b.status() == 200, b.url
    summary = content(b.one("#policy-summary"))
    assert "Bürgerinnen und Bürger" in summary and "alle" in summary and "vollständig" in summary, (
        f"#policy-summary should say that everyone sees and reads it: {summary!r}")
    assert "Stadt Herford" in summary, f"the attribution duty: {summary!r}"
    assert policy_of(herford, dataset)["visibility"] == "public"
    b.open(herford.url("/admin"), "datasets-list")
    listed = [tr for tr in b.all("table#datasets tbody tr") if dataset in row_text(tr)]
    assert len(listed) == 1 and "alle" in row_text(listed[0]) and str(len(good)) in row_text(listed[0]), (
        [row_text(tr) for tr in b.all("table#datasets tbody tr")])

    # The neighbouring town's portal finds it, and its link leads to Herford's page.
    wait_until(lambda: dataset in federated_ids(detmold, herford.name, q=FLOW_WORD), REPLICATION_DEADLINE,
               "Detmold's federated search to find Herford's new dataset", interval=0.05)
    b.open(detmold.url("/search", {"q": FLOW_WORD, "scope": "federation"}), "detmold-search")
    assert b.count() == 1, content(b.one("#count"))
    wanted = urllib.parse.urlsplit(herford.url(f"/datasets/{dataset}"))
    links = [a for a in b.all("#results li a[href]") if urllib.parse.urlsplit(attr(a, "href"))[:3] == wanted[:3]]
    assert links, f"no hit links to Herford's page: {[attr(a, 'href') for a in b.all('#results li a')]}"
    b.follow(links[0], "origin-dataset-page")
    assert b.url.startswith(herford.http + "/") and path_of(b.url) == f"/datasets/{dataset}", b.url
    assert b.h1() == title
    assert b.all("svg.chart polyline"), "the uploaded rows are charted"


def test_the_description_editor_changes_the_text_and_keeps_policy_and_rows(browser, towns):
    b, herford = browser, towns.herford
    word = "Werkstattbeschreibung"
    dataset = unique("werkstatt-text")
    make_dataset(herford, dataset, word, policy={"visibility": "federation"}, rows=3)
    sign_in(b, towns, "staff-editor", f"/admin/datasets/{dataset}")
    form = b.one("form#description")
    assert not b.all("textarea[name=schema]", form), "the shape of the rows cannot change"
    b.type_into("input[name=title]", f"Neuer Titel {word}", form)
    b.type_into("textarea[name=description]", "Neu beschrieben", form)
    b.submit(form, "saved")
    assert path_of(b.url) == f"/admin/datasets/{dataset}" and b.status() == 200, (b.url, b.status())
    assert b.h1() == f"Neuer Titel {word}"
    after = staff_view(herford, dataset)
    assert (after["title"], after["description"]) == (f"Neuer Titel {word}", "Neu beschrieben"), after
    assert [f["name"] for f in after["schema"]["fields"]] == [f["name"] for f in FIELDS]
    assert policy_of(herford, dataset)["visibility"] == "federation", "saving the description changed the policy"
    assert len(stored_rows(herford, dataset)) == 3


# ==== 2. access =============================================================================================


def test_anonymous_visitors_are_sent_to_the_login(towns, oidc_provider):
    herford = towns.herford
    anonymous = HttpBrowser()
    for path in ("/admin", "/admin/datasets/new", "/admin/federation", "/admin/views", "/admin/audit?dataset=x&from=2026-01-01"):
        result = anonymous.get(herford.http + path)
        assert result.status in (302, 303, 307), f"{path}: {result!r}"
        target = urllib.parse.urlsplit(result.location)
        assert target.netloc == urllib.parse.urlsplit(herford.http).netloc and target.path == "/auth/login", (
            f"{path} sends an anonymous visitor to {result.location}")
        assert query_of(result.location).get("next") == path, f"{path}: next is lost in {result.location}"
        assert "csrf" not in result.text
    # A form posted anonymously changes nothing.
    body = urllib.parse.urlencode(new_dataset_fields("anonym-angelegt", "Anonym", "Anonymtest")).encode()
    result = anonymous.request("POST", herford.url("/admin/datasets/new"), body,
                               {"Content-Type": "application/x-www-form-urlencoded"})
    assert result.status in (302, 303, 307, 401, 403), result
    assert staff_view(herford, "anonym-angelegt") is None


def test_the_login_brings_the_clerk_back_to_the_page_asked_for(browser, towns):
    path = "/admin/audit?dataset=werkstatt-pegel&subject=anonymous"
    sign_in(browser, towns, "staff-admin", path)
    assert browser.h1() == "Zugriffsprotokoll"
    assert attr(browser.one("#audit-filters input[name=subject]"), "value") == "anonymous"


@pytest.mark.parametrize("user", ["citizen", "other-admin"])
def test_people_without_a_staff_role_get_403(browser, towns, user):
    b, herford = browser, towns.herford
    sign_in(b, towns, user)
    assert b.status() == 403, f"{user} at /admin: {b.status()}"
    assert b.all("h1") and not b.all("table#datasets"), "the datasets list is shown"
    for path in ("/admin/datasets/new", "/admin/federation", "/admin/views", "/admin/audit"):
        b.open(herford.url(path), path.replace("/", "-"))
        assert b.status() == 403, f"{user} at {path}: {b.status()}"
        assert not b.all("main form[method=post]:not(nav form)"), f"{path} offers {user} a form"

    # Nor do forms work for them, token or not.
    person = Clerk(towns, user)
    dataset = unique("ohne-rolle")
    result = person.post("/admin/datasets/new", new_dataset_fields(dataset, "Ohne Rolle", "Rollentest"))
    assert result.status == 403, result
    assert staff_view(herford, dataset) is None


def test_a_viewer_sees_the_lists_but_changes_nothing(browser, towns):
    b, herford = browser, towns.herford
    word = "Werkstattbetrachter"
    existing = unique("werkstatt-viewer")
    make_dataset(herford, existing, word, rows=2)

    sign_in(b, towns, "staff-viewer")
    assert b.status() == 200
    assert any(existing in row_text(tr) for tr in b.all("table#datasets tbody tr")), "the viewer's list"
    b.open(herford.url("/admin/federation"), "federation")
    assert b.status() == 200 and len(data_rows(b.one("table#members"))) >= 2
    assert not b.all("form#invite") and not b.all('form[action="/admin/federation/remove"]'), (
        "a viewer is offered to invite or remove")

    # The viewer fills in the new-dataset form: refused, and the page says so.
    dataset = unique("viewer-angelegt")
    b.open(herford.url("/admin/datasets/new"), "new-dataset-form")
    form = b.one("form#description")
    b.type_into("input[name=id]", dataset, form)
    b.type_into("input[name=title]", "Vom Viewer", form)
    b.type_into("textarea[name=schema]", SCHEMA_LINES, form)
    b.submit(form, "refused")
    assert b.status() == 403, b.status()
    assert "editor" in content(b.one("main")) and "Berechtigung" in content(b.one("main")), content(b.one("main"))
    assert staff_view(herford, dataset) is None, "the viewer created a dataset"

    # Uploads, descriptions, views: refused too.
    viewer = Clerk(towns, "staff-viewer")
    good = xlsx([(now_slot(), "AA", 111.0)])
    assert viewer.upload(existing, "pegel.xlsx", good).status == 403
    assert len(stored_rows(herford, existing)) == 2
    update = viewer.post(f"/admin/datasets/{existing}", description_fields("Vom Viewer"))
    assert update.status == 403, update
    assert staff_view(herford, existing)["title"] != "Vom Viewer"
    audit = viewer.get("/admin/audit")
    assert audit.status in (200, 403) and "data-decision" not in audit.text, "a viewer reads the access log"
    view = view_definition(unique("viewer-view"), word)
    saved = viewer.post("/admin/views/save", {"definition": json.dumps(view)})
    assert herford.get(f"/api/v1/views/{view['id']}", auth=True).status == 404, "the viewer saved a view"
    assert "editor" in " ".join(text_of(el) for el in parse_html(saved.text).iter() if el.get("role") == "alert"), (
        page_text(saved)[:500])
    assert saved.status == 403, f"a viewer's view is refused with {saved.status}, not 403"


def refused_forms(towns: Towns, dataset: str) -> list[tuple[str, str, dict]]:
    """(what, path, fields) of every urlencoded workspace form, filled in to change something."""
    return [
        ("create", "/admin/datasets/new", new_dataset_fields(f"{dataset}-neu", "Gefälscht", "Falschtest")),
        ("describe", f"/admin/datasets/{dataset}", description_fields("Gefälscht")),
        ("policy", f"/admin/datasets/{dataset}/policy", {"visibility": "public", "rules": ""}),
        ("invite", "/admin/federation/invite", {"name": "Gefälscht", "ttl": "1h"}),
        ("remove", "/admin/federation/remove", {"peer": towns.detmold.peer_id}),
        ("view", "/admin/views/save", {"definition": json.dumps(view_definition(f"{dataset}-view", "Falschtest"))}),
        ("dashboard", "/admin/dashboards", {"id": f"{dataset}-board", "title": "Gefälscht", "range": "7d",
                                            "visibility": "public", "description": ""}),
    ]


@pytest.mark.parametrize("token", ["missing", "wrong", "another-sessions", "empty"])
def test_every_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(towns, token):
    herford, detmold = towns.herford, towns.detmold
    dataset = unique("csrf")
    make_dataset(herford, dataset, "Csrftest", rows=2)
    admin = Clerk(towns, "staff-admin")
    other = Clerk(towns, "staff-admin")
    assert other.csrf != admin.csrf
    sent = {"missing": None, "wrong": "0" * len(admin.csrf), "another-sessions": other.csrf, "empty": ""}[token]
    before = staff_view(herford, dataset)

    answers = {}
    for what, path, fields in refused_forms(towns, dataset):
        answers[what] = admin.post(path, fields, csrf=sent)
    answers["upload"] = admin.upload(dataset, "pegel.xlsx", xlsx([(now_slot(), "AA", 1.0)]), csrf=sent)

    # Nothing changed.
    assert not any("urbanmesh-invitation:" in r.text for r in answers.values()), "an invitation was issued"
    assert staff_view(herford, f"{dataset}-neu") is None
    assert staff_view(herford, dataset)["title"] == before["title"]
    assert policy_of(herford, dataset)["visibility"] == "internal"
    assert len(stored_rows(herford, dataset)) == 2
    assert herford.get(f"/api/v1/views/{dataset}-view", auth=True).status == 404
    assert herford.get(f"/dashboards/{dataset}-board", headers={"Accept": "text/html"}).status == 404
    members = {m["peer"]: m["status"] for m in herford.federation_status()["members"]}
    assert members.get(detmold.peer_id) == "admitted", members
    # And each form said so with 403.
    wrong = {what: f"{r.status} {r.text[:200]!r}" for what, r in answers.items() if r.status != 403}
    assert not wrong, f"forms with the token {token} answered other than 403: {wrong}"

    # The same forms with the session's token do go through (so the refusals were the token's).
    accepted = admin.post(f"/admin/datasets/{dataset}", description_fields("Echt"))
    assert accepted.status in (200, 303), accepted
    assert staff_view(herford, dataset)["title"] == "Echt"


def test_the_upload_needs_the_token_before_the_file(towns):
    herford = towns.herford
    dataset = unique("csrf-upload")
    make_dataset(herford, dataset, "Csrftest", rows=0)
    admin = Clerk(towns, "staff-admin")
    late = admin.upload(dataset, "pegel.xlsx", xlsx([(now_slot(), "AA", 1.0)]), csrf_after_file=True)
    assert late.status == 403, late
    assert stored_rows(herford, dataset) == []
    accepted = admin.upload(dataset, "pegel.xlsx", xlsx([(now_slot(), "AA", 1.0)]))
    assert accepted.status == 200, accepted
    assert len(stored_rows(herford, dataset)) == 1


def test_the_policy_editor_refuses_an_editor(browser, towns):
    b, herford = browser, towns.herford
    dataset = unique("werkstatt-editor")
    make_dataset(herford, dataset, "Editorrichtlinie", rows=1)
    sign_in(b, towns, "staff-editor", f"/admin/datasets/{dataset}/policy")
    form = b.one("form#policy")
    b.one("#visibility-public", form).click()
    b.submit(form, "refused")
    assert b.status() == 403, b.status()
    alert = " ".join(content(el) for el in b.all("[role=alert]"))
    assert "admin" in alert, f"the page should say that setting a policy is for admins: {alert!r}"
    assert policy_of(herford, dataset)["visibility"] == "internal"
    assert "Beschäftigten" in content(b.one("#policy-summary")), "the summary shows the policy in force"


# ==== 3. the policy editor ===================================================================================


def test_invalid_rules_are_refused_naming_the_field_and_keep_the_policy(browser, towns):
    b, herford = browser, towns.herford
    dataset = unique("werkstatt-regeln")
    make_dataset(herford, dataset, "Regeltest", policy={"visibility": "federation"}, rows=2)
    sign_in(b, towns, "staff-admin", f"/admin/datasets/{dataset}/policy")

    for step, rules in [("not-json", '[{"assignee": "federation", "masked": ["sensor"'),
                        ("unknown-column", '[{"assignee": "federation", "masked": ["gibt_es_nicht"]}]')]:
        form = b.one("form#policy")
        b.one("#visibility-public", form).click()
        b.type_into("textarea[name=rules]", rules, form)
        b.submit(form, step)
        assert b.status() == 400, f"{step}: {b.status()}"
        alerts = [content(el) for el in b.all("[role=alert]")]
        assert len(alerts) == 1 and "rules" in alerts[0], f"{step}: the alert should name the field rules: {alerts}"
        assert attr(b.one("textarea[name=rules]"), "value") == rules, f"{step}: the draft is lost"
        policy = policy_of(herford, dataset)
        assert policy["visibility"] == "federation" and not policy.get("rules"), f"{step}: the policy changed: {policy}"


def test_rules_with_an_aggregate_and_a_masked_column_are_summarised_with_both(browser, towns):
    b, herford = browser, towns.herford
    dataset = unique("werkstatt-summen")
    make_dataset(herford, dataset, "Summentest", rows=4)
    sign_in(b, towns, "staff-admin", f"/admin/datasets/{dataset}/policy")
    rules = [{"assignee": "federation", "aggregate": {"bucket": "1h", "min_group": 3}, "masked": ["sensor"]}]
    form = b.one("form#policy")
    b.one("#visibility-federation", form).click()
    b.type_into("textarea[name=rules]", json.dumps(rules, indent=2), form)
    b.submit(form, "saved")
    assert path_of(b.url) == f"/admin/datasets/{dataset}" and b.status() == 200, (b.url, b.status())
    summary = content(b.one("#policy-summary"))
    assert "Mitglieder des Verbunds" in summary, summary
    assert "Summen" in summary and "1h" in summary and "mindestens 3" in summary, f"no aggregate in {summary!r}"
    assert "ohne sensor" in summary, f"no masked column in {summary!r}"
    assert "Sonst liest niemand" in summary, summary
    policy = policy_of(herford, dataset)
    assert policy["visibility"] == "federation" and len(policy["rules"]) == 1, policy
    assert policy["rules"][0]["masked"] == ["sensor"] and policy["rules"][0]["aggregate"]["bucket"] == "1h", policy

    # The editor shows the rules in force, and the same summary.
    b.open(herford.url(f"/admin/datasets/{dataset}/policy"), "editor-again")
    assert content(b.one("#policy-summary")) == summary
    assert json.loads(attr(b.one("textarea[name=rules]"), "value"))[0]["masked"] == ["sensor"]
    assert b.one("#visibility-federation").is_selected()


# ==== 4. the federation page ==================================================================================


def member_rows(b: Browser) -> dict[str, WebElement]:
    rows = {content(b.one("th", tr)): tr for tr in data_rows(b.one("table#members"))}
    return rows


def test_the_federation_page_invites_lists_and_removes_members(browser, towns):
    b, herford, detmold, federation = browser, towns.herford, towns.detmold, towns.federation
    sign_in(b, towns, "staff-admin", "/admin/federation")
    rows = member_rows(b)
    assert {"Herford", "Detmold"} <= set(rows), f"members: {[row_text(r) for r in rows.values()]}"
    for name, node in (("Herford", herford), ("Detmold", detmold)):
        assert node.peer_id in row_text(rows[name]) and "admitted" in row_text(rows[name]), row_text(rows[name])
    assert not b.all("form", rows["Herford"]), "the node is offered to remove itself"
    assert b.all('form[action="/admin/federation/remove"] button', rows["Detmold"]), "no remove form for Detmold"

    # Invite a third town; the invitation on the page lets it join.
    form = b.one("form#invite")
    b.type_into("input[name=name]", "Lemgo", form)
    b.choose("select[name=ttl]", "1h", form)
    b.submit(form, "invited")
    invitation = content(b.one("#invitation"))
    assert invitation.startswith("urbanmesh-invitation:"), f"#invitation: {invitation!r}"
    lemgo = federation.new_node("Lemgo")
    joined = lemgo.join(invitation)
    assert joined.status == 200, joined
    federation.expect_admitted(lemgo, herford)
    federation.wait_converged()

    b.open(herford.url("/admin/federation"), "three-members")
    rows = member_rows(b)
    assert "Lemgo" in rows and lemgo.peer_id in row_text(rows["Lemgo"]), [row_text(r) for r in rows.values()]
    remove = b.all('form[action="/admin/federation/remove"] button', rows["Lemgo"])
    assert len(remove) == 1 and "Lemgo" in b.accessible_name(remove[0]) + attr(remove[0], "aria-label")
    b.follow(remove[0], "removed")
    assert path_of(b.url) == "/admin/federation" and b.status() == 200, (b.url, b.status())
    federation.nodes.remove(lemgo)
    federation.removed.append(lemgo)
    federation.wait_converged()
    b.open(herford.url("/admin/federation"), "after-removal")
    rows = member_rows(b)
    assert "Lemgo" not in rows or "removed" in row_text(rows["Lemgo"]), row_text(rows["Lemgo"])
    assert "admitted" in row_text(rows["Detmold"])


# ==== 5. the views editor ======================================================================================


def view_definition(view: str, word: str) -> dict:
    return {
        "id": view, "title": f"Pegel der Region {word}", "description": f"Alle Pegel mit {word}",
        "select": {"keywords": [word]},
        "schema": {"fields": [{"name": "time", "type": "timestamp[ms, UTC]"}, {"name": "station", "type": "utf8"},
                              {"name": "value", "type": "float64", "unit": "cm"}]},
        "time_column": "time", "series_key": "station",
        "window": "7d", "refresh": "0s", "deadline": "5s",
        "policy": {"visibility": "public"},
    }


def test_the_views_editor_saves_a_view_and_keeps_a_broken_draft(browser, towns):
    b, herford = browser, towns.herford
    word = "Werkstattansicht"
    make_dataset(herford, unique("werkstatt-quelle"), word, policy={"visibility": "public"}, rows=4)
    view = unique("werkstatt-ansicht")
    definition = view_definition(view, word)
    sign_in(b, towns, "staff-admin", "/admin/views")

    b.type_into("textarea#definition-new", json.dumps(definition, indent=2, ensure_ascii=False))
    b.submit(b.one("textarea#definition-new").find_element("xpath", "ancestor::form"), "saved")
    assert b.status() == 200, b.status()
    status = content(b.one("[role=status]"))
    assert definition["title"] in status, status
    assert b.all(f"textarea#definition-{view}"), "the saved view has its own editor"
    saved = json.loads(attr(b.one(f"textarea#definition-{view}"), "value"))
    assert saved["id"] == view and saved["title"] == definition["title"], saved

    api = herford.get(f"/api/v1/views/{view}")
    assert api.status == 200 and api.json()["title"] == definition["title"], api
    link = [a for a in b.all("[role=status] a[href]") if path_of(attr(a, "href")) == f"/views/{view}"]
    assert link, "the note links the view's page"
    b.follow(link[0], "view-page")
    assert b.status() == 200 and b.h1() == definition["title"]

    # Invalid JSON: the error is shown, the draft stays in the textarea, nothing is saved.
    b.open(herford.url("/admin/views"), "editor-again")
    draft = '{"id": "werkstatt-kaputt", "title": "Kaputt",'
    b.type_into("textarea#definition-new", draft)
    b.submit(b.one("textarea#definition-new").find_element("xpath", "ancestor::form"), "broken")
    assert b.status() == 400, b.status()
    alerts = [content(el) for el in b.all("[role=alert]")]
    assert len(alerts) == 1 and alerts[0], alerts
    assert attr(b.one("textarea#definition-new"), "value") == draft, "the draft is lost"
    assert herford.get("/api/v1/views/werkstatt-kaputt", auth=True).status == 404


def test_an_editor_saves_a_view_without_a_policy_but_not_with_one(towns):
    herford = towns.herford
    editor = Clerk(towns, "staff-editor")
    without = {k: v for k, v in view_definition(unique("editor-ansicht"), "Editoransicht").items() if k != "policy"}
    saved = editor.post("/admin/views/save", {"definition": json.dumps(without)})
    assert saved.status == 200, saved
    assert herford.get(f"/api/v1/views/{without['id']}", auth=True).status == 200

    with_policy = view_definition(unique("editor-ansicht"), "Editoransicht")
    refused = editor.post("/admin/views/save", {"definition": json.dumps(with_policy)})
    assert herford.get(f"/api/v1/views/{with_policy['id']}", auth=True).status == 404
    assert "admin" in page_text(refused), page_text(refused)[:500]
    assert refused.status == 403, f"an editor's view with a policy is refused with {refused.status}, not 403"


# ==== 6. the access log =========================================================================================


def audit_table(b: Browser) -> list[dict[str, str]]:
    headers = [content(th) for th in b.all("table#audit thead th")]
    rows = []
    for tr in b.all("table#audit tbody tr"):
        cells = [content(td) for td in b.all("td", tr)]
        rows.append({**dict(zip(headers, cells)), "decision": attr(tr, "data-decision")})
    return rows


def filter_audit(b: Browser, step: str, **values: str) -> None:
    """Fills in the access log's filters (dates as the date inputs hold them, YYYY-MM-DD) and submits."""
    form = b.one("form#audit-filters")
    for name, value in values.items():
        field = b.one(f"input[name={name}]", form)
        if attr(field, "type") == "date":
            b.driver.execute_script("arguments[0].value = arguments[1]", field, value)
        else:
            field.clear()
            field.send_keys(value)
    b.submit(form, step)


def test_the_access_log_shows_decisions_and_filters_by_dataset_subject_and_date(browser, towns):
    b, herford = browser, towns.herford
    dataset = unique("werkstatt-protokoll")
    make_dataset(herford, dataset, "Protokolltest", rows=3)
    # Reads: the public is refused (internal), the admin token reads.
    assert herford.read_rows(dataset).status == 404
    assert herford.get(f"/api/v1/datasets/{dataset}/rows", query={"format": "json"}, auth=True).status == 200

    def logged():
        records = audit_records(herford, dataset=dataset)
        return records if {"permit", "deny"} <= {r["decision"] for r in records} else None

    records = wait_until(logged, SETTLE_DEADLINE, f"the reads of {dataset} in the access log", interval=0.05)

    sign_in(b, towns, "staff-admin", f"/admin/audit?dataset={dataset}")
    rows = audit_table(b)
    assert len(rows) == len(records), f"{len(rows)} rows on the page, {len(records)} records: {rows}"
    assert {r["decision"] for r in rows} == {"permit", "deny"}, rows
    assert all(r["Datensatz"] == dataset for r in rows), rows
    assert {r["Wer"] for r in rows} == {r["subject"] for r in records}, rows
    assert f"{len(rows)} Einträge" in content(b.one("main")), "the page counts the entries"

    filter_audit(b, "anonymous", subject="anonymous")
    assert query_of(b.url).get("subject") == "anonymous" and query_of(b.url).get("dataset") == dataset, b.url
    rows = audit_table(b)
    anonymous = [r for r in records if r["subject"] == "anonymous"]
    assert anonymous and len(rows) == len(anonymous), rows
    assert all(r["Wer"] == "anonymous" and r["decision"] == "deny" for r in rows), rows

    today = dt.datetime.now(UTC).date()
    filter_audit(b, "tomorrow", subject="", **{"from": (today + dt.timedelta(days=1)).isoformat(), "to": ""})
    assert audit_table(b) == [], "records from tomorrow on"
    filter_audit(b, "until-yesterday", **{"from": "", "to": (today - dt.timedelta(days=1)).isoformat()})
    assert audit_table(b) == [], "records until yesterday"
    filter_audit(b, "today", **{"from": today.isoformat(), "to": today.isoformat()})
    rows = audit_table(b)
    assert len(rows) == len(audit_records(herford, dataset=dataset)), rows
    assert query_of(b.url).get("from") == today.isoformat(), b.url

    # A viewer is told that the log is for admins, and shown no rows.
    viewer = Clerk(towns, "staff-viewer")
    page = viewer.get(f"/admin/audit?dataset={dataset}")
    assert "data-decision" not in page.text and "admin" in page_text(page), page


# ==== 7. valid, accessible pages ===================================================================================


@dataclass
class Sample:
    dataset: str
    view: str


@pytest.fixture(scope="module")
def sample(towns) -> Sample:
    """A public dataset with rows and a view over it, for the pages to show something."""
    herford = towns.herford
    word = "Werkstattseiten"
    dataset, view = "werkstatt-seiten", "werkstatt-seiten-ansicht"
    make_dataset(herford, dataset, word, policy={"visibility": "public"}, rows=6)
    response = herford.post_json("/api/v1/views", view_definition(view, word))
    assert response.status == 201, response
    assert herford.read_rows(dataset).status == 200  # a line in the access log
    return Sample(dataset, view)


PAGES = ["datasets", "new", "dataset", "policy", "federation", "views", "audit", "dashboards"]
ANSWERS = ["create-invalid", "upload-errors", "upload-stored", "policy-invalid", "invitation", "views-invalid",
           "viewer-refused", "no-staff", "dashboard-invalid", "tile-invalid"]


def workspace_page(kind: str, towns: Towns, sample: Sample) -> tuple[str, HttpResult, int]:
    """(what, the answer, its expected status) for a page or a form's answer of `kind`."""
    dataset = sample.dataset
    gets = workspace_paths(sample)
    if kind in gets:
        return gets[kind], Clerk(towns, "staff-admin").get(gets[kind]), 200
    if kind == "viewer-refused":
        viewer = Clerk(towns, "staff-viewer")
        return "a viewer's new dataset", viewer.post("/admin/datasets/new",
                                                     new_dataset_fields(unique("seiten"), "Nein", "Nein")), 403
    if kind == "no-staff":
        return "/admin for a citizen", Clerk(towns, "citizen").get("/admin"), 403
    admin = Clerk(towns, "staff-admin")
    if kind == "create-invalid":
        fields = dict(new_dataset_fields(unique("seiten"), "Kaputt", "Kaputt"), schema="time\nstation utf8")
        return "a refused new dataset", admin.post("/admin/datasets/new", fields), 400
    if kind == "upload-errors":
        latest = now_slot()
        data = xlsx([(latest, "AA", "hoch"), ("gestern", "AA", 1.0)])
        return "a refused upload", admin.upload(dataset, "pegel.xlsx", data), 400
    if kind == "upload-stored":
        return "a stored upload", admin.upload(dataset, "pegel.xlsx", xlsx([(now_slot(), "AA", 777.0)])), 200
    if kind == "policy-invalid":
        return "refused rules", admin.post(f"/admin/datasets/{dataset}/policy",
                                           {"visibility": "public", "rules": "[{"}), 400
    if kind == "invitation":
        return "an invitation", admin.post("/admin/federation/invite", {"name": "Seitentest", "ttl": "1h"}), 200
    if kind == "views-invalid":
        return "a refused view", admin.post("/admin/views/save", {"definition": "{kaputt"}), 400
    if kind == "dashboard-invalid":
        fields = {"id": "Kaputt!", "title": "Kaputt", "range": "7d", "visibility": "public", "description": ""}
        return "a refused dashboard", admin.post("/admin/dashboards", fields), 400
    if kind == "tile-invalid":
        board = unique("seiten-board")
        fields = {"id": board, "title": "Seiten", "range": "7d", "visibility": "internal", "description": ""}
        assert admin.post("/admin/dashboards", fields).status == 303
        tile = {"kind": "chart", "source": "dataset:gibt-es-nicht", "column": "", "title": "", "text": ""}
        return "a refused tile", admin.post(f"/admin/dashboards/{board}/tiles", tile), 400
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", PAGES + ANSWERS)
def test_every_workspace_page_is_valid_and_accessible_html(towns, sample, kind):
    what, result, status = workspace_page(kind, towns, sample)
    assert result.status == status, f"{what}: {result!r}"
    assert result.content_type == "text/html", f"{what}: {result!r}"
    assert "charset=utf-8" in (result.headers.get("Content-Type") or "").lower().replace('"', "")
    problems = html_problems(result.text, "de", towns.herford)
    assert not problems, f"{what} ({kind}):\n" + "\n".join(problems)
    problems = security_header_problems(result)
    assert not problems, f"{what} ({kind}): " + "; ".join(problems)
    # Each form of the page carries the session's token (the logout form in the navigation too).
    forms = [f for f in parse_forms(result.text, result.url) if f.method == "POST"]
    assert all(f.fields.get("csrf") for f in forms), [(f.action, sorted(f.fields)) for f in forms]


def workspace_paths(sample: Sample) -> dict[str, str]:
    return {"datasets": "/admin", "new": "/admin/datasets/new", "dataset": f"/admin/datasets/{sample.dataset}",
            "policy": f"/admin/datasets/{sample.dataset}/policy", "federation": "/admin/federation",
            "views": "/admin/views", "audit": f"/admin/audit?dataset={sample.dataset}", "dashboards": "/admin/dashboards"}


def test_workspace_text_meets_wcag_aa_contrast(browser, towns, sample):
    b, herford = browser, towns.herford
    sign_in(b, towns, "staff-admin")
    failures = {}
    for kind, path in workspace_paths(sample).items():
        b.open(herford.http + path, kind)
        assert b.status() == 200, f"{path}: {b.status()}"
        failures.update({path: low} if (low := b.low_contrast()) else {})
    assert not failures, "text below WCAG AA contrast:\n" + "\n".join(f"{p}: {f}" for p, f in failures.items())


def test_workspace_pages_fit_a_phone_screen(browser, towns, sample):
    b, herford = browser, towns.herford
    sign_in(b, towns, "staff-admin")
    failures = {}
    for kind, path in workspace_paths(sample).items():
        failures.update({path: wide} if (wide := b.on_phone(herford.http + path, f"{kind}-phone")) else {})
    assert not failures, "\n".join(f"{path}: {'; '.join(problems)}" for path, problems in failures.items())


def test_the_new_dataset_form_is_used_with_the_keyboard(browser, towns):
    """Tab walks through every control of the new-dataset form in order."""
    b = browser
    sign_in(b, towns, "staff-admin", "/admin/datasets/new")
    form = b.one("form#description")
    wanted = [attr(el, "name") for el in b.all("input:not([type=hidden]), select, textarea, button", form)]
    b.driver.execute_script("document.activeElement && document.activeElement.blur(); window.focus();")
    reached: list[str] = []
    for _ in range(60):
        ActionChains(b.driver).send_keys(Keys.TAB).perform()
        active = b.driver.switch_to.active_element
        if b.driver.execute_script("return !!arguments[0].closest('form#description')", active):
            name = attr(active, "name") or attr(active, "type")
            if not reached or reached[-1] != name:
                reached.append(name)
        if len(reached) == len(wanted):
            break
    assert reached == [name or "submit" for name in wanted], f"Tab reaches {reached}, the form has {wanted}"


# ---- 8. dashboards built from forms ------------------------------------------------------------


def dashboard_charts(b: Browser) -> list[WebElement]:
    return b.all("section.tile[data-kind=chart] svg.chart")


def axis_marks(chart: WebElement) -> list[str]:
    """The time marks under a chart (the grid's labels centred on vertical lines)."""
    return [content(t) for t in chart.find_elements("css selector", "g.grid text[text-anchor=middle]")]


def test_an_editor_builds_a_dashboard_from_forms_and_visitors_see_its_charts_on_one_time_axis(browser, towns):
    """Step by step, no JSON: a dashboard (a bad value first: said beside its field, nothing
    stored), then two chart tiles of two datasets (a column that is not a number is refused
    beside the column field); the portal shows both charts over the same days."""
    b, herford = browser, towns.herford
    word = "Kachelprobe"
    counts, weather = unique("passanten-probe"), unique("wetter-probe")
    for dataset in (counts, weather):
        make_dataset(herford, dataset, word, policy={"visibility": "public"}, rows=6)
    board = unique("innenstadt")
    sign_in(b, towns, "staff-editor", "/admin/dashboards")

    form = b.one("form[action='/admin/dashboards']")
    b.type_into("input#id", board, form)
    b.type_into("input#title", "   ", form)
    b.submit(form, "dashboard-without-title")
    assert b.status() == 400, b.status()
    error = b.one("#title-error")
    assert "empty" in content(error) or "leer" in content(error), content(error)
    assert attr(b.one("input#title"), "aria-describedby") == "title-error"
    assert attr(b.one("input#id"), "value") == board, "what was typed stays"
    assert herford.get(f"/dashboards/{board}").status == 404, "nothing was stored"

    form = b.one("form[action='/admin/dashboards']")
    b.type_into("input#title", f"Innenstadt {word}", form)
    b.choose("select#range", "7d", form)
    b.choose("select#visibility", "public", form)
    b.submit(form, "dashboard-created")
    assert path_of(b.url) == f"/admin/dashboards/{board}", b.url

    for dataset in (counts, weather):
        form = b.one("form#add-tile")
        b.choose("select#kind", "chart", form)
        b.choose("select#source", f"dataset:{dataset}", form)
        b.type_into("input#column", "value", form)
        b.submit(form, f"tile-{dataset}")
        assert path_of(b.url) == f"/admin/dashboards/{board}", b.url
    form = b.one("form#add-tile")
    b.choose("select#kind", "latest", form)
    b.choose("select#source", f"dataset:{counts}", form)
    b.type_into("input#column", "station", form)
    b.submit(form, "tile-bad-column")
    assert b.status() == 400
    assert "value" in content(b.one("#column-error")), "the error names the columns that are numbers"
    assert len(b.all("#tiles ol > li")) == 2, "the refused tile was not added"

    # The portal, as a visitor: both charts, over the same week.
    b.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    b.open(herford.url(f"/dashboards/{board}"), "dashboard-public")
    assert b.status() == 200 and b.h1() == f"Innenstadt {word}"
    charts = dashboard_charts(b)
    assert len(charts) == 2, f"{len(charts)} charts"
    assert all(chart.find_elements("css selector", "polyline") for chart in charts), "each chart draws its rows"
    marks = [axis_marks(chart) for chart in charts]
    assert marks[0] and marks[0] == marks[1], f"the charts' time marks differ: {marks}"
    assert b.axe_violations() == [], "the dashboard has accessibility violations"
    page = herford.get(f"/dashboards/{board}", headers={"Accept": "text/html"})
    assert not html_problems(page.text, "de", herford), html_problems(page.text, "de", herford)
    # The builder itself is accessible too.
    sign_in(b, towns, "staff-editor", f"/admin/dashboards/{board}")
    assert b.axe_violations() == [], "the dashboard builder has accessibility violations"
    home = herford.get("/", headers={"Accept": "text/html"})
    assert f'href="/dashboards/{board}"' in home.text, "the portal's home lists the public dashboard"

    # Internal: only staff see it.
    clerk = Clerk(towns, "staff-editor")
    changed = clerk.post(f"/admin/dashboards/{board}", {"title": f"Innenstadt {word}", "range": "24h",
                                                          "visibility": "internal", "description": ""})
    assert changed.status == 303, changed
    assert '<option value="internal" selected' in clerk.get(f"/admin/dashboards/{board}").text
    assert herford.get(f"/dashboards/{board}", headers={"Accept": "text/html"}).status == 404
    assert clerk.get(f"/dashboards/{board}").status == 200
