"""One usage model for every provider: totals plus the parts each billed at its own rate."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Normalized token usage of one provider call.

    ``input_tokens`` counts all input (cached, cache-written, image and audio tokens included);
    ``output_tokens`` counts all output (reasoning, image and audio tokens included). The other
    token fields are parts of those totals: ``cached_audio_input_tokens`` is the audio part of
    ``cached_input_tokens``, ``audio_input_tokens`` the uncached audio input, and
    ``cache_write_1h_tokens`` the part of ``cache_write_tokens`` written for an hour.
    ``images`` counts generated images; ``service_tier`` is the tier the provider billed when it
    is not the standard one; ``tool_calls`` counts the built-in tools billed per call
    (``(("web_search", 2),)``).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    images: int = 0
    audio_input_tokens: int = 0
    cached_audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    cache_write_1h_tokens: int = 0
    service_tier: str | None = None
    tool_calls: tuple[tuple[str, int], ...] = ()
    # Why the numbers may not be what the provider billed ("malformed", "estimated", ...).
    flags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        # Read back from a stored span (reprice), tool calls are a mapping.
        if isinstance(self.tool_calls, dict):
            object.__setattr__(self, "tool_calls", tuple(sorted(
                (str(k), int(v)) for k, v in self.tool_calls.items() if v)))

    @property
    def tool_counts(self) -> dict[str, int]:
        return dict(self.tool_calls)

    @property
    def total_tokens(self) -> int:
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    @property
    def is_empty(self) -> bool:
        return self.input_tokens is None and self.output_tokens is None and not self.images

    def token_usage_attribute(self) -> dict[str, int]:
        """MLflow's ``mlflow.chat.tokenUsage`` shape, so ``trace.info.token_usage`` sums right."""
        out = {"input_tokens": self.input_tokens or 0, "output_tokens": self.output_tokens or 0,
               "total_tokens": self.total_tokens}
        if self.cached_input_tokens:
            out["cache_read_input_tokens"] = self.cached_input_tokens
        if self.cache_write_tokens:
            out["cache_creation_input_tokens"] = self.cache_write_tokens
        return out

    def breakdown_attribute(self) -> dict[str, Any]:
        """The ``genai_tracing.usage`` attribute: every part, zeros left out."""
        # Field by field (dataclasses.asdict deep-copies and was a tenth of a span's processing).
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["total_tokens"] = self.total_tokens
        if self.tool_calls:
            data["tool_calls"] = dict(self.tool_calls)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items()
                if v not in (0, None, ())}


_FIELD_NAMES = tuple(f.name for f in fields(Usage))


class UsageReader:
    """Reads token counts out of a provider's usage object, tolerating malformed values.

    A missing, ``null``, non-numeric or negative count reads as absent (``None``) and the
    resulting :class:`Usage` is flagged ``malformed`` instead of crashing or inventing zeros.
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.malformed = False

    def get(self, *path: str) -> int | None:
        value: Any = self.source
        for key in path:
            if isinstance(value, dict):
                value = value.get(key)
            else:
                value = getattr(value, key, None)
            if value is None:
                return None
        return self._count(value)

    def _count(self, value: Any) -> int | None:
        if isinstance(value, bool):
            self.malformed = True
            return None
        if isinstance(value, int):
            if value < 0:
                self.malformed = True
                return None
            return value
        if isinstance(value, float) and value.is_integer() and value >= 0:
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
        self.malformed = True
        return None

    def flags(self, *extra: str) -> tuple[str, ...]:
        return (("malformed",) if self.malformed else ()) + tuple(e for e in extra if e)


def clamp_parts(usage: Usage) -> Usage:
    """Parts can never exceed their totals; a provider that says so is flagged, not trusted."""
    inp, out = usage.input_tokens, usage.output_tokens
    flags = list(usage.flags)
    parts_in = usage.cached_input_tokens + usage.cache_write_tokens + usage.image_input_tokens \
        + usage.audio_input_tokens
    parts_out = usage.image_output_tokens + usage.reasoning_tokens + usage.audio_output_tokens
    bad = (inp is not None and parts_in > inp) or (out is not None and parts_out > out) \
        or usage.cached_audio_input_tokens > usage.cached_input_tokens \
        or usage.cache_write_1h_tokens > usage.cache_write_tokens
    if bad and "malformed" not in flags:
        flags.append("malformed")
    if not bad:
        return usage
    from dataclasses import replace

    return replace(usage, cached_input_tokens=0, cache_write_tokens=0, image_input_tokens=0,
                   image_output_tokens=0, reasoning_tokens=0, audio_input_tokens=0,
                   cached_audio_input_tokens=0, audio_output_tokens=0, cache_write_1h_tokens=0,
                   flags=tuple(flags))


_TIER_NAME = re.compile(r"[A-Za-z_]+(\.[A-Za-z_]+)?")
_NOT_GIVEN = frozenset({"not_given", "notgiven", "omit", "none", "null"})
# Tiers billed at the standard rates, as each provider spells them.
_STANDARD_TIERS = frozenset({"default", "standard", "auto", "unspecified"})


def billed_tier(reported: Any, requested: Any = None) -> str | None:
    """The service tier a call is billed at: the one the response reports wins over the one the
    request asked for (a flex request served at the default tier is billed at default).
    ``None`` means the standard rates."""
    for value in (reported, requested):
        # A request's inputs may hold an SDK sentinel for "not given" (NOT_GIVEN, omit), as a
        # string: only a tier's name counts.
        if isinstance(value, str) and _TIER_NAME.fullmatch(value.strip()) and \
                value.strip().lower() not in _NOT_GIVEN:
            tier = value.strip().lower().rsplit(".", 1)[-1]  # "ServiceTier.FLEX" too
            # OpenAI: "fast" is served, and reported, as priority.
            tier = {"fast": "priority", "batches": "batch"}.get(tier, tier)
            return None if tier in _STANDARD_TIERS else tier
    return None
