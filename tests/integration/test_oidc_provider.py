"""The test OpenID Connect provider (tests/oidc/provider.mjs) and the helpers in oidc.py,
on their own: no urbanmesh binary is needed.

Tokens come through the real authorization code flow with PKCE; access-token signatures
are verified with the provider's JWKS (RS256, computed in oidc.py).
"""

from __future__ import annotations

import hashlib
import hmac
import http.cookies
import http.server
import json
import secrets
import threading
import urllib.parse

import pytest

from oidc import (
    ACCOUNTS,
    AUDIENCES,
    Authorization,
    LoginRefused,
    OidcError,
    TokenError,
    b64url,
    b64url_decode,
    decode_jwt,
    forge_alg_none,
    forge_hmac_with_public_key,
    jwt_header,
    jwt_payload,
    pkce_pair,
    public_key_pem,
    tamper_payload,
    verify_rs256,
)

pytestmark = pytest.mark.without_binary


@pytest.fixture(scope="module")
def jwks(oidc_provider) -> dict:
    return oidc_provider.jwks()


def test_discovery_and_jwks(oidc_provider, jwks):
    discovery = oidc_provider.discovery()
    assert oidc_provider.issuer.startswith("http://127.0.0.1:")
    assert discovery["issuer"] == oidc_provider.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"client_secret_basic", "client_secret_post"} <= set(discovery["token_endpoint_auth_methods_supported"])
    assert discovery["end_session_endpoint"] == oidc_provider.issuer + "/session/end"
    (key,) = jwks["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys(), "the JWKS must not publish the private key"


@pytest.mark.parametrize("user", sorted(ACCOUNTS))
def test_every_account_logs_in_through_the_code_flow(oidc_provider, jwks, user):
    tokens = oidc_provider.login(user)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["refresh_token"]

    access = tokens["access_token"]
    header = jwt_header(access)
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"] == jwks["keys"][0]["kid"]
    claims = verify_rs256(access, jwks)
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == "urbanmesh"
    assert claims["sub"] == user
    assert claims["client_id"] == "urbanmesh"
    assert claims["preferred_username"] == user
    assert claims["tenant"] == ACCOUNTS[user]["tenant"]
    assert claims["realm_access"] == {"roles": ACCOUNTS[user]["roles"]}
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    assert set(claims["scope"].split()) == {"openid", "profile"}

    id_token = verify_rs256(tokens["id_token"], jwks)
    assert id_token["iss"] == oidc_provider.issuer
    assert id_token["aud"] == "urbanmesh"
    assert id_token["sub"] == user
    assert id_token["tenant"] == ACCOUNTS[user]["tenant"]
    assert id_token["realm_access"] == {"roles": ACCOUNTS[user]["roles"]}
    assert id_token["preferred_username"] == user
    assert id_token["name"]


def test_other_app_tokens_are_for_another_audience(oidc_provider, jwks):
    claims = verify_rs256(oidc_provider.login("staff-admin", client_id="other-app")["access_token"], jwks)
    assert claims["aud"] == AUDIENCES["other-app"] == "other-app"
    assert claims["client_id"] == "other-app"
    assert claims["realm_access"] == {"roles": ["admin"]}


def test_a_client_gets_no_token_for_another_resource(oidc_provider):
    with pytest.raises(OidcError, match="invalid_target"):
        oidc_provider.authorize("staff-admin", client_id="urbanmesh", resource="urn:other-app")


def test_short_client_tokens_live_two_seconds(oidc_provider, jwks):
    tokens = oidc_provider.login("staff-viewer", client_id="urbanmesh-short")
    claims = verify_rs256(tokens["access_token"], jwks)
    assert claims["aud"] == "urbanmesh"
    assert 0 < claims["exp"] - claims["iat"] <= 2
    assert tokens["expires_in"] <= 2


@pytest.mark.parametrize("user", ["nobody", "Staff-Admin", ""])
def test_unknown_user_cannot_log_in(oidc_provider, user):
    with pytest.raises(LoginRefused, match="unknown user"):
        oidc_provider.login(user)


def test_token_request_without_pkce_verifier_is_refused(oidc_provider):
    authorization = oidc_provider.authorize("staff-admin")
    response = oidc_provider.exchange_code(authorization, code_verifier=None)
    assert response.status == 400, response
    assert response.json()["error"] == "invalid_grant"

    wrong, _ = pkce_pair()
    response = oidc_provider.exchange_code(oidc_provider.authorize("staff-admin"), code_verifier=wrong)
    assert response.status == 400, response
    assert response.json()["error"] == "invalid_grant"


def test_authorization_request_without_pkce_challenge_is_refused(oidc_provider):
    redirect_uri = "http://127.0.0.1:9/auth/callback"
    url = oidc_provider.authorization_url("urbanmesh", redirect_uri, scope="openid", state="s1")
    result = oidc_provider.browser().navigate(url, user="staff-admin", stop=lambda u: u.startswith(redirect_uri))
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(result.location).query))
    assert params["error"] == "invalid_request", params
    assert "PKCE" in params["error_description"]
    assert "code" not in params


def test_client_authentication(oidc_provider, jwks):
    # client_secret_post as well as client_secret_basic (the default of login()).
    tokens = oidc_provider.login("researcher", auth_method="client_secret_post")
    assert verify_rs256(tokens["access_token"], jwks)["sub"] == "researcher"

    response = oidc_provider.exchange_code(oidc_provider.authorize("researcher"), client_secret="wrong")
    assert response.status == 401, response
    assert response.json()["error"] == "invalid_client"

    # A code issued to urbanmesh is no good to another client, even with that one's secret.
    response = oidc_provider.exchange_code(oidc_provider.authorize("researcher"), client_id="other-app")
    assert response.status == 400, response
    assert response.json()["error"] == "invalid_grant"


def test_a_code_is_good_once(oidc_provider):
    authorization = oidc_provider.authorize("citizen")
    assert oidc_provider.exchange_code(authorization).status == 200
    response = oidc_provider.exchange_code(authorization)
    assert response.status == 400, response
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:9/auth/callback",
    "http://127.0.0.1:65000/auth/callback",
    "http://localhost:8080/auth/callback",
])
def test_any_loopback_port_is_a_registered_redirect_uri(oidc_provider, redirect_uri):
    authorization = oidc_provider.authorize("staff-admin", redirect_uri=redirect_uri)
    assert authorization.code
    assert authorization.params["iss"] == oidc_provider.issuer
    assert oidc_provider.exchange_code(authorization).status == 200


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:9/elsewhere",
    "http://example.org/auth/callback",
    "https://127.0.0.1:9/auth/callback",
])
def test_other_redirect_uris_are_refused(oidc_provider, redirect_uri):
    with pytest.raises(OidcError, match="invalid_redirect_uri"):
        oidc_provider.authorize("staff-admin", redirect_uri=redirect_uri)


def test_refresh_token_gives_a_new_access_token(oidc_provider, jwks):
    first = oidc_provider.login("staff-editor")
    second = oidc_provider.refresh(first["refresh_token"])
    claims = verify_rs256(second["access_token"], jwks)
    assert second["access_token"] != first["access_token"]
    assert (claims["sub"], claims["aud"], claims["tenant"]) == ("staff-editor", "urbanmesh", "herford")
    assert claims["realm_access"] == {"roles": ["editor"]}
    with pytest.raises(TokenError) as refused:
        oidc_provider.refresh(first["refresh_token"], client_id="other-app")
    assert refused.value.status == 400


def test_forged_tokens(oidc_provider, jwks):
    token = oidc_provider.access_token("citizen")
    claims = verify_rs256(token, jwks)

    none = forge_alg_none(token)
    assert none.endswith(".")
    assert jwt_header(none)["alg"] == "none"
    assert jwt_payload(none) == claims
    with pytest.raises(ValueError):
        verify_rs256(none, jwks)

    confused = forge_hmac_with_public_key(token, jwks)
    header, payload = decode_jwt(confused)
    assert header["alg"] == "HS256" and header["kid"] == jwt_header(token)["kid"]
    assert payload == claims
    secret = public_key_pem(jwks["keys"][0]).encode()
    assert secret.startswith(b"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
    signing_input, _, signature = confused.rpartition(".")
    assert b64url_decode(signature) == hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(ValueError):
        verify_rs256(confused, jwks)

    tampered = tamper_payload(token, realm_access={"roles": ["admin"]}, tenant="bielefeld", nbf=None)
    assert tampered.split(".")[0] == token.split(".")[0]
    assert tampered.split(".")[2] == token.split(".")[2]
    payload = jwt_payload(tampered)
    assert payload["realm_access"] == {"roles": ["admin"]} and payload["tenant"] == "bielefeld"
    assert "nbf" not in payload and payload["sub"] == "citizen"
    with pytest.raises(ValueError, match="bad signature"):
        verify_rs256(tampered, jwks)


# ---- browser_login against a minimal relying party ---------------------------------------


class RelyingParty:
    """A minimal confidential OIDC client on loopback, behaving as the node will:
    GET /auth/login?next=/ redirects to the provider; GET /auth/callback exchanges the code
    (PKCE, state bound to a cookie) and sets `rp_session`; GET / answers who is logged in
    (401 without a session); GET /auth/logout ends the session here and at the provider."""

    def __init__(self, provider):
        self.provider = provider
        self.pending: dict[str, tuple[str, str, str]] = {}
        self.sessions: dict[str, dict] = {}
        rp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, headers=(), body=b""):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def cookie(self, name):
                jar = http.cookies.SimpleCookie(self.headers.get("Cookie", ""))
                return jar[name].value if name in jar else None

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path == "/auth/login":
                    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
                    verifier, challenge = pkce_pair()
                    rp.pending[state] = (verifier, nonce, query.get("next", "/"))
                    location = rp.provider.authorization_url(
                        "urbanmesh", rp.url("/auth/callback"), scope="openid profile", state=state,
                        nonce=nonce, code_challenge=challenge, code_challenge_method="S256",
                    )
                    self.reply(302, [("Location", location), ("Set-Cookie", f"rp_state={state}; Path=/auth; HttpOnly")])
                elif url.path == "/auth/callback":
                    state = query.get("state")
                    if state is None or state != self.cookie("rp_state") or state not in rp.pending:
                        return self.reply(400, body=b"bad state")
                    if query.get("iss") != rp.provider.issuer:
                        return self.reply(400, body=b"bad iss")
                    verifier, nonce, target = rp.pending.pop(state)
                    answer = rp.provider.exchange_code(
                        Authorization(query["code"], verifier, rp.url("/auth/callback"), state, nonce)
                    )
                    if answer.status != 200:
                        return self.reply(502, body=answer.body)
                    tokens = answer.json()
                    if jwt_payload(tokens["id_token"])["nonce"] != nonce:
                        return self.reply(400, body=b"bad nonce")
                    session = b64url(secrets.token_bytes(16))
                    rp.sessions[session] = tokens
                    self.reply(303, [("Location", target), ("Set-Cookie", f"rp_session={session}; Path=/; HttpOnly")])
                elif url.path == "/":
                    tokens = rp.sessions.get(self.cookie("rp_session") or "")
                    if tokens is None:
                        return self.reply(401, [("Content-Type", "application/json")], b'{"user": null}')
                    claims = jwt_payload(tokens["access_token"])
                    body = json.dumps({"user": claims["sub"], "roles": claims["realm_access"]["roles"]}).encode()
                    self.reply(200, [("Content-Type", "application/json")], body)
                elif url.path == "/auth/logout":
                    tokens = rp.sessions.pop(self.cookie("rp_session") or "", None)
                    location = rp.provider.end_session_url(
                        id_token=tokens and tokens["id_token"], client_id="urbanmesh",
                        post_logout_redirect_uri=rp.url("/"),
                    )
                    self.reply(302, [("Location", location), ("Set-Cookie", "rp_session=; Path=/; Max-Age=0")])
                else:
                    self.reply(404)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def relying_party(oidc_provider):
    rp = RelyingParty(oidc_provider)
    yield rp
    rp.close()


def test_browser_login_at_a_relying_party(oidc_provider, relying_party):
    rp = relying_party
    browser = oidc_provider.browser_login(rp.url("/auth/login?next=/"), "staff-editor")
    assert browser.response.status == 200, browser.response
    assert browser.response.json() == {"user": "staff-editor", "roles": ["editor"]}
    assert browser.response.url == rp.url("/")
    assert "rp_session" in browser.cookies(rp.url("/"))
    assert any(url.startswith(rp.url("/auth/callback?code=")) for url in browser.history)
    assert any(url.endswith("/login") for url in browser.history), "the login form was used"
    # The opener holds the RP's cookies.
    assert browser.get(rp.url("/")).json()["user"] == "staff-editor"

    # A second login in the same browser rides on the provider's session: no form.
    before = len(browser.history)
    oidc_provider.browser_login(rp.url("/auth/login?next=/"), "staff-editor", browser=browser)
    assert browser.response.json()["user"] == "staff-editor"
    assert not any(url.endswith("/login") for url in browser.history[before:])

    # RP-initiated logout: the provider's confirmation, back to the RP (loopback, any port).
    final = browser.navigate(rp.url("/auth/logout"))
    assert final.url == rp.url("/") and final.status == 401, final
    assert any("/session/end/confirm" in url for url in browser.history)

    # The provider's session is gone: the next login shows the form again.
    before = len(browser.history)
    oidc_provider.browser_login(rp.url("/auth/login?next=/"), "researcher", browser=browser)
    assert browser.response.json() == {"user": "researcher", "roles": ["researcher"]}
    assert any(url.endswith("/login") for url in browser.history[before:])


def test_browser_login_of_an_unknown_user_is_refused(oidc_provider, relying_party):
    with pytest.raises(LoginRefused):
        oidc_provider.browser_login(relying_party.url("/auth/login?next=/"), "mallory")
    assert not relying_party.sessions
