"""Anthropic SDK: ``messages.create`` (plain and ``stream=True``) and ``messages.stream()``,
their ``beta.messages`` twins, and raw responses (``with_raw_response``).

MLflow autolog traces ``messages.create``; for ``stream=True`` its span ends before the stream is
read, with no usage, and ``messages.stream()`` it does not trace at all. The SDK's ``Stream``
class, which both go through, gives the usage from the stream's own events. ``beta.messages``
(pydantic-ai's Anthropic model calls it) MLflow does not trace: its calls get spans as autolog
makes for ``messages.create``. A call made through ``with_raw_response`` (langchain-anthropic
makes every call so) returns the SDK's raw ``APIResponse``, which is what MLflow records as the
span's output: its usage is read from the response body the SDK has already read.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import _mlflow, _raw, _where
from .._keys import MESSAGE_FORMAT, MODEL
from .._patch import patch_method, unpatch_method
from .._spans import CALL_ATTRIBUTE, CallSpan, wrap_call
from .._streams import Reader, StreamWatch, hook_stream_classes, own, owned_span, \
    hook_openers, send_traceparent, take_reading, traced_span, unhook_openers, \
    unhook_stream_classes
from .._usage import Usage, UsageReader, billed_tier, clamp_parts
from . import Call, dig, served_by, span_inputs, span_outputs, text_model

NAME = "anthropic"
SDK_MODULE = "anthropic"
PIP_PACKAGE = "anthropic"
AUTOLOG = "anthropic"
# The SDK's exceptions for "the provider answered with an error status": nothing was billed.
REFUSALS = frozenset({
    "APIStatusError", "BadRequestError", "AuthenticationError", "PermissionDeniedError",
    "NotFoundError", "ConflictError", "UnprocessableEntityError", "RateLimitError",
    "InternalServerError", "RequestTooLargeError", "ServiceUnavailableError", "OverloadedError",
    "DeadlineExceededError"})
USAGE_HINT = ""
# Raised by the SDK itself before any request is sent (arguments it refuses, a non-streaming
# request it expects to run over ten minutes); everything from the wire is an APIError.
NOT_SENT = frozenset({"ValueError", "TypeError"})


def claims(span: Any) -> bool:
    if span.get_attribute(CALL_ATTRIBUTE) == NAME:
        return True
    return span.get_attribute(MESSAGE_FORMAT) == "anthropic" and span.name.endswith(
        "Messages.create")


def extract(span: Any) -> Call:
    # A streamed call's span (MLflow's, ended with the stream) has its usage from the stream.
    out = take_reading(span.span_id) or span_outputs(span)
    requested = text_model(span_inputs(span).get("model"))
    model = text_model(dig(out, "model")) or requested
    # AnthropicBedrock and AnthropicVertex send the same calls to Amazon's and Google's clouds,
    # which bill them at their own prices (Bedrock's regional model IDs cost more).
    provider, where = served_by(span, NAME)
    usage = read_usage(dig(out, "usage"))
    if usage is not None and dig(out, "container") is not None:
        # The code-execution tool ran in a container, billed by the container-hour (see
        # CONTAINER_TOOL): one per call, priced by the price file's code_execution_per_call.
        usage = replace(usage, tool_calls=tuple(sorted(
            dict(usage.tool_calls, **{CONTAINER_TOOL: 1}).items())))
    region = where.get("region")
    return Call(provider, model, usage, requested_model=requested, endpoint=where.get("url"),
                region=region if provider == "bedrock" and isinstance(region, str) else None)


# Anthropic bills code execution by container time (with a free allowance), which no response
# reports: a call whose message names a container is billed its tokens and flagged partial,
# unless the price file sets code_execution_per_call.
CONTAINER_TOOL = "code_execution"


def read_usage(raw: Any) -> Usage | None:
    """Anthropic's ``input_tokens`` leaves out cache reads and writes; the total puts them back.

    ``cache_creation`` splits the writes by lifetime (the 1-hour ones cost 2x input, the
    5-minute ones 1.25x), ``server_tool_use`` counts the server tools' requests, and
    ``service_tier`` says which tier billed the call (``messages`` and ``beta.messages`` alike).
    """
    if raw is None:
        return None
    r = UsageReader(raw)
    uncached = r.get("input_tokens")
    cached = r.get("cache_read_input_tokens") or 0
    written = r.get("cache_creation_input_tokens") or 0
    tools = {"web_search": r.get("server_tool_use", "web_search_requests") or 0,
             "web_fetch": r.get("server_tool_use", "web_fetch_requests") or 0}
    usage = Usage(
        input_tokens=None if uncached is None else uncached + cached + written,
        output_tokens=r.get("output_tokens"),
        cached_input_tokens=cached,
        cache_write_tokens=written,
        cache_write_1h_tokens=r.get("cache_creation", "ephemeral_1h_input_tokens") or 0,
        service_tier=billed_tier(dig(raw, "service_tier")),
        tool_calls=tuple(sorted((k, v) for k, v in tools.items() if v)),
    )
    return clamp_parts(replace(usage, flags=r.flags()))


# ---------------------------------------------------------------------------------------------
# The patch: streams. MLflow's span of ``messages.create(stream=True)`` ends when the call returns,
# before any usage; it is held back until the stream ends and gets the stream's usage then.
# ``messages.stream()``, which MLflow does not trace, gets a span as autolog makes for ``create``.


def _classes() -> list[type]:
    from anthropic.resources.messages import AsyncMessages, Messages

    return [Messages, AsyncMessages]


def _stream_classes() -> list[type]:
    from anthropic import AsyncStream, Stream

    return [Stream, AsyncStream]


def _manager_classes() -> list[type]:
    from anthropic.lib.streaming import AsyncMessageStreamManager, MessageStreamManager

    managers = [MessageStreamManager, AsyncMessageStreamManager]
    try:
        from anthropic.lib.streaming import BetaAsyncMessageStreamManager, \
            BetaMessageStreamManager
    except ImportError:  # an SDK without beta streams
        return managers
    return managers + [BetaMessageStreamManager, BetaAsyncMessageStreamManager]


def _beta_classes() -> list[type]:
    try:
        from anthropic.resources.beta.messages import AsyncMessages, Messages
    except ImportError:  # an SDK without beta.messages
        return []
    return [Messages, AsyncMessages]


def _raw_response_base() -> type | None:
    from anthropic import APIResponse

    return _raw.response_init_class(APIResponse)


def _raw_response_readers() -> tuple[type, ...]:
    from anthropic import APIResponse, AsyncAPIResponse

    return (APIResponse, AsyncAPIResponse)


def _message_reading(body: Any) -> Any:
    if isinstance(body, dict) and body.get("type") == "message":
        return {"model": body.get("model"), "usage": body.get("usage"),
                "container": body.get("container")}
    return None


def _client_classes() -> list[type]:
    # Every client (Anthropic, AnthropicBedrock, AnthropicVertex) sends through request().
    from anthropic._base_client import AsyncAPIClient, SyncAPIClient

    return [SyncAPIClient, AsyncAPIClient]


def patch() -> None:
    for cls in _client_classes():
        patch_method(cls, "request", _where.recording)
    hook_stream_classes(_stream_classes(), _watch)
    hook_openers(_manager_classes())
    for cls in _classes():
        patch_method(cls, "stream", _wrap_stream)
    for cls in _beta_classes():
        patch_method(cls, "create", _wrap_beta_create)
        patch_method(cls, "stream", _wrap_stream)
    if (base := _raw_response_base()) is not None:
        _raw.hook(base, _message_reading, _raw_response_readers())


def unpatch() -> None:
    for cls in _client_classes():
        unpatch_method(cls, "request")
    unhook_stream_classes(_stream_classes())
    unhook_openers(_manager_classes())
    for cls in _classes():
        unpatch_method(cls, "stream")
    for cls in _beta_classes():
        unpatch_method(cls, "create")
        unpatch_method(cls, "stream")
    if (base := _raw_response_base()) is not None:
        _raw.unhook(base, _raw_response_readers())


def _watch(stream: Any) -> StreamWatch | None:
    span = traced_span(stream)
    if span is None:
        return None
    if (own := owned_span(span)) is not None:
        return StreamWatch(own, _EventTotals(), owned=True)
    return StreamWatch(span, _EventTotals(), owned=False,
                       deferred=_raw.claim(span) or _mlflow.DeferredEnd(span))


# ---------------------------------------------------------------------------------------------
# ``beta.messages.create``: a span as MLflow's autolog makes for ``messages.create``.


def _wrap_beta_create(original: Any) -> Any:
    return wrap_call(original, name=f"{_owner(original)}.create", span_type="CHAT_MODEL",
                     provider=NAME, inputs=_all_inputs, attributes=_attributes,
                     before=send_traceparent, finish=_end_beta_create)


def _end_beta_create(span: CallSpan, result: Any, kwargs: dict[str, Any]) -> Any:
    """A message ends the span now; a stream (or a raw response holding one) ends it later."""
    if kwargs.get("stream"):
        own(span, result)  # the stream the result opens claims the span; a drop ends it
        return result
    owned_span(span)  # no stream will claim it
    span.end(outputs=result)
    return result


def _all_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return dict(kwargs)  # the SDK's methods take keyword arguments only


def _attributes(inputs: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {MESSAGE_FORMAT: "anthropic"}
    if isinstance(inputs.get("model"), str):
        attributes[MODEL] = inputs["model"]
    return attributes


def _wrap_stream(original: Any) -> Any:
    return wrap_call(original, name=f"{_owner(original)}.stream", span_type="CHAT_MODEL",
                     provider=NAME, inputs=_all_inputs, attributes=_attributes,
                     before=send_traceparent, finish=_hand_to_stream)


def _owner(function: Any) -> str:
    qualname = getattr(function, "__qualname__", "Messages.stream")
    return qualname.rsplit(".", 1)[0] if "." in qualname else "Messages"


def _hand_to_stream(span: CallSpan, manager: Any, kwargs: dict[str, Any]) -> Any:
    """The span ends with the stream the manager opens (or when the manager is dropped)."""
    own(span, manager)
    return manager


class _EventTotals(Reader):
    """Usage from raw stream events: ``message_start`` has input, ``message_delta`` the rest."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: dict[str, Any] = {}
        self.text: list[str] = []
        self.stop_reason: Any = None
        self.container: Any = None

    def item(self, event: Any) -> None:
        kind = dig(event, "type")
        if kind == "message_start":
            self.model = dig(event, "message", "model")
            self._merge(dig(event, "message", "usage"))
            self.container = dig(event, "message", "container") or self.container
        elif kind == "message_delta":
            # Cumulative counts, like the SDK's own accumulator: later values replace earlier.
            self._merge(dig(event, "usage"))
            self.stop_reason = dig(event, "delta", "stop_reason") or self.stop_reason
            self.container = dig(event, "delta", "container") or self.container
        elif kind == "content_block_delta" and dig(event, "delta", "type") == "text_delta":
            self.text.append(str(dig(event, "delta", "text") or ""))

    def _merge(self, usage: Any) -> None:
        if usage is None:
            return
        data = usage.model_dump() if hasattr(usage, "model_dump") else dict(usage)
        self.usage.update({k: v for k, v in data.items() if v is not None})

    def reading(self) -> Any:
        return {"model": self.model, "usage": self.usage or None,
                "container": _plain(self.container)}

    def outputs(self) -> Any:
        return {"type": "message", "role": "assistant", "model": self.model,
                "content": [{"type": "text", "text": "".join(self.text)}],
                "stop_reason": self.stop_reason, "usage": self.usage or None,
                "container": _plain(self.container)}


def _plain(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value
