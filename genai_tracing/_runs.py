"""``enable_tracing(log_runs=True)``: one MLflow run per request, written off the request path.

The span processor hands each finished root span to ``observe()``, which copies what the run needs
into a queue; one background thread writes the runs. Dashboards built on runs then see every
request with its user, tags, latency, tokens and cost.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError
from ._guard import internal_error, logger

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan

ENV_LOG_RUNS = "GENAI_TRACING_LOG_RUNS"
RUN_TRACE_TAG = "genai_tracing.trace_id"
_MAX_QUEUED = 10_000  # beyond this, runs are dropped (and said so once) rather than pile up
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class RunRecord:
    """What one request's run holds, copied from the trace when its root span ended."""

    trace_id: str
    experiment_id: str | None
    tracking_uri: str
    start_ms: int
    user: str | None
    session: str | None
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def resolve(log_runs: bool | None) -> tuple[bool, str]:
    """The option, then ``GENAI_TRACING_LOG_RUNS``, then off."""
    if log_runs is not None:
        if not isinstance(log_runs, bool):
            raise ConfigurationError("log_runs", log_runs, "must be True or False",
                                     "pass log_runs=True or log_runs=False")
        return log_runs, "argument"
    raw = os.environ.get(ENV_LOG_RUNS, "").strip().lower()
    if raw in _TRUE:
        return True, ENV_LOG_RUNS
    if raw in _FALSE:
        return False, "default" if not raw else ENV_LOG_RUNS
    raise ConfigurationError(ENV_LOG_RUNS, raw, "is not a boolean",
                             f"set {ENV_LOG_RUNS} to one of 1/true/yes/on or 0/false/no/off")


class _Writer:
    """The background thread and its queue."""

    def __init__(self) -> None:
        self.queue: queue.Queue[RunRecord | None] = queue.Queue(maxsize=_MAX_QUEUED)
        self.thread = threading.Thread(target=self._loop, name="genai_tracing-runs", daemon=True)
        self.dropped = 0
        self.thread.start()

    def put(self, record: RunRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                logger.warning("genai_tracing: more than %d runs are waiting to be written; "
                               "runs are dropped until the store catches up (traces are not "
                               "affected).", _MAX_QUEUED)

    def _loop(self) -> None:
        clients: dict[str, Any] = {}
        while True:
            record = self.queue.get()
            try:
                if record is None:
                    return
                _write(record, clients)
            except Exception:
                internal_error("writing a request's run")
            finally:
                self.queue.task_done()

    def stop(self, timeout: float) -> None:
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self.thread.join(timeout)


_lock = threading.Lock()
_writer: _Writer | None = None


def configure(enabled: bool) -> None:
    """Start or stop the writer; stopping writes what is queued first."""
    global _writer
    with _lock:
        writer = _writer
        if enabled and writer is None:
            _writer = _Writer()
            return
        if not enabled and writer is not None:
            _writer = None
    if not enabled and writer is not None:
        writer.stop(timeout=30.0)


def flush(timeout: float = 30.0) -> None:
    """Wait until every queued run is written (tests, scripts about to exit)."""
    writer = _writer
    if writer is None:
        return
    deadline = time.monotonic() + timeout
    while writer.queue.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.005)


atexit.register(lambda: configure(False))


def observe(span: LiveSpan) -> None:
    """At a root span's end, queue its request's run; cheap, no I/O on the caller's thread."""
    writer = _writer
    if writer is None or span.parent_id is not None:
        return
    from ._mlflow import open_trace

    with open_trace(span.trace_id) as trace:
        if trace is None:
            return
        info = trace.info
        metadata = dict(info.trace_metadata)
        tags = {k: v for k, v in info.tags.items() if not k.startswith("mlflow.")}
        experiment_id = getattr(info, "experiment_id", None)
        start_ms = info.request_time
    writer.put(_record(span, metadata, tags, experiment_id, start_ms))


def _record(span: Any, metadata: dict[str, str], tags: dict[str, str],
            experiment_id: str | None, start_ms: int) -> RunRecord:
    import mlflow

    from ._keys import LATENCY_MS, TRACE_COST, TRACE_SESSION, TRACE_TOKEN_USAGE, TRACE_USER

    tokens = _json(metadata.get(TRACE_TOKEN_USAGE))
    cost = _json(metadata.get(TRACE_COST))
    metrics: dict[str, float] = {
        "input_tokens": float(tokens.get("input_tokens", 0) or 0),
        "output_tokens": float(tokens.get("output_tokens", 0) or 0),
    }
    if LATENCY_MS in metadata:
        metrics["processing_time_ms"] = float(metadata[LATENCY_MS])
    if cost.get("total_cost") is not None:
        # No metric rather than 0 when nothing in the request could be priced.
        metrics["estimated_cost_usd"] = float(cost["total_cost"])
    return RunRecord(span.trace_id, experiment_id, mlflow.get_tracking_uri(), start_ms,
                     metadata.get(TRACE_USER), metadata.get(TRACE_SESSION), tags, metrics)


def _json(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write(record: RunRecord, clients: dict[str, Any]) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = clients.get(record.tracking_uri)
    if client is None:
        client = clients[record.tracking_uri] = MlflowClient(record.tracking_uri)
    run_tags = {RUN_TRACE_TAG: record.trace_id}
    if record.user is not None:
        run_tags["user"] = record.user
    if record.session is not None:
        run_tags["session"] = record.session
    run = client.create_run(record.experiment_id or "0", start_time=record.start_ms,
                            tags=run_tags, run_name=f"request-{record.trace_id[-12:]}")
    now = int(time.time() * 1000)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, record.start_ms, 0) for k, v in record.metrics.items()],
        params=[Param(k[:250], str(v)[:6000]) for k, v in record.tags.items()])
    end_ms = record.start_ms + int(record.metrics.get("processing_time_ms", 0))
    client.set_terminated(run.info.run_id, end_time=max(end_ms, record.start_ms) or now)
