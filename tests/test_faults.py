"""Faults around a traced call: whatever breaks, the user's call and the process never notice.

Every test holds the user's call to what it returns untraced (the same answer, or the same
exception), lets no exception from genai_tracing reach user code (the autouse guard fails a test
on any internal error), and checks the figure it names: a bounded exit, a stored trace, a flag.

Scenarios that need a fresh interpreter (a tracking server that is down, slow or failing, the
import race, exit) run as child processes started together by one module fixture, so their
start-up overlaps; the tests then drive and check them one by one.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import mlflow
import pytest
from conftest import MESSAGES, anthropic_client, gemini_client, llm_spans, openai_client
from test_server import MlflowServer, free_port

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

# A hang is the failure these tests look for; plain MLflow took 147-250 s here.
EXIT_BOUND_S = 60


# --- helpers ---------------------------------------------------------------------------------


class RawServer:
    """A stdlib HTTP server on loopback that answers every request with one fixed reply.

    Stands in for a tracking server that answers slowly or with errors, and for a provider that
    sends a malformed body.
    """

    def __init__(self, status: int = 200, body: bytes = b"{}", delay: float = 0.0) -> None:
        self.status, self.body, self.delay = status, body, delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(outer.delay)
                try:
                    self.send_response(outer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(outer.body)))
                    self.end_headers()
                    self.wfile.write(outer.body)
                except OSError:
                    pass  # the client gave up waiting

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Child:
    """A Python child process driven by lines on stdin; it answers with one JSON line each."""

    def __init__(self, script: str, *args: str, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLFLOW_", "GENAI_TRACING_"))}
        self.stderr_path = cwd / "stderr.log"
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", script, *args], cwd=cwd, env=env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        self.exited_at: float | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self.process.wait()
        self.exited_at = time.time()
        self._lines.put("")

    def send(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def read(self, timeout: float = 180.0) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise AssertionError(f"child silent for {timeout} s:\n{self.stderr()[-5000:]}") \
                from None
        if not line:
            raise AssertionError(f"child exited ({self.process.returncode}):\n"
                                 f"{self.stderr()[-5000:]}")
        return json.loads(line)

    def exit(self) -> float:
        """Ask the child to finish; seconds from its last statement to the end of the process."""
        said = self.send("exit")
        deadline = time.monotonic() + EXIT_BOUND_S + 30
        while self.exited_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.exited_at is None:
            self.kill()
            raise AssertionError(f"child still running {EXIT_BOUND_S + 30} s after its last "
                                 f"statement:\n{self.stderr()[-5000:]}")
        assert self.process.returncode == 0, self.stderr()[-5000:]
        return self.exited_at - said["at"]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()


# A user's app against a tracking URI given on the command line. Commands: "calls N",
# "flush", "exit". Every answer is compared with the same request's answer before tracing.
APP = textwrap.dedent("""
    import json, logging, sys, time
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import mlflow, openai
    import genai_tracing
    from genai_tracing.testing import FakeProvider

    fake = FakeProvider().start()
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)

    def ask():
        fake.reset()  # ids restart: the same request gets the very same answer
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    def say(**data):
        print(json.dumps(data), flush=True)

    untraced = (type(ask()), ask().model_dump())
    errors = []
    started = time.perf_counter()
    try:
        config = genai_tracing.enable_tracing(tracking_uri=sys.argv[1], providers=["openai"])
        experiment_id = config.experiment_id
    except BaseException as e:
        errors.append(f"enable_tracing raised {e!r}")
        experiment_id = None
    say(stage="enabled", errors=errors, experiment_id=experiment_id,
        seconds=time.perf_counter() - started)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "calls":
            ms = []
            for _ in range(int(arg)):
                started = time.perf_counter()
                try:
                    answer = ask()
                    ms.append((time.perf_counter() - started) * 1000)
                    if (type(answer), answer.model_dump()) != untraced:
                        errors.append(f"answer differs: {answer!r}")
                except BaseException as e:
                    errors.append(f"call raised {e!r}")
            say(stage="calls", errors=errors, trace_id=mlflow.get_last_active_trace_id(),
                median_ms=sorted(ms)[len(ms) // 2] if ms else None)
        elif command == "flush":
            mlflow.flush_trace_async_logging()
            say(stage="flushed")
        elif command == "exit":
            say(stage="exiting", at=time.time())
            break
""")

# A fresh process's first calls with plain MLflow autolog or with genai_tracing, sqlite store.
# httpx's own import is made 0.5 s slower, with the module half-initialized in sys.modules the
# whole time, so the race the export thread runs with the user's thread is hit every run.
RACE = textwrap.dedent("""
    import importlib.abc, importlib.util, json, os, sys, time

    class SlowHttpxImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name != "httpx":
                return None
            sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                sys.meta_path.insert(0, self)
            run = spec.loader.exec_module
            def exec_module(module):
                time.sleep(0.5)
                run(module)
            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, SlowHttpxImport())
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from genai_tracing.testing import FakeProvider, TemporaryStore

    mode, calls = sys.argv[1], int(sys.argv[2])
    store = TemporaryStore.create("store")
    fake = FakeProvider().start()
    if mode == "plain":
        import mlflow
        mlflow.set_tracking_uri(store.uri)
        mlflow.set_experiment("plain")
        mlflow.openai.autolog()
    else:
        import genai_tracing
        genai_tracing.enable_tracing(tracking_uri=store.uri)
    import openai
    httpx_loaded = "httpx" in sys.modules
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    failures, number, after_import, deadline = [], 0, 0, time.monotonic() + 60
    # Plain MLflow: call on until the export thread's import of httpx is over (or has broken
    # three calls), however long the machine takes to get there. genai_tracing: `calls` calls.
    while (number < calls if mode != "plain" else time.monotonic() < deadline) \
            and after_import < 20:
        try:
            client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": "hi"}])
        except Exception as e:
            failures.append(f"call {number}: {type(e).__name__}: {e}")
            if mode == "plain" and len(failures) >= 3:
                break
        number += 1
        if mode == "plain" and hasattr(sys.modules.get("httpx"), "Client"):
            after_import += 1
    print(json.dumps({"failures": failures, "calls": number,
                      "httpx_loaded_before_calls": httpx_loaded}), flush=True)
    sys.stdin.readline()
    print(json.dumps({"at": time.time()}), flush=True)  # and exit at once: traces still queued
""")


class Background:
    """A function running on its own thread; ``result()`` waits for it and re-raises."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self._outcome: list[Any] = []

        def run() -> None:
            try:
                self._outcome.append(("ok", function()))
            except BaseException as e:
                self._outcome.append(("raised", e))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self, timeout: float = 240.0) -> Any:
        self._thread.join(timeout)
        assert self._outcome, f"still running after {timeout} s"
        kind, value = self._outcome[0]
        if kind == "raised":
            raise value
        return value


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every child scenario of this module, started at once so their start-ups overlap."""
    degraded = RawServer(status=500, body=b'{"error_code": "INTERNAL_ERROR"}')
    port = free_port()
    folders = {name: tmp_path_factory.mktemp(name) for name in (
        "down", "degraded", "race-plain", "race-genai", "server")}
    started: dict[str, Any] = {
        "down": Child(APP, f"http://127.0.0.1:{port}", cwd=folders["down"]),
        "degraded": Child(APP, degraded.url, cwd=folders["degraded"]),
        "degraded-server": degraded,
        "race-plain": Child(RACE, "plain", "200", cwd=folders["race-plain"]),
        "race-genai": Child(RACE, "genai", "200", cwd=folders["race-genai"]),
        "race-genai-store": folders["race-genai"] / "store" / "mlflow.db",
    }
    server = MlflowServer(folders["server"], port=port)

    def down_then_back() -> dict[str, Any]:
        # The app starts while nothing listens on its tracking URI; then the server comes up.
        down: Child = started["down"]
        seen = {"enabled": down.read(), "while_down": down.send("calls 3")}
        server.start()
        return seen

    started["down-then-back"] = Background(down_then_back)
    started["server"] = server
    yield started
    for child in started.values():
        if isinstance(child, Child):
            child.kill()
    server.stop()
    degraded.stop()


# --- the tracking server: down, slow or failing, at start-up and later ------------------------


def test_a_failing_then_slow_tracking_server_never_reaches_the_app(
        children: dict[str, Any]) -> None:
    app: Child = children["degraded"]
    server: RawServer = children["degraded-server"]

    enabled = app.read()  # against a server answering 500 to everything
    assert enabled["errors"] == []  # enable_tracing() warned, did not raise
    assert enabled["experiment_id"] is None
    assert "genai_tracing: could not set experiment" in app.stderr()
    failing = app.send("calls 20")
    assert failing["errors"] == []  # every answer exactly the untraced one, nothing raised
    server.status, server.delay = 200, 5.0  # now it takes 5 s to answer anything
    slow = app.send("calls 20")
    assert slow["errors"] == []
    exit_seconds = app.exit()  # exports to the slow server still queued and in flight

    assert exit_seconds < EXIT_BOUND_S, f"exit took {exit_seconds:.0f} s"


def test_a_tracking_server_down_at_start_up_then_back_then_gone_never_reaches_the_app(
        children: dict[str, Any]) -> None:
    app: Child = children["down"]
    server: MlflowServer = children["server"]

    seen = children["down-then-back"].result()
    assert seen["enabled"]["errors"] == [] and seen["enabled"]["experiment_id"] is None
    assert "genai_tracing: could not set experiment" in app.stderr()
    assert seen["while_down"]["errors"] == []

    back = app.send("calls 3")  # the server answers on the same address now
    assert back["errors"] == []
    app.send("flush")
    # Spans of a trace in a server-created experiment are read through the server's artifacts
    # endpoint, which MLflow reaches through the global tracking URI.
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url)
    try:
        trace = mlflow.MlflowClient(server.url).get_trace(back["trace_id"])
    finally:
        mlflow.set_tracking_uri(previous_uri)
    (span,) = llm_spans(trace)
    assert span.attributes["mlflow.chat.tokenUsage"]["total_tokens"] == 15
    assert trace.info.cost["total_cost"] > 0

    # The experiment enable_tracing() could not set is set from the background once the server
    # answers (retried 1, 2, 4... s apart): later traces land there, not in the default one.
    client = mlflow.MlflowClient(server.url)

    def in_named_experiment(trace_id: str) -> bool:
        experiment = client.get_experiment_by_name("genai-tracing")
        return experiment is not None and trace_id in {t.info.trace_id for t in client.search_traces(
            locations=[experiment.experiment_id], max_results=500, include_spans=False)}

    deadline = time.monotonic() + 90
    while True:
        later = app.send("calls 1")
        app.send("flush")
        if in_named_experiment(later["trace_id"]) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert in_named_experiment(later["trace_id"])
    assert "the tracking store answers again" in app.stderr()

    server.stop()  # and gone again, for good
    gone = app.send("calls 3")
    assert gone["errors"] == []
    exit_seconds = app.exit()
    assert exit_seconds < EXIT_BOUND_S, f"exit took {exit_seconds:.0f} s"


def test_the_exit_probe_tells_a_server_that_answers_from_one_that_does_not() -> None:
    from genai_tracing import _export

    servers = {status: RawServer(status=status) for status in (200, 401, 404, 500, 503)}
    try:
        answers = {status: _export._answers(server.url) for status, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()

    assert answers == {200: True, 401: True, 404: True, 500: False, 503: False}
    assert _export._answers(f"http://user:secret@127.0.0.1:{free_port()}/prefix") is False


def test_bad_exit_timeout_fails_at_enable_time(mlflow_store: TemporaryStore,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_TRACING_EXIT_TIMEOUT", "soon")

    with pytest.raises(genai_tracing.ConfigurationError) as raised:
        genai_tracing.enable_tracing(providers=["openai"])

    assert "GENAI_TRACING_EXIT_TIMEOUT" in str(raised.value)
    assert genai_tracing.active_config() is None


# --- imports on background threads, and exit right after the last call ------------------------


def test_the_half_imported_httpx_race_is_impossible_with_genai_tracing(
        children: dict[str, Any]) -> None:
    plain, ours = children["race-plain"], children["race-genai"]

    reproduced = plain.read()
    result = ours.read()
    plain.exit()
    exit_seconds = ours.exit()  # right after its last call

    # Plain MLflow: its export thread imports litellm (and so httpx) while the user calls.
    assert reproduced["httpx_loaded_before_calls"] is False
    assert any("partially initialized module 'httpx'" in f for f in reproduced["failures"]), \
        reproduced
    # genai_tracing imported it in the thread that called enable_tracing(): nothing to race.
    assert result["httpx_loaded_before_calls"] is True
    assert result["failures"] == [] and result["calls"] == 200
    # The bounded exit flush still wrote every trace the process made.
    assert exit_seconds < EXIT_BOUND_S
    client = mlflow.MlflowClient(f"sqlite:///{children['race-genai-store']}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert len(client.search_traces(locations=experiments, max_results=500)) == 200


# --- the sqlite store locked by another process, or read-only ---------------------------------

LOCK_HOLDER = textwrap.dedent("""
    import sqlite3, sys
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    connection.execute("ROLLBACK")
""")


@contextmanager
def locked(store: TemporaryStore) -> Iterator[None]:
    """An exclusive sqlite lock on the store's file, held by another process."""
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER,
                               store.uri[len("sqlite:///"):]],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)


def answer(fake: FakeProvider, client: Any) -> dict[str, Any]:
    """The answer as the user sees it, but for its id (numbered by the fake)."""
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).model_dump()
    return {k: v for k, v in reply.items() if k != "id"}


def test_a_store_locked_by_another_process_costs_the_app_nothing(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    client = openai_client(fake_provider)
    untraced = answer(fake_provider, client)
    genai_tracing.enable_tracing(providers=["openai"])
    assert answer(fake_provider, client) == untraced  # the tracer is up, the store known

    with locked(mlflow_store):
        for _ in range(3):
            assert answer(fake_provider, client) == untraced

    assert answer(fake_provider, client) == untraced
    after = mlflow.get_last_active_trace_id()
    assert llm_spans(mlflow_store.get_trace(after))[0].attributes["mlflow.llm.cost"]


def test_enable_on_a_locked_store_warns_and_traces_once_it_is_released(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        caplog: pytest.LogCaptureFixture) -> None:
    client = openai_client(fake_provider)
    untraced = answer(fake_provider, client)

    with locked(mlflow_store):
        config = genai_tracing.enable_tracing(providers=["openai"])

    assert config.experiment_id is None
    assert "could not set experiment" in caplog.text and "locked" in caplog.text
    assert answer(fake_provider, client) == untraced
    (trace,) = mlflow_store.traces()
    assert llm_spans(trace)[0].attributes["mlflow.chat.tokenUsage"]["total_tokens"] == 15


def test_a_read_only_store_costs_the_app_nothing(fake_provider: FakeProvider, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # MLflow reads "file:<path>" of this URI as a relative folder for artifacts: keep it out of
    # the working directory.
    monkeypatch.chdir(tmp_path)
    path = Path(TemporaryStore.create(tmp_path).uri[len("sqlite:///"):])
    before = path.read_bytes()
    client = openai_client(fake_provider)
    untraced = answer(fake_provider, client)

    with TemporaryStore(folder=tmp_path, uri=f"sqlite:///file:{path}?mode=ro&uri=true"):
        config = genai_tracing.enable_tracing(providers=["openai"])
        for _ in range(3):
            assert answer(fake_provider, client) == untraced
        assert config.experiment_id is None
        assert "readonly database" in caplog.text

    assert path.read_bytes() == before


# --- the provider SDK raises -----------------------------------------------------------------

MALFORMED_JSON = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{'
_keep: list[Any] = []  # a collected google-genai client closes its connection


def _gemini(base_url: str, timeout: float) -> Any:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="test", http_options=types.HttpOptions(
        base_url=base_url, timeout=int(timeout * 1000),
        retry_options=types.HttpRetryOptions(attempts=1)))
    _keep.append(client)
    return client


# Each makes one call the way a user would; (base URL, timeout) point it at the fault.
def _anthropic_manager(url: str, timeout: float) -> Any:
    client = __import__("anthropic").Anthropic(base_url=url, api_key="test", max_retries=0,
                                               timeout=timeout)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=16,
                                messages=MESSAGES) as stream:
        return "".join(stream.text_stream)


CALLS: dict[str, Callable[[str, float], Any]] = {
    "openai": lambda url, t: __import__("openai").OpenAI(
        base_url=url + "/v1", api_key="test", max_retries=0, timeout=t
    ).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
    "anthropic": lambda url, t: __import__("anthropic").Anthropic(
        base_url=url, api_key="test", max_retries=0, timeout=t
    ).messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=MESSAGES),
    "anthropic-stream": lambda url, t: list(__import__("anthropic").Anthropic(
        base_url=url, api_key="test", max_retries=0, timeout=t
    ).messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=MESSAGES,
                      stream=True)),
    "anthropic-manager": lambda url, t: _anthropic_manager(url, t),
    "gemini": lambda url, t: _gemini(url, t).models.generate_content(
        model="gemini-2.5-flash", contents="Say hello"),
    "gemini-stream": lambda url, t: list(_gemini(url, t).models.generate_content_stream(
        model="gemini-2.5-flash", contents="Say hello")),
    "litellm": lambda url, t: __import__("litellm").completion(
        model="anthropic/claude-sonnet-4-5", api_base=url, api_key="test", messages=MESSAGES,
        timeout=t),
}


@contextmanager
def fault(kind: str, fake: FakeProvider) -> Iterator[tuple[str, float]]:
    if kind == "malformed-json":
        raw = RawServer(body=MALFORMED_JSON)
        try:
            yield raw.url, 10.0
        finally:
            raw.stop()
        return
    if kind == "timeout":
        fake.delay = 1.0
        yield fake.url, 0.2
    else:
        fake.error = (int(kind), "the provider is having a bad day")
        yield fake.url, 10.0
    fake.reset()


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        result = call()
    except Exception as e:
        return "raised", e
    return "returned", result


@pytest.mark.parametrize("kind", ["timeout", "429", "500", "malformed-json"])
@pytest.mark.parametrize("name", list(CALLS))
def test_a_provider_error_passes_through_unchanged_and_is_on_the_span(
        name: str, kind: str, fake_provider: FakeProvider,
        mlflow_store: TemporaryStore) -> None:
    with fault(kind, fake_provider) as (url, timeout):
        untraced = outcome(lambda: CALLS[name](url, timeout))
    genai_tracing.enable_tracing(providers=[name.split("-")[0]])
    with fault(kind, fake_provider) as (url, timeout):
        traced = outcome(lambda: CALLS[name](url, timeout))

    if untraced[0] == "returned":  # a malformed body some SDKs shrug off
        assert traced[0] == "returned"
        return
    assert traced[0] == "raised", traced
    error = traced[1]
    assert type(error) is type(untraced[1])
    if kind != "timeout":  # timeouts name the time they took
        assert str(error) == str(untraced[1])
    trace = mlflow_store.last_trace()
    assert trace.info.state == "ERROR"
    failed = [s for s in trace.data.spans if s.status.status_code == "ERROR"]
    assert failed, [s.name for s in trace.data.spans]
    events = [e for s in failed for e in s.events if e.name == "exception"]
    assert any(e.attributes["exception.type"] == type(error).__name__ for e in events)
    # No usage came back: no cost is shown, never a cost of 0, and the span says why.
    assert all(s.attributes.get("mlflow.llm.cost") in (None, {}) for s in trace.data.spans)
    if kind in ("429", "500"):
        # The provider refused: nothing was generated or billed, so the call is not "unpriced"
        # and the trace's cost is not incomplete on its account.
        # (An inner span MLflow made for the same call carries the same, marked counted_on.)
        (call,) = [s for s in failed if s.attributes.get("genai_tracing.usage.flags")
                   and "genai_tracing.counted_on" not in s.attributes]
        assert call.attributes["genai_tracing.usage.flags"] == ["failed"]
        assert call.attributes["genai_tracing.failed_with"].endswith(type(error).__name__)
        assert not any(s.attributes.get("genai_tracing.cost.unpriced") for s in trace.data.spans)
        assert trace.info.request_metadata.get("genai_tracing.cost.complete") != "false"
    else:
        # A timeout or an unreadable answer: the provider may have done (and billed) the work.
        call = [s for s in failed if s.attributes.get("genai_tracing.cost.unpriced")]
        assert call and "missing" in call[0].attributes["genai_tracing.usage.flags"]
        assert trace.info.request_metadata["genai_tracing.cost.complete"] == "false"


class Recorder:
    """Sits under genai_tracing's own patch and keeps what the SDK raised, to compare objects."""

    def __init__(self) -> None:
        self.raised: list[BaseException] = []

    def function(self, original: Callable[..., Any]) -> Callable[..., Any]:
        import functools

        @functools.wraps(original)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            try:
                result = original(*args, **kwargs)
            except BaseException as e:
                self.raised.append(e)
                raise
            return self.generator(result) if hasattr(result, "gi_frame") else result
        return recorded

    def generator(self, generator: Any) -> Any:
        try:
            yield from generator
        except BaseException as e:
            self.raised.append(e)
            raise


OUR_ENTRY_POINTS = {
    # name: (owner, attribute, the call through it)
    "litellm.completion": (lambda: __import__("litellm"), "completion", "litellm"),
    # (Anthropic's stream=True create is MLflow's own patch; messages.stream() raises from the
    # SDK's own stream manager, which genai_tracing does not wrap.)
    "gemini stream": (lambda: __import__("google.genai.models").genai.models.Models,
                      "generate_content_stream", "gemini-stream"),
}


@pytest.mark.parametrize("kind", ["429", "timeout"])
@pytest.mark.parametrize("entry", list(OUR_ENTRY_POINTS))
def test_our_own_entry_points_raise_the_very_exception_object(
        entry: str, kind: str, fake_provider: FakeProvider,
        mlflow_store: TemporaryStore) -> None:
    get_owner, attribute, call = OUR_ENTRY_POINTS[entry]
    owner = get_owner()
    original = getattr(owner, attribute)
    recorder = Recorder()
    setattr(owner, attribute, recorder.function(original))
    try:
        genai_tracing.enable_tracing(providers=[call.split("-")[0]])
        assert getattr(owner, attribute).__genai_tracing_original__ is not original
        with fault(kind, fake_provider) as (url, timeout):
            result = outcome(lambda: CALLS[call](url, timeout))
        genai_tracing.disable_tracing()
    finally:
        genai_tracing.disable_tracing()
        setattr(owner, attribute, original)

    assert result[0] == "raised"
    assert recorder.raised and result[1] is recorder.raised[-1]


# --- malformed usage -------------------------------------------------------------------------

# OpenAI usage as a broken provider (or proxy) might send it, and what must be recorded.
MALFORMED_USAGE = {
    "missing-completion": ({"prompt_tokens": 12}, {"input_tokens": 12}),
    "null-counts": ({"prompt_tokens": None, "completion_tokens": 5, "total_tokens": None},
                    {"output_tokens": 5}),
    "word-strings": ({"prompt_tokens": "twelve", "completion_tokens": "5",
                      "total_tokens": "17"}, {"output_tokens": 5}),
    "negative": ({"prompt_tokens": -12, "completion_tokens": 5, "total_tokens": -7},
                 {"output_tokens": 5}),
    "empty": ({}, {}),
    "not-an-object": ("lots", {}),
}


@pytest.mark.parametrize("case", list(MALFORMED_USAGE))
def test_malformed_usage_keeps_what_makes_sense_and_flags_the_span(
        case: str, fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    raw, readable = MALFORMED_USAGE[case]
    client = openai_client(fake_provider)
    fake_provider.raw_usage = raw
    untraced = answer(fake_provider, client)
    fake_provider.raw_usage = raw
    genai_tracing.enable_tracing(providers=["openai"])

    assert answer(fake_provider, client) == untraced

    if case == "not-an-object":
        # MLflow's openai autolog fails to end its own span on this (it logs a warning), so the
        # trace never reaches the store; the call itself is untouched, which is what holds here.
        return
    (span,) = llm_spans(mlflow_store.last_trace())
    attributes = span.attributes
    assert attributes["genai_tracing.cost.unpriced"] is True
    assert attributes.get("mlflow.llm.cost") in (None, {})
    breakdown = attributes.get("genai_tracing.usage", {})
    assert {k: breakdown[k] for k in ("input_tokens", "output_tokens") if k in breakdown} \
        == readable
    # Never a negative or non-numeric count; MLflow's autolog writes null for a missing one.
    usage = attributes.get("mlflow.chat.tokenUsage") or {}
    assert all(v is None or (isinstance(v, int) and v >= 0) for v in usage.values())


def test_null_usage_is_flagged_missing(fake_provider: FakeProvider,
                                       mlflow_store: TemporaryStore) -> None:
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hi"}}], "usage": None}
    fake_provider.error = (200, body)  # any body, sent verbatim
    client = openai_client(fake_provider)
    untraced = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    genai_tracing.enable_tracing(providers=["openai"])

    traced = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert traced.model_dump() == untraced.model_dump()
    (span,) = llm_spans(mlflow_store.last_trace())
    assert span.attributes["genai_tracing.usage.flags"] == ["missing"]
    assert "mlflow.chat.tokenUsage" not in span.attributes


# --- very large and unusual content ----------------------------------------------------------


def test_ten_megabyte_prompt_and_answer(fake_provider: FakeProvider,
                                        mlflow_store: TemporaryStore) -> None:
    big = "All work and no play. " * (10 * 1024 * 1024 // 22)
    messages = [{"role": "user", "content": big}]
    fake_provider.text = big
    fake_provider.usage = FakeUsage(input_tokens=2_500_000, output_tokens=2_500_000)
    client = openai_client(fake_provider)

    def ask() -> dict[str, Any]:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        return {k: v for k, v in reply.model_dump().items() if k != "id"}

    untraced = ask()
    genai_tracing.enable_tracing(providers=["openai"], prices={"models": {"gpt-4o-mini": {
        "input_per_million": 0.15, "output_per_million": 0.6}}})
    traced = ask()

    assert traced == untraced
    assert len(traced["choices"][0]["message"]["content"]) == len(big)
    trace = mlflow_store.last_trace()
    assert trace.info.cost["total_cost"] == pytest.approx(2.5 * 0.15 + 2.5 * 0.6)
    assert trace.info.request_metadata["genai_tracing.prompt_chars"] == str(len(big))
    (span,) = llm_spans(trace)
    assert len(span.outputs["choices"][0]["message"]["content"]) == len(big)  # stored whole


UNUSUAL = {
    "emoji-and-scripts": "Grüße 👋🏽 こんにちは مرحبا 🇺🇦 \U0001F9D1\u200d\U0001F4BB",
    "lone-surrogate": "broken \udcff text \ud800",
    "nul-and-controls": "a\x00b\x1bc\x7f",
}


@pytest.mark.parametrize("case", list(UNUSUAL))
@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "litellm"])
def test_non_utf8_and_emoji_content(provider: str, case: str, fake_provider: FakeProvider,
                                    mlflow_store: TemporaryStore) -> None:
    text = UNUSUAL[case]

    def call() -> tuple[str, Any]:
        fake_provider.reset()
        fake_provider.text = text
        messages = [{"role": "user", "content": text}]
        if provider == "openai":
            return outcome(lambda: openai_client(fake_provider).chat.completions.create(
                model="gpt-4o-mini", messages=messages).choices[0].message.content)
        if provider == "anthropic":
            return outcome(lambda: anthropic_client(fake_provider).messages.create(
                model="claude-sonnet-4-5", max_tokens=16, messages=messages).content[0].text)
        if provider == "gemini":
            client = gemini_client(fake_provider)
            return outcome(lambda: client.models.generate_content(
                model="gemini-2.5-flash", contents=text).text)
        import litellm

        return outcome(lambda: litellm.completion(
            model="anthropic/claude-sonnet-4-5", api_base=fake_provider.url, api_key="test",
            messages=messages).choices[0].message.content)

    untraced = call()
    genai_tracing.enable_tracing(providers=[provider])
    traced = call()

    assert traced[0] == untraced[0]
    if traced[0] == "raised":  # the SDK itself refuses the text, with tracing or without
        assert type(traced[1]) is type(untraced[1])
        return
    assert traced[1] == untraced[1]
    # Stored, cost and all; a lone surrogate (not valid Unicode, so not UTF-8) is kept as a JSON
    # escape, where plain MLflow's exporter fails to encode it and drops the whole trace.
    trace = mlflow_store.last_trace()
    (span,) = llm_spans(trace)
    assert span.attributes["mlflow.chat.tokenUsage"]["total_tokens"] == 15
    assert "total_cost" in span.attributes["mlflow.llm.cost"]
    assert any(text in value for s in trace.data.spans for value in strings(s.inputs))


def strings(value: Any) -> Iterator[str]:
    """Every string nested in a JSON-like value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


# --- prices changed or deleted after enable ---------------------------------------------------


def test_a_price_file_changed_or_deleted_after_enable_changes_nothing(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gpt-4o-mini"]\ninput_per_million = 1.0\n'
                      'output_per_million = 2.0\n')
    genai_tracing.enable_tracing(providers=["openai"], prices=str(prices))
    client = openai_client(fake_provider)
    fake_provider.usage = FakeUsage(input_tokens=1_000_000, output_tokens=1_000_000)

    costs = []
    for change in ("as loaded", "rewritten", "broken", "deleted"):
        if change == "rewritten":
            prices.write_text('[models."gpt-4o-mini"]\ninput_per_million = 100.0\n'
                              'output_per_million = 200.0\n')
        elif change == "broken":
            prices.write_text("this is [not toml")
        elif change == "deleted":
            prices.unlink()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        costs.append(mlflow_store.last_trace().info.cost["total_cost"])

    assert costs == [pytest.approx(3.0)] * 4


# --- load: nothing lost, nothing mixed --------------------------------------------------------


THREAD_TRACES = 5


def test_threads_and_asyncio_tasks_each_get_exactly_their_own_trace(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    import asyncio

    rates = (0.15, 0.6)
    genai_tracing.enable_tracing(providers=["openai"], prices={"models": {"gpt-4o-mini": {
        "input_per_million": rates[0], "output_per_million": rates[1]}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    one_call = (1000 * rates[0] + 100 * rates[1]) / 1_000_000
    made: dict[str, tuple[str, int]] = {}
    lock = threading.Lock()
    client = openai_client(fake_provider)
    connections: Any = None

    @mlflow.trace(name="request")
    def request(calls: int) -> None:
        for _ in range(calls):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def worker(number: int) -> None:
        for i in range(THREAD_TRACES):
            user, calls = f"thread-{number}-{i}", 1 + i % 2
            with genai_tracing.attribute(user=user):
                request(calls)
            with lock:
                made[mlflow.get_last_active_trace_id(thread_local=True)] = (user, calls)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async_client = openai_client(fake_provider, asynchronous=True)

    @mlflow.trace(name="request")
    async def async_request(calls: int) -> str:
        for _ in range(calls):
            async with connections:  # 200 traces open at once, 16 connections at a time
                await async_client.chat.completions.create(model="gpt-4o-mini",
                                                           messages=MESSAGES)
        return mlflow.get_current_active_span().trace_id

    async def attributed(user: str, calls: int) -> str:
        with genai_tracing.attribute(user=user):
            return await async_request(calls)

    async def tasks() -> None:
        nonlocal connections
        connections = asyncio.Semaphore(16)
        specs = [(f"task-{n}", 1 + n % 2) for n in range(200)]
        trace_ids = await asyncio.gather(*(attributed(u, c) for u, c in specs))
        made.update(dict(zip(trace_ids, specs)))

    asyncio.run(tasks())

    stored = mlflow_store.traces()
    assert len(stored) == len(made) == 8 * THREAD_TRACES + 200  # nothing lost
    for trace in stored:
        user, calls = made[trace.info.trace_id]
        assert trace.info.request_metadata["mlflow.trace.user"] == user  # nothing mixed
        assert len(llm_spans(trace)) == calls
        assert trace.info.cost["total_cost"] == pytest.approx(calls * one_call, rel=1e-12)
    total = sum(t.info.cost["total_cost"] for t in stored)
    expected = sum(calls for _, calls in made.values()) * one_call
    assert round(total, 2) == round(expected, 2)
    assert total == pytest.approx(expected, rel=1e-9)
