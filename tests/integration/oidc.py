"""A real OpenID Connect provider for the tests, and a scripted browser for it.

``OidcProvider`` runs ``node tests/oidc/provider.mjs`` (the npm package ``oidc-provider``,
installed by ``npm ci --prefix tests/oidc``) on a loopback port. Tokens come through the
real authorization code flow with PKCE: ``/auth`` -> the provider's login form -> the
redirect to ``redirect_uri`` with the code -> ``/token``. ``browser_login`` drives the same
flow for a relying party (a node's ``/auth/login``) with a cookie jar.

The JWT helpers at the end decode, verify (RS256, standard library only) and forge
tokens for negative tests. Standard library only; no pytest in here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html.parser
import http.cookiejar
import json
import os
import secrets
import selectors
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
PROVIDER_DIR = REPO / "tests" / "oidc"
PROVIDER_SCRIPT = PROVIDER_DIR / "provider.mjs"

STARTUP_DEADLINE = 30.0
STOP_DEADLINE = 10.0
LOG_TAIL_BYTES = 20_000

# The accounts and clients provider.mjs configures.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "staff-admin": {"tenant": "herford", "roles": ["admin"]},
    "staff-editor": {"tenant": "herford", "roles": ["editor"]},
    "staff-viewer": {"tenant": "herford", "roles": ["viewer"]},
    "researcher": {"tenant": "herford", "roles": ["researcher"]},
    "citizen": {"tenant": "herford", "roles": []},
    "other-admin": {"tenant": "bielefeld", "roles": ["admin"]},
}
CLIENT_SECRETS = {
    "urbanmesh": "urbanmesh-secret",
    "urbanmesh-short": "urbanmesh-secret",
    "other-app": "other-secret",
}
# The audience of each client's access tokens.
AUDIENCES = {"urbanmesh": "urbanmesh", "urbanmesh-short": "urbanmesh", "other-app": "other-app"}
# Port 9 (discard): the redirect carrying the code is captured, never followed.
DEFAULT_REDIRECT_URI = "http://127.0.0.1:9/auth/callback"
DEFAULT_SCOPE = "openid profile"


class OidcError(Exception):
    """The provider refused a step of a flow (an error page, an error redirect, a bad status)."""


class LoginRefused(OidcError):
    """The provider's login form did not accept the user."""


class TokenError(OidcError):
    """The token endpoint answered with an error."""

    def __init__(self, status: int, body: dict | str):
        self.status = status
        self.body = body
        super().__init__(f"token endpoint answered {status}: {body}")


# ---- HTTP with a cookie jar, redirects handled by hand ------------------------------------


@dataclass
class HttpResult:
    status: int
    headers: Any
    body: bytes
    url: str

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def location(self) -> str | None:
        location = self.headers.get("Location")
        return urllib.parse.urljoin(self.url, location) if location else None

    def __repr__(self) -> str:
        return f"<HttpResult {self.status} {self.url} {self.content_type} {self.text[:300]!r}>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx comes back as the answer; Browser decides what to follow


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]
    id: str | None = None


class _FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._current = Form(attrs.get("action", ""), (attrs.get("method") or "get").upper(), {}, attrs.get("id"))
            self.forms.append(self._current)
        elif self._current is not None and tag == "input" and attrs.get("name"):
            if attrs.get("type", "text").lower() in ("submit", "button", "image", "reset"):
                return
            if attrs.get("type", "").lower() in ("checkbox", "radio") and "checked" not in attrs:
                return
            self._current.fields[attrs["name"]] = attrs.get("value", "")
        elif self._current is not None and tag == "textarea" and attrs.get("name"):
            self._textarea = attrs["name"]
            self._current.fields[self._textarea] = ""

    def handle_data(self, data):
        if self._current is not None and self._textarea is not None:
            self._current.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None
        elif tag == "textarea":
            self._textarea = None


def parse_forms(page: str, base_url: str) -> list[Form]:
    """The forms of an HTML page, their actions resolved against `base_url`."""
    parser = _FormParser()
    parser.feed(page)
    for form in parser.forms:
        form.action = urllib.parse.urljoin(base_url, form.action or base_url)
    return parser.forms


class Browser:
    """A cookie jar and an opener that follows redirects by hand, like a browser would.

    ``navigate`` follows redirects and, on the provider's pages (``provider_origin``),
    fills in the login form, confirms consent and logout forms. ``response`` is the last
    page reached; ``history`` every URL requested. The jar holds the cookies of every
    origin visited (cookies do not tell ports apart: the provider's are named ``op_*``).
    """

    def __init__(self, provider_origin: str | None = None, timeout: float = 30.0):
        self.provider_origin = provider_origin
        self.timeout = timeout
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # loopback never goes through a proxy
            urllib.request.HTTPCookieProcessor(self.jar),
            _NoRedirect(),
        )
        self.response: HttpResult | None = None
        self.history: list[str] = []

    # ---- single requests ------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResult:
        """One request with the jar's cookies; a redirect is returned, not followed."""
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        self.history.append(url)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return HttpResult(response.status, response.headers, response.read(), url)
        except urllib.error.HTTPError as error:
            with error:
                return HttpResult(error.code, error.headers, error.read(), url)

    def get(self, url: str, headers: dict[str, str] | None = None) -> HttpResult:
        return self.request("GET", url, headers=headers)

    def cookies(self, url: str | None = None) -> dict[str, str]:
        """The jar's cookies (those a request to `url` would send, when given)."""
        if url is None:
            return {cookie.name: cookie.value for cookie in self.jar}
        probe = urllib.request.Request(url)
        self.jar.add_cookie_header(probe)
        header = probe.get_header("Cookie") or ""
        return dict(part.split("=", 1) for part in header.split("; ") if "=" in part)

    # ---- navigation -----------------------------------------------------------------

    def navigate(
        self,
        url: str,
        user: str | None = None,
        password: str = "secret",
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        stop: Callable[[str], bool] | None = None,
        max_steps: int = 30,
    ) -> HttpResult:
        """Requests `url` and follows redirects until a page that is not a redirect.

        On the provider's pages the login form is filled in with `user` and `password`
        (LoginRefused when the form comes back), a consent or logout form is submitted; an
        error page of the provider raises OidcError. A redirect to a URL for which
        `stop(url)` is true is not followed: the result is that redirect (its `location`).
        Pages of other origins (the relying party) are returned as they are, whatever the
        status.
        """
        logged_in = False
        submitted: set[str] = set()
        for _ in range(max_steps):
            result = self.request(method, url, body, headers)
            self.response = result
            if 300 <= result.status < 400 and result.location:
                target = result.location
                if stop is not None and stop(target):
                    return result
                if result.status not in (307, 308):
                    method, body, headers = "GET", None, None
                url = target
                continue
            if self.provider_origin is None or _origin(url) != self.provider_origin:
                return result
            # A page of the provider.
            forms = parse_forms(result.text, url) if "html" in result.content_type else []
            login = next((f for f in forms if "login" in f.fields), None)
            if login is not None:
                if logged_in:
                    raise LoginRefused(f"the provider refused the login of {user!r}: {_page_text(result)}")
                if user is None:
                    raise OidcError(f"the provider asks for a login at {url} but no user was given")
                fields = dict(login.fields, login=user, password=password)
                method, url, body, headers = self._submit(login, fields)
                logged_in = True
                continue
            confirm = next((f for f in forms if f.fields.get("prompt") == "consent" or "xsrf" in f.fields), None)
            if confirm is not None and confirm.action not in submitted:
                submitted.add(confirm.action)
                method, url, body, headers = self._submit(confirm, dict(confirm.fields))
                continue
            if result.status >= 400:
                raise OidcError(f"the provider answered {result.status} at {url}: {_page_text(result)}")
            return result
        raise OidcError(f"more than {max_steps} steps, last at {url}; history: {self.history[-10:]}")

    @staticmethod
    def _submit(form: Form, fields: dict[str, str]):
        encoded = urllib.parse.urlencode(fields)
        if form.method == "POST":
            return "POST", form.action, encoded.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
        return "GET", form.action + ("&" if "?" in form.action else "?") + encoded, None, None


def _page_text(result: HttpResult, limit: int = 500) -> str:
    """The text of an HTML page, tags stripped (for error messages)."""

    class _Text(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data):
            if data.strip():
                self.parts.append(data.strip())

    parser = _Text()
    parser.feed(result.text)
    return " ".join(parser.parts)[:limit]


# ---- PKCE and client authentication --------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    verifier = b64url(secrets.token_bytes(48))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def basic_auth(client_id: str, client_secret: str) -> str:
    """The Authorization header value for client_secret_basic (RFC 6749 section 2.3.1)."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


@dataclass
class Authorization:
    """What came back to the redirect_uri, and what the token request needs with it."""

    code: str | None
    code_verifier: str
    redirect_uri: str
    state: str
    nonce: str
    params: dict[str, str] = field(default_factory=dict)


# ---- the provider -----------------------------------------------------------------------


class OidcProvider:
    """``node tests/oidc/provider.mjs`` on a loopback port; see the module docstring."""

    def __init__(self, log_path: Path | str | None = None, port: int = 0, node: str = "node"):
        self.log_path = Path(log_path) if log_path else None
        self.port = port
        self.node = node
        self.proc: subprocess.Popen | None = None
        self.issuer: str | None = None
        self._log_file = None
        self._discovery: dict | None = None

    # ---- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = STARTUP_DEADLINE) -> "OidcProvider":
        assert self.proc is None or self.proc.poll() is not None, "provider already running"
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError(
                f"{PROVIDER_DIR}/node_modules lacks oidc-provider: run `npm ci --prefix tests/oidc`"
            )
        if self.log_path is None:
            self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"oidc-provider-{os.getpid()}.log"
        self._log_file = open(self.log_path, "ab")
        args = [self.node, str(PROVIDER_SCRIPT)] + (["--port", str(self.port)] if self.port else [])
        # stdin is a pipe the provider watches: closing it (or our death) stops the provider.
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log_file, cwd=str(REPO)
        )
        try:
            line = self._read_line(timeout)
            self.issuer = json.loads(line)["issuer"]
        except BaseException:
            self.close()
            raise
        return self

    def _read_line(self, timeout: float) -> str:
        """The provider's first stdout line, read before `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        buffer = b""
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"the OIDC provider printed no ready line within {timeout:.0f}s:\n{self.log_tail()}"
                    )
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(timeout=STOP_DEADLINE)
                    raise RuntimeError(
                        f"the OIDC provider exited with {self.proc.returncode} during start-up "
                        f"(stdout {buffer!r}):\n{self.log_tail()}"
                    )
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, limit: int = LOG_TAIL_BYTES) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode("utf-8", errors="replace")
        except (OSError, AttributeError):
            return "(no log)"

    def __enter__(self) -> "OidcProvider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- metadata --------------------------------------------------------------------

    def _get_json(self, url: str) -> Any:
        result = Browser().get(url)
        if result.status != 200:
            raise OidcError(f"GET {url}: {result!r}")
        return result.json()

    def discovery(self) -> dict:
        """The provider's /.well-known/openid-configuration."""
        assert self.issuer, "provider not started"
        if self._discovery is None:
            self._discovery = self._get_json(self.issuer + "/.well-known/openid-configuration")
        return self._discovery

    def endpoint(self, name: str) -> str:
        """An endpoint from the discovery document, e.g. "token" -> .../token."""
        return self.discovery()[f"{name}_endpoint"]

    def jwks(self) -> dict:
        return self._get_json(self.discovery()["jwks_uri"])

    # ---- the authorization code flow ---------------------------------------------------

    def browser(self) -> Browser:
        """A browser with an empty cookie jar that knows which pages are the provider's."""
        assert self.issuer, "provider not started"
        return Browser(provider_origin=_origin(self.issuer))

    def authorization_url(self, client_id: str, redirect_uri: str, **params: str) -> str:
        query = {"client_id": client_id, "response_type": "code", "redirect_uri": redirect_uri, **params}
        return self.endpoint("authorization") + "?" + urllib.parse.urlencode(query)

    def authorize(
        self,
        user: str,
        client_id: str = "urbanmesh",
        password: str = "secret",
        scope: str = DEFAULT_SCOPE,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        browser: Browser | None = None,
        **extra: str,
    ) -> Authorization:
        """Runs /auth through the login form for `user` (a fresh browser unless given) and
        captures the redirect to `redirect_uri`; returns the code with its PKCE verifier.
        Raises LoginRefused, or OidcError for an error page or an error redirect."""
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        url = self.authorization_url(
            client_id, redirect_uri, scope=scope, state=state, nonce=nonce,
            code_challenge=challenge, code_challenge_method="S256", **extra,
        )
        browser = browser or self.browser()
        result = browser.navigate(url, user=user, password=password, stop=lambda u: _same_endpoint(u, redirect_uri))
        if result.location is None or not _same_endpoint(result.location, redirect_uri):
            raise OidcError(f"the flow did not come back to {redirect_uri}: {result!r}")
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(result.location).query))
        if params.get("state") != state:
            raise OidcError(f"state mismatch in {result.location}")
        if "iss" in params and params["iss"] != self.issuer:
            raise OidcError(f"iss mismatch in {result.location}")
        if "error" in params:
            raise OidcError(f"authorization error {params['error']}: {params.get('error_description')}")
        return Authorization(params.get("code"), verifier, redirect_uri, state, nonce, params)

    def token_request(
        self,
        form: dict[str, str],
        client_id: str = "urbanmesh",
        client_secret: str | None = None,
        auth_method: str = "client_secret_basic",
    ) -> HttpResult:
        """POST /token with `form` and the client's authentication; the raw answer."""
        client_secret = CLIENT_SECRETS.get(client_id, "") if client_secret is None else client_secret
        form = dict(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if auth_method == "client_secret_basic":
            headers["Authorization"] = basic_auth(client_id, client_secret)
        elif auth_method == "client_secret_post":
            form.update(client_id=client_id, client_secret=client_secret)
        else:
            raise ValueError(f"unknown client authentication {auth_method!r}")
        body = urllib.parse.urlencode(form).encode()
        return Browser().request("POST", self.endpoint("token"), body, headers)

    def exchange_code(
        self,
        authorization: Authorization,
        client_id: str = "urbanmesh",
        client_secret: str | None = None,
        code_verifier: str | None = ...,  # type: ignore[assignment]
        auth_method: str = "client_secret_basic",
    ) -> HttpResult:
        """The token request for an authorization code; `code_verifier=None` leaves the
        verifier out, a string replaces it. Returns the raw answer."""
        form = {"grant_type": "authorization_code", "code": authorization.code, "redirect_uri": authorization.redirect_uri}
        verifier = authorization.code_verifier if code_verifier is ... else code_verifier
        if verifier is not None:
            form["code_verifier"] = verifier
        return self.token_request(form, client_id, client_secret, auth_method)

    def login(
        self,
        user: str,
        client_id: str = "urbanmesh",
        client_secret: str | None = None,
        password: str = "secret",
        scope: str = DEFAULT_SCOPE,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        auth_method: str = "client_secret_basic",
    ) -> dict:
        """The token response (access_token, id_token, refresh_token, expires_in, ...) for
        `user` through the authorization code flow with PKCE. Raises LoginRefused,
        OidcError or TokenError."""
        authorization = self.authorize(user, client_id, password=password, scope=scope, redirect_uri=redirect_uri)
        result = self.exchange_code(authorization, client_id, client_secret, auth_method=auth_method)
        tokens = _token_answer(result)
        id_token = tokens.get("id_token")
        if id_token and jwt_payload(id_token).get("nonce") != authorization.nonce:
            raise OidcError("the ID token's nonce is not the one sent")
        return tokens

    def refresh(
        self, refresh_token: str, client_id: str = "urbanmesh", client_secret: str | None = None
    ) -> dict:
        """A new token response for a refresh token."""
        result = self.token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, client_id, client_secret
        )
        return _token_answer(result)

    def access_token(self, user: str, client_id: str = "urbanmesh") -> str:
        return self.login(user, client_id)["access_token"]

    def end_session_url(self, id_token: str | None = None, post_logout_redirect_uri: str | None = None,
                        client_id: str | None = None, state: str | None = None) -> str:
        """The RP-initiated logout URL (``post_logout_redirect_uri`` on loopback, any port)."""
        query = {k: v for k, v in {"id_token_hint": id_token, "post_logout_redirect_uri": post_logout_redirect_uri,
                                  "client_id": client_id, "state": state}.items() if v is not None}
        return self.endpoint("end_session") + ("?" + urllib.parse.urlencode(query) if query else "")

    # ---- a relying party's login ------------------------------------------------------

    def browser_login(
        self, start_url: str, user: str, password: str = "secret", browser: Browser | None = None
    ) -> Browser:
        """Logs `user` in at a relying party the way a browser does.

        Requests `start_url` (e.g. a node's ``/auth/login?next=/``), which must redirect to
        this provider's /auth (code flow; the RP's redirect_uri on loopback, any port),
        fills in the provider's login form, follows the redirect back to the RP's callback
        and the RP's redirects after it, until a page that is not a redirect. Returns the
        browser: ``.response`` is that last page (the RP's, whatever its status),
        ``.opener`` / ``.jar`` hold the cookies (the RP's session cookie among them),
        ``.get``/``.request`` send further requests with them, ``.history`` lists the URLs.
        A second call with the same `browser` reuses the provider's session (no form).
        """
        browser = browser or self.browser()
        browser.navigate(start_url, user=user, password=password)
        return browser


def _same_endpoint(url: str, redirect_uri: str) -> bool:
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(redirect_uri)
    return (a.scheme, a.netloc, a.path) == (b.scheme, b.netloc, b.path)


def _token_answer(result: HttpResult) -> dict:
    try:
        body = result.json()
    except ValueError:
        body = result.text
    if result.status != 200 or not isinstance(body, dict) or "access_token" not in body:
        raise TokenError(result.status, body)
    return body


# ---- JWTs: decode, verify, forge ------------------------------------------------------------


def _json_b64(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def decode_jwt(token: str) -> tuple[dict, dict]:
    """(header, payload) of a compact JWS, unverified."""
    header, payload, _signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def jwt_header(token: str) -> dict:
    return decode_jwt(token)[0]


def jwt_payload(token: str) -> dict:
    return decode_jwt(token)[1]


def _jwk_for(token: str, jwks: dict) -> dict:
    kid = jwt_header(token).get("kid")
    keys = [k for k in jwks["keys"] if k.get("kty") == "RSA"]
    for key in keys:
        if kid is None or key.get("kid") == kid:
            return key
    raise ValueError(f"no RSA key with kid {kid!r} in the JWKS")


# DER prefix of a SHA-256 DigestInfo (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def verify_rs256(token: str, jwks: dict) -> dict:
    """The payload of an RS256 JWS whose signature a key of `jwks` verifies (RSASSA-PKCS1-v1_5
    with SHA-256, computed here); ValueError otherwise. Checks no claims."""
    header, payload = decode_jwt(token)
    if header.get("alg") != "RS256":
        raise ValueError(f"alg is {header.get('alg')!r}, not RS256")
    key = _jwk_for(token, jwks)
    n = int.from_bytes(b64url_decode(key["n"]), "big")
    e = int.from_bytes(b64url_decode(key["e"]), "big")
    size = (n.bit_length() + 7) // 8
    signing_input, _, signature = token.rpartition(".")
    sig = b64url_decode(signature)
    if len(sig) != size:
        raise ValueError("signature length does not match the key")
    em = pow(int.from_bytes(sig, "big"), e, n).to_bytes(size, "big")
    digest = _SHA256_DIGEST_INFO + hashlib.sha256(signing_input.encode()).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    if not hmac.compare_digest(em, expected):
        raise ValueError("bad signature")
    return payload


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_uint(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")  # a leading 0 keeps it positive
    return der(0x02, raw)


def public_key_pem(jwk: dict) -> str:
    """The RSA public key of `jwk` as PEM SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"), as
    `openssl rsa -pubout` writes it (64-column lines, final newline)."""
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    rsa_public_key = der(0x30, _der_uint(n) + _der_uint(e))
    algorithm = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = der(0x30, algorithm + der(0x03, b"\x00" + rsa_public_key))
    body = base64.b64encode(spki).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def forge_alg_none(token: str) -> str:
    """The same claims with header alg "none" and an empty signature."""
    header, payload = decode_jwt(token)
    header = {**header, "alg": "none"}
    header.pop("kid", None)
    return f"{_json_b64(header)}.{_json_b64(payload)}."


def forge_hmac_with_public_key(token: str, jwks: dict) -> str:
    """The same claims signed HS256 with the PEM of the provider's public key as the HMAC
    secret (the RS256/HS256 algorithm-confusion attack)."""
    header, payload = decode_jwt(token)
    secret = public_key_pem(_jwk_for(token, jwks)).encode()
    header = {**header, "alg": "HS256"}
    signing_input = f"{_json_b64(header)}.{_json_b64(payload)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def tamper_payload(token: str, **claims: Any) -> str:
    """The token with `claims` set in its payload (None removes a claim) and the original
    header and signature, which no longer match."""
    header_b64, _payload_b64, signature = token.split(".")
    payload = jwt_payload(token)
    for name, value in claims.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return f"{header_b64}.{_json_b64(payload)}.{signature}"
