"""How municipal IT runs the node (issue 19), checked without a container engine:

- docker-compose.yml against the compose-spec schema, deploy/kubernetes/ with
  ``kubernetes-validate --strict``;
- ``urbanmesh check --config`` on every configuration they mount, and on broken ones;
- the Keycloak realm file: the client, the roles per town, redirect URIs of the towns;
- the three compose towns started as plain processes from the same files (listen
  addresses and the OpenID provider overridden the way containers are configured: by
  flags and URBANMESH_… variables), federated by the same CLI steps deploy/federate.sh
  takes, signing staff in through the real test provider.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import REPO, binary, free_port, wait_until

COMPOSE = REPO / "docker-compose.yml"
KUBERNETES = REPO / "deploy" / "kubernetes"
REALM = REPO / "deploy" / "keycloak" / "urbanmesh-realm.json"
DEADLINE = 60.0
TOWNS = ["guetersloh", "bielefeld", "herford"]


def venv_tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def mounted_configs() -> dict[str, Path]:
    """The configuration file each service mounts at /etc/urbanmesh/config.toml."""
    found = {}
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source, _, rest = volume.partition(":")
            if rest.split(":")[0] == "/etc/urbanmesh/config.toml":
                found[name] = (COMPOSE.parent / source).resolve()
    return found


def check(config: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("URBANMESH_")}
    environment["RUST_BACKTRACE"] = "0"
    environment.update(env or {})
    return subprocess.run([str(binary()), "check", "--config", str(config)], capture_output=True, text=True,
                          timeout=30, env=environment)


def test_the_compose_file_conforms_to_the_compose_spec():
    result = subprocess.run([venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_kubernetes_manifests_validate_strictly():
    manifests = sorted(KUBERNETES.glob("*.yaml"))
    result = subprocess.run([venv_tool("kubernetes-validate"), "--strict", *map(str, manifests)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {doc["kind"] for path in manifests for doc in yaml.safe_load_all(path.read_text()) if doc}
    assert {"StatefulSet", "Service", "ConfigMap", "NetworkPolicy", "Secret"} <= kinds, kinds
    for town in TOWNS:
        docs = list(yaml.safe_load_all((KUBERNETES / f"urbanmesh-{town}.yaml").read_text()))
        [statefulset] = [d for d in docs if d["kind"] == "StatefulSet"]
        [container] = statefulset["spec"]["template"]["spec"]["containers"]
        assert {"readinessProbe", "livenessProbe", "resources"} <= set(container), container
        assert statefulset["spec"]["volumeClaimTemplates"], "a volume for the node's data"


def test_every_config_the_deployments_mount_checks(tmp_path):
    configs = mounted_configs()
    assert sorted(configs) == sorted(TOWNS), configs
    for config in configs.values():
        result = check(config)
        assert result.returncode == 0 and ": ok" in result.stdout, result.stdout + result.stderr
    for town in TOWNS:
        docs = yaml.safe_load_all((KUBERNETES / f"urbanmesh-{town}.yaml").read_text())
        [config_map] = [d for d in docs if d["kind"] == "ConfigMap"]
        path = tmp_path / f"{town}.toml"
        path.write_text(config_map["data"]["config.toml"])
        result = check(path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_check_names_the_bad_key_and_where_it_came_from(tmp_path):
    good = mounted_configs()["herford"].read_text()
    typo = tmp_path / "typo.toml"
    typo.write_text(good.replace('listen = "0.0.0.0:8470"', 'lisen = "0.0.0.0:8470"'))
    result = check(typo)
    assert result.returncode == 1 and "lisen" in result.stderr and "typo.toml" in result.stderr, result.stderr

    valid = tmp_path / "valid.toml"
    valid.write_text(good)
    for name, value, says in [
        ("URBANMESH_LIMITS__QUERY_TIMEOUT_SECS", "soon", "not a whole number"),
        ("URBANMESH_HTTP__LISTEN", "everywhere", "URBANMESH_HTTP__LISTEN"),
        ("URBANMESH_HTTP__LISEN", "0.0.0.0:1", "lisen"),
        ("URBANMESH_OIDC__ISSUER", "keycloak:8080", "[oidc] issuer"),
        ("URBANMESH_OIDC__CLIENT_SECRET_FILE", str(tmp_path / "missing"), "URBANMESH_OIDC__CLIENT_SECRET_FILE"),
    ]:
        result = check(valid, {name: value})
        assert result.returncode == 1 and says in result.stderr, (name, result.stderr)
    # The environment's values are typed like the settings they set, and a secret may come from a file.
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    result = check(valid, {"URBANMESH_LIMITS__QUERY_TIMEOUT_SECS": "7", "URBANMESH_OIDC__CLIENT_SECRET_FILE": str(secret),
                           "URBANMESH_NODE__ARS": "057580012012"})
    assert result.returncode == 0, result.stderr


def test_the_realm_has_the_client_and_the_roles_of_every_town():
    realm = json.loads(REALM.read_text())
    clients = {c["clientId"]: c for c in realm["clients"]}
    urbanmesh = clients["urbanmesh"]
    assert urbanmesh["publicClient"] is False and urbanmesh["standardFlowEnabled"] is True
    assert urbanmesh["attributes"]["pkce.code.challenge.method"] == "S256"
    secret_file = compose()["secrets"]["oidc_client_secret"]["file"]
    assert urbanmesh["secret"] == (COMPOSE.parent / secret_file).read_text().strip()
    audiences = [m["config"]["included.client.audience"] for m in urbanmesh["protocolMappers"]
                 if m["protocolMapper"] == "oidc-audience-mapper"]
    assert audiences == ["urbanmesh"], "bearer tokens name the nodes' audience"

    import tomllib
    expected_redirects = set()
    for town, path in mounted_configs().items():
        config = tomllib.loads(path.read_text())
        expected_redirects.add(config["http"]["public_url"] + "/auth/callback")
        assert config["oidc"]["issuer"] == f"http://keycloak:8080/realms/{realm['realm']}"
        assert config["oidc"]["client_id"] == "urbanmesh"
        # Roles per town: the client named after the town holds them.
        roles_client = config["oidc"]["roles_claim"].split(".")[1]
        assert config["oidc"]["roles_claim"] == f"resource_access.{roles_client}.roles"
        assert clients[roles_client]["bearerOnly"] is True
        roles = {r["name"] for r in realm["roles"]["client"][roles_client]}
        assert roles == {"viewer", "editor", "admin"}, roles
        # The town's published port is the one its public URL names.
        service = compose()["services"][town]
        published = {p.split(":")[0] for p in service["ports"] if p.endswith(":8470")}
        assert published == {config["http"]["public_url"].rsplit(":", 1)[1]}, (published, config["http"])
    assert set(urbanmesh["redirectUris"]) == expected_redirects
    users = {u["username"]: u for u in realm["users"]}
    assert {town for u in users.values() for town in u["clientRoles"]} == set(TOWNS)



class Town:
    """One compose town's configuration run as a plain process, configured the way its
    container is: the mounted file, URBANMESH_… variables and flags."""

    def __init__(self, slug: str, config: Path, base: Path, provider):
        self.slug = slug
        self.dir = base / slug
        self.log = open(base / f"{slug}.log", "ab")
        secret = base / f"{slug}-client-secret"
        secret.write_text("urbanmesh-secret\n")
        peer_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("URBANMESH_")}
        env.update({
            "RUST_LOG": "info",
            "URBANMESH_DATA_DIR": str(self.dir),
            "URBANMESH_CONFIG": str(config),
            "URBANMESH_PEER_FLIGHT__LISTEN": f"127.0.0.1:{peer_port}",
            "URBANMESH_PEER_FLIGHT__PUBLIC_URL": f"grpc+tls://127.0.0.1:{peer_port}",
            # The test provider stands in for Keycloak: its tokens carry realm roles and a
            # `tenant` claim instead of roles per client.
            "URBANMESH_OIDC__ISSUER": provider.issuer,
            "URBANMESH_OIDC__CLIENT_SECRET_FILE": str(secret),
            "URBANMESH_OIDC__ROLES_CLAIM": "realm_access.roles",
            "URBANMESH_OIDC__TENANT_CLAIM": "tenant",
            "URBANMESH_OIDC__TENANT": slug,
        })
        self.env = env
        self.process = subprocess.Popen(
            [str(binary()), "run", "--http", "127.0.0.1:0", "--flight", "127.0.0.1:0", "--p2p", "/ip4/127.0.0.1/tcp/0"],
            env=env, stdout=self.log, stderr=self.log)
        addresses = self.dir / "addresses.json"
        wait_until(lambda: addresses.exists() or self.process.poll() is not None, DEADLINE, f"{slug} to start")
        assert self.process.poll() is None, (base / f"{slug}.log").read_text()[-3000:]
        self.http = json.loads(addresses.read_text())["http"]

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(binary()), *args], capture_output=True, text=True, timeout=60, env=self.env)

    def get(self, path: str, token: str | None = None):
        request = urllib.request.Request(self.http + path, headers={"Authorization": f"Bearer {token}"} if token else {})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as response:
            return json.loads(response.read())

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        self.log.close()


def test_the_compose_towns_run_as_processes_federate_and_sign_staff_in(tmp_path, oidc_provider):
    configs = mounted_configs()
    towns = {}
    try:
        for slug in TOWNS:
            towns[slug] = Town(slug, configs[slug], tmp_path, oidc_provider)
        # A new data directory started with --config got its identity on first start.
        for town in towns.values():
            assert (town.dir / "node.key").exists() and (town.dir / "admin.token").exists()
            result = town.cli("health")
            assert result.returncode == 0 and "ready" in result.stdout, result.stdout + result.stderr
        # deploy/federate.sh's steps: Gütersloh invites, each town joins through its own node.
        host = towns["guetersloh"]
        for slug, name in (("bielefeld", "Bielefeld"), ("herford", "Herford")):
            invitation = host.cli("invite", "--url", host.http, "--name", name, "--federation", "Pegelverbund OWL")
            assert invitation.returncode == 0, invitation.stderr
            joined = towns[slug].cli("join", "--url", towns[slug].http, invitation.stdout.strip())
            assert joined.returncode == 0, joined.stderr

        def federated():
            for town in towns.values():
                members = town.get("/api/v1/federation")["members"]
                if sorted(m["name"] for m in members if m["status"] == "admitted" and m["connected"]) != \
                        ["Bielefeld", "Gütersloh", "Herford"]:
                    return False
            return True
        wait_until(federated, DEADLINE, "the three towns to see each other admitted and connected")

        # Staff of Herford are staff at Herford's node, not at Bielefeld's.
        token = oidc_provider.access_token("staff-admin")
        assert towns["herford"].get("/api/v1/me", token)["admin"] is True
        assert towns["bielefeld"].get("/api/v1/me", token)["staff"] is False
    finally:
        for town in towns.values():
            town.stop()
    # A stopped node is not healthy, and a join through it fails rather than being kept
    # in a database another process may hold.
    result = towns["herford"].cli("health", "--url", towns["herford"].http)
    assert result.returncode == 1, result.stdout
    result = towns["herford"].cli("join", "--url", towns["herford"].http, "um1.nothing")
    assert result.returncode == 1 and "no node answers" in result.stderr, result.stderr


@pytest.mark.parametrize("broken", ["meta", "admin.token"])
def test_run_with_a_config_refuses_a_store_without_its_key(tmp_path, broken):
    data = tmp_path / "data"
    data.mkdir()
    (data / broken).mkdir() if broken == "meta" else (data / broken).write_text("x")
    env = {k: v for k, v in os.environ.items() if not k.startswith("URBANMESH_")}
    env.update({"URBANMESH_DATA_DIR": str(data), "RUST_BACKTRACE": "0"})
    result = subprocess.run([str(binary()), "run", "--config", str(mounted_configs()["herford"]), "--http",
                             "127.0.0.1:0", "--flight", "127.0.0.1:0"], capture_output=True, text=True, timeout=60,
                            env=env)
    assert result.returncode == 1 and "no node.key" in result.stderr, result.stderr
