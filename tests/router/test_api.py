"""The committed generated code in router/api matches proto/ (regenerated with grpcio-tools)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_up_to_date(tmp_path):
    """Regenerating from the .proto gives byte-identical files to the committed ones."""
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Irouter/api=proto/tokenrouter/v1",
            "--python_out=.",
            "--grpc_python_out=.",
            "--pyi_out=.",
            "proto/tokenrouter/v1/router.proto",
        ],
        cwd=tmp_path,
        check=True,
    )
    for name in ("router_pb2.py", "router_pb2_grpc.py", "router_pb2.pyi"):
        fresh = (tmp_path / "router" / "api" / name).read_text()
        assert fresh == (ROOT / "router" / "api" / name).read_text(), f"run `make proto`: {name}"
