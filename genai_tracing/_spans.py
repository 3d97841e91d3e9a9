"""Spans for the calls autolog misses: three zones around the user's call, streams ended once.

Zone 1, our set-up: if it fails, the call runs untraced. Zone 2, the user's call: its result and
its exception pass through untouched. Zone 3, our post-processing: guarded on its own.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from typing import Any, Callable

from ._guard import internal_error

from ._keys import CALL as CALL_ATTRIBUTE, STREAM_INCOMPLETE


class CallSpan:
    """One provider call's span; ``end()`` is safe to call more than once (the first one wins)."""

    def __init__(self, name: str, span_type: str, provider: str, inputs: dict[str, Any]) -> None:
        import mlflow
        from mlflow.tracing.provider import set_span_in_context

        self.span = mlflow.start_span_no_context(
            name=name, span_type=span_type, inputs=inputs,
            attributes={CALL_ATTRIBUTE: provider, "mlflow.llm.provider": provider})
        from ._attribution import current
        from ._keys import SPAN_ATTRIBUTION

        if (attribution := current()) is not None:
            # A stream may end outside the attribute() block it started in.
            self.span.set_attribute(SPAN_ATTRIBUTION, attribution.as_json())
        self._token = set_span_in_context(self.span)
        self._ended = False

    def detach(self) -> None:
        """Stop being the active span (the call returned); the span itself may stay open."""
        if self._token is not None:
            from mlflow.tracing.provider import detach_span_from_context

            token, self._token = self._token, None
            try:
                detach_span_from_context(token)
            except Exception:
                internal_error("span detach")

    def end(self, outputs: Any = None, error: BaseException | None = None,
            attributes: dict[str, Any] | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self.detach()
        try:
            from mlflow.entities import SpanEvent, SpanStatusCode

            for key, value in (attributes or {}).items():
                self.span.set_attribute(key, value)
            _end_open_descendants(self.span)
            if error is not None:
                self.span.add_event(SpanEvent.from_exception(error))
                self.span.end(outputs=outputs, status=SpanStatusCode.ERROR)
            else:
                self.span.end(outputs=outputs)
        except Exception:
            internal_error("span end")


def _end_open_descendants(span: Any) -> None:
    """End spans still open under ``span``: an SDK's own span of a stream the user abandoned
    (MLflow's OpenAI stream hook ends its span only on exhaustion) would otherwise keep the
    whole trace from ever being exported."""
    from mlflow.tracing.trace_manager import InMemoryTraceManager

    with InMemoryTraceManager.get_instance().get_trace(span.trace_id) as trace:
        if trace is None:
            return
        spans = list(trace.span_dict.values())
    parents = {s.span_id: s.parent_id for s in spans}
    for other in spans:
        if other.span_id == span.span_id or other.end_time_ns is not None:
            continue
        ancestor = parents.get(other.span_id)
        while ancestor and ancestor != span.span_id:
            ancestor = parents.get(ancestor)
        if ancestor == span.span_id:
            other.set_attribute(STREAM_INCOMPLETE, True)
            other.end()


def _start(name: str, span_type: str, provider: str, inputs: dict[str, Any]) -> CallSpan | None:
    try:
        return CallSpan(name, span_type, provider, inputs)
    except Exception:
        internal_error(f"{name} span start")
        return None


def wrap_call(original: Callable[..., Any], *, name: str, span_type: str, provider: str,
              inputs: Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]],
              finish: Callable[[CallSpan, Any, dict[str, Any]], Any]) -> Callable[..., Any]:
    """Trace ``original`` (sync or async). ``finish(span, result, kwargs)`` ends the span and
    returns what the user gets back (the result itself, or a stream that ends the span later)."""

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallSpan | None:
        try:
            recorded = inputs(args, kwargs)
        except Exception:
            internal_error(f"{name} inputs")
            recorded = {}
        return _start(name, span_type, provider, recorded)

    def complete(span: CallSpan | None, result: Any, kwargs: dict[str, Any]) -> Any:
        if span is None:
            return result
        span.detach()
        try:
            return finish(span, result, kwargs)
        except Exception:
            internal_error(f"{name} finish")
            span.end(outputs=None)
            return result

    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            span = begin(args, kwargs)
            try:
                result = await original(*args, **kwargs)
            except BaseException as e:
                if span is not None:
                    span.end(error=e)
                raise
            return complete(span, result, kwargs)

        traced_async.__genai_tracing_original__ = original  # type: ignore[attr-defined]
        return traced_async

    @functools.wraps(original)
    def traced(*args: Any, **kwargs: Any) -> Any:
        span = begin(args, kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as e:
            if span is not None:
                span.end(error=e)
            raise
        if span is not None and inspect.iscoroutine(result):
            # An async method behind a sync decorator: the call happens when it is awaited.
            span.detach()
            return _awaited(span, result, kwargs)
        return complete(span, result, kwargs)

    async def _awaited(span: CallSpan, pending: Any, kwargs: dict[str, Any]) -> Any:
        try:
            result = await pending
        except BaseException as e:
            span.end(error=e)
            raise
        return complete(span, result, kwargs)

    traced.__genai_tracing_original__ = original  # type: ignore[attr-defined]
    return traced


def streams_only(traced: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    """Route ``stream=True`` calls through ``traced``; plain calls stay MLflow autolog's alone."""
    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def call_async(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("stream"):
                return await traced(*args, **kwargs)
            return await original(*args, **kwargs)
        return call_async

    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("stream"):
            return traced(*args, **kwargs)
        return original(*args, **kwargs)
    return call


def end_with_result(span: CallSpan, result: Any, kwargs: dict[str, Any]) -> Any:
    """``wrap_call``'s ``finish`` for a plain call: the result is the span's output, as is."""
    span.end(outputs=result)
    return result


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with any lone surrogate as a backslash escape; anything else unchanged.

    A lone surrogate (``"\\udcff"``, from bytes decoded with ``surrogateescape``) is not valid
    Unicode: MLflow's exporter fails to encode it as UTF-8 and drops the whole trace, its cost
    with it. In an attribute, which holds JSON, ``\\udcff`` is a valid escape that reads back as
    the very same string. The search allocates nothing, so it is cheap on large non-ASCII text.
    """
    if text.isascii() or _LONE_SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def original_of(function: Any) -> Any:
    return getattr(function, "__genai_tracing_original__", function)


def patch_method(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` with ``make(current)``, once; ``unpatch_method`` restores it."""
    current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if current is None or original_of(current) is not current:
        return
    wrapper = make(current)
    wrapper.__genai_tracing_original__ = current
    setattr(owner, name, wrapper)


def unpatch_method(owner: Any, name: str) -> None:
    current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if current is not None and original_of(current) is not current:
        setattr(owner, name, original_of(current))


# ---------------------------------------------------------------------------------------------
# Streams: the span ends exactly once, on exhaustion, error, close()/exit, or when dropped.


class StreamObserver:
    """Running totals of one stream; subclasses read their SDK's items. Never keeps the items."""

    def __init__(self, span: CallSpan) -> None:
        self.span = span
        self.done = False
        self.items = 0

    def item(self, item: Any) -> None:  # pragma: no cover - overridden
        pass

    def outputs(self) -> Any:  # pragma: no cover - overridden
        return None

    def observe(self, item: Any) -> None:
        self.items += 1
        try:
            self.item(item)
        except Exception:
            internal_error(f"{self.span.span.name} stream item")

    def finish(self, error: BaseException | None = None, complete: bool = True) -> None:
        if self.done:
            return
        self.done = True
        try:
            outputs = self.outputs()
        except Exception:
            internal_error(f"{self.span.span.name} stream outputs")
            outputs = None
        # A stream that failed after its first item was cut short too: the part the provider
        # generated may be billed, unlike a stream the provider refused before any output.
        if error is not None and self.items:
            complete = False
        extra = None if complete else {STREAM_INCOMPLETE: True}
        self.span.end(outputs=outputs, error=error, attributes=extra)

    def abandon(self) -> None:
        """The user stopped early (or dropped the stream): keep what was seen, mark incomplete."""
        self.finish(complete=False)

    def entered(self, value: Any) -> Any:
        """What ``__enter__`` returned (a stream manager's stream); returned to the user as is."""
        return value


def observe_generator(generator: Any, observer: StreamObserver) -> Any:
    """A generator yielding exactly what ``generator`` yields, reporting to ``observer``."""
    import inspect
    import weakref

    if inspect.isasyncgen(generator):
        async def observed_async() -> Any:
            try:
                async for item in generator:
                    observer.observe(item)
                    yield item
            except GeneratorExit:
                observer.abandon()
                raise
            except BaseException as e:
                observer.finish(error=e)
                raise
            observer.finish()

        wrapped = observed_async()
    else:
        def observed() -> Any:
            try:
                for item in generator:
                    observer.observe(item)
                    yield item
            except GeneratorExit:
                observer.abandon()
                raise
            except BaseException as e:
                observer.finish(error=e)
                raise
            observer.finish()

        wrapped = observed()
    weakref.finalize(wrapped, observer.abandon)
    return wrapped


_observed_classes: dict[type, type] = {}
_OBSERVER = "_genai_tracing_observer"


def observe_stream_object(stream: Any, observer: StreamObserver) -> Any:
    """Make an SDK stream object report to ``observer``; it stays an instance of its class.

    The object's class is swapped for a subclass that wraps the iteration protocol (and
    ``close``/context exit), so ``isinstance`` checks, attributes and helper methods all keep
    working. Iterating yields the very items the SDK yields.
    """
    import weakref

    cls = type(stream)
    observed = _observed_classes.get(cls)
    if observed is None:
        observed = _observed_classes[cls] = _observed_subclass(cls)
    setattr(stream, _OBSERVER, observer)
    stream.__class__ = observed
    try:
        weakref.finalize(stream, observer.abandon)
    except TypeError:
        pass  # not weak-referenceable: the span then ends on exhaustion, error or close only
    return stream


def _observed_subclass(cls: type) -> type:
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}

    def observer_of(self: Any) -> StreamObserver | None:
        return self.__dict__.get(_OBSERVER)

    if hasattr(cls, "__next__"):
        def __next__(self: Any) -> Any:
            observer = observer_of(self)
            try:
                item = cls.__next__(self)
            except StopIteration:
                if observer:
                    observer.finish()
                raise
            except BaseException as e:
                if observer:
                    observer.finish(error=e)
                raise
            if observer:
                observer.observe(item)
            return item
        namespace["__next__"] = __next__

    if hasattr(cls, "__iter__"):
        def __iter__(self: Any) -> Any:
            observer = observer_of(self)
            iterator = cls.__iter__(self)
            if observer is None or iterator is self:
                return iterator
            return observe_generator(_as_generator(iterator), observer)
        namespace["__iter__"] = __iter__

    if hasattr(cls, "__anext__"):
        async def __anext__(self: Any) -> Any:
            observer = observer_of(self)
            try:
                item = await cls.__anext__(self)
            except StopAsyncIteration:
                if observer:
                    observer.finish()
                raise
            except BaseException as e:
                if observer:
                    observer.finish(error=e)
                raise
            if observer:
                observer.observe(item)
            return item
        namespace["__anext__"] = __anext__

    if hasattr(cls, "__aiter__"):
        def __aiter__(self: Any) -> Any:
            observer = observer_of(self)
            iterator = cls.__aiter__(self)
            if observer is None or iterator is self:
                return iterator
            return observe_generator(_as_async_generator(iterator), observer)
        namespace["__aiter__"] = __aiter__

    if hasattr(cls, "__enter__"):
        def __enter__(self: Any) -> Any:
            value = cls.__enter__(self)
            observer = observer_of(self)
            if observer is None:
                return value
            try:
                return observer.entered(value)
            except Exception:
                internal_error("stream enter")
                return value
        namespace["__enter__"] = __enter__

    if hasattr(cls, "__aenter__"):
        async def __aenter__(self: Any) -> Any:
            value = await cls.__aenter__(self)
            observer = observer_of(self)
            if observer is None:
                return value
            try:
                return observer.entered(value)
            except Exception:
                internal_error("stream enter")
                return value
        namespace["__aenter__"] = __aenter__

    for name in ("close", "__exit__"):
        if hasattr(cls, name):
            namespace[name] = _ending(cls, name)
    for name in ("aclose", "close_async", "__aexit__"):
        if hasattr(cls, name):
            namespace[name] = _ending_async(cls, name)
    return type(cls.__name__, (cls,), namespace)


def _closed(observer: StreamObserver | None) -> None:
    if observer is None:
        return
    # An SDK that closes its stream while handling an error (LiteLLM does) ends it with that error.
    handling = sys.exc_info()[1]
    if isinstance(handling, Exception):
        observer.finish(error=handling)
    else:
        observer.abandon()


def _ending(cls: type, name: str) -> Any:
    method = getattr(cls, name)

    def ending(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            _closed(self.__dict__.get(_OBSERVER))
    return ending


def _ending_async(cls: type, name: str) -> Any:
    method = getattr(cls, name)

    async def ending(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        finally:
            _closed(self.__dict__.get(_OBSERVER))
    return ending


def _as_generator(iterator: Any) -> Any:
    yield from iterator


async def _as_async_generator(iterator: Any) -> Any:
    async for item in iterator:
        yield item
