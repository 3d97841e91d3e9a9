"""LiteLLM: ``completion``/``acompletion``, ``embedding``/``aembedding``, ``image_generation``.

MLflow's LiteLLM integration logs each call from a success callback after the call, on a
background thread for async calls: the span lands outside the caller's trace or not at all, and
an OpenAI-model call is counted twice (LiteLLM's span beside the OpenAI SDK's). So this module
wraps LiteLLM's entry points itself: the span is open during the call, an OpenAI SDK span made
inside it nests under it (and is counted once, on the outer span), and streams end it when they
finish.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .._spans import CALL_ATTRIBUTE, CallSpan, end_with_result, original_of, wrap_call
from .._streams import Reader, StreamWatch, attach, hook_stream_classes, unhook_stream_classes
from .._usage import Usage, UsageReader, clamp_parts
from . import Call, dig, span_inputs, span_outputs, text_model
from .openai import read_usage as read_openai_usage

NAME = "litellm"
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini",
              "vertex_ai": "gemini", "azure": "openai"}
_ENTRY_POINTS = {
    "completion": "CHAT_MODEL", "acompletion": "CHAT_MODEL",
    "embedding": "EMBEDDING", "aembedding": "EMBEDDING",
    "image_generation": "LLM", "aimage_generation": "LLM",
}
_RECORDED = ("model", "messages", "input", "prompt", "n", "size", "quality", "stream",
             "stream_options", "temperature", "max_tokens", "tools", "response_format")


def claims(span: Any) -> bool:
    return span.get_attribute(CALL_ATTRIBUTE) == NAME


def extract(span: Any) -> Call:
    out = span_outputs(span)
    requested = text_model(span_inputs(span).get("model"))
    model = text_model(dig(out, "model")) or requested
    provider = provider_of(requested or model)
    return Call(provider, _qualified(model, provider), read_usage(out), requested_model=requested)


def provider_of(model: str | None) -> str:
    prefix = (model or "").split("/", 1)[0].lower() if model and "/" in model else ""
    return _PROVIDERS.get(prefix, NAME)


def _qualified(model: str | None, provider: str) -> str | None:
    # The model as the provider names it: LiteLLM's routing prefix ("openai/") is not part of it.
    if model and provider != NAME and model.lower().startswith(f"{provider}/"):
        return model.split("/", 1)[1]
    if model and model.split("/", 1)[0].lower() in _PROVIDERS and "/" in model:
        return model.split("/", 1)[1]
    return model


def read_usage(response: Any) -> Usage | None:
    """LiteLLM's OpenAI-shaped usage, plus the Anthropic cache fields it passes through."""
    usage = read_openai_usage(response)
    raw = dig(response, "usage")
    if usage is None or raw is None:
        return usage
    r = UsageReader(raw)
    cached = usage.cached_input_tokens or r.get("cache_read_input_tokens") or 0
    written = r.get("cache_creation_input_tokens") or 0
    return clamp_parts(replace(usage, cached_input_tokens=cached, cache_write_tokens=written,
                               flags=tuple(dict.fromkeys(usage.flags + r.flags()))))


# ---------------------------------------------------------------------------------------------
# The patch


def _stream_classes() -> list[type]:
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

    return [CustomStreamWrapper]


def patch() -> None:
    import litellm

    hook_stream_classes(_stream_classes(), lambda stream: None)

    for function, span_type in _ENTRY_POINTS.items():
        current = getattr(litellm, function, None)
        if current is None or original_of(current) is not current:
            continue
        setattr(litellm, function, wrap_call(
            current, name=f"litellm.{function}", span_type=span_type, provider=NAME,
            inputs=_inputs, finish=_finish))


def unpatch() -> None:
    import litellm

    unhook_stream_classes(_stream_classes())

    for function in _ENTRY_POINTS:
        current = getattr(litellm, function, None)
        if current is not None:
            setattr(litellm, function, original_of(current))


def _inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    recorded = {k: kwargs[k] for k in _RECORDED if k in kwargs}
    if args and "model" not in recorded and isinstance(args[0], str):
        recorded["model"] = args[0]
    return recorded


def _finish(span: CallSpan, result: Any, kwargs: dict[str, Any]) -> Any:
    if kwargs.get("stream"):
        return _trace_stream(result, span)
    return end_with_result(span, result, kwargs)


class _StreamTotals(Reader):
    """What a stream has shown so far: running totals and the text, never the chunks."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: Any = None
        self.text: list[str] = []
        self.finish_reason: Any = None

    def item(self, chunk: Any) -> None:
        self.model = dig(chunk, "model") or self.model
        if (usage := dig(chunk, "usage")) is not None:
            self.usage = usage.model_dump() if hasattr(usage, "model_dump") else usage
        if (delta := dig(chunk, "choices", 0, "delta", "content")) is not None:
            self.text.append(str(delta))
        self.finish_reason = dig(chunk, "choices", 0, "finish_reason") or self.finish_reason

    def outputs(self) -> Any:
        return {"model": self.model, "choices": [{"index": 0, "finish_reason": self.finish_reason,
                "message": {"role": "assistant", "content": "".join(self.text)}}],
                "usage": self.usage}


def _trace_stream(stream: Any, span: CallSpan) -> Any:
    """Make ``stream`` end ``span`` once it finishes; it stays a ``CustomStreamWrapper``."""
    attach(stream, StreamWatch(span, _StreamTotals(), owned=True))
    return stream
