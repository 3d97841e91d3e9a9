"""Stand-in for the two helpers of MLflow's tests/helper_functions.py the autolog tests import."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

_ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def start_mock_openai_server() -> Iterator[str]:
    """MLflow's fake OpenAI server (tests/openai/mock_openai.py) on a loopback port."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.openai.mock_openai", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/health", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the mock OpenAI server did not start")
                time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_telemetry_threads(timeout: float = 5.0) -> None:
    """MLflow's telemetry is not faked here; the one test that needs it errors in both runs."""
