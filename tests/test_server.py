"""Against a real ``mlflow server`` on loopback: the same costs, tokens and attribution as locally.

The server is a subprocess with a sqlite backend, started once per session on a free port and
always stopped. Traces go to it over HTTP (MLflow's async export, REST and OTLP span ingestion)
and are read back through it; ``trace.info.cost`` must equal the sum of the trace's span costs
and the total computed by hand, exactly as with the local store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import mlflow
import pytest
from conftest import MESSAGES, anthropic_client, counts, gemini_client, llm_spans, openai_client

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """``mlflow server`` with a sqlite backend in ``folder``, on ``port`` (a free one by default).

    Example::

        server = MlflowServer(tmp_path).start()
        genai_tracing.enable_tracing(tracking_uri=server.url)
        ...
        server.stop()
    """

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.db = folder / "mlflow.db"
        if not self.db.exists():
            TemporaryStore.create(folder)  # an already migrated sqlite file: faster start-up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> MlflowServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GENAI_"))}
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no price-map download at start-up
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no job-runner processes
        log = open(self.folder / "server.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
             f"sqlite:///{self.db}", "--artifacts-destination", str(self.folder / "artifacts"),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: stop() ends uvicorn's children too
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited early:\n{self.log_tail()}")
            if self.healthy():
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout} s:\n{self.log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def log_tail(self, lines: int = 40) -> str:
        path = self.folder / "server.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def server_store(mlflow_server: MlflowServer, tmp_path: Path) -> Iterator[TemporaryStore]:
    """The server as the tracking URI for one test (restored after it), read back like a store."""
    with TemporaryStore(folder=tmp_path, uri=mlflow_server.url) as store:
        yield store


# --- one workload, hand-computed, run against the local store and the server -----------------

M = 1_000_000
PRICES = {"models": {
    "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6},
    "claude-sonnet-4-5": {"input_per_million": 3.0, "output_per_million": 15.0},
    "gemini-2.5-flash": {"input_per_million": 0.3, "output_per_million": 2.5},
}}
RATES = {model: (p["input_per_million"], p["output_per_million"])
         for model, p in PRICES["models"].items()}
# (user, session, [(provider, model, input tokens, output tokens), ...]) per request.
REQUESTS = [
    ("ana@example.com", "s-1", [("openai", "gpt-4o-mini", 1200, 300),
                                ("anthropic", "claude-sonnet-4-5", 2000, 150),
                                ("gemini", "gemini-2.5-flash", 900, 80),
                                ("litellm", "claude-sonnet-4-5", 400, 40)]),
    ("bo@example.com", "s-2", [("openai-stream", "gpt-4o-mini", 700, 90),
                               ("anthropic-stream", "claude-sonnet-4-5", 333, 77),
                               ("gemini-stream", "gemini-2.5-flash", 512, 64)]),
    ("ana@example.com", "s-3", [("openai", "gpt-4o-mini", 5, 1)]),
]


def expected_cost(model: str, input_tokens: int, output_tokens: int) -> dict[str, float]:
    input_rate, output_rate = RATES[model]
    costs = {"input_cost": input_tokens * input_rate / M,
             "output_cost": output_tokens * output_rate / M}
    return {**costs, "total_cost": costs["input_cost"] + costs["output_cost"]}


def run_requests(fake: FakeProvider) -> list[str]:
    """Each request one trace: a handler span around its provider calls. Returns the trace ids."""
    import litellm

    oai, claude, gemini = openai_client(fake), anthropic_client(fake), gemini_client(fake)
    call = {
        "openai": lambda m: oai.chat.completions.create(model=m, messages=MESSAGES),
        "anthropic": lambda m: claude.messages.create(model=m, max_tokens=500,
                                                      messages=MESSAGES),
        "gemini": lambda m: gemini.models.generate_content(model=m, contents="Say hello"),
        "litellm": lambda m: litellm.completion(model=f"anthropic/{m}", api_base=fake.url,
                                                api_key="test", messages=MESSAGES),
        "openai-stream": lambda m: list(oai.chat.completions.create(
            model=m, messages=MESSAGES, stream=True, stream_options={"include_usage": True})),
        "anthropic-stream": lambda m: list(claude.messages.create(
            model=m, max_tokens=500, messages=MESSAGES, stream=True)),
        "gemini-stream": lambda m: list(gemini.models.generate_content_stream(
            model=m, contents="Say hello")),
    }

    @mlflow.trace(name="handler")
    def handler(calls: list[tuple[str, str, int, int]]) -> None:
        for kind, model, input_tokens, output_tokens in calls:
            fake.usage = FakeUsage(input_tokens=input_tokens, output_tokens=output_tokens)
            call[kind](model)

    trace_ids = []
    for user, session, calls in REQUESTS:
        with genai_tracing.attribute(user=user, session=session, feature="checkout"):
            handler(calls)
        trace_ids.append(mlflow.get_last_active_trace_id())
    return trace_ids


def check_traces(traces: list[Any]) -> list[dict[str, Any]]:
    """Each trace against the hand-computed figures; returns what was read, for comparison."""
    assert len(traces) == len(REQUESTS)
    read = []
    for trace, (user, session, calls) in zip(traces, REQUESTS):
        info, spans = trace.info, llm_spans(trace)
        assert [s.attributes["mlflow.llm.model"] for s in spans] == [c[1] for c in calls]
        span_costs = [s.attributes["mlflow.llm.cost"] for s in spans]
        for span_cost, (_, model, input_tokens, output_tokens) in zip(span_costs, calls):
            assert span_cost == pytest.approx(expected_cost(model, input_tokens, output_tokens),
                                              rel=1e-12)
        span_sum = {k: sum(c[k] for c in span_costs) for k in span_costs[0]}
        by_hand = {k: sum(expected_cost(*c[1:])[k] for c in calls) for k in span_sum}
        assert info.cost == pytest.approx(span_sum, rel=1e-12)
        assert info.cost == pytest.approx(by_hand, rel=1e-12)
        tokens_in, tokens_out = sum(c[2] for c in calls), sum(c[3] for c in calls)
        assert counts(info.token_usage) == {"input_tokens": tokens_in, "output_tokens": tokens_out,
                                    "total_tokens": tokens_in + tokens_out}
        assert info.request_metadata["mlflow.trace.user"] == user
        assert info.request_metadata["mlflow.trace.session"] == session
        assert info.request_metadata["genai_tracing.cost.complete"] == "true"
        assert info.tags["feature"] == "checkout"
        assert trace.data.spans[0].name == "handler"
        read.append({"cost": info.cost, "tokens": info.token_usage, "user": user,
                     "spans": [(s.name, s.attributes["mlflow.llm.cost"]) for s in spans]})
    return read


def traces_of(uri: str, experiment_id: str, trace_ids: list[str]) -> list[Any]:
    TemporaryStore.flush()
    client = mlflow.MlflowClient(uri)
    stored = {t.info.trace_id: t for t in client.search_traces(locations=[experiment_id],
                                                               max_results=500)}
    # get_trace reads each one back whole through the server, as the UI does.
    return [client.get_trace(trace_id) for trace_id in trace_ids if trace_id in stored]


def test_costs_tokens_and_attribution_are_the_same_on_a_server_as_locally(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        mlflow_server: MlflowServer, tmp_path: Path) -> None:
    local_config = genai_tracing.enable_tracing(prices=PRICES)
    local = check_traces(traces_of(mlflow_store.uri, local_config.experiment_id,
                                   run_requests(fake_provider)))

    with TemporaryStore(folder=tmp_path, uri=mlflow_server.url):
        config = genai_tracing.enable_tracing(tracking_uri=mlflow_server.url, prices=PRICES,
                                              experiment=f"server-{uuid.uuid4().hex[:8]}")
        assert config.experiment_id is not None
        remote = check_traces(traces_of(mlflow_server.url, config.experiment_id,
                                        run_requests(fake_provider)))

    # Identical but for the last binary digit of a float: when a span batch reaches MLflow's
    # store before its trace record, the store sums the span costs itself in floating point
    # (0.010879999999999999 for 0.01088), where genai_tracing's total is an exact decimal sum.
    assert [{**r, "cost": pytest.approx(r["cost"], rel=1e-15)} for r in remote] == local


def test_concurrent_traces_on_a_server_each_keep_exactly_their_own_cost(
        fake_provider: FakeProvider, server_store: TemporaryStore) -> None:
    config = genai_tracing.enable_tracing(tracking_uri=server_store.uri, prices=PRICES,
                                          experiment=f"threads-{uuid.uuid4().hex[:8]}")
    client = openai_client(fake_provider)
    threads, per_thread = 8, 3
    fake_provider.usage = FakeUsage(input_tokens=100, output_tokens=10)
    made: dict[str, tuple[int, int]] = {}
    lock = threading.Lock()

    @mlflow.trace(name="request")
    def request(number: int) -> None:
        for _ in range(1 + number % 3):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def work(worker: int) -> None:
        for number in range(per_thread):
            with genai_tracing.attribute(user=f"user-{worker}"):
                request(number)
            with lock:
                made[mlflow.get_last_active_trace_id(thread_local=True)] = (worker, number)

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    traces = traces_of(server_store.uri, config.experiment_id, list(made))
    assert len(traces) == threads * per_thread
    one_call = expected_cost("gpt-4o-mini", 100, 10)["total_cost"]
    for trace in traces:
        worker, number = made[trace.info.trace_id]
        calls = 1 + number % 3
        assert len(llm_spans(trace)) == calls
        assert trace.info.request_metadata["mlflow.trace.user"] == f"user-{worker}"
        assert trace.info.cost["total_cost"] == pytest.approx(calls * one_call, rel=1e-12)
    total = sum(t.info.cost["total_cost"] for t in traces)
    expected_total = threads * sum(1 + n % 3 for n in range(per_thread)) * one_call
    assert round(total, 2) == round(expected_total, 2)  # to the cent, and closer still
    assert total == pytest.approx(expected_total, rel=1e-9)
