"""google-genai SDK: ``generate_content``, ``embed_content`` (MLflow autolog), and the calls it
misses: ``generate_content_stream`` and ``generate_images`` (sync and ``client.aio``), wrapped here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import _endpoints, _where
from .._keys import MESSAGE_FORMAT, MODEL
from .._patch import patch_method, unpatch_method
from .._spans import CALL_ATTRIBUTE, CallSpan, end_with_result, wrap_call
from .._streams import Reader, StreamWatch, observe_generator
from .._usage import Usage, UsageReader, billed_tier, clamp_parts
from . import Call, dig, served_by, span_inputs, span_outputs, text_model

NAME = "gemini"
SDK_MODULE = "google.genai"
PIP_PACKAGE = "google-genai"
AUTOLOG = "gemini"
# google-genai's exceptions for "the provider answered with an error status": nothing was billed.
REFUSALS = frozenset({"APIError", "ClientError", "ServerError"})
USAGE_HINT = ""
# MLflow wraps both the public method and the private one it calls: the same call, twice.
_METHODS = ("generate_content", "_generate_content", "embed_content", "send_message",
            "generate_content_stream", "generate_images")


def claims(span: Any) -> bool:
    if span.get_attribute(CALL_ATTRIBUTE) == NAME:
        return True
    return span.get_attribute(MESSAGE_FORMAT) == "gemini" and span.name.rsplit(".", 1)[-1] in \
        _METHODS


def extract(span: Any) -> Call:
    # A client made with vertexai=True sends the same calls to Vertex AI, billed by Google
    # Cloud (its provisioned throughput and tiers included) rather than the Gemini API.
    provider, where = served_by(span, NAME)
    return replace(_extract(span), provider=provider, endpoint=where.get("url"))


def _extract(span: Any) -> Call:
    out = span_outputs(span)
    requested = text_model(span_inputs(span).get("model")) or text_model(
        span.get_attribute("mlflow.llm.model"))
    if requested and requested.startswith("models/"):
        requested = requested[len("models/"):]
    model = text_model(dig(out, "model_version")) or text_model(dig(out, "modelVersion")) or \
        requested
    metadata = dig(out, "usage_metadata") or dig(out, "usageMetadata")
    usage = read_usage(metadata, out)
    if usage is not None:
        # Vertex reports the tier that served the call (traffic_type); the Gemini API does not,
        # and the call is billed at the tier its config asked for.
        config = span_inputs(span).get("config")
        usage = replace(usage, service_tier=billed_tier(
            _TRAFFIC_TIERS.get(str(_key(metadata, "traffic_type") or "").rsplit(".", 1)[-1]),
            _key(config, "service_tier") if config is not None else None))
    if usage is None and isinstance(dig(out, "generated_images"), list):
        # Imagen bills per image and reports no tokens.
        usage = Usage(input_tokens=0, output_tokens=0, images=len(dig(out, "generated_images")))
    return Call(NAME, model, usage, requested_model=requested)


# Vertex's usage_metadata.traffic_type: the tier each value bills at (None: standard).
_TRAFFIC_TIERS = {"ON_DEMAND": "standard", "ON_DEMAND_FLEX": "flex",
                  "ON_DEMAND_PRIORITY": "priority", "PROVISIONED_THROUGHPUT": "provisioned"}


def _key(raw: Any, snake: str) -> Any:
    """google-genai serializes snake_case; the wire (and some paths) use camelCase."""
    value = dig(raw, snake)
    if value is None:
        head, *rest = snake.split("_")
        value = dig(raw, head + "".join(p.title() for p in rest))
    return value


def _modality_tokens(details: Any, modality: str) -> int:
    total = 0
    for item in details or ():
        name = str(_key(item, "modality") or "").rsplit(".", 1)[-1].upper()
        count = _key(item, "token_count")
        if name == modality and isinstance(count, int) and count > 0:
            total += count
    return total


def read_usage(metadata: Any, response: Any = None) -> Usage | None:
    """Gemini reports thinking tokens apart from candidates; both are billed as output."""
    if metadata is None:
        return None
    r = UsageReader({k: _key(metadata, k) for k in (
        "prompt_token_count", "candidates_token_count", "thoughts_token_count",
        "cached_content_token_count", "tool_use_prompt_token_count")})
    prompt = r.get("prompt_token_count")
    tool_prompt = r.get("tool_use_prompt_token_count") or 0
    candidates = r.get("candidates_token_count")
    thoughts = r.get("thoughts_token_count") or 0
    # Gemini leaves zero counts out: next to a prompt count, a missing answer count is 0.
    output = None if candidates is None and not thoughts and prompt is None \
        else (candidates or 0) + thoughts
    if output is None and _is_embedding(response):
        output = 0
    cached = r.get("cached_content_token_count") or 0
    # Per-modality counts: the prompt's include its cached tokens, which cacheTokensDetails
    # splits the same way; audio is billed at its own rates, cached or not.
    cached_audio = min(cached, _modality_tokens(_key(metadata, "cache_tokens_details"), "AUDIO"))
    audio_in = _modality_tokens(_key(metadata, "prompt_tokens_details"), "AUDIO") + \
        _modality_tokens(_key(metadata, "tool_use_prompt_tokens_details"), "AUDIO")
    usage = Usage(
        input_tokens=None if prompt is None else prompt + tool_prompt,
        output_tokens=output,
        cached_input_tokens=cached,
        reasoning_tokens=thoughts,
        image_input_tokens=_modality_tokens(_key(metadata, "prompt_tokens_details"), "IMAGE"),
        image_output_tokens=_modality_tokens(_key(metadata, "candidates_tokens_details"), "IMAGE"),
        images=_inline_images(response),
        audio_input_tokens=max(0, audio_in - cached_audio),
        cached_audio_input_tokens=cached_audio,
        audio_output_tokens=_modality_tokens(_key(metadata, "candidates_tokens_details"), "AUDIO"),
        tool_calls=_grounding_searches(response),
    )
    return clamp_parts(replace(usage, flags=r.flags()))


def _grounding_searches(response: Any) -> tuple[tuple[str, int], ...]:
    """Grounding's billed requests: Google Search queries, and Google Maps prompts or queries.

    As LiteLLM counts them (its Gemini cost calculator): distinct queries across candidates;
    a candidate grounded on Maps (``maps`` chunks, or a Maps widget token) and not on the web
    files its queries under Maps, and a Maps-grounded answer counts at least one Maps request
    (billed per grounded prompt even when it reports no query)."""
    web: set[str] = set()
    maps: set[str] = set()
    has_maps = False
    for candidate in dig(response, "candidates") or ():
        metadata = _key(candidate, "grounding_metadata")
        if metadata is None:
            continue
        kinds = set()
        for chunk in _key(metadata, "grounding_chunks") or ():
            kinds.update(k for k in ("maps", "web", "retrieved_context")
                         if dig(chunk, k) is not None)
        is_maps = "maps" in kinds or bool(_key(metadata, "google_maps_widget_context_token"))
        has_maps = has_maps or is_maps
        found = _key(metadata, "web_search_queries")
        queries = {str(q) for q in found if isinstance(q, str) and q} \
            if isinstance(found, list) else set()
        (maps if is_maps and "web" not in kinds else web).update(queries)
    counts = []
    if web:
        counts.append(("web_search", len(web)))
    if has_maps:
        counts.append(("google_maps", max(len(maps), 1)))
    return tuple(counts)


def _is_embedding(response: Any) -> bool:
    return dig(response, "embeddings") is not None


def _inline_images(response: Any) -> int:
    count = 0
    for candidate in dig(response, "candidates") or ():
        for part in dig(candidate, "content", "parts") or ():
            blob = _key(part, "inline_data")
            if blob is not None and str(_key(blob, "mime_type") or "").startswith("image/"):
                count += 1
    return count


# ---------------------------------------------------------------------------------------------
# The patch: the calls MLflow autolog leaves without a span.


def _classes() -> list[type]:
    from google.genai.models import AsyncModels, Models

    return [Models, AsyncModels]


def _api_client_class() -> type:
    from google.genai._api_client import BaseApiClient

    return BaseApiClient


# BaseApiClient's methods that send one request (MLflow's spans are open around them).
_REQUESTS = ("request", "async_request")


def patch() -> None:
    for cls in _classes():
        patch_method(cls, "generate_content_stream", lambda original, cls=cls: wrap_call(
            original, name=f"{cls.__name__}.generate_content_stream", span_type="LLM",
            provider=NAME, inputs=_all_inputs, attributes=_attributes, finish=_finish_stream,
            where=_note_models))
        patch_method(cls, "generate_images", lambda original, cls=cls: wrap_call(
            original, name=f"{cls.__name__}.generate_images", span_type="LLM", provider=NAME,
            inputs=_all_inputs, attributes=_attributes, finish=end_with_result,
            where=_note_models))
    for name in _REQUESTS:
        patch_method(_api_client_class(), name, _where.noting(_note_open_calls,
                                                              "gemini endpoint"))


def unpatch() -> None:
    for cls in _classes():
        unpatch_method(cls, "generate_content_stream")
        unpatch_method(cls, "generate_images")
    for name in _REQUESTS:
        unpatch_method(_api_client_class(), name)


def _where_of(api_client: Any) -> tuple[str, str, Any] | None:
    """(base URL, client kind, region) of a google-genai API client."""
    options = getattr(api_client, "_http_options", None)
    url = _endpoints.clean_url(getattr(options, "base_url", None) or "")
    if not url:
        return None
    vertex = bool(getattr(api_client, "vertexai", False))
    return url, "VertexClient" if vertex else "Client", getattr(api_client, "location", None)


def _note_models(span: Any, args: tuple[Any, ...]) -> None:
    """``wrap_call``'s ``where``: the call's ``Models`` (``args[0]``) holds its API client."""
    if args and (found := _where_of(getattr(args[0], "_api_client", None))) is not None:
        _where.note_record(span, found[0], found[1], region=found[2])


def _note_open_calls(api_client: Any, *args: Any, **kwargs: Any) -> None:
    """The request an MLflow span is open around: noted on that span and on the gemini call
    spans above it (MLflow traces ``generate_content`` and the private method it calls)."""
    import mlflow

    from .. import _mlflow

    found = _where_of(api_client)
    span = mlflow.get_current_active_span()
    while found is not None and span is not None:
        if span.get_attribute(MESSAGE_FORMAT) == "gemini" or \
                span.get_attribute(CALL_ATTRIBUTE) == NAME:
            _where.note_record(span, found[0], found[1], region=found[2])
        span = _mlflow.span_by_id(span.trace_id, span.parent_id)


def _all_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    return dict(kwargs)  # the SDK's methods take keyword arguments only


def _attributes(inputs: dict[str, Any]) -> dict[str, Any]:
    # As MLflow's gemini autolog writes them for generate_content.
    attributes: dict[str, Any] = {MESSAGE_FORMAT: "gemini"}
    model = inputs.get("model")
    if isinstance(model, str) and model:
        attributes[MODEL] = model[len("models/"):] if model.startswith("models/") else model
    return attributes


def _finish_stream(span: CallSpan, stream: Any, kwargs: dict[str, Any]) -> Any:
    return observe_generator(stream, StreamWatch(span, _ChunkTotals(), owned=True))


class _ChunkTotals(Reader):
    """Gemini repeats the running usage on chunks; the last one seen is the call's usage."""

    def __init__(self) -> None:
        self.model_version: str | None = None
        self.usage: Any = None
        self.text: list[str] = []
        self.images = 0
        self.search_queries: list[str] | None = None
        self.grounding_kinds: set[str] = set()

    def item(self, chunk: Any) -> None:
        self.model_version = dig(chunk, "model_version") or self.model_version
        # Grounding metadata comes with the last chunks; only what is billed is kept: its
        # queries, and which sources (web, Maps) its chunks came from.
        metadata = dig(chunk, "candidates", 0, "grounding_metadata")
        if metadata is not None:
            queries = dig(metadata, "web_search_queries")
            if isinstance(queries, list):
                self.search_queries = [str(q) for q in queries]
            for item in dig(metadata, "grounding_chunks") or ():
                self.grounding_kinds.update(k for k in ("maps", "web") if dig(item, k) is not None)
            if dig(metadata, "google_maps_widget_context_token"):
                self.grounding_kinds.add("maps")
        if (usage := dig(chunk, "usage_metadata")) is not None:
            self.usage = usage.model_dump(mode="json") if hasattr(usage, "model_dump") else usage
        for part in dig(chunk, "candidates", 0, "content", "parts") or ():
            if (text := dig(part, "text")) and not dig(part, "thought"):
                self.text.append(str(text))
            if dig(part, "inline_data") is not None:
                self.images += 1

    def outputs(self) -> Any:
        parts: list[dict[str, Any]] = [{"text": "".join(self.text)}]
        # Generated images are counted, not kept: a placeholder per image, no bytes.
        parts += [{"inline_data": {"mime_type": "image/*"}} for _ in range(self.images)]
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
        if self.search_queries is not None or self.grounding_kinds:
            candidate["grounding_metadata"] = {
                "web_search_queries": self.search_queries or [],
                "grounding_chunks": [{kind: {}} for kind in sorted(self.grounding_kinds)]}
        return {"model_version": self.model_version, "usage_metadata": self.usage,
                "candidates": [candidate]}
