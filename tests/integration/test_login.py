"""The workspace login: authorization code with PKCE at a real OpenID provider, then a
server-side session behind a cookie, against a real node.

One node ("Herford", the OpenID provider of tests/oidc configured for the tenant "herford")
serves the module. People sign in through the provider's own login form, driven by the
scripted browser of oidc.py (`browser_login`), or step by step where a test needs the
callback URL or the raw `Set-Cookie` of a response:

1. the full login, the authorization request the node makes, the cookies it sets;
2. CSRF protection of changes made with the session;
3. roles through the session (staff admin, editor, viewer, citizen, another municipality);
4. the state of the login: never issued, replayed, not bound to the browser's cookie;
5. `next` cannot be turned into an open redirect;
6. logout: the form's CSRF token, RP-initiated logout at the provider, the dead cookie;
7. a node without `[oidc]` has no login.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import Node, Response, free_port, http_request, pegel_spec
from oidc import Browser, b64url, jwt_header, jwt_payload

TENANT = "herford"
SESSION_COOKIE = "urbanmesh_session"
LOGIN_COOKIE = "urbanmesh_login"
SESSION_LIFETIME = 8 * 3600
LOGIN_LIFETIME = 600
CSV = "time,station,value,quality\n2026-03-02T06:00:00Z,Dalke,112.5,1\n2026-03-02T06:15:00Z,Dalke,113.0,\n"


@pytest.fixture(scope="module")
def herford(tmp_path_factory, oidc_provider) -> Node:
    node = Node(tmp_path_factory.mktemp("login") / "herford", name="Herford")
    node.use_oidc(oidc_provider, TENANT)
    node.start()
    yield node
    node.close()


# ---- helpers -----------------------------------------------------------------------------


def problem(result, status: int) -> dict:
    """Asserts that `result` (a node's answer) is an RFC 9457 problem with `status`."""
    assert result.status == status, f"expected {status}, got {result!r}"
    content_type = (result.headers.get("Content-Type") or "").split(";")[0].strip()
    assert content_type == "application/problem+json", f"expected a problem document: {result!r}"
    doc = json.loads(result.body)
    assert doc["status"] == status and doc.get("title") and "detail" in doc, doc
    return doc


def set_cookies(result) -> dict[str, str]:
    """The `Set-Cookie` headers of a response, by cookie name (the whole header value)."""
    return {value.split("=", 1)[0]: value for value in (result.headers.get_all("Set-Cookie") or [])}


def cookie_attributes(header: str) -> tuple[str, dict[str, str | None]]:
    """(value, {attribute name lower-cased: value or None}) of one `Set-Cookie` header."""
    first, *rest = [part.strip() for part in header.split(";")]
    value = first.split("=", 1)[1]
    attributes = {}
    for part in rest:
        name, _, attr = part.partition("=")
        attributes[name.strip().lower()] = attr.strip() if _ else None
    return value, attributes


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


def without_query(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def login(provider, node: Node, user: str, next_path: str = "/api/v1/me") -> Browser:
    """`user` signed in at `node` through the provider's form; the browser holds the session."""
    browser = provider.browser_login(node.url("/auth/login", {"next": next_path}), user)
    assert browser.response.url == node.http + next_path, (browser.response, browser.history)
    assert browser.cookies(node.http).get(SESSION_COOKIE), f"no session cookie for {user}: {browser.cookies()}"
    return browser


def to_callback(provider, node: Node, user: str, next_path: str = "/api/v1/me",
                browser: Browser | None = None) -> tuple[Browser, str]:
    """Runs a login up to the provider's redirect back to the node: returns the browser
    (holding the `urbanmesh_login` cookie) and the callback URL with code and state, not
    yet requested."""
    browser = browser or provider.browser()
    callback = node.http + "/auth/callback"
    result = browser.navigate(node.url("/auth/login", {"next": next_path}), user=user,
                              stop=lambda url: without_query(url) == callback)
    assert result.location and without_query(result.location) == callback, (result, browser.history)
    params = query_of(result.location)
    assert params.get("code") and params.get("state"), result.location
    return browser, result.location


def me(browser: Browser, node: Node) -> dict:
    result = browser.get(node.url("/api/v1/me"))
    assert result.status == 200, result
    return result.json()


def send_json(browser: Browser, node: Node, method: str, path: str, obj, csrf: str | None = None,
              headers: dict | None = None):
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if csrf is not None:
        all_headers["x-csrf-token"] = csrf
    return browser.request(method, node.url(path), json.dumps(obj).encode(), all_headers)


def logout(browser: Browser, node: Node, fields: dict[str, str] | None):
    body = urllib.parse.urlencode(fields or {}).encode()
    return browser.request("POST", node.url("/auth/logout"), body,
                           {"Content-Type": "application/x-www-form-urlencoded"})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_UNFOLLOWED = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def unfollowed(method: str, url: str, body: bytes | None, headers: dict) -> Response:
    """One request whose redirect is answered, not followed."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with _UNFOLLOWED.open(request, timeout=30) as response:
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.headers, error.read())


def with_cookie(node: Node, method: str, path: str, cookie: str, headers: dict | None = None, body=None):
    """A request carrying only the given `Cookie` header (no jar)."""
    return http_request(method, node.url(path), body, {"Cookie": cookie, **(headers or {})})


def internal_dataset(node: Node, dataset: str) -> None:
    spec = pegel_spec(dataset, title=f"Intern {dataset}", policy={"visibility": "internal"})
    node.create_dataset(spec)
    stored = node.post_rows(dataset, CSV, "text/csv")
    assert stored.status == 200, stored


def current_policy(node: Node, dataset: str) -> dict:
    result = node.get(f"/api/v1/datasets/{dataset}/policy", auth=True)
    assert result.status == 200, result
    return result.json()


# ---- 1. the login ----------------------------------------------------------------------------


def test_login_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(herford, oidc_provider):
    browser = oidc_provider.browser()
    result = browser.get(herford.url("/auth/login", {"next": "/api/v1/datasets"}))
    assert result.status == 303, result
    assert without_query(result.location) == oidc_provider.endpoint("authorization"), result.location
    params = query_of(result.location)
    assert params["client_id"] == "urbanmesh"
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == herford.http + "/auth/callback"
    assert set(params["scope"].split()) == {"openid", "profile"}, params
    assert params["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params["code_challenge"]), params  # base64url of SHA-256
    assert len(params["state"]) >= 16 and len(params["nonce"]) >= 16, params

    value, attributes = cookie_attributes(set_cookies(result)[LOGIN_COOKIE])
    assert value == params["state"], "the login cookie must bind the state to this browser"
    assert "httponly" in attributes and attributes.get("samesite", "").lower() == "lax", attributes
    assert attributes.get("path") == "/" and attributes.get("max-age") == str(LOGIN_LIFETIME), attributes
    assert "secure" not in attributes, f"Secure on a node served over http: {attributes}"

    # Every login gets its own state, nonce and PKCE challenge.
    again = query_of(browser.get(herford.url("/auth/login")).location)
    for key in ("state", "nonce", "code_challenge"):
        assert again[key] != params[key], key


def test_full_login_of_staff_admin_ends_at_next_with_a_session(herford, oidc_provider):
    browser = oidc_provider.browser_login(herford.url("/auth/login", {"next": "/api/v1/me"}), "staff-admin")
    page = browser.response
    assert page.url == herford.http + "/api/v1/me" and page.status == 200, (page, browser.history)
    # The way there: the node's login, the provider's authorization endpoint and form, the callback.
    assert browser.history[0].startswith(herford.http + "/auth/login")
    assert any(without_query(url) == oidc_provider.endpoint("authorization") for url in browser.history)
    assert any(url.startswith(oidc_provider.issuer + "/interaction/") for url in browser.history)
    assert any(without_query(url) == herford.http + "/auth/callback" for url in browser.history)

    who = page.json()
    assert who["kind"] == "person" and who["id"] == "staff-admin", who
    assert who["home"] is True and who["roles"] == ["admin"], who
    assert (who["staff"], who["editor"], who["admin"]) == (True, True, True), who
    assert re.fullmatch(r"[0-9a-f]{32,}", who["csrf"]), who

    # The session cookie: the node's own random id, not a token or cookie of the provider.
    (cookie,) = [c for c in browser.jar if c.name == SESSION_COOKIE]
    assert re.fullmatch(r"[0-9a-f]{64}", cookie.value), cookie.value
    assert cookie.path == "/" and not cookie.secure, cookie
    assert cookie.has_nonstandard_attr("HttpOnly"), cookie
    assert (cookie.get_nonstandard_attr("SameSite") or "").lower() == "lax", cookie
    assert cookie.expires is not None and abs(cookie.expires - (time.time() + SESSION_LIFETIME)) < 120, cookie
    assert cookie.value != who["csrf"]
    others = [c.value for c in browser.jar if c.name != SESSION_COOKIE]
    assert cookie.value not in others, "the session cookie repeats another cookie"
    assert all(cookie.value not in url for url in browser.history), "the session id travelled in a URL"
    # The login cookie is gone once the login is done.
    assert LOGIN_COOKIE not in browser.cookies(herford.http), browser.cookies()

    # The session works for further requests, and is the admin's: the audit log opens.
    assert me(browser, herford) == who
    audit = browser.get(herford.url("/api/v1/audit", {"limit": 1}))
    assert audit.status == 200, audit
    # Without the cookie the same client is nobody.
    assert herford.get("/api/v1/me").json()["kind"] == "anonymous"


def test_the_callback_sets_the_session_cookie_with_its_attributes(herford, oidc_provider):
    browser, callback = to_callback(oidc_provider, herford, "staff-viewer", next_path="/api/v1/me")
    result = browser.request("GET", callback)
    assert result.status == 303, result
    assert result.headers["Location"] == "/api/v1/me", result.headers
    cookies = set_cookies(result)
    value, attributes = cookie_attributes(cookies[SESSION_COOKIE])
    assert re.fullmatch(r"[0-9a-f]{64}", value), value
    assert "httponly" in attributes and attributes.get("samesite", "").lower() == "lax", attributes
    assert attributes.get("path") == "/" and attributes.get("max-age") == str(SESSION_LIFETIME), attributes
    assert "secure" not in attributes, attributes
    # The login cookie is cleared.
    cleared, cleared_attributes = cookie_attributes(cookies[LOGIN_COOKIE])
    assert cleared == "" and cleared_attributes.get("max-age") == "0", cookies[LOGIN_COOKIE]
    # The value is not the provider's code or state, nor any of its cookies.
    params = query_of(callback)
    assert value not in (params["code"], params["state"])
    assert value not in [c.value for c in browser.jar if c.name.startswith("op_")]
    who = with_cookie(herford, "GET", "/api/v1/me", f"{SESSION_COOKIE}={value}").json()
    assert who["kind"] == "person" and who["id"] == "staff-viewer" and who["roles"] == ["viewer"], who


def test_an_unknown_session_cookie_is_anonymous(herford):
    who = with_cookie(herford, "GET", "/api/v1/me", f"{SESSION_COOKIE}={'ab' * 32}")
    assert who.status == 200 and who.json()["kind"] == "anonymous", who
    assert "csrf" not in who.json(), who.json()


def test_the_provider_refusing_the_login_is_401(herford, oidc_provider):
    result = http_request("GET", herford.url("/auth/callback", {"error": "access_denied",
                                                                "error_description": "End-User aborted interaction"}))
    problem(result, 401)


# ---- 2. CSRF protection of the session --------------------------------------------------------


def test_changes_with_the_session_need_the_csrf_header(herford, oidc_provider):
    internal_dataset(herford, "csrf-policy")
    admin = login(oidc_provider, herford, "staff-admin")
    csrf = me(admin, herford)["csrf"]
    path = "/api/v1/datasets/csrf-policy/policy"

    problem(send_json(admin, herford, "PUT", path, {"visibility": "federation"}), 403)
    problem(send_json(admin, herford, "PUT", path, {"visibility": "federation"}, csrf="0" * len(csrf)), 403)
    problem(send_json(admin, herford, "PUT", path, {"visibility": "federation"}, csrf=""), 403)
    assert current_policy(herford, "csrf-policy")["visibility"] == "internal"

    # Another session's token does not do either.
    other = login(oidc_provider, herford, "staff-admin")
    other_csrf = me(other, herford)["csrf"]
    assert other_csrf != csrf
    problem(send_json(admin, herford, "PUT", path, {"visibility": "federation"}, csrf=other_csrf), 403)
    assert current_policy(herford, "csrf-policy")["visibility"] == "internal"

    accepted = send_json(admin, herford, "PUT", path, {"visibility": "federation"}, csrf=csrf)
    assert accepted.status == 200, accepted
    assert current_policy(herford, "csrf-policy")["visibility"] == "federation"
    # Reads need no token.
    read = admin.get(herford.url(path))
    assert read.status == 200 and read.json()["visibility"] == "federation", read


def test_an_editor_creates_a_dataset_with_the_session(herford, oidc_provider):
    editor = login(oidc_provider, herford, "staff-editor")
    who = me(editor, herford)
    assert (who["staff"], who["editor"], who["admin"]) == (True, True, False), who

    spec = pegel_spec("csrf-editor")
    del spec["policy"]  # setting a policy is for admins; new datasets are internal
    problem(send_json(editor, herford, "POST", "/api/v1/datasets", spec), 403)
    assert herford.get("/api/v1/datasets/csrf-editor", auth=True).status == 404

    created = send_json(editor, herford, "POST", "/api/v1/datasets", spec, csrf=who["csrf"])
    assert created.status == 201, created
    assert created.json()["id"] == "csrf-editor"
    entry = editor.get(herford.url("/api/v1/datasets/csrf-editor"))
    assert entry.status == 200 and entry.json()["title"] == spec["title"], entry
    assert current_policy(herford, "csrf-editor")["visibility"] == "internal"
    # An editor is no admin: the policy stays out of reach, CSRF token or not.
    problem(send_json(editor, herford, "PUT", "/api/v1/datasets/csrf-editor/policy", {"visibility": "internal"},
                      csrf=who["csrf"]), 403)


def test_a_bearer_token_takes_precedence_over_the_session(herford, oidc_provider):
    internal_dataset(herford, "bearer-first")
    viewer = login(oidc_provider, herford, "staff-viewer")
    viewer_csrf = me(viewer, herford)["csrf"]
    admin_token = oidc_provider.access_token("staff-admin")

    who = viewer.get(herford.url("/api/v1/me"), headers={"Authorization": f"Bearer {admin_token}"})
    assert who.status == 200 and who.json()["id"] == "staff-admin" and who.json()["admin"], who
    # The bearer's request is judged as the bearer's: no CSRF token needed, the admin may.
    accepted = send_json(viewer, herford, "PUT", "/api/v1/datasets/bearer-first/policy", {"visibility": "public"},
                         headers={"Authorization": f"Bearer {admin_token}"})
    assert accepted.status == 200, accepted
    # A refused token is refused, not replaced by the session.
    problem(viewer.get(herford.url("/api/v1/me"), headers={"Authorization": "Bearer not-a-token"}), 401)
    # The node's admin token as well.
    who = viewer.get(herford.url("/api/v1/me"), headers=herford.auth_headers())
    assert who.status == 200 and who.json()["kind"] != "person", who
    # And the session alone is still the viewer.
    assert me(viewer, herford)["id"] == "staff-viewer"
    assert me(viewer, herford)["csrf"] == viewer_csrf


def test_an_id_token_is_no_bearer_token(herford, oidc_provider):
    """RFC 9068: the node takes access tokens (`typ: at+jwt`) only. The provider's ID token
    carries the audience the node checks (the client id, since no other is configured), is
    signed by the same key and unexpired, and is still refused: 401 on REST and Flight."""
    import pyarrow.flight as fl

    tokens = oidc_provider.login("staff-admin")
    access, id_token = tokens["access_token"], tokens["id_token"]
    assert jwt_payload(id_token)["aud"] == "urbanmesh" == jwt_payload(access)["aud"]
    assert jwt_payload(id_token)["sub"] == "staff-admin" and "nonce" in jwt_payload(id_token)
    assert jwt_header(access)["typ"] == "at+jwt" and jwt_header(id_token).get("typ") != "at+jwt"

    accepted = herford.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"})
    assert accepted.status == 200 and accepted.json()["id"] == "staff-admin" and accepted.json()["admin"], accepted
    for path in ["/api/v1/me", "/api/v1/audit", "/api/v1/datasets", "/metrics"]:
        refused = herford.get(path, headers={"Authorization": f"Bearer {id_token}"})
        assert "not an access token" in problem(refused, 401)["detail"], (path, refused)
    client = herford.flight_client()
    options = fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {id_token}".encode())])
    with pytest.raises(fl.FlightUnauthenticatedError, match="not an access token"):
        list(client.list_flights(options=options))
    # A forged `typ` breaks the signature: the header is signed too.
    _header, payload, signature = id_token.split(".")
    forged_header = b64url(json.dumps({**jwt_header(id_token), "typ": "at+jwt"}).encode())
    forged = ".".join([forged_header, payload, signature])
    problem(herford.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401)


# ---- 3. roles through the session ---------------------------------------------------------------


def test_roles_through_the_session(herford, oidc_provider):
    internal_dataset(herford, "roles-internal")
    rows_path = "/api/v1/datasets/roles-internal/rows?format=json"

    viewer = login(oidc_provider, herford, "staff-viewer")
    who = me(viewer, herford)
    assert (who["home"], who["roles"], who["staff"], who["editor"], who["admin"]) == (
        True, ["viewer"], True, False, False), who
    entry = viewer.get(herford.url("/api/v1/datasets/roles-internal"))
    assert entry.status == 200 and entry.json()["id"] == "roles-internal", entry
    rows = viewer.get(herford.url(rows_path))
    assert rows.status == 200, rows
    assert [(r["station"], r["value"]) for r in rows.json()] == [("Dalke", 112.5), ("Dalke", 113.0)], rows.json()
    problem(send_json(viewer, herford, "PUT", "/api/v1/datasets/roles-internal/policy", {"visibility": "public"},
                      csrf=who["csrf"]), 403)
    problem(viewer.get(herford.url("/api/v1/audit")), 403)
    assert current_policy(herford, "roles-internal")["visibility"] == "internal"

    for user, expected in [("citizen", (True, [], False)), ("other-admin", (False, [], False))]:
        person = login(oidc_provider, herford, user)
        who = me(person, herford)
        assert who["kind"] == "person" and who["id"] == user, who
        assert (who["home"], who["roles"], who["staff"]) == expected, who
        assert not who["admin"] and not who["editor"], who
        for path in ("/api/v1/datasets/roles-internal", rows_path):
            problem(person.get(herford.url(path)), 404)
        problem(send_json(person, herford, "PUT", "/api/v1/datasets/roles-internal/policy",
                          {"visibility": "public"}, csrf=who["csrf"]), 403)
        problem(person.get(herford.url("/api/v1/audit")), 403)
    assert current_policy(herford, "roles-internal")["visibility"] == "internal"


# ---- 4. the login's state ------------------------------------------------------------------------


def test_a_state_never_issued_is_refused(herford, oidc_provider):
    state = "never-issued-state-0123456789"
    for cookie in (f"{LOGIN_COOKIE}={state}", ""):
        result = with_cookie(herford, "GET", "/auth/callback?" + urllib.parse.urlencode(
            {"code": "made-up-code", "state": state}), cookie)
        problem(result, 400)
        assert SESSION_COOKIE not in set_cookies(result), result.headers
    # A real code does not help an invented state.
    browser, callback = to_callback(oidc_provider, herford, "staff-admin")
    forged = callback.replace(query_of(callback)["state"], state)
    result = with_cookie(herford, "GET", forged.removeprefix(herford.http), f"{LOGIN_COOKIE}={state}")
    problem(result, 400)
    assert SESSION_COOKIE not in set_cookies(result), result.headers


def test_a_callback_replayed_is_refused(herford, oidc_provider):
    browser, callback = to_callback(oidc_provider, herford, "staff-admin")
    state = query_of(callback)["state"]
    first = browser.request("GET", callback)
    assert first.status == 303 and SESSION_COOKIE in set_cookies(first), first
    # Again from the same browser (its login cookie is cleared by now) ...
    again = browser.request("GET", callback)
    problem(again, 400)
    assert SESSION_COOKIE not in set_cookies(again), again.headers
    # ... and with the login cookie put back, as an attacker holding both would.
    replay = with_cookie(herford, "GET", callback.removeprefix(herford.http), f"{LOGIN_COOKIE}={state}")
    problem(replay, 400)
    assert SESSION_COOKIE not in set_cookies(replay), replay.headers
    # The first session is unharmed.
    assert me(browser, herford)["id"] == "staff-admin"


def test_a_callback_not_bound_to_the_browser_is_refused(herford, oidc_provider):
    # The victim's browser never started this login: it has no login cookie.
    _, callback = to_callback(oidc_provider, herford, "staff-admin")
    result = http_request("GET", callback)
    problem(result, 400)
    assert SESSION_COOKIE not in set_cookies(result), result.headers

    # The victim's browser started a login of its own: its cookie names another state
    # (login CSRF, the attacker's code planted in the victim's browser).
    victim, own_callback = to_callback(oidc_provider, herford, "citizen")
    _, attackers = to_callback(oidc_provider, herford, "staff-admin")
    assert LOGIN_COOKIE in victim.cookies(herford.http)
    result = victim.request("GET", attackers)
    problem(result, 400)
    assert SESSION_COOKIE not in set_cookies(result), result.headers
    assert me(victim, herford)["kind"] == "anonymous"
    # The victim's own login still completes, as the victim.
    own = victim.request("GET", own_callback)
    assert own.status == 303 and SESSION_COOKIE in set_cookies(own), own
    assert me(victim, herford)["id"] == "citizen"


# ---- 5. no open redirect --------------------------------------------------------------------------


@pytest.mark.parametrize("next_path", ["//evil.example/x", "https://evil.example/x", "/\\evil.example/x",
                                       "evil.example", "javascript:alert(1)"])
def test_next_cannot_leave_the_node(herford, oidc_provider, next_path):
    browser, callback = to_callback(oidc_provider, herford, "staff-viewer", next_path=next_path)
    result = browser.request("GET", callback)
    assert result.status == 303, result
    assert result.headers["Location"] == "/", result.headers["Location"]
    assert result.location == herford.http + "/"
    assert SESSION_COOKIE in set_cookies(result)


def test_a_local_next_is_kept(herford, oidc_provider):
    next_path = "/api/v1/datasets?limit=5"
    browser, callback = to_callback(oidc_provider, herford, "staff-viewer", next_path=next_path)
    result = browser.request("GET", callback)
    assert result.status == 303 and result.headers["Location"] == next_path, result


# ---- 6. logout -----------------------------------------------------------------------------------


def test_logout_needs_the_csrf_token_and_ends_both_sessions(herford, oidc_provider):
    browser = login(oidc_provider, herford, "staff-admin")
    csrf = me(browser, herford)["csrf"]
    session = browser.cookies(herford.http)[SESSION_COOKIE]

    problem(logout(browser, herford, {"csrf": "f" * len(csrf)}), 403)
    assert me(browser, herford)["id"] == "staff-admin"
    missing = logout(browser, herford, None)
    assert missing.status in (400, 403, 422), missing
    assert SESSION_COOKIE not in set_cookies(missing), missing.headers
    assert me(browser, herford)["id"] == "staff-admin"
    # A cross-site form post carries the cookie but not the token: the same refusal.
    problem(logout(browser, herford, {"csrf": ""}), 403)
    assert me(browser, herford)["id"] == "staff-admin"

    result = logout(browser, herford, {"csrf": csrf})
    assert result.status == 303, result
    value, attributes = cookie_attributes(set_cookies(result)[SESSION_COOKIE])
    assert value == "" and attributes.get("max-age") == "0", set_cookies(result)
    assert without_query(result.location) == oidc_provider.endpoint("end_session"), result.location
    params = query_of(result.location)
    assert params["client_id"] == "urbanmesh", params
    assert params["post_logout_redirect_uri"] == herford.http + "/", params
    hint = jwt_payload(params["id_token_hint"])
    assert hint["sub"] == "staff-admin" and hint["aud"] in ("urbanmesh", ["urbanmesh"]), hint
    assert hint["iss"] == oidc_provider.issuer, hint

    # The old cookie no longer authenticates, whoever presents it.
    assert SESSION_COOKIE not in browser.cookies(herford.http)
    dead = with_cookie(herford, "GET", "/api/v1/me", f"{SESSION_COOKIE}={session}")
    assert dead.status == 200 and dead.json()["kind"] == "anonymous" and "csrf" not in dead.json(), dead
    denied = with_cookie(herford, "GET", "/api/v1/audit", f"{SESSION_COOKIE}={session}")
    problem(denied, 401)
    put = with_cookie(herford, "PUT", "/api/v1/datasets/gibt-es-nicht/policy", f"{SESSION_COOKIE}={session}",
                      {"Content-Type": "application/json", "x-csrf-token": csrf}, b'{"visibility":"public"}')
    problem(put, 401)

    # The provider's logout completes (its confirmation form) and comes back to the node.
    back = browser.navigate(result.location)
    assert without_query(back.url) == herford.http + "/", (back, browser.history)
    # Signing in again needs the provider's form once more: a new session, a new CSRF token.
    again = login(oidc_provider, herford, "staff-admin")
    assert any(url.startswith(oidc_provider.issuer + "/interaction/") for url in again.history)
    assert again.cookies(herford.http)[SESSION_COOKIE] != session
    assert me(again, herford)["csrf"] != csrf


# ---- 7. a node without an OpenID provider ----------------------------------------------------------


def test_a_node_without_oidc_signs_its_administration_in_with_the_admin_token(node):
    """Without an OpenID provider (the demo, a node before its Keycloak), the workspace
    is reached with the node's admin token: a session like any other, CSRF included."""
    problem(node.get("/auth/callback?code=x&state=y"), 404)
    # A cookie that looks like a session is nobody there.
    who = with_cookie(node, "GET", "/api/v1/me", f"{SESSION_COOKIE}={'ab' * 32}")
    assert who.status == 200 and who.json()["kind"] == "anonymous", who

    form = http_request("GET", node.url("/auth/login", {"next": "/admin"}), None, {"Accept": "text/html"})
    assert form.status == 200 and 'action="/auth/token"' in form.text and 'name="token"' in form.text, form
    assert 'value="/admin"' in form.text

    def sign_in(token: str):
        body = urllib.parse.urlencode({"token": token, "next": "/admin"}).encode()
        return unfollowed("POST", node.url("/auth/token"), body, {"Content-Type": "application/x-www-form-urlencoded"})

    wrong = sign_in("0" * 64)
    assert wrong.status == 401 and SESSION_COOKIE not in set_cookies(wrong) and 'role="alert"' in wrong.text, wrong
    signed = sign_in(node.token)
    assert signed.status == 303 and signed.headers["Location"] == "/admin", signed
    session, attributes = cookie_attributes(set_cookies(signed)[SESSION_COOKIE])
    assert "httponly" in attributes and attributes.get("samesite") == "Lax", attributes
    cookie = f"{SESSION_COOKIE}={session}"
    workspace = with_cookie(node, "GET", "/admin", cookie, {"Accept": "text/html"})
    assert workspace.status == 200 and "Admin-Token" in workspace.text, workspace
    me_now = with_cookie(node, "GET", "/api/v1/me", cookie).json()
    assert me_now["kind"] == "admin" and me_now["admin"] is True and me_now["csrf"], me_now
    # Changes with the session need its CSRF token, as with a person's.
    spec = json.dumps(pegel_spec("per-sitzung")).encode()
    refused = with_cookie(node, "POST", "/api/v1/datasets", cookie, {"Content-Type": "application/json"}, spec)
    problem(refused, 403)
    created = with_cookie(node, "POST", "/api/v1/datasets", cookie,
                          {"Content-Type": "application/json", "x-csrf-token": me_now["csrf"]}, spec)
    assert created.status == 201, created
    # A session of the admin token lasts as long as the token: a new token ends it.
    node.terminate()
    (node.data_dir / "admin.token").write_text("cd" * 32)
    node.start()
    assert with_cookie(node, "GET", "/api/v1/me", cookie).json()["kind"] == "anonymous"
    signed = sign_in("cd" * 32)
    session, _ = cookie_attributes(set_cookies(signed)[SESSION_COOKIE])
    cookie = f"{SESSION_COOKIE}={session}"
    me_now = with_cookie(node, "GET", "/api/v1/me", cookie).json()
    assert me_now["kind"] == "admin", me_now
    # Signing out ends the session.
    out = unfollowed("POST", node.url("/auth/logout"), urllib.parse.urlencode({"csrf": me_now["csrf"]}).encode(),
                     {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    assert out.status == 303, out
    assert with_cookie(node, "GET", "/api/v1/me", cookie).json()["kind"] == "anonymous"


def test_with_a_provider_the_admin_token_signs_nobody_in(herford):
    body = urllib.parse.urlencode({"token": herford.token}).encode()
    result = http_request("POST", herford.url("/auth/token"), body, {"Content-Type": "application/x-www-form-urlencoded"})
    problem(result, 404)
    assert SESSION_COOKIE not in set_cookies(result), result.headers


# ---- 7. restarts ------------------------------------------------------------------------------------


def test_sessions_and_logins_under_way_survive_a_restart(node_factory, oidc_provider):
    """An update or a rescheduled container signs nobody out: sessions and logins begun
    before a restart are kept in the node's database (under a hash of the cookie's value)."""
    node = node_factory("Herford", start=False)
    node.use_oidc(oidc_provider, TENANT)
    node.http_listen = f"127.0.0.1:{free_port()}"
    node.start()
    signed_in = login(oidc_provider, node, "staff-admin")
    session = signed_in.cookies(node.http)[SESSION_COOKIE]
    halfway, callback = to_callback(oidc_provider, node, "staff-editor")
    node.restart()
    assert me(signed_in, node)["id"] == "staff-admin"
    finished = halfway.request("GET", callback)
    assert finished.status == 303 and SESSION_COOKIE in set_cookies(finished), finished
    assert me(halfway, node)["id"] == "staff-editor"
    # After a kill -9 too, once the database has written the session out.
    node.kill9()
    node.start()
    assert me(signed_in, node)["id"] == "staff-admin"
    # What is on disk cannot be replayed as a cookie.
    stored = b"".join(path.read_bytes() for path in (node.data_dir / "meta").rglob("*") if path.is_file())
    assert session.encode() not in stored
