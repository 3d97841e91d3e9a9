"""Export that never holds the app hostage: bounded HTTP retries, a deeper queue, a bounded exit.

MLflow exports traces on background threads, which keeps a slow store off the request path. Three
of its defaults still hurt an app whose tracking server is down or slow:

- every REST call is retried 7 times with exponential backoff, so ``mlflow.set_experiment()``
  against a closed port takes about 250 s to give up, and each queued export as long;
- at interpreter exit MLflow drains its export queue with no time limit, so a process with traces
  queued for an unreachable server takes minutes to exit;
- the export queue holds 1,000 tasks (two per trace), so a burst of a few thousand calls against a
  sqlite store drops about a third of its traces ("Trace export queue is full");
- ended traces wait in MLflow's in-memory trace buffer until its span batcher hands them to the
  export queue, and that buffer keeps 1,000 traces: under a burst the oldest are evicted and
  then skipped at export without a word (about a third of a 2,000-call burst on 8 threads).

``harden()`` sets tighter defaults through MLflow's own environment variables (a value the user
set is always kept) and registers one exit hook: it waits while traces are still being written
(at most 30 s with none written, 5 minutes in all; not at all for a remote store that does not
answer), then drops what is left with one warning.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ._errors import ConfigurationError
from ._guard import logger
from ._mlflow import export_queue_is_full, is_trace_export, trace_is_buffered

if TYPE_CHECKING:
    from ._config import TracingConfig

ENV_EXIT_TIMEOUT = "GENAI_TRACING_EXIT_TIMEOUT"
# Exit waits while traces are being written, but no longer than this with none written...
DEFAULT_EXIT_TIMEOUT = 30.0
# ...and no longer than this in all, even while a failing store keeps "finishing" exports.
MAX_EXIT_WAIT = 300.0
# Two tasks per trace (its spans, its info): room for a burst of 5,000 traces; and as many ended
# traces waiting in the buffer before them.
QUEUE_SIZE = {"MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE": "10000",
              "MLFLOW_TRACE_BUFFER_MAX_SIZE": "10000"}
# For a remote store: three attempts 0 s and ~2-3 s apart, each at most 10 s, instead of eight
# attempts up to two minutes apart.
REMOTE_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}

_lock = threading.Lock()
_exit_timeout = DEFAULT_EXIT_TIMEOUT
_hook_registered = False


def harden(config: TracingConfig) -> None:
    """Apply the export defaults for ``config``; call before anything talks to the store."""
    global _exit_timeout
    _exit_timeout = resolve_exit_timeout()
    defaults = dict(QUEUE_SIZE)
    if is_remote(config.tracking_uri):
        defaults.update(REMOTE_HTTP)
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    _register_exit_hook()
    _count_drops()


_dropped_traces = 0
_dropped_exports = 0


def dropped_traces() -> int:
    """How many finished traces MLflow dropped in this process instead of exporting them.

    MLflow drops an export when its queue is full, and evicts the oldest ended trace when its
    in-memory buffer is full, rather than block the app; genai_tracing counts each such trace and
    says so in one warning, so an overload is never silent::

        if genai_tracing.dropped_traces():
            ...  # raise MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE, or a faster store
    """
    return _dropped_traces


def _count_drops() -> None:
    """Wrap MLflow's export-queue ``put`` and trace-buffer ``pop_trace`` (once) to count drops."""
    from ._mlflow import hook_export_drops

    hook_export_drops(_put_counting_drops, _pop_trace_counting_evictions)


def _put_counting_drops(put: Any) -> Any:
    def put_counting_drops(self: Any, task: Any) -> None:
        full = export_queue_is_full(self)
        put(self, task)
        if full:
            _record_drop(task)
    return put_counting_drops


def _pop_trace_counting_evictions(pop_trace: Any) -> Any:
    """A root span whose trace is no longer in MLflow's buffer at export was evicted: lost."""
    def pop_trace_counting_evictions(self: Any, otel_trace_id: int) -> Any:
        known = trace_is_buffered(self, otel_trace_id)
        popped = pop_trace(self, otel_trace_id)
        if popped is None and known:
            _record_drop(None, evicted=True)
        return popped
    return pop_trace_counting_evictions


def _record_drop(task: Any, *, evicted: bool = False) -> None:
    global _dropped_traces, _dropped_exports
    with _lock:
        first = _dropped_exports == 0
        _dropped_exports += 1
        # A trace is exported as span batches then one trace record; count the trace records.
        if evicted or getattr(getattr(task, "handler", None), "__name__", "") == "_log_trace":
            _dropped_traces += 1
    if first and evicted:
        logger.warning("genai_tracing: MLflow's in-memory trace buffer is full, so finished "
                       "traces are being dropped before export (genai_tracing.dropped_traces() "
                       "counts them). Raise MLFLOW_TRACE_BUFFER_MAX_SIZE, or use a faster "
                       "tracking store.")
    elif first:
        logger.warning("genai_tracing: MLflow's trace export queue is full, so traces are being "
                       "dropped (genai_tracing.dropped_traces() counts them). Raise "
                       "MLFLOW_ASYNC_TRACE_LOGGING_MAX_QUEUE_SIZE or "
                       "MLFLOW_ASYNC_TRACE_LOGGING_MAX_WORKERS, or use a faster tracking store.")


def resolve_exit_timeout() -> float:
    raw = os.environ.get(ENV_EXIT_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_EXIT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigurationError(ENV_EXIT_TIMEOUT, raw, "is not a number of seconds",
                                 f"set {ENV_EXIT_TIMEOUT} to e.g. 30 (0 drops what is queued)")
    return value


def is_remote(uri: str | None) -> bool:
    return urlparse(uri or "").scheme.lower() in ("http", "https")


def _register_exit_hook() -> None:
    global _hook_registered
    with _lock:
        if _hook_registered:
            return
        _hook_registered = True
    # threading's exit hooks run before non-daemon threads are joined and before atexit, so this
    # one runs while MLflow's export workers still run, and before MLflow's own unbounded drain
    # (an atexit hook registered whenever its exporter is re-created, so order there is unknown).
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - CPython has had it since 3.9
        import atexit

        register = atexit.register
    try:
        register(flush_at_exit)
    except RuntimeError:  # enable_tracing() called while the interpreter shuts down
        logger.debug("genai_tracing: no exit flush registered", exc_info=True)


def flush_at_exit() -> None:
    try:
        flush(_exit_timeout)
    except Exception:
        logger.debug("genai_tracing: exit flush failed", exc_info=True)


def flush(timeout: float, cap: float = MAX_EXIT_WAIT) -> int:
    """Wait while queued traces are being written; returns how many exports were dropped.

    The wait ends when the queue is empty, when no export finished for ``timeout`` seconds, or
    after ``cap`` seconds; what is still queued then is dropped with one warning. With a remote
    store that does not answer, nothing is waited for. Exports already in flight finish within
    MLflow's request timeout and retries.
    """
    import mlflow

    started = time.monotonic()
    queues = _export_queues(timeout)
    if not queues:
        return 0
    uri = mlflow.get_tracking_uri()
    down = is_remote(uri) and not _answers(uri)
    left, progress_at = _pending(queues), time.monotonic()
    while left and not down:
        time.sleep(0.02)
        now, still = time.monotonic(), _pending(queues)
        if still < left:
            left, progress_at = still, now
        elif now - progress_at >= timeout or now - started >= cap:
            break
    traces = dropped = 0
    for queue in queues:
        for task in _drain(queue):
            dropped += 1
            traces += is_trace_export(task)
    if dropped:
        why = "does not answer" if down else f"wrote nothing for {timeout:g} s"
        logger.warning("genai_tracing: %d trace(s) not exported: the tracking store %s %s. "
                       "Set %s to wait longer at exit.", traces, uri, why, ENV_EXIT_TIMEOUT)
    return dropped


def _pending(queues: list[Any]) -> int:
    return sum(q.unfinished_tasks for q in queues)


def _export_queues(timeout: float) -> list[Any]:
    """MLflow's export queues, after moving every ended span into them (local, fast)."""
    from ._mlflow import export_queues

    return export_queues(timeout)


def _answers(uri: str) -> bool:
    """Whether the server answers at all within a second (any status but a server error)."""
    import urllib.error
    import urllib.request

    parts = urlparse(uri)
    url = parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1],  # no credentials in a probe
                         path=parts.path.rstrip("/") + "/health", query="", fragment="").geturl()
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except urllib.error.URLError as e:
        import ssl

        # A TLS setup MLflow is told to trust (a private CA, no verification) still answered.
        return isinstance(e.reason, ssl.SSLError)
    except Exception:
        return False


def _drain(queue: Any) -> list[Any]:
    from queue import Empty

    drained = []
    while True:
        try:
            drained.append(queue.get_nowait())
        except Empty:
            return drained
        queue.task_done()
