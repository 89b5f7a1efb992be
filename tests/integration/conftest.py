"""Shared fixtures for the `urbanmesh` integration tests.

Every test talks to a real node binary (``URBANMESH_BIN``, default
``target/debug/urbanmesh``) started on port 0 in a temporary directory. HTTP goes
through the standard library only; Arrow Flight through ``pyarrow.flight``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterable

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "target" / "debug" / "urbanmesh"
STARTUP_DEADLINE = 30.0
STOP_DEADLINE = 30.0
LOG_TAIL_BYTES = 20_000


def binary() -> Path:
    return Path(os.environ.get("URBANMESH_BIN", str(DEFAULT_BIN)))


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
        self.log_path = self.base / "node.log"
        self.name = name
        self.ars = ars
        self.proc: subprocess.Popen | None = None
        self.addresses: dict | None = None
        self._log_file = None
        self._flight_clients: list = []
        self.starts = 0
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

    def _env(self) -> dict:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
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
                "127.0.0.1:0",
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


# ---- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _require_binary():
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


def by_key(rows: Iterable[dict], *keys: str) -> list[dict]:
    return sorted(rows, key=lambda r: tuple(r[k] for k in keys))
