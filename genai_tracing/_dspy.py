"""DSPy 3.4+: ``dspy.LM`` calls providers through its own HTTP client (lm15), not LiteLLM.

MLflow's dspy autolog traces ``LM.__call__`` (the model, no usage) and ``Predict.forward``
(usage, no model); nothing below them stands for the provider call, so nothing can price it.
DSPy's native engine is the one choke point every such call passes: each ``complete`` and
``stream`` gets a span under ``LM.__call__``, as the LiteLLM engine's ``litellm-completion``
span sits there for older DSPy, with the response's model and usage in the provider's own
shape, so the OpenAI or Anthropic module prices it like any SDK call (and flags what it cannot).
A response served from DSPy's cache makes no engine call and gets no span: nothing was billed.

DSPy is patched when its engine module is imported (never imported here); calls made through
its LiteLLM engine are traced by the LiteLLM provider as before.
"""

from __future__ import annotations

from typing import Any

from ._guard import internal_error
from ._keys import MODEL, MODEL_PROVIDER, PROVIDER
from ._patch import patch_method, unpatch_method

ENGINE_MODULE = "dspy.clients.engines.lm15_engine"
_enabled = False


def enable() -> None:
    """Patch DSPy's native engine now if it is imported, else as soon as it is."""
    global _enabled
    _enabled = True
    from . import _mlflow

    _mlflow.on_import(ENGINE_MODULE, _patch_module)


def disable() -> None:
    global _enabled
    _enabled = False
    import sys

    if (module := sys.modules.get(ENGINE_MODULE)) is not None:
        for cls in _engine_classes(module):
            for name in ("complete", "stream"):
                unpatch_method(cls, name)


def _patch_module(module: Any) -> None:
    if not _enabled:
        return
    try:
        for cls in _engine_classes(module):
            patch_method(cls, "complete", lambda original, cls=cls: _wrap(original, cls, False))
            patch_method(cls, "stream", lambda original, cls=cls: _wrap(original, cls, True))
    except Exception:
        internal_error("dspy engine patch")


def _engine_classes(module: Any) -> list[type]:
    return [c for c in (getattr(module, "LM15Engine", None),
                        getattr(module, "AsyncLM15Engine", None)) if isinstance(c, type)]


def _wrap(original: Any, cls: type, streaming: bool) -> Any:
    import functools
    import inspect

    from ._spans import wrap_call

    name = f"{cls.__name__}.{'stream' if streaming else 'complete'}"
    finish = _finish_stream if streaming else _finish_response

    def traced_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``original`` traced as a call to the provider that serves it (known per call)."""
        try:
            engine, request = (args + (kwargs.get("request"),))[:2]
            model, provider = _route(engine, request)
        except Exception:
            internal_error("dspy engine route")
            return original
        if provider is None:
            return original  # the engine refuses the request itself, before sending anything
        served = _served_by(provider)
        # PROVIDER names who serves the call (Bedrock, Vertex AI, Groq...): the call is priced
        # under that provider's own entries, whichever wire format the engine speaks to it.
        attributes = {MODEL_PROVIDER: served, PROVIDER: served}
        if isinstance(model, str):
            attributes[MODEL] = model
        return wrap_call(original, name=name, span_type="CHAT_MODEL", provider=_family(provider),
                         inputs=lambda a, k: {"model": model, "provider": provider},
                         attributes=lambda recorded: attributes,
                         finish=lambda span, result, kwargs: finish(span, result, provider))

    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def traced_async(*args: Any, **kwargs: Any) -> Any:
            return await traced_call(args, kwargs)(*args, **kwargs)
        return traced_async

    @functools.wraps(original)
    def traced(*args: Any, **kwargs: Any) -> Any:
        return traced_call(args, kwargs)(*args, **kwargs)
    return traced


def _route(engine: Any, request: Any) -> tuple[Any, str | None]:
    """The model and the lm15 provider that will serve ``request`` (offline routing, as the
    engine itself does: ``openai/gpt-4o-mini`` is ``gpt-4o-mini`` at ``openai-chat``)."""
    requested = getattr(request, "model", None)
    try:
        resolution = engine.resolve(requested)
        return resolution.model or requested, str(resolution.provider)
    except Exception:
        return requested, None  # the engine itself will refuse the request


def _family(provider: str | None) -> str:
    """The wire format lm15 speaks to ``provider``: Anthropic's Messages API (``anthropic``,
    ``bedrock-anthropic``, ``vertex-anthropic``...) or OpenAI's shape (the rest, Gemini's
    usage read into it)."""
    return "anthropic" if _anthropic_dialect(provider) else "openai"


def _anthropic_dialect(provider: str | None) -> bool:
    return bool(provider) and (provider == "anthropic" or provider.endswith("-anthropic"))


# lm15's provider names -> genai_tracing's (those of LiteLLM's map and _endpoints).
_SERVED_BY = {"openai": "openai", "openai-chat": "openai", "openai-codex": "openai",
              "aws-anthropic": "bedrock", "bedrock-anthropic": "bedrock",
              "bedrock-chat": "bedrock", "bedrock-mantle-chat": "bedrock",
              "azure": "azure", "azure-chat": "azure", "azure-anthropic": "azure",
              "vertex": "vertex_ai", "vertex-express": "vertex_ai",
              "vertex-anthropic": "vertex_ai", "deepseek-anthropic": "deepseek",
              "sglang": "vllm"}


def _served_by(provider: str | None) -> str | None:
    if provider is None:
        return None
    return _SERVED_BY.get(provider, provider)


def _finish_response(span: Any, response: Any, provider: str | None) -> Any:
    span.end(outputs=_outputs(provider, getattr(response, "model", None),
                              getattr(response, "usage", None)))
    return response


def _finish_stream(span: Any, events: Any, provider: str | None) -> Any:
    from ._streams import StreamWatch, observe_generator

    return observe_generator(events, StreamWatch(span, _Events(provider), owned=True))


class _Events:
    """Running model and usage of an lm15 event stream (its start and end events)."""

    def __init__(self, provider: str | None) -> None:
        self.provider = provider
        self.model: str | None = None
        self.usage: Any = None

    def item(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "start":
            self.model = getattr(event, "model", None) or self.model
        elif kind == "end" and getattr(event, "usage", None) is not None:
            self.usage = event.usage

    def reading(self) -> Any:
        return None

    def outputs(self) -> Any:
        return _outputs(self.provider, self.model, self.usage)


def _outputs(provider: str | None, model: Any, usage: Any) -> dict[str, Any]:
    """The response's model and usage in the wire format's own shape (``provider`` is lm15's)."""
    if usage is None:
        return {"model": model, "usage": None}
    get = lambda name: getattr(usage, name, None)  # noqa: E731
    if _anthropic_dialect(provider):  # lm15 keeps Anthropic's disjoint cache counters, as sent
        return {"type": "message", "model": model, "usage": {
            "input_tokens": get("input_tokens"), "output_tokens": get("output_tokens"),
            "cache_read_input_tokens": get("cache_read_tokens"),
            "cache_creation_input_tokens": get("cache_write_tokens")}}
    output = get("output_tokens")
    reasoning = get("reasoning_tokens")
    if provider in ("gemini", "vertex", "vertex-express", "xai") and output is not None and \
            reasoning:
        output += reasoning  # these report thinking apart from output; OpenAI's shape includes it
    return {"object": "chat.completion", "model": model, "usage": {
        "prompt_tokens": get("input_tokens"), "completion_tokens": output,
        "prompt_tokens_details": {"cached_tokens": get("cache_read_tokens"),
                                  "audio_tokens": get("input_audio_tokens")},
        "completion_tokens_details": {"reasoning_tokens": reasoning,
                                      "audio_tokens": get("output_audio_tokens")}}}
