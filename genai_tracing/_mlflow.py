"""The one seam to MLflow's tracing internals.

Every use of a name MLflow does not document as public goes through this module, so that a new
MLflow release breaks here, visibly, and nowhere else. Each such use is marked ``PRIVATE:`` with
why it is needed; where the name is missing on the installed MLflow, the feature that needs it is
switched off with one log line (``unavailable()``) and the user's call is never harmed.

Supported MLflow versions are declared in ``pyproject.toml`` and tested by ``.ci/run``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ._guard import logger

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan

_warned: set[str] = set()
_warned_lock = threading.Lock()


def unavailable(feature: str, missing: str) -> None:
    """Say once per process that ``feature`` is off because this MLflow lacks ``missing``."""
    with _warned_lock:
        if feature in _warned:
            return
        _warned.add(feature)
    import mlflow

    logger.warning("genai_tracing: %s is not available with mlflow %s (it has no %s); traced "
                   "calls are unaffected.", feature, getattr(mlflow, "__version__", "?"), missing)


# ---------------------------------------------------------------------------------------------
# Spans genai_tracing makes itself (public API)


def start_span(name: str, span_type: str, inputs: Any, attributes: dict[str, Any]) -> LiveSpan:
    import mlflow

    return mlflow.start_span_no_context(name=name, span_type=span_type, inputs=inputs,
                                        attributes=attributes)


def activate(span: LiveSpan) -> Any:
    """Make ``span`` the current span (so SDK spans made inside nest under it); a token."""
    # PRIVATE: mlflow.tracing.provider.set_span_in_context; the public context managers
    # (mlflow.start_span) cannot hand a span that outlives the call (a stream) to its end.
    from mlflow.tracing.provider import set_span_in_context

    return set_span_in_context(span)


def deactivate(token: Any) -> None:
    from mlflow.tracing.provider import detach_span_from_context

    detach_span_from_context(token)


# ---------------------------------------------------------------------------------------------
# MLflow's in-memory traces


@contextmanager
def open_trace(trace_id: str) -> Iterator[Any]:
    """MLflow's in-memory trace (``None`` once exported), locked while the block runs."""
    # PRIVATE: InMemoryTraceManager holds a trace between its first span and its export; trace
    # totals and attribution are written there, before the trace is exported.
    from mlflow.tracing.trace_manager import InMemoryTraceManager

    with InMemoryTraceManager.get_instance().get_trace(trace_id) as trace:
        yield trace


def trace_start_ms(trace_id: str) -> int | None:
    """When the in-memory trace began (ms since the epoch), if it is still in memory."""
    with open_trace(trace_id) as trace:
        return trace.info.request_time if trace is not None else None


def span_by_id(trace_id: str, span_id: str | None) -> LiveSpan | None:
    if not span_id:
        return None
    from mlflow.tracing.trace_manager import InMemoryTraceManager

    return InMemoryTraceManager.get_instance().get_span_from_id(trace_id, span_id)


def trace_spans(trace: Any) -> list[LiveSpan]:
    return list(trace.span_dict.values())


def trace_metadata(trace: Any) -> dict[str, str]:
    return trace.info.request_metadata


def span_from_traceparent(traceparent: Any) -> LiveSpan | None:
    """The open span a W3C ``traceparent`` header points to (MLflow's autolog puts one on each
    request it traces), if it is in memory."""
    if not isinstance(traceparent, str):
        return None
    parts = traceparent.strip().split("-")
    if len(parts) != 4:
        return None
    try:
        otel_trace_id = int(parts[1], 16)
    except ValueError:
        return None
    from mlflow.tracing.trace_manager import InMemoryTraceManager

    manager = InMemoryTraceManager.get_instance()
    lookup = getattr(manager, "get_mlflow_trace_id_from_otel_id", None)
    if lookup is None:
        unavailable("ending abandoned MLflow stream spans",
                    "InMemoryTraceManager.get_mlflow_trace_id_from_otel_id")
        return None
    trace_id = lookup(otel_trace_id)
    return manager.get_span_from_id(trace_id, parts[2]) if trace_id else None


def traceparent_of(span: LiveSpan) -> str | None:
    """The W3C ``traceparent`` header that points to ``span`` (as MLflow's autolog sends)."""
    context = span._span.get_span_context()  # PRIVATE: the OTel span under a LiveSpan
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


# ---------------------------------------------------------------------------------------------
# Changing a span MLflow made, before it is exported


class DeferredEnd:
    """Holds back MLflow's ``end()`` of one span until ``release()``: the span of a call whose
    answer is a stream that MLflow's autolog ends when the call returns, before any usage."""

    def __init__(self, span: LiveSpan) -> None:
        self.span = span
        self._lock = threading.Lock()
        self._requested: tuple[tuple[Any, ...], dict[str, Any]] | None = None
        self._released = False
        self._real_end = span.end
        # PRIVATE: an instance attribute shadows LiveSpan.end for this one span object.
        span.end = self._hold  # type: ignore[method-assign]

    def _hold(self, outputs: Any = None, *args: Any, **kwargs: Any) -> None:
        if outputs is not None:
            # Recorded now, as end() would: holding the object (the stream itself) would keep
            # the stream from ever being dropped, and its span from ever ending.
            self.span.set_outputs(outputs)
        with self._lock:
            if self._released:
                release = True
            else:
                self._requested = (args, kwargs)
                release = False
        if release:
            self._real_end(*args, **kwargs)

    def release(self, attributes: dict[str, Any] | None = None,
                error: BaseException | None = None) -> None:
        """End the span as MLflow asked (or now, if it has not asked yet), with ``attributes``."""
        with self._lock:
            if self._released:
                return
            self._released = True
            requested = self._requested
        try:
            del self.span.end  # back to LiveSpan.end
        except AttributeError:
            pass
        for key, value in (attributes or {}).items():
            self.span.set_attribute(key, value)
        if error is not None:
            from mlflow.entities import SpanEvent, SpanStatusCode

            self.span.add_event(SpanEvent.from_exception(error))
            self.span.set_status(SpanStatusCode.ERROR)
        if requested is None:
            return  # MLflow has not ended it yet: its own end() will
        args, kwargs = requested
        if error is not None:
            kwargs = {**kwargs, "status": "ERROR"}
        self._real_end(*args, **kwargs)


def escape_attributes(span: Any, escape: Callable[[str], str]) -> bool:
    """Apply ``escape`` to every string attribute of a span being ended; whether any changed."""
    # PRIVATE: LiveSpan._span._attributes; set_attribute would JSON-encode the value again, and
    # the span is inside end(), where OTel no longer accepts attribute changes.
    attributes = getattr(getattr(span, "_span", None), "_attributes", None)
    changed = False
    for key, value in list((attributes or {}).items()):
        if isinstance(value, str) and (fixed := escape(value)) is not value:
            attributes[key] = fixed
            changed = True
    return changed


def truncated_preview(raw: Any, role: str) -> str | None:
    # PRIVATE: MLflow's own preview cutter, so previews read as MLflow would write them.
    from mlflow.tracing.utils.truncation import _get_truncated_preview

    return _get_truncated_preview(raw, role=role)


def mlflow_would_price(model: str, usage: dict[str, Any], provider: Any) -> bool:
    """Whether MLflow's store would put its own (LiteLLM) price on a span with this usage."""
    from mlflow.tracing.utils import calculate_cost_by_model_and_token_usage

    try:
        return bool(calculate_cost_by_model_and_token_usage(model, usage, provider))
    except Exception:
        return True  # when in doubt, block a price we did not compute


# ---------------------------------------------------------------------------------------------
# The span-processor hook


def add_span_processor(processor: Callable[[Any], None]) -> None:
    import mlflow.tracing
    from mlflow.tracing.config import get_config

    current = list(get_config().span_processors)
    if processor not in current:
        mlflow.tracing.configure(span_processors=[*current, processor])
    _keep_on_reset(processor)


def remove_span_processor(processor: Callable[[Any], None]) -> None:
    import mlflow.tracing
    from mlflow.tracing.config import get_config

    global _kept
    _kept = None
    current = list(get_config().span_processors)
    if processor in current:
        mlflow.tracing.configure(span_processors=[p for p in current if p is not processor])


_kept: Callable[[Any], None] | None = None


def _keep_on_reset(processor: Callable[[Any], None]) -> None:
    """Keep the processor installed when MLflow resets its tracing config.

    ``mlflow.set_tracking_uri()`` (and other calls that re-create the tracer) reset the tracing
    configuration to defaults, which would silently drop the processor and every cost after it.
    """
    global _kept
    _kept = processor
    # PRIVATE: mlflow.tracing.provider.reset_config, called on every tracer reset.
    import mlflow.tracing.provider as provider

    reset_config = getattr(provider, "reset_config", None)
    if reset_config is None:
        unavailable("keeping cost on after mlflow.set_tracking_uri()",
                    "mlflow.tracing.provider.reset_config")
        return
    if getattr(reset_config, "__genai_tracing_original__", None) is not None:
        return

    def reset_config_keeping_genai_tracing() -> None:
        reset_config()
        if _kept is not None:
            try:
                import mlflow.tracing

                mlflow.tracing.configure(span_processors=[_kept])
            except Exception:
                from ._guard import internal_error

                internal_error("re-installing the span processor")

    reset_config_keeping_genai_tracing.__genai_tracing_original__ = reset_config  # type: ignore
    provider.reset_config = reset_config_keeping_genai_tracing


def on_import(module: str, hook: Callable[[Any], None]) -> None:
    """Run ``hook(module)`` when ``module`` is imported (now, if it already is), as MLflow's
    autolog flavors patch the libraries they trace, without importing it here."""
    # PRIVATE: mlflow.utils.import_hooks, the post-import hooks every autolog flavor uses.
    from mlflow.utils.import_hooks import register_post_import_hook

    register_post_import_hook(hook, module, overwrite=True)


def preload() -> None:
    """Import now, in the caller's thread, what span processing and export import later."""
    import mlflow.tracing.export.mlflow_v3  # noqa: F401
    import mlflow.tracing.utils  # noqa: F401
    from mlflow.tracing.trace_manager import InMemoryTraceManager  # noqa: F401


def rename(span: LiveSpan, name: str) -> None:
    """Give a span that is still open the name MLflow's own integration gives it."""
    span._span.update_name(name)  # PRIVATE: the OTel span under a LiveSpan (public OTel API)


def add_otel_attribute(span: Any, key: str, value: Any) -> None:
    """Set ``key`` on the OTel span under ``span`` as a plain OTel value, as other OpenTelemetry
    backends read it (MLflow's ``set_attribute`` would store JSON text); never overwrites."""
    otel = span._span  # PRIVATE: the OTel span under a LiveSpan (public OTel API)
    attributes = getattr(otel, "attributes", None) or {}
    if key not in attributes and value is not None:
        otel.set_attribute(key, value)


# ---------------------------------------------------------------------------------------------
# Where traces go: the tracking URI and experiment MLflow's fluent API holds


def tracking_uri_set_in_code() -> str | None:
    """The tracking URI set with ``mlflow.set_tracking_uri()`` (not from the environment)."""
    # PRIVATE: mlflow.tracking._tracking_service.utils._tracking_uri; get_tracking_uri() cannot
    # tell a URI the user set in code from the environment's or the default.
    from mlflow.tracking._tracking_service import utils

    return getattr(utils, "_tracking_uri", None)


def chosen_experiment_id() -> str | None:
    """The experiment id set with ``mlflow.set_experiment()`` in this process, if any."""
    # PRIVATE: mlflow.tracking.fluent._active_experiment_id; MLflow has no public "was an
    # experiment chosen" (get_experiment_id-like calls fall back to the default experiment).
    from mlflow.tracking import fluent

    return getattr(fluent, "_active_experiment_id", None)


def choose_experiment_id(experiment_id: str | None) -> None:
    """Set (or, with ``None``, forget) the experiment chosen in this process."""
    from mlflow.tracking import fluent

    fluent._active_experiment_id = experiment_id  # PRIVATE: as above


def current_experiment_id() -> str | None:
    """The experiment MLflow's fluent API would log to now (chosen, environment or default)."""
    # PRIVATE: mlflow.tracking.fluent._get_experiment_id, the resolution MLflow itself uses.
    try:
        from mlflow.tracking.fluent import _get_experiment_id
    except ImportError:
        unavailable("resolving MLflow's current experiment", "mlflow.tracking.fluent."
                    "_get_experiment_id")
        return None
    return _get_experiment_id()


def env_experiment_lookup() -> Callable[[], str | None] | None:
    """MLflow's lookup of the experiment ``MLFLOW_EXPERIMENT_NAME`` / ``_ID`` name, or None."""
    # PRIVATE: mlflow.tracking.fluent._get_experiment_id_from_env. With no experiment set in the
    # process, MLflow calls it (through _get_experiment_id) at every trace start, and it asks the
    # tracking store each time; MLflow has no public hook to cache it.
    from mlflow.tracking import fluent

    return getattr(fluent, "_get_experiment_id_from_env", None)


def replace_env_experiment_lookup(lookup: Callable[[], str | None]) -> None:
    from mlflow.tracking import fluent

    fluent._get_experiment_id_from_env = lookup  # PRIVATE: as above; read at call time


SEARCH_TRACES_ENDPOINT = "/api/3.0/mlflow/traces/search"  # MLflow's REST API (v3 trace search)


def rest_search_available(tracking_uri: str) -> bool:
    """Whether ``rest_search_traces`` can send to this store (no network)."""
    try:
        from mlflow.tracking._tracking_service.utils import _get_store  # PRIVATE: see below
        from mlflow.utils.rest_utils import http_request, verify_rest_response  # noqa: F401

        return hasattr(_get_store(tracking_uri), "get_host_creds")
    except Exception:
        return False


def rest_search_traces(tracking_uri: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """One page of MLflow's REST trace search on a tracking server, as the server's JSON, or
    ``None`` where this MLflow cannot send it (then search with ``MlflowClient``)."""
    # PRIVATE: mlflow.tracking._tracking_service.utils._get_store, for the store's host
    # credentials (auth headers, TLS settings) as MlflowClient would send them; MLflow has no
    # public way to send a REST request with them. The request and reply are MLflow's public REST
    # API; reading the JSON skips MlflowClient's conversion to TraceInfo, most of a report's CPU.
    try:
        from mlflow.tracking._tracking_service.utils import _get_store
        from mlflow.utils.rest_utils import http_request, verify_rest_response
    except ImportError:
        unavailable("reading trace search pages as JSON", "mlflow.tracking._tracking_service."
                    "utils._get_store")
        return None
    host_creds = getattr(_get_store(tracking_uri), "get_host_creds", None)
    if host_creds is None:
        return None
    response = http_request(host_creds=host_creds(), endpoint=SEARCH_TRACES_ENDPOINT,
                            method="POST", json=body)
    verify_rest_response(response, SEARCH_TRACES_ENDPOINT)
    return response.json()


def sql_trace_reader(tracking_uri: str) -> Callable[..., Iterator[tuple[Any, ...]]] | None:
    """A reader of trace records straight from the database of a SQL tracking store (sqlite,
    PostgreSQL, MySQL...), or ``None`` where the URI is no such store or this MLflow lacks what
    it reads (then search as usual).

    ``reader(experiment_ids, since_ms, until_ms, metadata_keys, metadata_prefix, chunk)`` yields
    ``(trace_id, request_time, execution_duration, trace_metadata, tags)`` for every trace of the
    experiments with ``since_ms <= timestamp_ms < until_ms`` (either bound ``None``: open), in
    time order, ``chunk`` traces a query at most. ``trace_metadata`` holds the keys in
    ``metadata_keys`` or starting with ``metadata_prefix`` only, each exactly as MLflow's
    ``search_traces`` returns it; ``tags`` holds every tag, as ``search_traces`` returns them.
    """
    # PRIVATE: the SQL store (mlflow.tracking._tracking_service.utils._get_store), its session
    # maker, its table models (SqlTraceInfo, SqlTraceMetadata, SqlTraceTag) and how its
    # search_traces builds a trace's metadata since MLflow moved the session, token and cost
    # metadata into trace_info columns (trace_analytics.PROMOTED_TRACE_METADATA_KEYS and
    # compatibility_metadata_from_columns, MLflow 3.17). Reading a few columns and keys in three
    # queries instead of building every TraceInfo is what makes a report over 100,000 traces take
    # seconds. Any of these missing (MLflow 3.12 has no promoted keys): None, and reports search.
    try:
        from sqlalchemy import and_, or_, select

        from mlflow.store.tracking.dbmodels.models import (SqlTraceInfo, SqlTraceMetadata,
                                                           SqlTraceTag)
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.store.tracking.utils.trace_analytics import (
            PROMOTED_TRACE_METADATA_KEYS, compatibility_metadata_from_columns)
        from mlflow.tracing.constant import TraceTagKey
        from mlflow.tracking._tracking_service.utils import _get_store
    except ImportError:
        logger.debug("genai_tracing: reports search traces (this MLflow has no SQL trace "
                     "columns to read)", exc_info=True)
        return None
    try:
        store = _get_store(tracking_uri)
    except Exception:
        logger.debug("genai_tracing: no store for %s", tracking_uri, exc_info=True)
        return None
    if not isinstance(store, SqlAlchemyStore) or not hasattr(store, "ManagedSessionMaker"):
        return None
    columns = [c for c in SqlTraceInfo.__table__.columns
               if c.name not in ("request_preview", "response_preview")]
    trace_name_tag = TraceTagKey.TRACE_NAME

    def read(experiment_ids: list[str], since_ms: int | None, until_ms: int | None,
             metadata_keys: list[str], metadata_prefix: str, chunk: int
             ) -> Iterator[tuple[Any, ...]]:
        escaped = metadata_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        # The promoted keys come from trace_info's columns, as search_traces builds them.
        stored_keys = [k for k in metadata_keys if k not in PROMOTED_TRACE_METADATA_KEYS]
        wanted = or_(SqlTraceMetadata.key.in_(stored_keys),
                     SqlTraceMetadata.key.like(escaped + "%", escape="\\"))
        ids = [int(e) for e in experiment_ids]
        start = since_ms
        while True:
            with store.ManagedSessionMaker() as session:
                connection = session.connection()  # plain rows: no ORM loading per row
                ids_allowed = [int(e) for e in store._filter_experiment_ids(session, ids)] \
                    if hasattr(store, "_filter_experiment_ids") else ids

                def within(low: int | None, high: int | None, high_inclusive: bool) -> Any:
                    clauses = [SqlTraceInfo.experiment_id.in_(ids_allowed)]
                    if low is not None:
                        clauses.append(SqlTraceInfo.timestamp_ms >= low)
                    if high is not None:
                        clauses.append(SqlTraceInfo.timestamp_ms <= high if high_inclusive
                                       else SqlTraceInfo.timestamp_ms < high)
                    return and_(*clauses)

                # The next ``chunk`` traces in time order decide where this chunk ends; every
                # trace up to that millisecond is read, so none at the edge is cut in two.
                edge = connection.execute(
                    select(SqlTraceInfo.timestamp_ms).where(within(start, until_ms, False))
                    .order_by(SqlTraceInfo.timestamp_ms).offset(chunk - 1).limit(1)
                ).scalar()
                last = until_ms if edge is None else edge
                inclusive = edge is not None
                where = within(start, last, inclusive)
                rows = connection.execute(select(*columns).where(where)
                                       .order_by(SqlTraceInfo.timestamp_ms)).all()
                metadata: dict[str, dict[str, str]] = {}
                for trace_id, key, value in connection.execute(
                        select(SqlTraceMetadata.request_id, SqlTraceMetadata.key,
                               SqlTraceMetadata.value)
                        .join(SqlTraceInfo, SqlTraceInfo.request_id == SqlTraceMetadata.request_id)
                        .where(where, wanted)):
                    if key not in PROMOTED_TRACE_METADATA_KEYS:
                        metadata.setdefault(trace_id, {})[key] = value
                tags: dict[str, dict[str, str]] = {}
                for trace_id, key, value in connection.execute(
                        select(SqlTraceTag.request_id, SqlTraceTag.key, SqlTraceTag.value)
                        .join(SqlTraceInfo, SqlTraceInfo.request_id == SqlTraceTag.request_id)
                        .where(where)):
                    if key != trace_name_tag:
                        tags.setdefault(trace_id, {})[key] = value
            for row in rows:
                trace_tags = tags.get(row.request_id, {})
                if row.trace_name is not None:
                    trace_tags[trace_name_tag] = row.trace_name
                trace_metadata = metadata.get(row.request_id, {})
                trace_metadata.update((k, v) for k, v in
                                      compatibility_metadata_from_columns(row).items()
                                      if k in metadata_keys or k.startswith(metadata_prefix))
                yield (row.request_id, row.timestamp_ms, row.execution_time_ms, trace_metadata,
                       trace_tags)
            if edge is None:
                return
            start = edge + 1

    return read


# ---------------------------------------------------------------------------------------------
# MLflow's export: its span batchers, its export queue and its in-memory trace buffer


def export_queues(timeout: float) -> list[Any]:
    """MLflow's export queues (``queue.Queue``), after moving every ended span into them."""
    # PRIVATE: the batch span processors' registry, the exporter's span batcher and async queue.
    # With them genai_tracing waits for exactly the traces still queued (tests, process exit);
    # without them it falls back to mlflow.flush_trace_async_logging().
    from mlflow.tracing.processor import base_mlflow
    from mlflow.tracing.provider import _get_trace_exporter

    with base_mlflow._batch_processor_registry_lock:
        processors = list(base_mlflow._batch_processor_registry)
    exporters = [_get_trace_exporter()]
    for processor in processors:
        try:
            # A span whose end is still being processed is not in the batch yet.
            with processor._pending_on_end_condition:
                processor._pending_on_end_condition.wait_for(
                    lambda p=processor: p._pending_on_end_count == 0, timeout=timeout)
            processor.force_flush(int(max(timeout, 1.0) * 1000))
        except Exception:
            logger.debug("genai_tracing: span batch flush failed", exc_info=True)
        exporters.append(processor.span_exporter)
    queues = {}
    for exporter in exporters:
        if getattr(exporter, "_span_batcher", None) is not None:
            exporter._span_batcher.flush()
        queue = getattr(getattr(exporter, "_async_queue", None), "_queue", None)
        if queue is not None:
            queues[id(queue)] = queue
    return list(queues.values())


def is_trace_export(task: Any) -> bool:
    """Whether a queued export task writes a trace (rather than, say, a span batch)."""
    # PRIVATE: the exporter's handler name for a whole-trace export.
    return getattr(getattr(task, "handler", None), "__name__", "") == "_log_trace"


def wake_export_queue() -> None:
    """Let MLflow's export thread stop at once when the tracking URI changes (it polls its queue
    once a second). Best effort: if MLflow's internals differ, a switch is merely slower."""
    # PRIVATE: the exporter's async queue, its stop event and its Task type.
    try:
        from mlflow.tracing.export.async_export_queue import Task
        from mlflow.tracking.fluent import _get_trace_exporter

        queue = getattr(_get_trace_exporter(), "_async_queue", None)
        if queue is None or not queue.is_active():
            return
        if not hasattr(queue, "_flush_lock"):
            # Before MLflow serialized flush() against put() (3.17 has the lock, 3.12 has not),
            # a queue stopped this way could hang a later flush_trace_async_logging(): leave it.
            return
        queue._stop_event.set()
        queue._queue.put_nowait(Task(handler=lambda: None, args=()))
    except Exception:
        pass


def hook_export_drops(on_put: Callable[[Any], Any], on_pop: Callable[[Any], Any]) -> None:
    """Wrap MLflow's export-queue ``put`` and trace-buffer ``pop_trace`` (once each) with
    ``on_put(put)``/``on_pop(pop_trace)``, to count what MLflow drops."""
    # PRIVATE: AsyncTraceExportQueue.put and InMemoryTraceManager.pop_trace, the two places a
    # finished trace can be dropped. If MLflow moved them, drops stay MLflow's own warning.
    from ._patch import patch_method

    try:
        from mlflow.tracing.trace_manager import InMemoryTraceManager
    except ImportError:  # pragma: no cover
        unavailable("counting traces MLflow evicts", "InMemoryTraceManager")
    else:
        patch_method(InMemoryTraceManager, "pop_trace", on_pop)
    try:
        from mlflow.tracing.export.async_export_queue import AsyncTraceExportQueue
    except ImportError:  # pragma: no cover
        unavailable("counting traces MLflow's export queue drops", "AsyncTraceExportQueue")
    else:
        patch_method(AsyncTraceExportQueue, "put", on_put)


def export_queue_is_full(queue: Any) -> bool:
    try:
        return bool(queue.is_active() and queue._queue.full())  # PRIVATE: its queue.Queue
    except Exception:
        return False


def trace_is_buffered(manager: Any, otel_trace_id: int) -> bool:
    try:
        return otel_trace_id in manager._otel_id_to_mlflow_trace_id  # PRIVATE: its id map
    except Exception:
        return False
