"""Spans for the calls autolog misses: three zones around the user's call, streams ended once.

Zone 1, our set-up: if it fails, the call runs untraced. Zone 2, the user's call: its result and
its exception pass through untouched. Zone 3, our post-processing: guarded on its own.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from ._guard import internal_error

CALL_ATTRIBUTE = "genai_tracing.call"


class CallSpan:
    """One provider call's span; ``end()`` is safe to call more than once (the first one wins)."""

    def __init__(self, name: str, span_type: str, provider: str, inputs: dict[str, Any]) -> None:
        import mlflow
        from mlflow.tracing.provider import set_span_in_context

        self.span = mlflow.start_span_no_context(
            name=name, span_type=span_type, inputs=inputs,
            attributes={CALL_ATTRIBUTE: provider, "mlflow.llm.provider": provider})
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
            if error is not None:
                self.span.add_event(SpanEvent.from_exception(error))
                self.span.end(outputs=outputs, status=SpanStatusCode.ERROR)
            else:
                self.span.end(outputs=outputs)
        except Exception:
            internal_error("span end")


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
        return complete(span, result, kwargs)

    traced.__genai_tracing_original__ = original  # type: ignore[attr-defined]
    return traced


def original_of(function: Any) -> Any:
    return getattr(function, "__genai_tracing_original__", function)
