"""A full disk (issue 19): the node refuses writes with 507 before its disk is full, keeps
serving reads, starts again on a disk filled to the last byte (it gives up its ballast),
and takes writes again by itself once space is freed.

The data directory is a 96 MB tmpfs mounted for the test; CI runs as root, which may mount.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import Node, pegel_spec, wait_until

DISK = "96m"
FLOOR = 24 << 20
BALLAST = 16 << 20


@pytest.fixture
def small_disk(tmp_path):
    node = Node(tmp_path / "node")
    node.data_dir.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(node.data_dir)],
                             capture_output=True, text=True)
    assert mounted.returncode == 0, f"mounting a small tmpfs needs root, as CI runs: {mounted.stderr}"
    try:
        yield node
    finally:
        node.close()
        subprocess.run(["umount", "-l", str(node.data_dir)], check=True)


def csv_rows(first: int, count: int) -> str:
    lines = ["time,station,value,quality"]
    lines += [f"2026-03-01T00:00:00.{i % 1000:03d}Z,Station {i % 50:02d} with a long name,{i}.5,{i % 7}"
              for i in range(first, first + count)]
    return "\n".join(lines) + "\n"


def rows_stored(node: Node) -> int:
    response = node.get("/api/v1/datasets/pegel")
    assert response.status == 200, response
    return response.json()["rows"]


def fill(path) -> None:
    """Writes `path` until the disk has no byte left."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    os.write(descriptor, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(descriptor)


def test_a_full_disk_refuses_writes_keeps_reads_starts_and_resumes(small_disk):
    node = small_disk
    node.init()
    node.set_config("min_free_bytes", FLOOR)
    node.set_config("ballast_bytes", BALLAST)
    # The test suite's defaults in the environment would override the file.
    node.env.update({"URBANMESH_STORAGE__MIN_FREE_BYTES": str(FLOOR), "URBANMESH_STORAGE__BALLAST_BYTES": str(BALLAST)})
    node.start()
    assert (node.data_dir / "ballast").stat().st_size == BALLAST
    node.create_dataset(pegel_spec("pegel"))
    # Something else on the same disk, which its owner removes later.
    other = node.data_dir / "other-data"
    other.write_bytes(b"\0" * (24 << 20))

    acknowledged, refused = 0, None
    for part in range(400):
        response = node.post_rows("pegel", csv_rows(acknowledged, 20_000), "text/csv")
        if response.status != 200:
            refused = response
            break
        acknowledged += 20_000
    assert refused is not None, "the disk never filled"
    assert refused.status == 507, refused
    problem = refused.problem()
    assert problem.get("limit") == "min_free_bytes" and "nothing was stored" in problem["detail"], problem
    assert acknowledged > 0
    # Reads go on, and every acknowledged row is there.
    wait_until(lambda: rows_stored(node) == acknowledged, 30, "the stored rows to be counted")
    assert node.get("/readyz").status == 200

    # A crash, and the disk filled to the last byte meanwhile: the node starts again.
    node.kill9()
    filler = node.data_dir / "filler"
    fill(filler)
    assert os.statvfs(node.data_dir).f_bavail * os.statvfs(node.data_dir).f_frsize < FLOOR
    node.start()
    assert not (node.data_dir / "ballast").exists(), "the ballast was given up to start"
    assert rows_stored(node) == acknowledged
    assert node.post_rows("pegel", csv_rows(0, 10), "text/csv").status == 507

    # Space freed: writes resume without a restart.
    filler.unlink()
    other.unlink()
    last = []
    try:
        wait_until(lambda: last.append(node.post_rows("pegel", csv_rows(0, 10), "text/csv")) or last[-1].status == 200,
                   30, "writes to resume")
    except TimeoutError:
        raise AssertionError(f"writes did not resume: {last[-1].status} {last[-1].text}\n{node.log_tail()}") from None
    wait_until(lambda: rows_stored(node) == acknowledged + 10, 30, "the new rows to be counted")
    # The next start takes the ballast back, with room to spare.
    node.restart()
    assert (node.data_dir / "ballast").stat().st_size == BALLAST
