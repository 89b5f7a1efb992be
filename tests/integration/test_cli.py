"""`urbanmesh init` and `urbanmesh run`: files, modes, addresses, signals, health."""

import json
import socket
import re
import signal
import stat
import tomllib
import urllib.parse

import pytest

from conftest import Node, http_request


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_key_config_and_token_with_private_modes(tmp_path):
    node = Node(tmp_path, name="Gütersloh", ars="057540008008")
    result = node.init()
    data = node.data_dir
    key, config, token = data / "node.key", data / "config.toml", data / "admin.token"
    for path in (key, config, token):
        assert path.is_file(), f"{path.name} missing after init; dir has {sorted(p.name for p in data.iterdir())}"
    assert mode(key) == 0o600, oct(mode(key))
    assert mode(token) == 0o600, oct(mode(token))
    assert key.stat().st_size > 0
    token_text = token.read_text().strip()
    assert re.fullmatch(r"[0-9a-f]{32,}", token_text), f"admin token is not hex: {token_text!r}"
    parsed = tomllib.loads(config.read_text())
    assert parsed["node"]["name"] == "Gütersloh", parsed
    assert parsed["node"]["ars"] == "057540008008", parsed
    # The token must not leak into the output (it names the file instead).
    assert token_text not in result.stdout + result.stderr


def test_init_twice_refuses_and_keeps_the_node(tmp_path):
    node = Node(tmp_path)
    node.init()
    key_before = (node.data_dir / "node.key").read_bytes()
    token_before = node.token
    again = node.init(check=False)
    assert again.returncode != 0, f"second init succeeded: {again.stdout}{again.stderr}"
    assert "already" in (again.stderr + again.stdout).lower(), again.stderr
    assert (node.data_dir / "node.key").read_bytes() == key_before
    assert node.token == token_before


def test_two_inits_make_different_identities(tmp_path):
    a, b = Node(tmp_path / "a"), Node(tmp_path / "b")
    a.init()
    b.init()
    assert (a.data_dir / "node.key").read_bytes() != (b.data_dir / "node.key").read_bytes()
    assert a.token != b.token


@pytest.mark.parametrize("ars", ["12345", "05754000800x", "0575400080081"])
def test_init_rejects_a_malformed_ars(tmp_path, ars):
    node = Node(tmp_path, ars=ars)
    result = node.init(check=False)
    assert result.returncode != 0
    assert "ars" in result.stderr.lower(), result.stderr
    assert not (node.data_dir / "admin.token").exists()


def test_run_without_init_fails_with_a_hint(tmp_path):
    node = Node(tmp_path)
    node.data_dir.mkdir()
    result = node.run_cli("run", "--data-dir", str(node.data_dir), "--http", "127.0.0.1:0", "--flight", "127.0.0.1:0")
    assert result.returncode != 0
    assert "init" in result.stderr, result.stderr


def test_run_writes_addresses_json(node):
    addresses = json.loads(node.addresses_path.read_text())
    assert set(addresses) >= {"http", "flight", "p2p"}, addresses
    http = urllib.parse.urlparse(addresses["http"])
    flight = urllib.parse.urlparse(addresses["flight"])
    assert http.scheme == "http" and http.hostname == "127.0.0.1" and http.port and http.port > 0
    assert flight.scheme == "grpc" and flight.hostname == "127.0.0.1" and flight.port and flight.port > 0
    assert http.port != flight.port
    tcp = [a for a in addresses["p2p"] if P2P_ADDRESS.match(a)]
    quic = [a for a in addresses["p2p"] if P2P_QUIC_ADDRESS.match(a)]
    assert len(tcp) == 1 and len(quic) == 1 and len(addresses["p2p"]) == 2, addresses["p2p"]
    peer_ids = {a.rsplit("/p2p/", 1)[1] for a in addresses["p2p"]}
    assert len(peer_ids) == 1, "both listeners speak for the same node"
    peer = urllib.parse.urlparse(addresses["peer_flight"])
    assert peer.scheme == "grpc+tls" and peer.port and peer.port > 0, addresses["peer_flight"]
    assert not list(node.data_dir.glob(".addresses*")), "temporary file left behind"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_and_removes_addresses(node, sig):
    node.create_dataset("pegel")
    assert node.addresses_path.exists()
    code = node.terminate(sig)
    assert code == 0, f"exit code {code} after {sig!r}:\n{node.log_tail()}"
    assert not node.addresses_path.exists(), "addresses.json left behind after a clean exit"


def test_two_nodes_run_side_by_side(node_factory):
    a, b = node_factory(name="Gütersloh"), node_factory(name="Bielefeld")
    assert a.http != b.http and a.flight != b.flight
    assert a.create_dataset("only-in-a")["tenant"] == "Gütersloh"
    assert b.get("/api/v1/datasets/only-in-a").status == 404


def test_healthz_readyz(node):
    health = node.get("/healthz")
    assert health.status == 200, health
    ready = node.get("/readyz")
    assert ready.status == 200, ready


def test_metrics_exposes_the_documented_families(node):
    node.create_dataset("pegel")
    stored = node.post_json(
        "/api/v1/datasets/pegel/rows",
        [{"time": "2026-03-01T00:00:00Z", "station": "Dalke", "value": 101.5}],
    )
    assert stored.status == 200, stored
    client = node.flight_client()
    import pyarrow.flight as flight

    info = client.get_flight_info(flight.FlightDescriptor.for_path("pegel"))
    assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 1

    metrics = node.get("/metrics", auth=True)  # staff see the series per dataset as well
    assert metrics.status == 200, metrics
    assert metrics.content_type in ("text/plain", "application/openmetrics-text"), metrics.content_type
    text = metrics.text
    for name in (
        "urbanmesh_rows_ingested_total",
        "urbanmesh_flight_sent_bytes_total",
        "urbanmesh_http_request_duration_seconds",
    ):
        # Exactly this name at the start of a sample line (not e.g. with a prefix glued on).
        assert re.search(rf"^{name}[{{ _]", text, re.M), f"no sample named {name} in /metrics:\n{text[:3000]}"
    ingested = re.search(r'urbanmesh_dataset_rows_ingested_total\{[^}]*dataset="pegel"[^}]*\} (\d+)', text, re.M)
    assert ingested and int(ingested.group(1)) == 1, text[:3000]
    sent = re.search(r"urbanmesh_flight_sent_bytes_total(?:\{[^}]*\})? (\d+)", text, re.M)
    assert sent and int(sent.group(1)) > 0, text[:3000]

    # The service itself, to anyone: its version and the process's resources.
    public = node.get("/metrics").text
    version = re.search(r'^urbanmesh_build_info\{version="([^"]+)"\} 1$', public, re.M)
    assert version and version.group(1) == node.run_cli("--version").stdout.split()[-1], public[:2000]
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_threads", "process_cpu_seconds_total",
                 "process_start_time_seconds"):
        sample = re.search(rf"^{name} ([0-9.e+]+)$", public, re.M)
        assert sample and float(sample.group(1)) > 0, f"no {name} in /metrics:\n{public[:3000]}"


def test_unknown_endpoint_is_a_problem_404(node):
    response = http_request("GET", node.http + "/api/v1/nope")
    assert response.status == 404
    response.problem()


P2P_ADDRESS = re.compile(r"^/ip4/127\.0\.0\.1/tcp/(\d+)/p2p/(12D3KooW[1-9A-HJ-NP-Za-km-z]+)$")
P2P_QUIC_ADDRESS = re.compile(r"^/ip4/127\.0\.0\.1/udp/(\d+)/quic-v1/p2p/(12D3KooW[1-9A-HJ-NP-Za-km-z]+)$")


def test_p2p_listener_accepts_connections_and_keeps_its_peer_id(node):
    [match] = [m for m in map(P2P_ADDRESS.match, node.addresses["p2p"]) if m]
    port, peer_id = int(match.group(1)), match.group(2)
    assert port > 0
    # A real TCP connection to the libp2p listener (the Noise handshake is the peer's job).
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    node.restart()
    [again] = [m for m in map(P2P_ADDRESS.match, node.addresses["p2p"]) if m]
    assert again.group(2) == peer_id, "the peer id derives from node.key and must not change"
