"""A sustained overload beyond what the store takes drops traces visibly, never silently."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    import os, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Slow(BaseHTTPRequestHandler):
        # A tracking server that takes its time and then fails every request.
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            time.sleep(0.3)
            self.send_response(500)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        do_GET = do_POST = do_PATCH = _answer
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    import openai
    import genai_tracing
    from genai_tracing.testing import FakeProvider

    with FakeProvider() as fake:
        genai_tracing.enable_tracing(tracking_uri=f"http://127.0.0.1:{server.server_port}",
                                     providers=["openai"])
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        answers = [client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            for _ in range(40)]
        print("ANSWERS", len(answers), flush=True)
        print("DROPPED", genai_tracing.dropped_traces(), flush=True)
""")


def test_a_full_export_queue_is_counted_and_warned_once(tmp_path: Path) -> None:
    env = {"MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE": "2",
           "MLFLOW_ASYNC_TRACE_LOGGING_MAX_WORKERS": "1",
           "GENAI_TRACING_EXIT_TIMEOUT": "1"}
    import os

    started = time.monotonic()
    # A clean environment: nothing another test left behind (an experiment id, a switch).
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("MLFLOW_", "GENAI_TRACING_"))}
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=tmp_path, capture_output=True,
                         text=True, timeout=180, env={**base, **env})
    elapsed = time.monotonic() - started

    assert "ANSWERS 40" in out.stdout, out.stdout + out.stderr  # every call answered
    dropped = int(out.stdout.split("DROPPED", 1)[1].split()[0])
    assert 0 < dropped <= 40, out.stderr[-3000:]
    assert out.stderr.count("genai_tracing: MLflow's trace export queue is full") == 1
    assert elapsed < 170  # the process exits: the store that fails is not waited for at exit


BUFFER_CHILD = textwrap.dedent("""
    import sys, threading
    import mlflow, openai
    import genai_tracing
    from genai_tracing.testing import FakeProvider

    with FakeProvider() as fake:
        genai_tracing.enable_tracing(tracking_uri=sys.argv[1], providers=["openai"])
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        all_open = threading.Barrier(6)
        answers = []

        def request(n):
            with mlflow.start_span(f"request-{n}"):
                all_open.wait()  # six traces in MLflow's buffer at once; it holds three
                answers.append(client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]))

        threads = [threading.Thread(target=request, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        mlflow.flush_trace_async_logging()
        print("ANSWERS", len(answers), flush=True)
        print("DROPPED", genai_tracing.dropped_traces(), flush=True)
""")


def test_traces_evicted_from_a_full_trace_buffer_are_counted_and_warned_once(
        tmp_path: Path) -> None:
    import os

    import mlflow

    uri = f"sqlite:///{tmp_path / 'store.db'}"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("MLFLOW_", "GENAI_TRACING_"))}
    out = subprocess.run([sys.executable, "-c", BUFFER_CHILD, uri], cwd=tmp_path,
                         capture_output=True, text=True, timeout=180,
                         env={**base, "MLFLOW_TRACE_BUFFER_MAX_SIZE": "3"})

    assert "ANSWERS 6" in out.stdout, out.stdout + out.stderr  # every call answered
    dropped = int(out.stdout.split("DROPPED", 1)[1].split()[0])
    assert out.stderr.count("genai_tracing: MLflow's in-memory trace buffer is full") == 1
    client = mlflow.MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    stored = len(client.search_traces(locations=experiments, max_results=100))
    assert dropped == 3 and stored == 3  # every trace is either stored or counted
