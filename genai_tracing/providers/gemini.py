"""google-genai SDK: ``generate_content`` and ``embed_content``, as MLflow autolog records them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .._usage import Usage, UsageReader, clamp_parts
from . import Call, dig, span_inputs, span_outputs, text_model

NAME = "gemini"
_MESSAGE_FORMAT = "mlflow.message.format"
# MLflow wraps both the public method and the private one it calls: the same call, twice.
_METHODS = ("generate_content", "_generate_content", "embed_content", "send_message",
            "generate_content_stream", "generate_images")


def claims(span: Any) -> bool:
    return span.get_attribute(_MESSAGE_FORMAT) == "gemini" and span.name.rsplit(".", 1)[-1] in \
        _METHODS


def extract(span: Any) -> Call:
    out = span_outputs(span)
    requested = text_model(span_inputs(span).get("model")) or text_model(
        span.get_attribute("mlflow.llm.model"))
    if requested and requested.startswith("models/"):
        requested = requested[len("models/"):]
    model = text_model(dig(out, "model_version")) or text_model(dig(out, "modelVersion")) or \
        requested
    metadata = dig(out, "usage_metadata") or dig(out, "usageMetadata")
    return Call(NAME, model, read_usage(metadata, out), requested_model=requested)


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
    output = None if candidates is None and not thoughts else (candidates or 0) + thoughts
    if output is None and _is_embedding(response):
        output = 0
    usage = Usage(
        input_tokens=None if prompt is None else prompt + tool_prompt,
        output_tokens=output,
        cached_input_tokens=r.get("cached_content_token_count") or 0,
        reasoning_tokens=thoughts,
        image_input_tokens=_modality_tokens(_key(metadata, "prompt_tokens_details"), "IMAGE"),
        image_output_tokens=_modality_tokens(_key(metadata, "candidates_tokens_details"), "IMAGE"),
        images=_inline_images(response),
    )
    return clamp_parts(replace(usage, flags=r.flags()))


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
