"""Segments in S3-compatible object storage (issue 19): a real S3 server on loopback
(`moto_server` from PyPI), the node's `[storage] segments = "s3://bucket/prefix"` with the
usual AWS variables. Compaction writes objects, reads come from them, small segments are
merged there, a kill -9 and a restart lose nothing, and deleting the dataset removes them.
The write-ahead log stays on local disk.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from conftest import free_port, pegel_spec, wait_until

BUCKET = "urbanmesh-segments"
PREFIX = "owl/guetersloh"



@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                          region_name="us-east-1")

    def answers():
        try:
            client.list_buckets()
            return True
        except Exception:
            return server.poll() is not None and pytest.fail("moto_server ended") or False
    wait_until(answers, 30, "moto_server to answer")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.terminate()
    server.wait(timeout=10)
    log.close()


def objects(client) -> list[str]:
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX + "/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def rows(first: int, count: int) -> list[dict]:
    return [{"time": f"2026-03-01T{(i // 60) % 24:02d}:{i % 60:02d}:00Z", "station": ["Dalke", "Lutter"][i % 2],
             "value": float(i)} for i in range(first, first + count)]


def values(node) -> list[float]:
    response = node.get("/api/v1/datasets/pegel/rows", {"format": "json"})
    assert response.status == 200, response
    return sorted(row["value"] for row in response.json())


def test_segments_live_in_object_storage_and_survive_a_crash(node_factory, s3):
    endpoint, client = s3
    node = node_factory(start=False)
    node.init()
    node.set_config("segment_rows", 400)
    node.set_config("max_tail_age_secs", 1)
    node.add_config("storage", "segments", f"s3://{BUCKET}/{PREFIX}")
    node.env.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                     "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true"})
    node.start()
    node.create_dataset(pegel_spec("pegel"))
    for part in range(5):
        assert node.post_json("/api/v1/datasets/pegel/rows", rows(part * 100, 100)).status == 200
        wait_until(lambda: node.dataset("pegel").get("segments", 0) >= 1, 30, "the rows to be compacted")
    # Compaction wrote objects under the prefix, nothing on local disk.
    wait_until(lambda: objects(client), 30, "segments in the bucket")
    assert all(key.startswith(f"{PREFIX}/pegel/seg-") and key.endswith(".parquet") for key in objects(client))
    assert not (node.data_dir / "segments" / "pegel").exists()
    # Reads come from them (and the log's tail).
    assert values(node) == [float(i) for i in range(500)]
    # Small segments are merged in the bucket too.
    wait_until(lambda: node.dataset("pegel")["segments"] < 4, 30, "small segments to be merged")

    # Rows still in the log at a kill -9 are there after the restart, with those in the bucket.
    node.set_config("max_tail_age_secs", 600)
    node.restart()
    assert node.post_json("/api/v1/datasets/pegel/rows", rows(500, 50)).status == 200
    node.kill9()
    node.start()
    assert values(node) == [float(i) for i in range(550)]
    manifest_segments = node.dataset("pegel")["segments"]
    assert manifest_segments >= 1

    # Deleting the dataset removes its objects.
    assert node.delete("/api/v1/datasets/pegel").status == 204
    wait_until(lambda: objects(client) == [], 30, "the dataset's objects to go")


def test_a_bad_segments_address_is_named_at_start(node_factory):
    node = node_factory(start=False)
    node.init()
    node.add_config("storage", "segments", "ftp://nowhere/x")
    result = node.run_cli("check", "--config", str(node.data_dir / "config.toml"))
    assert result.returncode == 1 and "[storage] segments" in result.stderr, result.stderr
    with pytest.raises(AssertionError, match="segments"):
        node.start(timeout=20)
