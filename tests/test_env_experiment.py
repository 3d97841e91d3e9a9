"""An experiment named in MLFLOW_EXPERIMENT_NAME while the tracking server does not answer.

MLflow looks that experiment up at every trace start, in the caller's thread; genai_tracing
keeps the answer and, once the store has failed to give one, lets calls through at once while a
background thread retries. The "server" here is a loopback HTTP server that counts the lookups,
answers 503 while down and the experiment once up.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

import genai_tracing
from genai_tracing import _env_experiment
from genai_tracing.testing import FakeProvider, TemporaryStore

from conftest import MESSAGES, openai_client

LOOKUP = "/api/2.0/mlflow/experiments/get-by-name"


class Tracking(ThreadingHTTPServer):
    up = False
    lookups = 0


class Handler(BaseHTTPRequestHandler):
    server: Tracking

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith(LOOKUP):
            self.server.lookups += 1
            if self.server.up:
                return self.answer(200, {"experiment": {
                    "experiment_id": "7", "name": "from-env", "lifecycle_stage": "active"}})
        self.answer(503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "down"})

    do_POST = do_GET  # noqa: N815

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tracking() -> Iterator[Tracking]:
    server = Tracking(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_down_server_is_asked_for_the_environments_experiment_once_not_per_call(
        fake_provider: FakeProvider, tracking: Tracking, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking.fluent import _get_experiment_id

    uri = f"http://127.0.0.1:{tracking.server_address[1]}"
    monkeypatch.setattr(_env_experiment, "RETRY_FIRST_SECONDS", 3600.0)  # no retry in this part
    with TemporaryStore(folder=tmp_path, uri=uri):
        # Inside: the store clears MLflow's variables on entry.
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        genai_tracing.enable_tracing(tracking_uri=uri, providers=["openai"])
        asked_at_enable = tracking.lookups
        assert asked_at_enable >= 1               # MLflow's own resolution, once
        client = openai_client(fake_provider)
        for _ in range(5):
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert reply.choices[0].message.content
        assert tracking.lookups == asked_at_enable  # not once per call
        assert _get_experiment_id() == "0"        # MLflow's default meanwhile

        # The server answers: the background retry pins the environment's experiment.
        tracking.up = True
        monkeypatch.setattr(_env_experiment, "RETRY_FIRST_SECONDS", 0.1)
        _env_experiment._failing.clear()           # a fresh failure starts a fresh retry
        tracking.up = False
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        tracking.up = True
        deadline = time.monotonic() + 30
        while _get_experiment_id() != "7" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _get_experiment_id() == "7"
        asked = tracking.lookups
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert tracking.lookups == asked          # found once, kept
        genai_tracing.disable_tracing()
    assert _env_experiment._original is None      # MLflow's own lookup is back
