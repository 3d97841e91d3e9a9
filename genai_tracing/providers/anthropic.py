"""Anthropic SDK: ``messages.create`` (plain and ``stream=True``) and ``messages.stream()``.

MLflow autolog records plain ``messages.create``. For streams it records no usage
(``stream=True``) or no span at all (``messages.stream()``), so this module wraps those two entry
points of ``Messages``/``AsyncMessages`` and reads the usage off the stream's own events.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .._spans import CALL_ATTRIBUTE, CallSpan, StreamObserver, observe_stream_object, \
    patch_method, streams_only, unpatch_method, wrap_call
from .._usage import Usage, UsageReader, clamp_parts
from . import Call, dig, span_inputs, span_outputs, text_model

NAME = "anthropic"
_MESSAGE_FORMAT = "mlflow.message.format"
_RECORDED = ("model", "messages", "system", "max_tokens", "temperature", "tools", "thinking",
             "stream")


def claims(span: Any) -> bool:
    if span.get_attribute(CALL_ATTRIBUTE) == NAME:
        return True
    return span.get_attribute(_MESSAGE_FORMAT) == "anthropic" and span.name.endswith(
        "Messages.create")


def extract(span: Any) -> Call:
    out = span_outputs(span)
    requested = text_model(span_inputs(span).get("model"))
    model = text_model(dig(out, "model")) or requested
    return Call(NAME, model, read_usage(dig(out, "usage")), requested_model=requested)


def read_usage(raw: Any) -> Usage | None:
    """Anthropic's ``input_tokens`` leaves out cache reads and writes; the total puts them back."""
    if raw is None:
        return None
    r = UsageReader(raw)
    uncached = r.get("input_tokens")
    cached = r.get("cache_read_input_tokens") or 0
    written = r.get("cache_creation_input_tokens") or 0
    usage = Usage(
        input_tokens=None if uncached is None else uncached + cached + written,
        output_tokens=r.get("output_tokens"),
        cached_input_tokens=cached,
        cache_write_tokens=written,
    )
    return clamp_parts(replace(usage, flags=r.flags()))


# ---------------------------------------------------------------------------------------------
# The patch: streams only; plain calls stay with MLflow autolog.


def _classes() -> list[type]:
    from anthropic.resources.messages import AsyncMessages, Messages

    return [Messages, AsyncMessages]


def patch() -> None:
    for cls in _classes():
        patch_method(cls, "create", _wrap_create)
        patch_method(cls, "stream", _wrap_stream)


def unpatch() -> None:
    for cls in _classes():
        unpatch_method(cls, "stream")
        unpatch_method(cls, "create")


def _inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in _RECORDED if k in kwargs}


def _wrap_create(original: Any) -> Any:
    return streams_only(wrap_call(original, name=f"{_owner(original)}.create",
                                  span_type="CHAT_MODEL", provider=NAME, inputs=_inputs,
                                  finish=_finish_raw_stream), original)


def _wrap_stream(original: Any) -> Any:
    return wrap_call(original, name=f"{_owner(original)}.stream", span_type="CHAT_MODEL",
                     provider=NAME, inputs=_inputs, finish=_finish_stream_manager)


def _owner(function: Any) -> str:
    qualname = getattr(function, "__qualname__", "Messages.create")
    return qualname.rsplit(".", 1)[0] if "." in qualname else "Messages"


def _finish_raw_stream(span: CallSpan, stream: Any, kwargs: dict[str, Any]) -> Any:
    return observe_stream_object(stream, _EventTotals(span))


def _finish_stream_manager(span: CallSpan, manager: Any, kwargs: dict[str, Any]) -> Any:
    """``messages.stream()`` returns a context manager; the stream exists once it is entered."""
    return observe_stream_object(manager, _ManagerObserver(span))


class _EventTotals(StreamObserver):
    """Usage from raw stream events: ``message_start`` has input, ``message_delta`` the rest."""

    def __init__(self, span: CallSpan) -> None:
        super().__init__(span)
        self.model: str | None = None
        self.usage: dict[str, Any] = {}
        self.text: list[str] = []
        self.stop_reason: Any = None

    def item(self, event: Any) -> None:
        kind = dig(event, "type")
        if kind == "message_start":
            self.model = dig(event, "message", "model")
            self._merge(dig(event, "message", "usage"))
        elif kind == "message_delta":
            # Cumulative counts, like the SDK's own accumulator: later values replace earlier.
            self._merge(dig(event, "usage"))
            self.stop_reason = dig(event, "delta", "stop_reason") or self.stop_reason
        elif kind == "content_block_delta" and dig(event, "delta", "type") == "text_delta":
            self.text.append(str(dig(event, "delta", "text") or ""))
        elif kind in ("text", "message_stop") and dig(event, "message") is not None:
            # messages.stream() events carry the SDK's accumulated snapshot.
            self.model = dig(event, "message", "model") or self.model

    def _merge(self, usage: Any) -> None:
        if usage is None:
            return
        data = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
        self.usage.update({k: v for k, v in data.items() if v is not None})

    def outputs(self) -> Any:
        return {"type": "message", "role": "assistant", "model": self.model,
                "content": [{"type": "text", "text": "".join(self.text)}],
                "stop_reason": self.stop_reason, "usage": self.usage or None}


class _ManagerObserver(StreamObserver):
    """Hands the span to the ``MessageStream`` the manager opens; ends it if never entered."""

    def __init__(self, span: CallSpan) -> None:
        super().__init__(span)
        self.handed_over = False

    def entered(self, message_stream: Any) -> Any:
        self.handed_over = True
        return observe_stream_object(message_stream, _EventTotals(self.span))

    def abandon(self) -> None:
        if not self.handed_over:
            super().abandon()
