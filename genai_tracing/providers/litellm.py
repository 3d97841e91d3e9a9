"""LiteLLM: ``completion``/``acompletion``, ``embedding``/``aembedding``, ``image_generation``.

MLflow's LiteLLM integration logs each call from a success callback after the call, on a
background thread for async calls: the span lands outside the caller's trace or not at all, and
an OpenAI-model call is counted twice (LiteLLM's span beside the OpenAI SDK's). So this module
wraps LiteLLM's entry points itself: the span is open during the call, an OpenAI SDK span made
inside it nests under it (and is counted once, on the outer span), and streams end it when they
finish.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from typing import Any

from .. import _mlflow
from .._guard import guarded
from .._keys import REQUESTED_MODEL, START_TIME_NS
from .._patch import original_of
from .._spans import CALL_ATTRIBUTE, CallSpan, end_with_result, wrap_call
from .._streams import Reader, StreamWatch, attach, hook_stream_classes, unhook_stream_classes
from .._usage import Usage, UsageReader, clamp_parts
from . import Call, dig, span_outputs, text_model
from .openai import read_usage as read_openai_usage

NAME = "litellm"
SDK_MODULE = "litellm"
PIP_PACKAGE = "litellm"
# MLflow's LiteLLM integration: its logger, made to write onto the span opened here.
AUTOLOG = "litellm"
# LiteLLM's copies of the providers' "error status" exceptions: nothing was billed.
REFUSALS = frozenset({
    "APIStatusError", "BadRequestError", "AuthenticationError", "PermissionDeniedError",
    "NotFoundError", "ConflictError", "UnprocessableEntityError", "RateLimitError",
    "InternalServerError", "ServiceUnavailableError", "BadGatewayError", "ContextWindowExceededError",
    "ContentPolicyViolationError", "BudgetExceededError", "UnsupportedParamsError"})
USAGE_HINT = ("Streams report usage only when the request sets "
              "stream_options={'include_usage': True}.")
# LiteLLM's routing prefix -> the provider that serves the call (genai_tracing's names).
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini",
              "vertex_ai": "vertex_ai", "bedrock": "bedrock", "azure": "azure", "databricks": "databricks",
              "groq": "groq", "deepseek": "deepseek", "together_ai": "together_ai",
              "fireworks_ai": "fireworks_ai", "mistral": "mistral", "xai": "xai",
              "openrouter": "openrouter", "hosted_vllm": "vllm", "ollama": "ollama",
              "ollama_chat": "ollama"}


def claims(span: Any) -> bool:
    if span.get_attribute(CALL_ATTRIBUTE) == NAME:
        return True
    # MLflow's own LiteLLM span, for a call genai_tracing did not wrap (a Router, say).
    return span.name.startswith("litellm-") and span.get_attribute("litellm_call_id") is not None


def extract(span: Any) -> Call:
    out = span_outputs(span)
    requested = text_model(span.get_attribute(REQUESTED_MODEL)) or text_model(
        span.get_attribute("model"))
    model = text_model(dig(out, "model")) or requested
    provider = provider_of(requested or model)
    qualified = _qualified(model, provider)
    api_base = text_model(span.get_attribute("api_base"))
    if provider == "openai" and api_base:
        # "openai/<model>" at another address: an OpenAI-compatible server (see _endpoints).
        from .. import _endpoints
        from .._pricing import active_resolver

        provider = _endpoints.detect(api_base, None, active_resolver().table.endpoints)
    return Call(provider, qualified, read_usage(out), requested_model=requested,
                endpoint=_endpoints_url(api_base))


def _endpoints_url(api_base: str | None) -> str | None:
    from .._endpoints import clean_url

    return (clean_url(api_base) or None) if api_base else None


def provider_of(model: str | None) -> str:
    prefix = (model or "").split("/", 1)[0].lower() if model and "/" in model else ""
    return _PROVIDERS.get(prefix, NAME)


def _qualified(model: str | None, provider: str) -> str | None:
    # The model as the provider names it: LiteLLM's routing prefix ("openai/") is not part of it,
    # nor Bedrock's route ("bedrock/converse/<model id>").
    if model and provider != NAME and model.lower().startswith(f"{provider}/"):
        model = model.split("/", 1)[1]
    elif model and model.split("/", 1)[0].lower() in _PROVIDERS and "/" in model:
        model = model.split("/", 1)[1]
    if model and provider == "bedrock" and model.split("/", 1)[0] in ("converse", "invoke"):
        model = model.split("/", 1)[1]
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
    # Anthropic's 1-hour cache writes and web searches, as LiteLLM passes them through.
    written_1h = r.get("prompt_tokens_details", "cache_creation_token_details",
                       "ephemeral_1h_input_tokens") or 0
    searches = r.get("server_tool_use", "web_search_requests") or \
        r.get("prompt_tokens_details", "web_search_requests") or 0
    tools = dict(usage.tool_calls)
    if searches:
        tools["web_search"] = searches
    return clamp_parts(replace(usage, cached_input_tokens=cached, cache_write_tokens=written,
                               cache_write_1h_tokens=written_1h,
                               tool_calls=tuple(sorted(tools.items())),
                               flags=tuple(dict.fromkeys(usage.flags + r.flags()))))


# ---------------------------------------------------------------------------------------------
# The patch. MLflow's LiteLLM integration is a LiteLLM callback (``MlflowLogger``) that makes the
# call's span after the call, from LiteLLM's own record of it: for async calls on a background
# task, often after the caller's trace has ended. Here the span is opened when the call starts
# (so it is in the caller's trace, with the provider call inside it) and MLflow's own logger
# writes its name, type, inputs, outputs and attributes onto that very span when LiteLLM calls
# it. Should the callback not come before the caller's trace ends, the span ends with the call's
# own result.

# MLflow's logger names the span "litellm-<call type>" and types completions as LLM (its only
# other type, EMBEDDING, is for a call type LiteLLM does not use).
_ENTRY_POINTS = ("completion", "acompletion", "embedding", "aembedding", "image_generation",
                 "aimage_generation")
_LATE_LIMIT_S = 10.0   # an async call's span waits this long for MLflow's logger, at most

_open: dict[str, CallSpan] = {}        # litellm_call_id -> the span MLflow's logger fills
_by_span: dict[str, str] = {}          # span id -> litellm_call_id
# span id -> (deadline, span, outputs, trace id, the event loop the call ran on)
_late: dict[str, tuple[float, CallSpan, Any, str, Any]] = {}
_lock = threading.Lock()
_sweeper: threading.Thread | None = None


def _stream_classes() -> list[type]:
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

    return [CustomStreamWrapper]


def patch() -> None:
    import litellm

    hook_stream_classes(_stream_classes(), lambda stream: None)
    _use_our_logger(litellm)
    for function in _ENTRY_POINTS:
        current = getattr(litellm, function, None)
        if current is None or original_of(current) is not current:
            continue
        setattr(litellm, function, wrap_call(
            current, name=f"litellm-{function}", span_type="LLM", provider=NAME,
            inputs=_inputs, before=_name_the_call,
            finish=_finish_async if function.startswith("a") else _finish))


def unpatch() -> None:
    import litellm

    unhook_stream_classes(_stream_classes())
    _drop_our_logger(litellm)
    for function in _ENTRY_POINTS:
        current = getattr(litellm, function, None)
        if current is not None:
            setattr(litellm, function, original_of(current))
    _end_late(lambda trace_id: True)


_CALLBACK_LISTS = ("success_callback", "failure_callback", "_async_success_callback",
                   "_async_failure_callback", "callbacks")


def _use_our_logger(litellm: Any) -> None:
    """MLflow's autolog registers its logger as "mlflow"; ours, a subclass, takes its place."""
    logger = _logger()
    for name in _CALLBACK_LISTS:
        callbacks = getattr(litellm, name, None)
        if isinstance(callbacks, list):
            kept = [cb for cb in callbacks if not (cb == "mlflow" or _is_mlflow_logger(cb))]
            if name != "callbacks":
                # LiteLLM's own place for a logger object: sync calls run the first two lists,
                # async calls (streams included) the "_async_" ones, on the call's event loop.
                kept.append(logger)
            setattr(litellm, name, kept)


def _drop_our_logger(litellm: Any) -> None:
    for name in _CALLBACK_LISTS:
        callbacks = getattr(litellm, name, None)
        if isinstance(callbacks, list) and _logger_instance is not None:
            setattr(litellm, name, [cb for cb in callbacks if cb is not _logger_instance])


def _is_mlflow_logger(callback: Any) -> bool:
    from litellm.integrations.mlflow import MlflowLogger

    return isinstance(callback, MlflowLogger)


_logger_instance: Any = None


def _logger() -> Any:
    """MLflow's own LiteLLM logger, writing onto the span genai_tracing opened for the call."""
    global _logger_instance
    if _logger_instance is not None:
        return _logger_instance
    from litellm.integrations.mlflow import MlflowLogger

    # PRIVATE (LiteLLM, not MLflow): MlflowLogger's _start_span_or_trace, _end_span_or_trace,
    # _get_span_type, _construct_input and _extract_attributes are how it writes MLflow's span;
    # overriding the first two puts that span on the one opened for the call. If LiteLLM renames
    # them, the overrides are never called and the logger makes its own span as before (the
    # call's own span still ends with the call's result, priced): nothing is lost but the nesting.
    class GenaiTracingMlflowLogger(MlflowLogger):  # type: ignore[misc, valid-type]
        def _start_span_or_trace(self, kwargs: Any, start_time: Any) -> Any:
            with _lock:
                span = _open.get(kwargs.get("litellm_call_id"))
            if span is None:
                return super()._start_span_or_trace(kwargs, start_time)  # a call not wrapped
            if span.end_time_ns is not None:
                return None  # ended already (a late callback): MLflow's logger gives up quietly
            call_type = kwargs.get("call_type", "completion")
            with guarded("litellm span attributes"):
                _mlflow.rename(span.span, f"litellm-{call_type}")
                span.span.set_span_type(self._get_span_type(call_type))
                span.span.set_inputs(self._construct_input(kwargs))
                span.span.set_attributes(self._extract_attributes(kwargs))
                # As MLflow's client records a span it starts at a given time.
                span.span.set_attribute(START_TIME_NS, int(start_time.timestamp() * 1e9))
            return span.span

        def _end_span_or_trace(self, span: Any, outputs: Any, end_time_ns: Any,
                               status: Any) -> None:
            with _lock:
                call_id = _by_span.pop(getattr(span, "span_id", None), None)
                own = _open.pop(call_id, None) if call_id else None
                _late.pop(getattr(span, "span_id", ""), None)
            if own is None:
                super()._end_span_or_trace(span, outputs, end_time_ns, status)
            else:
                own.end(outputs=outputs, status=status)

    _logger_instance = GenaiTracingMlflowLogger()
    return _logger_instance


def _inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    # As MLflow's logger records them (its _construct_input), until it writes its own.
    inputs: dict[str, Any] = {"messages": kwargs.get("messages")}
    for key in ("tools", "functions", "stream", "tool_choice", "user", "prediction"):
        if kwargs.get(key):
            inputs[key] = kwargs[key]
    return inputs


def _name_the_call(span: CallSpan, kwargs: dict[str, Any]) -> None:
    """Give the call an id LiteLLM hands back to MLflow's logger, and remember the model asked."""
    call_id = kwargs.setdefault("litellm_call_id", str(uuid.uuid4()))
    if isinstance(kwargs.get("model"), str):
        span.span.set_attribute(REQUESTED_MODEL, kwargs["model"])
    with _lock:
        _open[call_id] = span
        _by_span[span.span_id] = call_id


def _finish(span: CallSpan, result: Any, kwargs: dict[str, Any]) -> Any:
    if kwargs.get("stream"):
        attach(result, StreamWatch(span, _StreamTotals(), owned=True))
        return result
    return end_with_result(span, result, kwargs)


def _finish_async(span: CallSpan, result: Any, kwargs: dict[str, Any]) -> Any:
    """An async call's logger runs later, on a background task: the span waits for it (or the
    end of its trace, or a few seconds), so MLflow's record of the call lands on it."""
    if kwargs.get("stream"):
        attach(result, StreamWatch(_Later(span), _StreamTotals(), owned=True))
        return result
    _Later(span).end(outputs=result)
    return result


class _Later:
    """A span's ``end`` that waits for MLflow's logger; see ``_finish_async``."""

    def __init__(self, span: CallSpan) -> None:
        self.span = span
        self.span_id = span.span_id

    @property
    def end_time_ns(self) -> int | None:
        return self.span.end_time_ns

    def end(self, outputs: Any = None, error: BaseException | None = None,
            attributes: dict[str, Any] | None = None) -> None:
        if error is not None or attributes:
            _forget(self.span)
            self.span.end(outputs=outputs, error=error, attributes=attributes)
            return
        self.span.detach()
        with _lock:
            if self.span_id not in _by_span:
                return  # MLflow's logger has ended it already
            _late[self.span_id] = (time.monotonic() + _LATE_LIMIT_S, self.span, outputs,
                                   self.span.span.trace_id, _running_loop())
        _start_sweeper()


def _running_loop() -> Any:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _forget(span: CallSpan) -> None:
    with _lock:
        call_id = _by_span.pop(span.span_id, None)
        _open.pop(call_id, None)
        _late.pop(span.span_id, None)


def _end_late(which: Any) -> None:
    with _lock:
        due = [(span_id, entry) for span_id, entry in _late.items() if which(entry)]
    for _, (_, span, outputs, _, _) in due:
        with _lock:
            call_id = _by_span.get(span.span_id)
        _forget(span)
        with guarded("litellm span attributes"):
            span.span.set_attributes(_call_attributes(call_id, span, outputs))
        span.end(outputs=outputs)


def _call_attributes(call_id: str | None, span: CallSpan, outputs: Any) -> dict[str, Any]:
    """What MLflow's logger records of a call, as far as the call's own result tells it (its
    record of the call did not come in time)."""
    hidden = getattr(outputs, "_hidden_params", None) or {}
    return {k: v for k, v in {
        "litellm_call_id": call_id,
        "call_type": span.span.name.removeprefix("litellm-"),
        "model": dig(outputs, "model"),
        "api_base": hidden.get("api_base"),
        "cache_hit": hidden.get("cache_hit"),
        "response_cost": hidden.get("response_cost"),
    }.items() if v is not None}


def before_trace_end(trace_id: str) -> None:
    """The caller's trace is ending: spans still waiting for MLflow's logger end now."""
    _end_late(lambda entry: entry[3] == trace_id)


def _start_sweeper() -> None:
    global _sweeper
    if _sweeper is not None and _sweeper.is_alive():
        return

    def sweep() -> None:
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            with guarded("litellm late spans"):
                # LiteLLM's logger runs on the call's event loop: once that loop is closed (the
                # end of an asyncio.run()), its record will not come.
                _end_late(lambda entry: entry[0] <= now or (
                    entry[4] is not None and entry[4].is_closed()))

    _sweeper = threading.Thread(target=sweep, name="genai-tracing-litellm", daemon=True)
    _sweeper.start()


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
