"""Helpers shared by the benchmark scripts."""
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

BIN = os.environ.get("URBANMESH_BIN", "target/release/urbanmesh")

# Loopback requests must never go through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for(condition, what, deadline_s=60.0, interval=0.005):
    """Polls `condition` until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(what)


def put_table(node, dataset, table, batch_rows=65536):
    """Writes `table` into `dataset` with one DoPut of `batch_rows`-row batches, each
    acknowledged once durable; returns the rows acknowledged."""
    import pyarrow.flight as fl

    client = fl.FlightClient(node.addresses["flight"])
    options = fl.FlightCallOptions(headers=[(b"authorization", f"Bearer {node.token}".encode())])
    writer, acks = client.do_put(fl.FlightDescriptor.for_path(dataset), table.schema, options=options)
    for batch in table.to_batches(max_chunksize=batch_rows):
        writer.write_batch(batch)
    writer.done_writing()
    acked = 0
    while (ack := acks.read()) is not None:
        acked += json.loads(ack.to_pybytes())["rows"]
    writer.close()
    client.close()
    return acked


def wait_compacted(node, dataset, rows):
    """Waits until all `rows` are in Parquet segments (counted in the segment files'
    footers) and the node's manifest lists every one of those segments."""
    import glob

    import pyarrow.parquet as pq

    def compacted():
        files = glob.glob(os.path.join(node.dir, "segments", dataset, "seg-*.parquet"))
        if sum(pq.read_metadata(f).num_rows for f in files) < rows:
            return False
        return node.call("GET", f"/api/v1/datasets/{dataset}").get("segments") == len(files)
    wait_for(compacted, f"compaction of {dataset} at {node.name}", 600, 0.2)


def rss_mb(pid):
    """Resident set size of a process, in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def report(name, value, unit, reference=None, target=None):
    """One figure, with the reference measured in the same run and the ratio to it."""
    line = f"{name:<58} {value:>12,.1f} {unit}"
    if reference is not None:
        line += f"   reference {reference:>12,.1f} {unit}   ratio {value / reference:5.2f}x"
    if target is not None:
        line += f"   target {target}"
    print(line, flush=True)


class Node:
    """A started `urbanmesh` node in `root/name`. `config` sets keys that `urbanmesh init`
    wrote into config.toml (e.g. {"max_tail_age_secs": 1}) before the node starts."""

    def __init__(self, root, name, config=None):
        self.name = name
        self.dir = os.path.join(root, name)
        subprocess.run([BIN, "init", "--data-dir", self.dir, "--name", name], check=True, stdout=subprocess.DEVNULL)
        if config:
            path = os.path.join(self.dir, "config.toml")
            text = open(path).read()
            for key, value in config.items():
                text, found = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {json.dumps(value)}", text)
                assert found == 1, f"config.toml has no single `{key}`"
            open(path, "w").write(text)
        self.token = open(os.path.join(self.dir, "admin.token")).read().strip()
        self.log = open(os.path.join(self.dir, "node.log"), "ab")
        self.proc = subprocess.Popen([BIN, "run", "--data-dir", self.dir, "--http", "127.0.0.1:0",
                                      "--flight", "127.0.0.1:0"], stderr=self.log)
        path = os.path.join(self.dir, "addresses.json")
        wait_for(lambda: os.path.exists(path), "addresses.json")
        self.addresses = json.load(open(path))
        self.http = self.addresses["http"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.http + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with OPENER.open(request, timeout=30) as response:
            text = response.read()
            return json.loads(text) if text else None

    def found(self, title):
        query = urllib.parse.urlencode({"q": f'"{title}"', "scope": "federation"})
        return self.call("GET", f"/api/v1/search?{query}")["total"] > 0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def federation(root, n, config=None):
    """`n` nodes named Stadt-00 … in one federation: Stadt-00 invites every other node;
    returns once every node sees all `n` admitted and connected."""
    nodes = [Node(root, f"Stadt-{i:02d}", config) for i in range(n)]
    for node in nodes[1:]:
        invitation = nodes[0].call("POST", "/api/v1/federation/invitations", {"name": node.name})["invitation"]
        node.call("POST", "/api/v1/federation/join", {"invitation": invitation})

    def converged():
        for node in nodes:
            members = node.call("GET", "/api/v1/federation")["members"]
            if sum(1 for m in members if m["status"] == "admitted" and m["connected"]) < n:
                return False
        return True
    wait_for(converged, f"{n} nodes converge", 120)
    return nodes
