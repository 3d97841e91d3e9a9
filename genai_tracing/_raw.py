"""Raw responses: calls made through an SDK's ``with_raw_response`` or ``with_streaming_response``.

Such a call returns the SDK's ``APIResponse`` instead of the answer, and that is what MLflow's
autolog records as the span's output (a string) before ending the span: no usage, and for a
stream, an end before the stream is read. The response object is built while the call's span is
still open, at one choke point shared by every call of the SDK (the response class's
``__init__``): a body already read gives the span its usage; an event stream, opened later
through the response's ``parse()``, holds the span open until the stream ends, as for
``create(stream=True)`` (the provider's stream watch claims it with ``claim``). A body left
for the caller to read (``with_streaming_response`` without ``stream=True``) holds the span
open until the caller reads it (``read()``, which ``parse()``, ``json()`` and ``text()`` call)
and gives its usage then; a body closed unread ends the span with no usage (flagged).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable

from . import _mlflow
from ._guard import internal_error
from ._keys import CALL, STREAM_INCOMPLETE
from ._patch import patch_method, unpatch_method
from ._streams import put_reading

_RAW_HEADER = "X-Stainless-Raw-Response"
_held: dict[str, Any] = {}
_lock = threading.Lock()


def response_init_class(response_class: type) -> type | None:
    """The class in ``response_class``'s MRO that defines ``__init__`` (the SDKs' base)."""
    return next((c for c in response_class.__mro__ if "__init__" in c.__dict__), None)


def hook(base: type, reading: Callable[[Any], Any], readers: tuple[type, ...] = ()) -> None:
    """Watch every response ``base`` builds; ``reading(body)`` is what a read body shows of its
    call (model and usage, as the provider's extract reads them), or ``None``. ``readers`` are
    the SDK's response classes whose ``read()`` and ``close()`` a caller reads a body with."""
    patch_method(base, "__init__", lambda original: _init(original, reading))
    for cls in readers:
        patch_method(cls, "read", _read)
        patch_method(cls, "close", _close)


def unhook(base: type, readers: tuple[type, ...] = ()) -> None:
    unpatch_method(base, "__init__")
    for cls in readers:
        unpatch_method(cls, "read")
        unpatch_method(cls, "close")


def claim(span: Any) -> Any:
    """The held end of ``span`` (a raw call's span waiting for its stream), if there is one."""
    with _lock:
        return _held.pop(span.span_id, None)


def _init(original: Callable[..., Any], reading: Callable[[Any], Any]) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            _seen(self, reading)
        except Exception:
            internal_error("raw response")
    return __init__


def _seen(response: Any, reading: Callable[[Any], Any]) -> None:
    http = response.http_response
    mode = http.request.headers.get(_RAW_HEADER)
    if mode not in ("true", "raw", "stream"):
        return  # a plain call: the SDK parses it at once and MLflow records the answer
    span = _mlflow.span_from_traceparent(http.request.headers.get("traceparent"))
    if span is None or span.end_time_ns is not None:
        return
    if "text/event-stream" in http.headers.get("content-type", ""):
        if span.get_attribute(CALL):
            return  # a span genai_tracing made waits for its stream already
        with _lock:
            if span.span_id in _held:
                return
            _held[span.span_id] = _mlflow.DeferredEnd(span)
        weakref.finalize(response, _release, span.span_id)
        return
    if mode == "stream":
        # The body is read later, by the caller: the span waits for that read.
        if span.get_attribute(CALL):
            return  # a span genai_tracing made ends with the call's result
        deferred = _mlflow.DeferredEnd(span)
        response.__dict__[_UNREAD] = (deferred, reading)
        weakref.finalize(response, deferred.release)
        return
    if (seen := reading(http.json())) is not None:
        put_reading(span.span_id, seen)


# The held end of a span whose body the caller has not read yet, on the SDK's response object.
_UNREAD = "_genai_tracing_unread"


def _body_read(response: Any) -> None:
    """The caller read the body (or closed the response): the span ends, with the body's usage
    when the body was read."""
    held = response.__dict__.pop(_UNREAD, None)
    if held is None:
        return
    deferred, reading = held
    try:
        http = response.http_response
        content = getattr(http, "_content", None)  # set once httpx has read the whole body
        if content is not None and (seen := reading(http.json())) is not None:
            put_reading(deferred.span.span_id, seen)
    finally:
        deferred.release()


def _read(original: Callable[..., Any]) -> Any:
    import inspect

    if inspect.iscoroutinefunction(original):
        async def read_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await original(self, *args, **kwargs)
            finally:
                _after_read(self)
        return read_async

    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            _after_read(self)
    return read


_close = _read  # a close ends the span too: with the body's usage if it was read, else none


def _after_read(response: Any) -> None:
    try:
        _body_read(response)
    except Exception:
        internal_error("raw response body")


def _release(span_id: str) -> None:
    """The response was dropped before its stream was opened: the span ends as it is."""
    with _lock:
        deferred = _held.pop(span_id, None)
    if deferred is not None:
        deferred.release(attributes={STREAM_INCOMPLETE: True})
