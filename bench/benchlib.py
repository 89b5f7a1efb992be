"""Helpers shared by the benchmark scripts."""
import json
import math
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


def _ticks(top, count=5):
    """Round tick values from 0 up to at least `top`."""
    top = top or 1
    magnitude = 10 ** math.floor(math.log10(top / count))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= top / count)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def svg_line_chart(path, title, x_label, x, panels):
    """Writes a line chart to `path` as SVG, drawn by hand: `panels` is a list of
    (y label, {series name: values}) stacked over the shared `x` axis; every y axis starts at 0."""
    from xml.sax.saxutils import escape

    width, left, right, top, height, gap = 760, 64, 170, 40, 200, 56
    plot = width - left - right
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    x_ticks = _ticks(max(x))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + len(panels) * (height + gap)}" '
           'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>']
    for p, (y_label, series) in enumerate(panels):
        y0 = top + p * (height + gap)
        y_ticks = _ticks(max(max(values) for values in series.values()))

        def point(xv, yv):
            return f"{left + plot * xv / x_ticks[-1]:.1f},{y0 + height - height * yv / y_ticks[-1]:.1f}"
        for t in y_ticks:
            y = y0 + height - height * t / y_ticks[-1]
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot}" y2="{y:.1f}" stroke="#ddd"/>'
                       f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{t:g}</text>')
        for t in x_ticks:
            xp = left + plot * t / x_ticks[-1]
            out.append(f'<line x1="{xp:.1f}" y1="{y0 + height}" x2="{xp:.1f}" y2="{y0 + height + 4}" stroke="#333"/>'
                       f'<text x="{xp:.1f}" y="{y0 + height + 18}" text-anchor="middle">{t:g}</text>')
        out.append(f'<rect x="{left}" y="{y0}" width="{plot}" height="{height}" fill="none" stroke="#333"/>'
                   f'<text transform="translate({left - 44},{y0 + height / 2}) rotate(-90)" '
                   f'text-anchor="middle">{escape(y_label)}</text>')
        for i, (name, values) in enumerate(series.items()):
            colour = colours[i % len(colours)]
            points = " ".join(point(xv, yv) for xv, yv in zip(x, values))
            out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
                       f'<line x1="{left + plot + 12}" y1="{y0 + 16 * i + 8}" x2="{left + plot + 32}" '
                       f'y2="{y0 + 16 * i + 8}" stroke="{colour}" stroke-width="2"/>'
                       f'<text x="{left + plot + 38}" y="{y0 + 16 * i + 12}">{escape(name)}</text>')
    out.append(f'<text x="{left + plot / 2}" y="{top + len(panels) * (height + gap) - 12}" '
               f'text-anchor="middle">{escape(x_label)}</text></svg>')
    with open(path, "w") as file:
        file.write("\n".join(out) + "\n")


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
    federate(nodes)
    return nodes


def federate(nodes):
    """The first of the started `nodes` invites every other; returns once every node sees
    all of them admitted and connected."""
    for node in nodes[1:]:
        invitation = nodes[0].call("POST", "/api/v1/federation/invitations", {"name": node.name})["invitation"]
        node.call("POST", "/api/v1/federation/join", {"invitation": invitation})

    def converged():
        for node in nodes:
            members = node.call("GET", "/api/v1/federation")["members"]
            if sum(1 for m in members if m["status"] == "admitted" and m["connected"]) < len(nodes):
                return False
        return True
    wait_for(converged, f"{len(nodes)} nodes converge", 120)
