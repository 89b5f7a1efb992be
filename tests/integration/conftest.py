"""Shared fixtures for the `urbanmesh` integration tests.

Every test talks to a real node binary (``URBANMESH_BIN``, default
``target/debug/urbanmesh``) started on port 0 in a temporary directory. HTTP goes
through the standard library only; Arrow Flight through ``pyarrow.flight``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable

import pytest

from oidc import OidcProvider

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "urbanmesh"
STARTUP_DEADLINE = 30.0
STOP_DEADLINE = 30.0
LOG_TAIL_BYTES = 20_000


def binary() -> Path:
    return Path(os.environ.get("URBANMESH_BIN", str(DEFAULT_BIN)))


def free_port() -> int:
    """A loopback port nothing listens on now (for a node or a server that needs a fixed one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float, what: str, interval: float = 0.02):
    """Polls `condition` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# A plain opener: loopback requests must never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def problem(self) -> dict:
        """The RFC 9457 problem document; asserts that the response is one."""
        assert self.content_type == "application/problem+json", (
            f"expected application/problem+json, got {self.content_type!r}: {self.text[:500]}"
        )
        doc = self.json()
        for key in ("title", "status", "detail"):
            assert key in doc, f"problem document lacks {key!r}: {doc}"
        assert doc["status"] == self.status, doc
        return doc

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.content_type} {self.text[:300]!r}>"


def http_request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Response:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.headers, error.read())


def multipart(field: str, filename: str, content: bytes, content_type: str = "application/octet-stream"):
    """A multipart/form-data body with one file field; returns (body, content type)."""
    boundary = "----urbanmesh-test-" + os.urandom(8).hex()
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + content + tail, f"multipart/form-data; boundary={boundary}"


PEGEL_SCHEMA = {
    "fields": [
        {"name": "time", "type": "timestamp[ms, UTC]"},
        {"name": "station", "type": "utf8"},
        {"name": "value", "type": "float64", "unit": "cm"},
        {"name": "quality", "type": "int64", "nullable": True},
    ]
}


def pegel_spec(dataset_id: str = "pegel-guetersloh", **overrides) -> dict:
    spec = {
        "id": dataset_id,
        "title": "Pegelstände Gütersloh",
        "description": "Wasserstände der Dalke und Lutter, 15-Minuten-Werte",
        "schema": json.loads(json.dumps(PEGEL_SCHEMA)),
        "time_column": "time",
        "series_key": "station",
        # Readable by everyone, as the tests of reading expect; new datasets are otherwise internal.
        "policy": {"visibility": "public"},
    }
    spec.update(overrides)
    return spec


_LIVE_NODES: list["Node"] = []


class Node:
    """One `urbanmesh` node in its own directory.

    ``base`` holds the data directory (``base/data``) and the node's log
    (``base/node.log``, appended across restarts).
    """

    _counter = 0

    def __init__(self, base: Path, name: str = "Gütersloh", ars: str | None = None):
        Node._counter += 1
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.base / "data"
        # Where HTTP listens; a fixed port keeps the node's address (and its OpenID
        # callback) the same across restarts.
        self.http_listen = "127.0.0.1:0"
        self.log_path = self.base / "node.log"
        self.name = name
        self.ars = ars
        self.proc: subprocess.Popen | None = None
        self.addresses: dict | None = None
        self._log_file = None
        self._flight_clients: list = []
        self.starts = 0
        # Extra environment for this node's processes, e.g. {"RUST_LOG": "debug"}.
        self.env: dict[str, str] = {}
        _LIVE_NODES.append(self)

    # ---- lifecycle -------------------------------------------------------------------

    def run_cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(binary()), *args], capture_output=True, text=True, timeout=timeout, env=self._env()
        )

    def init(self, check: bool = True) -> subprocess.CompletedProcess:
        args = ["init", "--data-dir", str(self.data_dir), "--name", self.name]
        if self.ars:
            args += ["--ars", self.ars]
        result = self.run_cli(*args)
        if check:
            assert result.returncode == 0, f"init failed ({result.returncode}): {result.stderr}"
        return result

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "config.toml").exists()

    def set_config(self, key: str, value: Any) -> None:
        """Rewrites `key = ...` in config.toml (the node must be stopped)."""
        path = self.data_dir / "config.toml"
        lines = path.read_text().splitlines()
        rendered = json.dumps(value) if not isinstance(value, str) else json.dumps(value)
        for i, line in enumerate(lines):
            if line.split("=")[0].strip() == key:
                lines[i] = f"{key} = {rendered}"
                break
        else:
            raise AssertionError(f"config.toml has no `{key}`:\n" + "\n".join(lines))
        path.write_text("\n".join(lines) + "\n")

    def add_config(self, section: str, key: str, value: Any) -> None:
        """Sets `key = value` in `[section]` of config.toml, adding the key (and the
        section) when missing; `value` is rendered as JSON, which TOML reads for strings,
        numbers, booleans and lists of them (the node must be stopped)."""
        path = self.data_dir / "config.toml"
        lines = path.read_text().splitlines()
        rendered = f"{key} = {json.dumps(value)}"
        header = f"[{section}]"
        if header not in [line.strip() for line in lines]:
            lines += ["", header, rendered]
        else:
            start = [line.strip() for line in lines].index(header) + 1
            end = next((i for i in range(start, len(lines)) if re.fullmatch(r"\[[\w.-]+\]", lines[i].strip())),
                       len(lines))
            # A multi-line value (like `listen = [ ... ]`) is replaced as a whole.
            for i in range(start, end):
                if lines[i].split("=")[0].strip() == key:
                    stop = i + 1
                    if lines[i].rstrip().endswith("["):
                        while stop < end and lines[stop].strip() != "]":
                            stop += 1
                        stop += 1
                    lines[i:stop] = [rendered]
                    break
            else:
                lines.insert(start, rendered)
        path.write_text("\n".join(lines) + "\n")

    def use_oidc(self, provider: OidcProvider, tenant: str = "herford") -> None:
        """Initialises the node if needed and configures `[oidc]` for the test provider's client
        `urbanmesh`: the provider's people of `tenant` are this municipality's (the node must be
        stopped)."""
        if not self.initialised:
            self.init()
        for key, value in {"issuer": provider.issuer, "client_id": "urbanmesh", "client_secret": "urbanmesh-secret",
                           "tenant_claim": "tenant", "tenant": tenant}.items():
            self.add_config("oidc", key, value)

    def _env(self) -> dict:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        # Hundreds of test nodes: no ballast each, and a floor for the machine's disk, not
        # a production one (test_disk.py sets its own).
        env.setdefault("URBANMESH_STORAGE__BALLAST_BYTES", "0")
        env.setdefault("URBANMESH_STORAGE__MIN_FREE_BYTES", str(4 << 20))
        env.update(self.env)
        return env

    @property
    def addresses_path(self) -> Path:
        return self.data_dir / "addresses.json"

    def start(self, timeout: float = STARTUP_DEADLINE) -> "Node":
        assert self.proc is None or self.proc.poll() is not None, "node already running"
        if not self.initialised:
            self.init()
        stale = self._file_identity(self.addresses_path)
        self.starts += 1
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')} =====\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            [
                str(binary()),
                "run",
                "--data-dir",
                str(self.data_dir),
                "--http",
                self.http_listen,
                "--flight",
                "127.0.0.1:0",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            env=self._env(),
        )

        def written():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"node exited with {self.proc.returncode} during start-up:\n{self.log_tail()}"
                )
            identity = self._file_identity(self.addresses_path)
            if identity is None or identity == stale:
                return None
            try:
                return json.loads(self.addresses_path.read_text())
            except (OSError, ValueError):
                return None  # atomic writes make this unlikely; keep polling

        try:
            self.addresses = wait_until(written, timeout, "addresses.json")
            wait_until(lambda: self._ready(), timeout, "/readyz to answer 200")
        except BaseException:
            self.kill9()
            raise
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"node exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.get("/readyz", timeout=5).status == 200
        except OSError:
            return False

    @staticmethod
    def _file_identity(path: Path):
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _close_clients(self) -> None:
        for client in self._flight_clients:
            try:
                client.close()
            except Exception:
                pass
        self._flight_clients.clear()

    def _finish(self) -> None:
        self._close_clients()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = STOP_DEADLINE) -> int:
        """Sends `sig` and waits for the exit; returns the exit code."""
        assert self.proc is not None
        self._close_clients()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"node did not stop within {timeout}s of signal {sig}")
        self._finish()
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._finish()

    def restart(self, timeout: float = STARTUP_DEADLINE) -> "Node":
        if self.running:
            code = self.terminate()
            assert code == 0, f"node exited with {code} on SIGTERM:\n{self.log_tail()}"
        return self.start(timeout)

    def close(self) -> None:
        self.kill9()
        if self in _LIVE_NODES:
            _LIVE_NODES.remove(self)

    def log_tail(self, limit: int = LOG_TAIL_BYTES) -> str:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return "(no log)"
        return data[-limit:].decode("utf-8", errors="replace")

    # ---- endpoints ----------------------------------------------------------------------

    @property
    def http(self) -> str:
        assert self.addresses, "node not started"
        return self.addresses["http"]

    @property
    def flight(self) -> str:
        assert self.addresses, "node not started"
        return self.addresses["flight"]

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def flight_client(self):
        import pyarrow.flight as flight

        client = flight.FlightClient(self.flight)
        self._flight_clients.append(client)
        return client

    def flight_write_options(self, token: str | None = None):
        import pyarrow.flight as flight

        token = self.token if token is None else token
        return flight.FlightCallOptions(headers=[(b"authorization", b"Bearer " + token.encode())])

    # ---- HTTP helpers -----------------------------------------------------------------

    def url(self, path: str, query: dict | None = None) -> str:
        url = self.http + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = False,
        query: dict | None = None,
        timeout: float = 30.0,
    ) -> Response:
        all_headers = dict(headers or {})
        if auth:
            all_headers.update(self.auth_headers())
        return http_request(method, self.url(path, query), body, all_headers, timeout)

    def get(self, path: str, query: dict | None = None, **kwargs) -> Response:
        return self.request("GET", path, query=query, **kwargs)

    def post_json(self, path: str, obj: Any, auth: bool = True, **kwargs) -> Response:
        body = json.dumps(obj).encode()
        return self.request(
            "POST", path, body, {"Content-Type": "application/json"}, auth=auth, **kwargs
        )

    def post_rows(
        self, dataset: str, body: bytes | str, content_type: str, auth: bool = True, **kwargs
    ) -> Response:
        if isinstance(body, str):
            body = body.encode()
        return self.request(
            "POST", f"/api/v1/datasets/{dataset}/rows", body, {"Content-Type": content_type}, auth=auth, **kwargs
        )

    def upload(self, dataset: str, filename: str, content: bytes, content_type: str = "application/octet-stream",
               field: str = "file", auth: bool = True) -> Response:
        body, ctype = multipart(field, filename, content, content_type)
        return self.request(
            "POST", f"/api/v1/datasets/{dataset}/upload", body, {"Content-Type": ctype}, auth=auth
        )

    def delete(self, path: str, auth: bool = True) -> Response:
        return self.request("DELETE", path, auth=auth)

    def create_dataset(self, spec: dict | str | None = None, **overrides) -> dict:
        if spec is None or isinstance(spec, str):
            spec = pegel_spec(spec or "pegel-guetersloh", **overrides)
        response = self.post_json("/api/v1/datasets", spec)
        assert response.status == 201, f"creating {spec.get('id')!r}: {response!r}"
        return response.json()

    def dataset(self, dataset: str) -> dict:
        response = self.get(f"/api/v1/datasets/{dataset}")
        assert response.status == 200, response
        return response.json()

    def rows_count(self, dataset: str) -> int:
        return int(self.dataset(dataset)["rows"])

    def read_rows(self, dataset: str, fmt: str = "json", **query) -> Response:
        query = {k: v for k, v in query.items() if v is not None}
        query["format"] = fmt
        return self.get(f"/api/v1/datasets/{dataset}/rows", query=query)

    # ---- federation ---------------------------------------------------------------------

    @property
    def p2p(self) -> list[str]:
        """The libp2p listen addresses (each ending in `/p2p/<peer id>`)."""
        assert self.addresses, "node not started"
        return list(self.addresses["p2p"])

    @property
    def peer_id(self) -> str:
        """The node's libp2p PeerId (stable across restarts: it derives from node.key)."""
        if getattr(self, "_peer_id", None) is None:
            self._peer_id = self.p2p[0].rsplit("/p2p/", 1)[1]
        return self._peer_id

    def federation_status(self) -> dict:
        response = self.get("/api/v1/federation")
        assert response.status == 200, f"{self.name}: GET /api/v1/federation: {response!r}"
        return response.json()

    def invite(self, name: str | None = None, ttl: str | None = None, federation: str | None = None) -> str:
        """A fresh invitation through the API (founding a federation if in none)."""
        body = {k: v for k, v in {"name": name, "ttl": ttl, "federation": federation}.items() if v is not None}
        response = self.post_json("/api/v1/federation/invitations", body)
        assert response.status == 201, f"{self.name}: POST /api/v1/federation/invitations {body}: {response!r}"
        return response.json()["invitation"]

    def join(self, invitation: str, **kwargs) -> Response:
        return self.post_json("/api/v1/federation/join", {"invitation": invitation}, **kwargs)

    def search(self, q: str | None = None, scope: str | None = "federation", **params) -> dict:
        query = {k: v for k, v in {"q": q, "scope": scope, **params}.items() if v is not None}
        response = self.get("/api/v1/search", query=query)
        assert response.status == 200, f"{self.name}: GET /api/v1/search {query}: {response!r}"
        return response.json()


# ---- fixtures -------------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "without_binary: the test needs no urbanmesh binary (e.g. only the OIDC provider)"
    )


@pytest.fixture(scope="session", autouse=True)
def _require_binary(request):
    if all(item.get_closest_marker("without_binary") for item in request.session.items):
        return
    path = binary()
    if not path.exists():
        pytest.exit(
            f"urbanmesh binary not found at {path}; build it (`cargo build`) or set URBANMESH_BIN",
            returncode=2,
        )


@pytest.fixture
def node_factory(tmp_path):
    """Makes nodes (not started) in fresh sub-directories of the test's tmp dir."""
    made: list[Node] = []

    def make(name: str = "Gütersloh", ars: str | None = None, start: bool = True) -> Node:
        node = Node(tmp_path / f"node{len(made)}", name=name, ars=ars)
        made.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in made:
        node.close()


@pytest.fixture
def node(node_factory) -> Node:
    """A started node, killed at teardown."""
    return node_factory()


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory):
    """One started node for a whole module, for tests that only add their own datasets."""
    node = Node(tmp_path_factory.mktemp("shared-node"))
    node.start()
    yield node
    node.close()


@pytest.fixture(autouse=True)
def _close_stray_nodes():
    """Nodes a test made by hand are killed after it, like the fixtures' nodes."""
    before = list(_LIVE_NODES)
    yield
    for node in [n for n in _LIVE_NODES if n not in before]:
        node.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _LIVE_NODES:
        for node in _LIVE_NODES:
            report.sections.append((f"urbanmesh log {node.log_path}", node.log_tail()))
    if report.failed and "mqtt" in sys.modules:
        for broker in sys.modules["mqtt"].LIVE_BROKERS:
            report.sections.append((f"mosquitto log {broker.log_path}", broker.log_tail()))


# ---- federations -----------------------------------------------------------------------

TOWNS = ["Gütersloh", "Bielefeld", "Herford", "Detmold", "Bad Salzuflen"]
# Set-up wait for a federation to form or heal (every member admitted and connected everywhere).
CONVERGE_DEADLINE = 30.0


def town(index: int) -> str:
    """The name of a federation's index-th node: the five towns, then "Stadt 6", "Stadt 7" …"""
    return TOWNS[index] if index < len(TOWNS) else f"Stadt {index + 1}"


def hit_ids(results: dict) -> list[str]:
    return [hit["id"] for hit in results["hits"]]


def find_hit(results: dict, dataset_id: str) -> dict | None:
    return next((hit for hit in results["hits"] if hit["id"] == dataset_id), None)


class Federation:
    """Real nodes on loopback forming one federation, and what they should agree on.

    ``nodes`` are the members expected to be admitted, in the order they joined (the
    founder first), ``removed`` those removed or gone, ``sponsors`` maps a member's
    PeerId to its sponsor's. Tests that change the membership go through ``admit``,
    ``remove`` and ``leave`` so that ``wait_converged`` knows what to expect.
    """

    def __init__(self, base: Path, name: str = "OWL"):
        self.base = Path(base)
        self.name = name
        self.nodes: list[Node] = []
        self.removed: list[Node] = []
        self.sponsors: dict[str, str] = {}
        self.founder_peer: str | None = None
        self.made: list[Node] = []

    # ---- forming ------------------------------------------------------------------------

    @classmethod
    def form(
        cls,
        base: Path,
        size: int,
        chained: bool = False,
        name: str = "OWL",
        via: str = "api",
        inviters: list[int] | None = None,
        names: list[str] | None = None,
        timeout: float = CONVERGE_DEADLINE,
    ) -> "Federation":
        """Starts `size` nodes (named `names`, by default Gütersloh, Bielefeld, …) and forms
        a federation: node 0 founds it and invites every other node; with `chained` node k
        is invited by node k-1 (admissions chain back to the founder), with `inviters` node
        k by node `inviters[k]`. Waits until every member sees every other admitted and
        connected."""
        if inviters is None:
            inviters = [max(k - 1, 0) if chained else 0 for k in range(size)]
        assert len(inviters) == size and all(inviters[k] < k for k in range(1, size)), inviters
        federation = cls(base, name)
        nodes = federation.new_nodes(size, names)
        federation.found(nodes[0])
        for k, node in enumerate(nodes[1:], start=1):
            federation.admit(node, inviter=nodes[inviters[k]], via=via)
        federation.wait_converged(timeout)
        return federation

    def new_node(self, name: str | None = None, start: bool = True) -> Node:
        """A node in this federation's directory (not a member until `admit`)."""
        index = len(self.made)
        node = Node(self.base / f"node{index}", name=name or town(index))
        self.made.append(node)
        if start:
            node.start()
        return node

    def new_nodes(self, count: int, names: list[str] | None = None) -> list[Node]:
        """`count` nodes (named `names`, or after the towns), started in parallel."""
        assert names is None or len(names) == count, names
        nodes = [self.new_node(name=names[k] if names else None, start=False) for k in range(count)]
        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(lambda n: n.start(), nodes))
        return nodes

    def found(self, node: Node) -> None:
        """`node` founds the federation (its first invitation does; that one is not used)."""
        assert not self.nodes, "already founded"
        node.invite(name="founding", federation=self.name)
        status = node.federation_status()
        assert status.get("federation", {}).get("name") == self.name, f"{node.name} did not found: {status}"
        assert status["federation"]["founder"] == node.peer_id, status
        self.nodes.append(node)
        self.founder_peer = node.peer_id
        self.sponsors[node.peer_id] = node.peer_id

    def invitation(self, inviter: Node | None = None, invitee: str | None = None, ttl: str | None = None,
                   via: str = "api") -> str:
        """A fresh invitation from `inviter` (the founder by default): through the API, or
        with `via="cli"` through `urbanmesh invite`."""
        inviter = inviter or self.founder
        if via == "api":
            return inviter.invite(name=invitee, ttl=ttl, federation=self.name)
        args = ["invite", "--data-dir", str(inviter.data_dir), "--federation", self.name]
        args += ["--name", invitee] if invitee else []
        args += ["--ttl", ttl] if ttl else []
        result = inviter.run_cli(*args)
        assert result.returncode == 0, f"urbanmesh invite ({result.returncode}): {result.stderr}"
        lines = result.stdout.splitlines()
        assert len(lines) == 1 and lines[0].startswith("urbanmesh-invitation:"), (
            f"urbanmesh invite must print one invitation line, printed: {result.stdout!r}"
        )
        return lines[0]

    def admit(self, node: Node, inviter: Node | None = None, via: str = "api") -> None:
        """`node` (running) joins with an invitation from `inviter` (the founder by
        default), through the API or with `via="cli"` through `urbanmesh invite/join`."""
        inviter = inviter or self.founder
        invitation = self.invitation(inviter, invitee=node.name, via=via)
        if via == "api":
            response = node.join(invitation)
            assert response.status == 200, f"{node.name} joining by {inviter.name}'s invitation: {response!r}"
            status = response.json()
            assert status["me"] == node.peer_id, status
            assert status.get("federation", {}).get("name") == self.name, status
            assert node.peer_id in {m["peer"] for m in status["members"] if m["status"] == "admitted"}, status
        else:
            result = node.run_cli("join", "--data-dir", str(node.data_dir), invitation)
            assert result.returncode == 0, f"urbanmesh join ({result.returncode}): {result.stderr}"
            match = re.fullmatch(r'joined the federation "(.*)" \((\d+) members\)', result.stdout.strip())
            assert match and match.group(1) == self.name, f"urbanmesh join printed {result.stdout!r}"
            assert int(match.group(2)) >= len(self.nodes) + 1, result.stdout
        self.expect_admitted(node, inviter)

    def expect_admitted(self, node: Node, sponsor: Node) -> None:
        """Records that `node` is (to be) a member sponsored by `sponsor`."""
        self.nodes.append(node)
        self.sponsors[node.peer_id] = sponsor.peer_id
        if node in self.removed:
            self.removed.remove(node)

    def remove(self, node: Node, by: Node) -> Response:
        """`by` removes `node` (itself: leaves); on 204 `node` is expected to be removed."""
        response = by.delete(f"/api/v1/federation/members/{node.peer_id}")
        if response.status == 204:
            self.nodes.remove(node)
            self.removed.append(node)
        return response

    def leave(self, node: Node) -> Response:
        return self.remove(node, by=node)

    # ---- expectations -------------------------------------------------------------------

    @property
    def founder(self) -> Node:
        founder = next((n for n in self.nodes if n.peer_id == self.founder_peer), None)
        assert founder is not None, "the founder is no longer a member"
        return founder

    def node(self, name: str) -> Node:
        return next(n for n in self.made if n.name == name)

    @property
    def running(self) -> list[Node]:
        return [n for n in self.nodes if n.running]

    def others(self, node: Node) -> list[Node]:
        """Every running member but `node`."""
        return [n for n in self.running if n is not node]

    def wait_converged(self, timeout: float = CONVERGE_DEADLINE, connected: bool = True) -> None:
        """Polls GET /api/v1/federation on every running member until each names the same
        federation and founder, lists exactly the expected members as admitted (with their
        sponsors) and the removed ones as removed, and — with `connected` — is connected
        to every other running member."""
        expected = {n.peer_id for n in self.nodes}
        removed = {n.peer_id for n in self.removed}
        up = {n.peer_id for n in self.running}
        last: dict[str, dict] = {}

        def agrees(node: Node) -> bool:
            status = node.federation_status()
            last[node.name] = status
            federation = status.get("federation")
            if not federation or federation["name"] != self.name or federation["founder"] != self.founder_peer:
                return False
            members = {m["peer"]: m for m in status["members"]}
            admitted = {p for p, m in members.items() if m["status"] == "admitted"}
            if admitted != expected or any(members[p]["status"] != "removed" for p in removed & members.keys()):
                return False
            if not removed <= members.keys():
                return False
            if any(members[p]["sponsor"] != self.sponsors[p] for p in expected):
                return False
            return not connected or all(members[p]["connected"] for p in up)

        def converged() -> bool:
            statuses = [agrees(node) for node in self.running]
            ids = {s.get("federation", {}).get("id") for s in last.values()}
            return all(statuses) and len(ids) == 1

        try:
            wait_until(converged, timeout, "the federation to converge", interval=0.02)
        except TimeoutError:
            names = {n.peer_id: n.name for n in self.made}
            views = {
                viewer: [
                    (names.get(m["peer"], m["peer"]), m["status"], "connected" if m["connected"] else "-",
                     "sponsor " + names.get(m["sponsor"], m["sponsor"]))
                    for m in status["members"]
                ] + [status.get("federation")]
                for viewer, status in last.items()
            }
            raise AssertionError(
                f"the federation did not converge within {timeout:.0f}s; expected admitted "
                f"{[n.name for n in self.nodes]}, removed {[n.name for n in self.removed]}; views: "
                + json.dumps(views, ensure_ascii=False, indent=1)
            ) from None

    # ---- federated search ---------------------------------------------------------------

    def search_everywhere(self, q: str | None = None, nodes: list[Node] | None = None, **params) -> dict[str, dict]:
        """`scope=federation` results of every running member (or `nodes`), by node name."""
        return {node.name: node.search(q, **params) for node in (nodes if nodes is not None else self.running)}

    def wait_everywhere(
        self,
        condition,
        what: str,
        timeout: float,
        nodes: list[Node] | None = None,
        since: float | None = None,
        **params,
    ) -> dict[str, float]:
        """Polls the federated search (`params`) on `nodes` (every running member by
        default) until `condition(results)` holds on each. Returns, per node name, the
        seconds from `since` (a `time.monotonic()` value; default now) to the first search
        that satisfied it; fails naming every latency unless all are within `timeout`."""
        since = time.monotonic() if since is None else since
        pending = list(nodes if nodes is not None else self.running)
        latencies: dict[str, float] = {}
        last: dict[str, dict] = {}

        def report() -> str:
            return f"latencies: {format_latencies(latencies) or 'none'}; not yet on {[n.name for n in pending]}"

        while pending:
            for node in list(pending):
                results = node.search(**params)
                if condition(results):
                    latencies[node.name] = time.monotonic() - since
                    pending.remove(node)
                else:
                    last[node.name] = results
            if pending and time.monotonic() - since > timeout:
                laggards = {
                    n.name: {"total": last[n.name]["total"], "hits (id, origin, origin http, description)": [
                        (h["id"], h.get("origin", {}).get("name"), h.get("origin", {}).get("http"), h.get("description"))
                        for h in last[n.name]["hits"]
                    ]}
                    for n in pending
                }
                raise AssertionError(
                    f"{what}: not within {timeout:.1f} s; {report()}; last results there: "
                    + json.dumps(laggards, ensure_ascii=False)
                )
            if pending:
                time.sleep(0.005)
        late = {name: s for name, s in latencies.items() if s > timeout}
        assert not late, f"{what}: slower than {timeout:.1f} s; {report()}"
        return latencies

    def close(self) -> None:
        for node in self.made:
            node.close()


def format_latencies(latencies: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in latencies.items())


@pytest.fixture
def federation_factory(tmp_path):
    """Forms federations of real nodes (see `Federation.form`); closed at teardown."""
    made: list[Federation] = []

    def make(size: int, **options) -> Federation:
        # Nodes of a federation that fails to form are closed by `_close_stray_nodes`.
        federation = Federation.form(tmp_path / f"federation{len(made)}", size, **options)
        made.append(federation)
        return federation

    yield make
    for federation in made:
        federation.close()


@pytest.fixture(scope="module")
def owl(tmp_path_factory):
    """Five towns in one federation, formed in a chain (Bielefeld invited by Gütersloh,
    Herford by Bielefeld, …), one per test module, for tests that add datasets (and views
    or outsiders) but keep the membership as it is."""
    federation = Federation.form(tmp_path_factory.mktemp("owl"), 5, chained=True, name="OWL")
    yield federation
    federation.close()


# ---- OpenID Connect -------------------------------------------------------------------


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> OidcProvider:
    """A real OpenID Connect provider (tests/oidc/provider.mjs, npm `oidc-provider`) on a
    loopback port, one for the whole session; see tests/integration/oidc.py."""
    provider = OidcProvider(tmp_path_factory.mktemp("oidc") / "provider.log")
    provider.start()
    yield provider
    provider.close()


# ---- connectors: an MQTT broker and HTTP APIs to pull (tests/integration/mqtt.py, pegelonline.py) ----


@pytest.fixture
def mosquitto_factory(tmp_path):
    """Starts Debian's mosquitto brokers (see `mqtt.Mosquitto`: `username`/`password`, `tls`)
    in the test's tmp dir; stopped at teardown."""
    from mqtt import Mosquitto

    made = []

    def make(**options):
        broker = Mosquitto(tmp_path / f"mosquitto{len(made)}", **options)
        made.append(broker)
        return broker.start()

    yield make
    for broker in made:
        broker.close()


@pytest.fixture
def mosquitto(mosquitto_factory):
    """A started anonymous mosquitto on a loopback port (`url` = mqtt://127.0.0.1:PORT)."""
    return mosquitto_factory()


@pytest.fixture
def pegelonline():
    """PEGELONLINE's REST API v2 with two stations on a loopback port (`pegelonline.Pegelonline`)."""
    from pegelonline import Pegelonline

    server = Pegelonline()
    yield server
    server.close()


@pytest.fixture
def json_feed():
    """A generic JSON API with `{start}` in its URL (`pegelonline.JsonFeed`)."""
    from pegelonline import JsonFeed

    server = JsonFeed()
    yield server
    server.close()


# ---- headless Chromium (tests/integration/browser.py) ------------------------------------------


@pytest.fixture(scope="module")
def artifacts(request) -> Path:
    """The module's screenshot directory, target/test-artifacts/<module without test_>/
    (test_portal -> portal/), emptied of the last run's screenshots."""
    from browser import artifacts_dir

    return artifacts_dir(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))


@pytest.fixture(scope="module")
def chrome(artifacts):
    """One headless Chromium for the module."""
    from browser import make_driver

    driver = make_driver(artifacts)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chrome, artifacts, request):
    """The module's Chromium, without cookies from earlier tests (so German again, and
    signed out), screenshots named after the test."""
    from browser import Browser

    chrome.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chrome.get_log("browser")  # drop earlier console messages
    return Browser(chrome, request.node.name, artifacts)


@pytest.fixture
def nojs_browser(artifacts, request):
    """A Chromium of its own with JavaScript switched off."""
    from browser import Browser, make_driver

    driver = make_driver(artifacts, javascript=False, log_name="chromedriver-nojs")
    yield Browser(driver, request.node.name, artifacts)
    driver.quit()


def by_key(rows: Iterable[dict], *keys: str) -> list[dict]:
    return sorted(rows, key=lambda r: tuple(r[k] for k in keys))


# ---- reading, refusals, the audit log and DCAT: helpers shared by several test files ---------


def parse_time(value) -> dt.datetime:
    """A time as the API writes it (RFC 3339 with `Z` or an offset, up to nanoseconds), or a
    datetime as pyarrow returns it, as an aware datetime in UTC."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc)
    value = value.replace("Z", "+00:00")
    if "." in value:  # fromisoformat takes at most six fractional digits
        head, rest = value.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    return dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)


def federated_ids(node: Node, origin: str, headers: dict | None = None, q: str | None = None) -> set[str]:
    """The ids of `origin`'s entries in `node`'s federated search (as the caller `headers` say)."""
    query = {k: v for k, v in {"scope": "federation", "per_page": 100, "q": q}.items() if v is not None}
    response = node.get("/api/v1/search", query=query, headers=headers)
    assert response.status == 200, response
    return {hit["id"] for hit in response.json()["hits"] if (hit.get("origin") or {}).get("name") == origin}


def flight_outcome(call):
    """(result, None) or (None, the Flight error)."""
    import pyarrow as pa

    try:
        return call(), None
    except pa.ArrowException as error:
        return None, error


def flight_message(error: Exception) -> str:
    """The server's message of a Flight error, without gRPC's debug context."""
    text = str(error)
    match = re.search(r"with message: (.*?)(?:\. gRPC client debug context|\. Client context|$)", text, re.S)
    return match.group(1) if match else text


def assert_like_absent(hidden: Response, absent: Response, hidden_id: str, absent_id: str, what: str) -> None:
    """A refused dataset (or view) is answered exactly like an absent one: same status, same
    problem with the id substituted."""
    assert absent.status == 404, f"{what}: the absent `{absent_id}` answered {absent!r}"
    assert hidden.status == absent.status, f"{what}: hidden `{hidden_id}` answered {hidden!r}, absent {absent!r}"
    hidden_doc, absent_doc = hidden.problem(), absent.problem()
    assert json.loads(json.dumps(hidden_doc).replace(hidden_id, absent_id)) == absent_doc, (
        f"{what}: hidden {hidden_doc} differs from absent {absent_doc}")


def assert_flight_like_absent(hidden: Exception | None, absent: Exception | None, hidden_id: str, absent_id: str,
                              what: str) -> None:
    import pyarrow as pa

    assert isinstance(absent, pa.ArrowKeyError), f"{what}: absent `{absent_id}`: {absent!r}"
    assert type(hidden) is type(absent), f"{what}: hidden `{hidden_id}` raised {hidden!r}, absent {absent!r}"
    assert flight_message(hidden).replace(hidden_id, absent_id) == flight_message(absent), (
        f"{what}: {flight_message(hidden)!r} vs {flight_message(absent)!r}")


def audit_records(node: Node, **query) -> list[dict]:
    """`node`'s access log (read with its admin token), filtered by `query`."""
    response = node.get("/api/v1/audit", query={"limit": 10000, **query}, auth=True)
    assert response.status == 200, response
    page = response.json()
    assert page["truncated"] is False, "more than 10000 audit records in a test"
    return page["records"]


def dcat_subjects(response: Response) -> set[str]:
    """The IRIs of the dcat:Dataset resources in a Turtle catalogue export."""
    from rdflib import RDF, Graph, Namespace

    assert response.status == 200, response
    graph = Graph().parse(data=response.body, format="turtle")
    return {str(s) for s in graph.subjects(RDF.type, Namespace("http://www.w3.org/ns/dcat#").Dataset)}


def dcat_ids(response: Response) -> set[str]:
    """The ids (last path segment) of the dcat:Dataset resources in a Turtle catalogue export."""
    return {iri.rsplit("/", 1)[-1] for iri in dcat_subjects(response)}
