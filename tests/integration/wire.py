"""The federation protocol's protobuf messages, compiled from the repository's `.proto` by
Google's own protoc (grpcio-tools) and read with Google's protobuf runtime: a second
implementation of the wire format, so the tests also show that the schema is the truth."""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "protocol" / "proto"
PROTO = "urbanmesh/federation/v2/federation.proto"


def _compile():
    out = Path(tempfile.mkdtemp(prefix="urbanmesh-proto-"))
    code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"--python_out={out}", PROTO])
    assert code == 0, f"protoc could not compile {PROTO}"
    sys.path.insert(0, str(out))
    return importlib.import_module("urbanmesh.federation.v2.federation_pb2")


pb = _compile()
