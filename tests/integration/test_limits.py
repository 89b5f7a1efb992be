"""Bounded inputs against the real binary: bodies over their route's limit, hostile
.xlsx files (a huge shared-string count, a zip bomb) and readers that stop reading are
refused or cut off, naming the limit, and the node stays up and answers everyone else."""

import http.client
import io
import json
import socket
import struct
import threading
import time
import urllib.parse
import zipfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import wait_until

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def workbook(sheet: str, shared_strings: str | None) -> bytes:
    """A one-sheet .xlsx package around the given worksheet and shared-string XML."""
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>',
        "_rels/.rels": f'<?xml version="1.0"?><Relationships xmlns="{PKG_REL}"><Relationship Id="rId1" '
        f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<?xml version="1.0"?><workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
        '<sheet name="Pegel" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<?xml version="1.0"?><Relationships xmlns="{PKG_REL}">'
        f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    if shared_strings is not None:
        parts["xl/sharedStrings.xml"] = shared_strings
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
        for name, text in parts.items():
            package.writestr(name, text)
    return buffer.getvalue()


def sheet_xml(rows: list[str], padding: int = 0) -> str:
    cells = "".join(f'<row r="{i + 1}">{row}</row>' for i, row in enumerate(rows))
    return f'<?xml version="1.0"?><worksheet xmlns="{MAIN}"><sheetData>{cells}</sheetData>{" " * padding}</worksheet>'


def inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


HEADER = inline("A1", "time") + inline("B1", "station") + inline("C1", "value")
GOOD_ROW = inline("A2", "2026-03-01T00:00:00Z") + inline("B2", "Dalke") + '<c r="C2"><v>1.5</v></c>'


def assert_alive(node, dataset):
    """The node answers and still stores a good workbook after the hostile one."""
    assert node.running, node.log_tail()
    assert node.get("/healthz", timeout=10).status == 200
    response = node.upload(dataset, "gut.xlsx", workbook(sheet_xml([HEADER, GOOD_ROW]), None))
    assert response.status == 200, response
    assert node.rows_count(dataset) == 1


def test_xlsx_with_a_huge_shared_string_count_is_refused_naming_the_limit(node):
    node.create_dataset("hostile-sst")
    strings = (f'<?xml version="1.0"?><sst xmlns="{MAIN}" count="3" uniqueCount="300000000000000000">'
               "<si><t>time</t></si><si><t>station</t></si><si><t>value</t></si></sst>")
    header = '<c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c>'
    content = workbook(sheet_xml([header, GOOD_ROW]), strings)
    assert len(content) < 4096, "the hostile file is small"
    response = node.upload("hostile-sst", "pegel.xlsx", content)
    assert response.status == 413, response
    problem = response.problem()
    assert problem["limit"] == "xlsx_max_shared_strings", problem
    assert "300000000000000000" in problem["detail"] and "xlsx_max_shared_strings" in problem["detail"], problem
    assert node.rows_count("hostile-sst") == 0
    assert_alive(node, "hostile-sst")


def lie_about_sizes(content: bytes, declared: int) -> bytes:
    """Every declared unpacked size (local headers, central directory) set to `declared`."""
    data = bytearray(content)
    end = len(data) - 22
    assert data[end:end + 4] == b"PK\x05\x06"
    entries, = struct.unpack_from("<H", data, end + 10)
    at, = struct.unpack_from("<I", data, end + 16)
    for _ in range(entries):
        assert data[at:at + 4] == b"PK\x01\x02"
        name, extra, comment = struct.unpack_from("<HHH", data, at + 28)
        local, = struct.unpack_from("<I", data, at + 42)
        struct.pack_into("<I", data, at + 24, declared)
        struct.pack_into("<I", data, local + 22, declared)
        at += 46 + name + extra + comment
    return bytes(data)


def peak_memory_bytes(node) -> int:
    status = open(f"/proc/{node.proc.pid}/status").read()
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) * 1024


def test_zip_bomb_is_refused_naming_the_limit_and_never_unpacked(node):
    node.create_dataset("zip-bomb")
    unpacked = 1 << 30  # 1 GiB of whitespace inside a valid worksheet
    bomb = workbook(sheet_xml([HEADER, GOOD_ROW], padding=unpacked), None)
    assert len(bomb) < 2 << 20, f"the bomb is small: {len(bomb)} bytes"
    response = node.upload("zip-bomb", "bombe.xlsx", bomb)
    assert response.status == 413, response
    problem = response.problem()
    assert problem["limit"] == "xlsx_max_decompressed_bytes", problem
    assert "xlsx_max_decompressed_bytes" in problem["detail"], problem
    # The same bomb declaring small sizes: measured while unpacking, refused.
    lying = lie_about_sizes(bomb, 1000)
    response = node.upload("zip-bomb", "bombe.xlsx", lying)
    assert response.status in (400, 413), response
    problem = response.problem()
    assert "sheet1.xml" in problem["detail"], problem
    assert node.rows_count("zip-bomb") == 0
    # Neither was held in memory: the node's peak is far below what the bomb unpacks to.
    assert peak_memory_bytes(node) < unpacked // 2, peak_memory_bytes(node)
    assert_alive(node, "zip-bomb")


def raw_post(node, path: str, body_chunks, headers: dict[str, str]) -> tuple[int, dict]:
    parsed = urllib.parse.urlparse(node.http)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        connection.putrequest("POST", path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("Authorization", f"Bearer {node.token}")
        connection.endheaders()
        try:
            for chunk in body_chunks:
                connection.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the node may answer and close before reading everything
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_body_limits_per_route(node_factory):
    node = node_factory(start=False)
    node.init()
    node.add_config("limits", "max_body_bytes", 200_000)
    node.add_config("limits", "max_json_body_bytes", 4096)
    node.start()
    node.create_dataset("limits")
    # Rows over the small limit but under max_body_bytes are taken.
    rows = "time,station,value\n" + "".join(f"2026-03-01T00:{i % 60:02}:00Z,s{i},{i}\n" for i in range(2000))
    assert 4096 < len(rows) < 200_000
    response = node.post_rows("limits", rows, "text/csv")
    assert response.status == 200, response
    # Over max_body_bytes: rows and uploads are refused, naming the limit.
    big = rows * 6
    response = node.post_rows("limits", big, "text/csv")
    assert response.status == 413 and response.problem()["limit"] == "max_body_bytes", response
    response = node.upload("limits", "gross.csv", big.encode())
    assert response.status == 413 and response.problem()["limit"] == "max_body_bytes", response
    # A policy, a view or a dataset description over max_json_body_bytes is refused.
    padded_policy = {"visibility": "public", "attribution": "x" * 5000}
    response = node.request("PUT", "/api/v1/datasets/limits/policy", json.dumps(padded_policy).encode(),
                            {"Content-Type": "application/json"})
    assert response.status == 413, response
    problem = response.problem()
    assert problem["limit"] == "max_json_body_bytes" and "4096" in problem["detail"], problem
    response = node.post_json("/api/v1/views", {"id": "v", "title": "x" * 5000})
    assert response.status == 413 and response.problem()["limit"] == "max_json_body_bytes", response
    # Sent without a length (chunked), a body is cut off at the limit just the same.
    def chunked(data: bytes):
        for start in range(0, len(data), 1024):
            piece = data[start:start + 1024]
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"
    status, problem = raw_post(node, "/api/v1/views", chunked(json.dumps({"title": "x" * 9000}).encode()),
                               {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert status == 413 and "max_json_body_bytes" in problem["detail"], problem
    status, problem = raw_post(node, "/api/v1/datasets/limits/rows", chunked(big.encode()),
                               {"Content-Type": "text/csv", "Transfer-Encoding": "chunked"})
    assert status == 413 and "max_body_bytes" in problem["detail"], problem
    assert node.rows_count("limits") == 2000
    assert node.get("/healthz").status == 200


STALLED = 72  # more than the node's 64 download slots


def open_stalled_download(node, path: str) -> tuple[socket.socket, bytes]:
    """Sends a GET and reads only the status line, with a tiny receive window, then
    stops reading."""
    parsed = urllib.parse.urlparse(node.http)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((parsed.hostname, parsed.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parsed.hostname}\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        piece = sock.recv(64)
        if not piece:
            break
        head += piece
    return sock, head


def drain(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """Everything the node still sends; whether the connection was closed by it."""
    received = bytearray()
    sock.settimeout(1)
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(1 << 16)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(received), True
        if not piece:
            return bytes(received), True
        received += piece
    return bytes(received), False


def open_on_node(node_port: int) -> set[int]:
    """Client ports of the node's loopback connections that are still ESTABLISHED on its side."""
    ports = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if int(local.split(":")[1], 16) == node_port and state == "01":
            ports.add(int(remote.split(":")[1], 16))
    return ports


def test_readers_that_stop_reading_do_not_lock_out_other_downloads(node_factory):
    node = node_factory(start=False)
    node.init()
    node.add_config("limits", "write_timeout_secs", 3)
    node.start()
    node.create_dataset("gross")
    rows = "time,station,value\n" + "".join(
        f"2026-03-01T{(i // 3600) % 24:02}:{(i // 60) % 60:02}:{i % 60:02}Z,Station-{i % 97},{i}.25\n"
        for i in range(150_000))
    response = node.post_rows("gross", rows, "text/csv", timeout=120)
    assert response.status == 200, response
    path = "/api/v1/datasets/gross/rows?format=json"
    with ThreadPoolExecutor(max_workers=STALLED) as pool:
        stalled = list(pool.map(lambda _: open_stalled_download(node, path), range(STALLED)))
    try:
        statuses = [head.split(b" ")[1] if head.count(b" ") else b"?" for _, head in stalled]
        # Every slot was taken by a reader that stopped: the rest were turned away.
        assert statuses.count(b"200") >= 64 and b"503" in statuses, statuses
        started = time.monotonic()

        def full_download():
            response = node.get("/api/v1/datasets/gross/rows", query={"format": "json"}, timeout=60)
            return response if response.status == 200 else None

        response = wait_until(full_download, 60, "a download while the stalled readers hold their slots")
        assert len(response.json()) == 150_000
        assert time.monotonic() - started < 60
        # The stalled responses were ended by the node while their readers still read
        # nothing (its side of each connection leaves ESTABLISHED), and what they then
        # read is cut short, not a complete response.
        held = [sock for sock, head in stalled if head.startswith(b"HTTP/1.1 200")]
        node_port = urllib.parse.urlparse(node.http).port
        wait_until(lambda: not (open_on_node(node_port) & {s.getsockname()[1] for s in held}), 60,
                   "the node to end every stalled download", interval=0.2)
        deadline = time.monotonic() + 60
        for sock in held:
            received, closed = drain(sock, deadline)
            assert closed, "a stalled download was never ended"
            assert not received.endswith(b"0\r\n\r\n"), "a stalled download looked complete"
    finally:
        for sock, _ in stalled:
            sock.close()
    assert node.get("/healthz").status == 200
