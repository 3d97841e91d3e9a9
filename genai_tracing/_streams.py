"""Streams: the span of a streamed call ends exactly once, however the stream is held and left.

A provider SDK's ``Stream`` class is the choke point every streamed call passes through, below
MLflow's autolog: whatever autolog does with the call, the SDK builds its stream object here, and
the user's code iterates it, closes it, leaves it in a ``with`` block or drops it. The class's own
methods are wrapped once (its instances stay what they are: same class, same methods), and each
stream object made for a traced call gets a ``StreamWatch``. The watch finds the call's span from
the ``traceparent`` header MLflow's autolog (or genai_tracing) sent with the request, and ends it:

- read to the end: MLflow ends its own span (OpenAI: with usage); a span MLflow ended too early
  (Anthropic ``stream=True`` ends when the call returns) is held back and ended now, with usage;
- closed, left or dropped before the end, or failed: the span ends once, marked incomplete.

Generators that SDKs return for streams (google-genai) are proxied by ``observe_generator``.
"""

from __future__ import annotations

import inspect
import sys
import threading
import weakref
from typing import Any, Callable

from . import _mlflow
from ._guard import internal_error
from ._keys import SPAN_ATTRIBUTION, STREAM_INCOMPLETE
from ._patch import patch_method, unpatch_method

_readings: dict[str, Any] = {}
_readings_lock = threading.Lock()


def put_reading(span_id: str, reading: Any) -> None:
    """What a stream showed of its call (model, usage), for the span processor to read."""
    with _readings_lock:
        _readings[span_id] = reading


def take_reading(span_id: str) -> Any:
    with _readings_lock:
        return _readings.pop(span_id, None)


class Reader:
    """Running totals of one stream's items (never the items). Providers subclass it."""

    def item(self, item: Any) -> None:
        pass

    def reading(self) -> Any:
        """What the span processor needs to know of the call (model and usage)."""
        return None

    def outputs(self) -> Any:
        """The span's outputs, for a span genai_tracing made itself."""
        return None


class StreamWatch:
    """Ends one streamed call's span once: on exhaustion, error, close, exit or drop."""

    def __init__(self, span: Any, reader: Reader, *, owned: bool, deferred: Any = None) -> None:
        self.span = span            # a LiveSpan, or a CallSpan genai_tracing made (owned)
        self.reader = reader
        self.owned = owned
        self.deferred = deferred    # _mlflow.DeferredEnd of a span MLflow ends too early
        self.items = 0
        self.reading_item = 0   # > 0 while the SDK produces an item (it may close itself then)
        self._done = False
        self._lock = threading.Lock()
        if not owned:
            _keep_attribution(span)

    def item(self, item: Any) -> None:
        self.items += 1
        try:
            self.reader.item(item)
        except Exception:
            internal_error("stream item")

    def finish(self, error: BaseException | None = None, complete: bool = True) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        # A stream that failed after its first item was cut short: what the provider generated
        # so far may be billed, unlike a call the provider refused before any output.
        if error is not None and self.items:
            complete = False
        extra = None if complete else {STREAM_INCOMPLETE: True}
        try:
            if self.owned:
                self.span.end(outputs=self._outputs(), error=error, attributes=extra)
            elif self.deferred is not None:
                if (reading := self._reading()) is not None:
                    put_reading(self.span.span_id, reading)
                self.deferred.release(attributes=extra, error=error)
            elif self.span.end_time_ns is None:
                # MLflow's own stream span ends when the stream is read to the end (and, on
                # recent MLflow, when it fails); a stream left early, or a failure MLflow does
                # not see, would hold its whole trace back forever.
                for key, value in (extra or {}).items():
                    self.span.set_attribute(key, value)
                if error is not None:
                    from mlflow.entities import SpanEvent

                    self.span.add_event(SpanEvent.from_exception(error))
                    self.span.end(status="ERROR")
                else:
                    self.span.end()
        except Exception:
            internal_error("stream end")

    def abandon(self) -> None:
        """Stopped early (closed, left, dropped): keep what was seen, mark incomplete."""
        self.finish(complete=False)

    def _outputs(self) -> Any:
        try:
            return self.reader.outputs()
        except Exception:
            internal_error("stream outputs")
            return None

    def _reading(self) -> Any:
        try:
            return self.reader.reading()
        except Exception:
            internal_error("stream reading")
            return None


# ---------------------------------------------------------------------------------------------
# The SDK stream classes

_WATCH = "_genai_tracing_watch"


def watch_of(stream: Any) -> StreamWatch | None:
    try:
        return stream.__dict__.get(_WATCH)
    except AttributeError:
        return None


def attach(stream: Any, watch: StreamWatch) -> None:
    stream.__dict__[_WATCH] = watch
    try:
        weakref.finalize(stream, watch.abandon)
    except TypeError:
        pass  # not weak-referenceable: the span then ends on exhaustion, error or close only


def _keep_attribution(span: Any) -> None:
    """A stream may be read, and its trace end, after the ``attribute()`` block it was opened in:
    MLflow's span of the call keeps the block's attribution (genai_tracing's own spans do this
    when they start)."""
    from ._attribution import current

    try:
        if (attribution := current()) is not None and span.get_attribute(SPAN_ATTRIBUTION) is None:
            span.set_attribute(SPAN_ATTRIBUTION, attribution.as_json())
    except Exception:
        internal_error("stream attribution")


def hook_stream_classes(classes: list[type], watch_for: Callable[[Any], StreamWatch | None]
                        ) -> None:
    """Wrap the iteration, close and exit methods of SDK stream classes (once each).

    ``watch_for(stream)`` runs when a stream object is built and returns its watch, or ``None``
    for a stream of no traced call.
    """
    for cls in classes:
        patch_method(cls, "__init__", lambda original: _init(original, watch_for))
        for name, wrapper in _WRAPPERS.items():
            if name in cls.__dict__:
                if name == "close" and inspect.iscoroutinefunction(cls.__dict__[name]):
                    wrapper = _closing_async  # AsyncStream.close
                patch_method(cls, name, wrapper)


def unhook_stream_classes(classes: list[type]) -> None:
    for cls in classes:
        for name in ("__init__", *_WRAPPERS):
            unpatch_method(cls, name)


def _init(original: Callable[..., Any], watch_for: Callable[[Any], StreamWatch | None]) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            if (watch := watch_for(self)) is not None:
                attach(self, watch)
        except Exception:
            internal_error("stream start")
    return __init__


def _next(original: Callable[..., Any]) -> Any:
    def __next__(self: Any) -> Any:
        watch = watch_of(self)
        if watch:
            watch.reading_item += 1
        try:
            item = original(self)
        except StopIteration:
            if watch:
                watch.finish()
            raise
        except BaseException as e:
            if watch:
                watch.finish(error=e)
            raise
        finally:
            if watch:
                watch.reading_item -= 1
        if watch:
            watch.item(item)
        return item
    return __next__


def _anext(original: Callable[..., Any]) -> Any:
    async def __anext__(self: Any) -> Any:
        watch = watch_of(self)
        if watch:
            watch.reading_item += 1
        try:
            item = await original(self)
        except StopAsyncIteration:
            if watch:
                watch.finish()
            raise
        except BaseException as e:
            if watch:
                watch.finish(error=e)
            raise
        finally:
            if watch:
                watch.reading_item -= 1
        if watch:
            watch.item(item)
        return item
    return __anext__


def _iter(original: Callable[..., Any]) -> Any:
    def __iter__(self: Any) -> Any:
        watch = watch_of(self)
        iterator = original(self)
        if watch is None or iterator is self:
            return iterator  # an iterator of its own: __next__ reports each item
        # A generator that holds the stream: a loop over a stream nothing else holds keeps it
        # alive until the loop ends, so a drop cannot come before the end.
        return _watched(self, iterator, watch)
    return __iter__


def _aiter(original: Callable[..., Any]) -> Any:
    def __aiter__(self: Any) -> Any:
        watch = watch_of(self)
        iterator = original(self)
        if watch is None or iterator is self:
            return iterator
        return _awatched(self, iterator, watch)
    return __aiter__


def _watched(stream: Any, iterator: Any, watch: StreamWatch) -> Any:
    try:
        for item in iterator:
            watch.item(item)
            yield item
    except GeneratorExit:
        watch.abandon()
        raise
    except BaseException as e:
        watch.finish(error=e)
        raise
    watch.finish()
    del stream


async def _awatched(stream: Any, iterator: Any, watch: StreamWatch) -> Any:
    try:
        async for item in iterator:
            watch.item(item)
            yield item
    except GeneratorExit:
        watch.abandon()
        raise
    except BaseException as e:
        watch.finish(error=e)
        raise
    watch.finish()
    del stream


def _closing(original: Callable[..., Any]) -> Any:
    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            _closed(watch_of(self))
    return close


def _closing_async(original: Callable[..., Any]) -> Any:
    async def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        finally:
            _closed(watch_of(self))
    return close


def _closed(watch: StreamWatch | None) -> None:
    if watch is None or watch.reading_item:
        return  # the SDK closing its own stream at its end (LiteLLM does): the item decides
    # An SDK that closes its stream while handling an error ends it with that error.
    handling = sys.exc_info()[1]
    if isinstance(handling, Exception):
        watch.finish(error=handling)
    else:
        watch.abandon()


def _exiting(original: Callable[..., Any]) -> Any:
    def __exit__(self: Any, *args: Any) -> Any:
        try:
            return original(self, *args)
        finally:
            # Leaving the block, even on the user's own exception, stops the stream early.
            if (watch := watch_of(self)) is not None:
                watch.abandon()
    return __exit__


def _exiting_async(original: Callable[..., Any]) -> Any:
    async def __aexit__(self: Any, *args: Any) -> Any:
        try:
            return await original(self, *args)
        finally:
            if (watch := watch_of(self)) is not None:
                watch.abandon()
    return __aexit__


_WRAPPERS: dict[str, Callable[[Callable[..., Any]], Any]] = {
    "__next__": _next, "__anext__": _anext, "__iter__": _iter, "__aiter__": _aiter,
    "close": _closing, "aclose": _closing_async, "__exit__": _exiting,
    "__aexit__": _exiting_async,
}


# ---------------------------------------------------------------------------------------------
# The span a stream belongs to


def traced_span(stream: Any) -> Any:
    """The open span of the call that made ``stream``, from the ``traceparent`` header of the
    request (MLflow's autolog sends one for each call it traces)."""
    options = getattr(stream, "_options", None)
    headers = getattr(options, "headers", None)
    if not isinstance(headers, dict):
        return None
    span = _mlflow.span_from_traceparent(headers.get("traceparent"))
    if span is None or span.end_time_ns is not None:
        return None
    return span


# ---------------------------------------------------------------------------------------------
# Generators


def observe_generator(generator: Any, watch: StreamWatch) -> Any:
    """A generator yielding exactly what ``generator`` yields, reporting to ``watch``."""
    if inspect.isasyncgen(generator) or hasattr(generator, "__anext__"):
        wrapped = _awatched(None, generator, watch)
    else:
        wrapped = _watched(None, generator, watch)
    weakref.finalize(wrapped, watch.abandon)
    return wrapped


# ---------------------------------------------------------------------------------------------
# Streams of spans genai_tracing makes itself

_owned: dict[str, Any] = {}
_owned_lock = threading.Lock()
_holders: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def send_traceparent(span: Any, kwargs: dict[str, Any]) -> None:
    """``wrap_call``'s ``before``: send the span's ``traceparent`` with the request, as MLflow's
    autolog does for its own spans, so the SDK stream the call opens finds its span."""
    header = _mlflow.traceparent_of(span.span)
    if header is None:
        return
    with _owned_lock:
        _owned[span.span_id] = span
    kwargs["extra_headers"] = {"traceparent": header, **(kwargs.get("extra_headers") or {})}


def owned_span(span: Any) -> Any:
    """The ``CallSpan`` genai_tracing made for ``span``'s call, claimed by its stream."""
    with _owned_lock:
        return _owned.pop(span.span_id, None)


def own(span: Any, holder: Any) -> None:
    """End ``span`` if ``holder`` (a stream manager) is dropped before it opens its stream, or
    fails to open it (``opening_failed``)."""
    try:
        _holders[holder] = span.span_id
    except TypeError:
        pass
    try:
        weakref.finalize(holder, _never_opened, span.span_id)
    except TypeError:
        pass


def _never_opened(span_id: str) -> None:
    with _owned_lock:
        span = _owned.pop(span_id, None)
    if span is not None:
        span.end(attributes={STREAM_INCOMPLETE: True})


def opening_failed(holder: Any, error: BaseException) -> None:
    """``holder``'s request failed as it opened its stream: its span ends with that error."""
    with _owned_lock:
        span_id = _holders.pop(holder, None)
        span = _owned.pop(span_id, None) if span_id else None
    if span is not None:
        span.end(error=error)


def hook_openers(classes: list[type]) -> None:
    """Wrap stream managers' ``__enter__``/``__aenter__`` (where the request is made) so that a
    request that fails there ends the span ``own`` gave the manager, with the error."""
    for cls in classes:
        if "__enter__" in cls.__dict__:
            patch_method(cls, "__enter__", _opening)
        if "__aenter__" in cls.__dict__:
            patch_method(cls, "__aenter__", _opening_async)


def unhook_openers(classes: list[type]) -> None:
    for cls in classes:
        unpatch_method(cls, "__enter__")
        unpatch_method(cls, "__aenter__")


def _opening(original: Callable[..., Any]) -> Any:
    def __enter__(self: Any) -> Any:
        try:
            return original(self)
        except BaseException as e:
            with_guard(opening_failed, self, e)
            raise
    return __enter__


def _opening_async(original: Callable[..., Any]) -> Any:
    async def __aenter__(self: Any) -> Any:
        try:
            return await original(self)
        except BaseException as e:
            with_guard(opening_failed, self, e)
            raise
    return __aenter__


def with_guard(function: Callable[..., Any], *args: Any) -> None:
    try:
        function(*args)
    except Exception:
        internal_error("stream opening")
