"""Anthropic SDK: ``messages.create``, as MLflow autolog records it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .._usage import Usage, UsageReader, clamp_parts
from . import Call, dig, span_inputs, span_outputs, text_model

NAME = "anthropic"
_MESSAGE_FORMAT = "mlflow.message.format"


def claims(span: Any) -> bool:
    return span.get_attribute(_MESSAGE_FORMAT) == "anthropic" and span.name.endswith(
        ("Messages.create", "Messages.stream"))


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
