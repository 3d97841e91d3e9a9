"""OpenAI SDK: chat completions, Responses, embeddings and images, as MLflow autolog records them."""

from __future__ import annotations

import re
from typing import Any

from .. import _endpoints, _where
from .._patch import patch_method, unpatch_method
from .._spans import CALL_ATTRIBUTE, end_with_result, wrap_call
from .. import _raw
from .._streams import Reader, StreamWatch, hook_stream_classes, send_traceparent, take_reading, \
    traced_span, unhook_stream_classes
from .._usage import Usage, UsageReader, billed_tier, clamp_parts
from . import Call, dig, served_by, span_inputs, span_outputs, text_model

NAME = "openai"
SDK_MODULE = "openai"
PIP_PACKAGE = "openai"
AUTOLOG = "openai"
# The SDK's exceptions for "the provider answered with an error status": nothing was billed.
REFUSALS = frozenset({
    "APIStatusError", "BadRequestError", "AuthenticationError", "PermissionDeniedError",
    "NotFoundError", "ConflictError", "UnprocessableEntityError", "RateLimitError",
    "InternalServerError"})
USAGE_HINT = ("OpenAI streams report usage only when the request sets "
              "stream_options={'include_usage': True}.")

# MLflow's openai autolog names each span after the SDK resource class it patched.
_SPAN_NAMES = frozenset({
    "Completions", "AsyncCompletions", "Responses", "AsyncResponses",
    "Embeddings", "AsyncEmbeddings", "Images", "AsyncImages",
})
_MESSAGE_FORMAT = "mlflow.message.format"


def claims(span: Any) -> bool:
    if span.get_attribute(CALL_ATTRIBUTE) == NAME:
        return True
    if span.name not in _SPAN_NAMES:
        return False
    return span.get_attribute(_MESSAGE_FORMAT) == "openai" or span.span_type in (
        "EMBEDDING", "TOOL")


def extract(span: Any) -> Call:
    # A raw response's stream (``with_streaming_response``) leaves its usage as a reading.
    out = take_reading(span.span_id) or span_outputs(span)
    inputs = span_inputs(span)
    requested = text_model(inputs.get("model")) or text_model(span.get_attribute("model"))
    model = text_model(dig(out, "model")) or requested
    usage = _with_search_model_fee(read_usage(out, requested_tier=inputs.get("service_tier")),
                                   model, out)
    provider, where = served_by(span, NAME)
    url, deployment = where.get("url") or None, where.get("deployment")
    variant = image_variant(model, inputs)
    if url and variant is None:
        from .._pricing import active_resolver

        # An image deployment's answer names no model: its variant is the mapped model's.
        variant = image_variant(_endpoints.mapped_model(active_resolver().table, url, deployment),
                                inputs)
    return Call(provider, model, usage, requested_model=requested, variant=variant,
                reported_cost=_reported_cost(out, usage), endpoint=url, deployment=deployment)


# Chat-completions search models ("gpt-4o-search-preview", "gpt-5-search-api") search the web on
# every request and bill a fee per request ("$25 / 1k calls" on OpenAI's price page), which
# their answers do not count.
_SEARCH_MODEL = re.compile(r"-search-(preview|api)\b")


def _with_search_model_fee(usage: Usage | None, model: str | None, out: Any) -> Usage | None:
    if usage is None or not model or not _SEARCH_MODEL.search(model.lower()):
        return usage
    if dig(out, "object") == "response" or usage.tool_counts.get("web_search"):
        return usage  # a Responses call counts its web_search_call items itself
    from dataclasses import replace

    return replace(usage, tool_calls=tuple(sorted({**usage.tool_counts, "web_search": 1}.items())))


def _reported_cost(response: Any, usage: Usage | None) -> Any:
    """The cost an endpoint put in the usage it returned (OpenRouter's ``usage.cost``, USD)."""
    raw = dig(response, "usage", "cost")
    if usage is None or isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        return None
    from .._money import to_decimal
    from .._pricing import Cost

    total = to_decimal(raw)
    if total is None or total < 0:
        return None
    # Only the total is reported: it is filed as output cost, so input + output = total.
    from decimal import Decimal

    return Cost(Decimal(0), total)


def image_variant(model: str | None, inputs: Any) -> str | None:
    """DALL-E bills per image by quality and size; gpt-image-* report tokens instead."""
    if not model or not model.lower().startswith("dall-e"):
        return None
    quality = str(dig(inputs, "quality") or "standard").lower()
    if quality in ("auto", "medium", "low", "high") or model.lower().startswith("dall-e-2"):
        quality = "hd" if quality == "high" and model.lower().startswith("dall-e-3") else \
            "standard"
    size = str(dig(inputs, "size") or "1024x1024").lower()
    return f"{quality}/{size}"


def read_usage(response: Any, *, requested_tier: Any = None) -> Usage | None:
    """Usage of any OpenAI-shaped response (also LiteLLM's, which copies the chat shape).

    The service tier the response reports wins over the one the request asked for."""
    raw = dig(response, "usage")
    if raw is None:
        images = dig(response, "data")
        if isinstance(images, list) and images and dig(images, 0, "object") != "embedding":
            # DALL-E answers carry no usage: no tokens are billed, only images.
            return Usage(input_tokens=0, output_tokens=0, images=len(images))
        return None
    r = UsageReader(raw)
    if dig(raw, "prompt_tokens") is not None or dig(raw, "completion_tokens") is not None:
        # Chat completions and embeddings: prompt tokens include cached ones.
        completion = r.get("completion_tokens")
        if completion is None and _is_embedding(response):
            completion = 0  # embeddings report no completion tokens; a reported 0 stays 0
        usage = Usage(
            input_tokens=r.get("prompt_tokens"),
            output_tokens=completion,
            cached_input_tokens=r.get("prompt_tokens_details", "cached_tokens") or 0,
            reasoning_tokens=r.get("completion_tokens_details", "reasoning_tokens") or 0,
            image_input_tokens=r.get("prompt_tokens_details", "image_tokens") or 0,
            image_output_tokens=r.get("completion_tokens_details", "image_tokens") or 0,
            audio_input_tokens=r.get("prompt_tokens_details", "audio_tokens") or 0,
            audio_output_tokens=r.get("completion_tokens_details", "audio_tokens") or 0,
        )
    else:
        # Responses API and gpt-image-* image generation.
        is_images = isinstance(dig(response, "data"), list)
        output_tokens = r.get("output_tokens")
        image_out = r.get("output_tokens_details", "image_tokens")
        if is_images and image_out is None:
            image_out = output_tokens  # images answers bill all output as image tokens
        usage = Usage(
            input_tokens=r.get("input_tokens"),
            output_tokens=output_tokens,
            cached_input_tokens=r.get("input_tokens_details", "cached_tokens") or 0,
            reasoning_tokens=r.get("output_tokens_details", "reasoning_tokens") or 0,
            image_input_tokens=r.get("input_tokens_details", "image_tokens") or 0,
            image_output_tokens=image_out or 0,
            images=len(dig(response, "data")) if is_images else 0,
            audio_input_tokens=r.get("input_tokens_details", "audio_tokens") or 0,
            audio_output_tokens=r.get("output_tokens_details", "audio_tokens") or 0,
        )
    from dataclasses import replace

    usage = replace(usage, service_tier=billed_tier(dig(response, "service_tier"), requested_tier),
                    tool_calls=tool_calls(dig(response, "output")))
    return clamp_parts(replace(usage, flags=r.flags(*usage.flags)))


# Responses output items billed per call, by item type (platform.openai.com/docs/pricing,
# "Built-in tools"): web search and file search per call, code interpreter per container.
_TOOL_ITEMS = {"web_search_call": "web_search", "file_search_call": "file_search"}


def tool_calls(output: Any) -> tuple[tuple[str, int], ...]:
    """The built-in tool calls a Responses answer reports, as output items."""
    if not isinstance(output, list):
        return ()
    counts: dict[str, int] = {}
    containers: set[str] = set()
    for item in output:
        kind = dig(item, "type")
        if kind in _TOOL_ITEMS:
            counts[_TOOL_ITEMS[kind]] = counts.get(_TOOL_ITEMS[kind], 0) + 1
        elif kind == "code_interpreter_call":
            containers.add(str(dig(item, "container_id") or dig(item, "id")))
    if containers:
        counts["code_interpreter"] = len(containers)
    return tuple(sorted(counts.items()))


def _is_embedding(response: Any) -> bool:
    return dig(response, "object") == "list" and dig(response, "data", 0, "object") == "embedding"


# ---------------------------------------------------------------------------------------------
# The patch: image edits, which MLflow autolog does not trace, and the end of streams left early.


def _image_classes() -> list[type]:
    from openai.resources.images import AsyncImages, Images

    return [Images, AsyncImages]


def _stream_classes() -> list[type]:
    from openai import AsyncStream, Stream

    return [Stream, AsyncStream]


# MLflow's openai autolog imports these by name on every call (to learn a span's type, to spot a
# raw response); a module this openai version lacks (``openai.resources.beta.chat`` is gone in
# openai 2) sends Python searching the whole import path each time, a few hundred microseconds
# per call on a busy machine. A ``None`` entry in ``sys.modules`` makes that import fail at once,
# with the same ModuleNotFoundError: the per-call lookups MLflow already tolerates get cheap.
_PER_CALL_IMPORTS = ("openai.resources.beta.chat", "openai.resources.images",
                     "openai.resources.responses", "openai._legacy_response")
_marked_absent: list[str] = []


def _remember_absent_modules() -> None:
    import importlib.util
    import sys

    for name in _PER_CALL_IMPORTS:
        if name in sys.modules:
            continue
        try:
            missing = importlib.util.find_spec(name) is None
        except ImportError:
            missing = False  # its parent is missing too: leave Python's own answer alone
        if missing:
            sys.modules[name] = None  # type: ignore[assignment]
            _marked_absent.append(name)


def _forget_absent_modules() -> None:
    import sys

    while _marked_absent:
        name = _marked_absent.pop()
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


def _client_classes() -> list[type]:
    # The SDK's base clients: every client (OpenAI, AzureOpenAI, ...) sends through request().
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    return [SyncAPIClient, AsyncAPIClient]


def _raw_response_base() -> type | None:
    from openai import APIResponse

    return _raw.response_init_class(APIResponse)


def _raw_response_readers() -> tuple[type, ...]:
    from openai import APIResponse, AsyncAPIResponse

    return (APIResponse, AsyncAPIResponse)


def _body_reading(body: Any) -> Any:
    return body if isinstance(body, dict) and "usage" in body else None


def patch() -> None:
    _remember_absent_modules()
    # Where each call goes decides its price (Azure, Databricks, Groq, a local server...).
    for cls in _client_classes():
        patch_method(cls, "request", _where.recording)
    # Raw responses (``with_streaming_response``: the OpenAI Agents SDK streams so); MLflow reads
    # ``with_raw_response`` answers itself.
    if (base := _raw_response_base()) is not None:
        _raw.hook(base, _body_reading, _raw_response_readers())
    # Streams: MLflow's span of a streamed call ends when the stream is read to the end (with
    # usage) or fails; one left early (closed, exited, dropped) is ended here, marked incomplete.
    hook_stream_classes(_stream_classes(), _watch)
    # Image edits, which MLflow autolog does not trace: a span as autolog makes for generate.
    for cls in _image_classes():
        patch_method(cls, "edit", lambda original, cls=cls: wrap_call(
            original, name=cls.__name__, span_type="TOOL", provider=NAME,
            inputs=_all_inputs, attributes=_input_attributes, finish=end_with_result,
            before=send_traceparent))


def unpatch() -> None:
    _forget_absent_modules()
    if (base := _raw_response_base()) is not None:
        _raw.unhook(base, _raw_response_readers())
    unhook_stream_classes(_stream_classes())
    for cls in _client_classes():
        unpatch_method(cls, "request")
    for cls in _image_classes():
        unpatch_method(cls, "edit")


def _watch(stream: Any) -> StreamWatch | None:
    span = traced_span(stream)
    if span is None:
        return None
    if (held := _raw.claim(span)) is not None:
        # A raw response's stream: MLflow ended its span when the call returned; it ends now,
        # with the usage the stream's events report.
        return StreamWatch(span, _EventTotals(), owned=False, deferred=held)
    return StreamWatch(span, Reader(), owned=False)


class _EventTotals(Reader):
    """Model and usage from raw stream items: chat chunks (the usage chunk) or Responses events
    (the final ``response.completed``, ``response.incomplete`` or ``response.failed``)."""

    def __init__(self) -> None:
        self.model: Any = None
        self.usage: Any = None

    def item(self, item: Any) -> None:
        response = dig(item, "response")
        if response is not None and str(dig(item, "type") or "").startswith("response."):
            self.model = dig(response, "model") or self.model
            if (usage := dig(response, "usage")) is not None:
                self.usage = usage
            return
        self.model = dig(item, "model") or self.model
        if (usage := dig(item, "usage")) is not None:
            self.usage = usage

    def reading(self) -> Any:
        usage = self.usage
        if hasattr(usage, "model_dump"):
            usage = usage.model_dump()
        return {"model": self.model, "usage": usage}


def _all_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return dict(kwargs)  # the SDK's methods take keyword arguments only


def _input_attributes(inputs: dict[str, Any]) -> dict[str, Any]:
    # MLflow's openai autolog records each input parameter but the messages as an attribute.
    return {k: v for k, v in inputs.items() if k not in ("messages", "input")}
