"""Raw responses: calls made through an SDK's ``with_raw_response`` or ``with_streaming_response``.

Such a call returns the SDK's ``APIResponse`` instead of the answer, and that is what MLflow's
autolog records as the span's output (a string) before ending the span: no usage, and for a
stream, an end before the stream is read. The response object is built while the call's span is
still open, at one choke point shared by every call of the SDK (the response class's
``__init__``): a body already read gives the span its usage; an event stream, opened later
through the response's ``parse()``, holds the span open until the stream ends, as for
``create(stream=True)`` (the provider's stream watch claims it with ``claim``).
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


def hook(base: type, reading: Callable[[Any], Any]) -> None:
    """Watch every response ``base`` builds; ``reading(body)`` is what a read body shows of its
    call (model and usage, as the provider's extract reads them), or ``None``."""
    patch_method(base, "__init__", lambda original: _init(original, reading))


def unhook(base: type) -> None:
    unpatch_method(base, "__init__")


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
        return  # the body is read later, by the caller: nothing to read it from here
    if (seen := reading(http.json())) is not None:
        put_reading(span.span_id, seen)


def _release(span_id: str) -> None:
    """The response was dropped before its stream was opened: the span ends as it is."""
    with _lock:
        deferred = _held.pop(span_id, None)
    if deferred is not None:
        deferred.release(attributes={STREAM_INCOMPLETE: True})
