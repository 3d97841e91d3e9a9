"""Spans for the calls autolog misses: three zones around the user's call.

Zone 1, our set-up: if it fails, the call runs untraced. Zone 2, the user's call: its result and
its exception pass through untouched. Zone 3, our post-processing: guarded on its own.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from ._guard import internal_error


from ._keys import CALL as CALL_ATTRIBUTE


class CallSpan:
    """A span genai_tracing makes for a call MLflow does not trace; ``end()`` once (first wins)."""

    def __init__(self, name: str, span_type: str, provider: str, inputs: dict[str, Any],
                 attributes: dict[str, Any] | None = None) -> None:
        from . import _mlflow
        from ._attribution import current
        from ._keys import SPAN_ATTRIBUTION

        self.span = _mlflow.start_span(name, span_type, inputs,
                                       {**(attributes or {}), CALL_ATTRIBUTE: provider})
        if (attribution := current()) is not None:
            # A stream may end outside the attribute() block it started in.
            self.span.set_attribute(SPAN_ATTRIBUTION, attribution.as_json())
        self._token = _mlflow.activate(self.span)
        self._ended = False

    @property
    def span_id(self) -> str:
        return self.span.span_id

    @property
    def end_time_ns(self) -> int | None:
        return self.span.end_time_ns

    def detach(self) -> None:
        """Stop being the active span (the call returned); the span itself may stay open."""
        if self._token is not None:
            from . import _mlflow

            token, self._token = self._token, None
            try:
                _mlflow.deactivate(token)
            except Exception:
                internal_error("span detach")

    def end(self, outputs: Any = None, error: BaseException | None = None,
            attributes: dict[str, Any] | None = None, status: str | None = None) -> None:
        """End the span (once): with ``error`` it records the exception; ``status`` alone sets
        the status of a span whose events are already recorded."""
        if self._ended:
            return
        self._ended = True
        # No detach here: ``end`` may run on another thread or task (a LiteLLM callback, a
        # stream's finalizer); only the caller's own context can detach the span, and does.
        try:
            from mlflow.entities import SpanEvent, SpanStatusCode

            for key, value in (attributes or {}).items():
                self.span.set_attribute(key, value)
            if error is not None:
                self.span.add_event(SpanEvent.from_exception(error))
                self.span.end(outputs=outputs, status=SpanStatusCode.ERROR)
            else:
                self.span.end(outputs=outputs, status=status)
        except Exception:
            internal_error("span end")


def _start(name: str, span_type: str, provider: str, inputs: dict[str, Any],
           attributes: dict[str, Any] | None) -> CallSpan | None:
    try:
        return CallSpan(name, span_type, provider, inputs, attributes)
    except Exception:
        internal_error(f"{name} span start")
        return None


def wrap_call(original: Callable[..., Any], *, name: str, span_type: str, provider: str,
              inputs: Callable[[tuple[Any, ...], dict[str, Any]], dict[str, Any]],
              finish: Callable[[CallSpan, Any, dict[str, Any]], Any],
              attributes: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
              before: Callable[[CallSpan, dict[str, Any]], None] | None = None,
              where: Callable[[Any, tuple[Any, ...]], None] | None = None
              ) -> Callable[..., Any]:
    """Trace ``original`` (sync or async). ``finish(span, result, kwargs)`` ends the span and
    returns what the user gets back (the result itself, or a stream that ends the span later).
    ``attributes(inputs)`` gives the span's first attributes; ``before(span, kwargs)`` may adjust
    the call's keyword arguments once the span exists; ``where(span, args)`` notes where the call
    goes, from the method's ``self`` (``args[0]``)."""

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> CallSpan | None:
        try:
            recorded = inputs(args, kwargs)
        except Exception:
            internal_error(f"{name} inputs")
            recorded = {}
        extra = None
        if attributes is not None:
            try:
                extra = attributes(recorded)
            except Exception:
                internal_error(f"{name} attributes")
        span = _start(name, span_type, provider, recorded, extra)
        if span is not None and before is not None:
            try:
                before(span, kwargs)
            except Exception:
                internal_error(f"{name} set-up")
        if span is not None and where is not None:
            try:
                where(span.span, args)
            except Exception:
                internal_error(f"{name} endpoint")
        return span

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
                    span.detach()
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
                span.detach()
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
            span.detach()
            span.end(error=e)
            raise
        return complete(span, result, kwargs)

    traced.__genai_tracing_original__ = original  # type: ignore[attr-defined]
    return traced


def end_with_result(span: CallSpan, result: Any, kwargs: dict[str, Any]) -> Any:
    """``wrap_call``'s ``finish`` for a plain call: the result is the span's output, as is."""
    span.end(outputs=result)
    return result
