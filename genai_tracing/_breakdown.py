"""A trace's calls per (model, provider), written with its totals so reports by model read no spans.

When a trace ends, the span processor writes, next to the trace's totals, the (model, provider)
pairs its calls used, summed by the same rule as the totals (``_accounting.counted``), in one
metadata entry when they fit::

    genai_tracing.by_model      [[model, provider, calls, input tokens, output tokens,
                                  cost as a decimal string or null, unpriced calls,
                                  [each call's duration in ns]], ...]   ("[]": no call made)

A report by model or provider then reads one metadata entry per trace, as a report by user
reads its totals. Every MLflow store keeps metadata values of up to 250 characters; pairs that do
not fit in one value are written one per entry (the form genai_tracing wrote before, still read)::

    genai_tracing.by_model      how many entries follow
    genai_tracing.by_model.<i>  {"m": model, "p": provider, "n": calls, "in": input tokens,
                                 "out": output tokens, "usd": cost as a decimal string or null,
                                 "x": unpriced calls, "ns": [each call's duration in ns]}

and a pair whose own entry is longer (one model called dozens of times in one trace) leaves the
whole breakdown unwritten, and reports read that trace's spans, as they do for traces written
before the breakdown existed. Both paths go through ``from_spans``, so they add up the same
numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from . import _mlflow
from ._accounting import counted
from ._guard import internal_error
from ._keys import TRACE_BY_MODEL as COUNT_KEY

# MLflow's guarantee for a metadata value on every store (mlflow.tracing.constant).
MAX_VALUE = 250


@dataclass
class ModelShare:
    """What one (model, provider) pair's calls add to their trace."""

    model: str | None
    provider: str | None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal | None = None  # None: no call of the pair was priced
    unpriced_calls: int = 0
    durations_ns: list[int] = field(default_factory=list)
    repriced_calls: int = 0  # from a reprice's tags, read with the spans (never stored here)

    def encode(self) -> str:
        return json.dumps({"m": self.model, "p": self.provider, "n": self.calls,
                           "in": self.input_tokens, "out": self.output_tokens,
                           "usd": None if self.cost is None else str(self.cost),
                           "x": self.unpriced_calls, "ns": self.durations_ns},
                          separators=(",", ":"))

    def packed(self) -> list[Any]:
        return [self.model, self.provider, self.calls, self.input_tokens, self.output_tokens,
                None if self.cost is None else str(self.cost), self.unpriced_calls,
                self.durations_ns]

    @classmethod
    def unpack(cls, item: list[Any]) -> ModelShare:
        model, provider, calls, tokens_in, tokens_out, usd, unpriced, durations = item
        return cls(model=model, provider=provider, calls=int(calls), input_tokens=int(tokens_in),
                   output_tokens=int(tokens_out), cost=None if usd is None else Decimal(usd),
                   unpriced_calls=int(unpriced), durations_ns=[int(ns) for ns in durations])

    @classmethod
    def decode(cls, raw: str) -> ModelShare:
        data = json.loads(raw)
        usd = data["usd"]
        return cls(model=data["m"], provider=data["p"], calls=int(data["n"]),
                   input_tokens=int(data["in"]), output_tokens=int(data["out"]),
                   cost=None if usd is None else Decimal(usd), unpriced_calls=int(data["x"]),
                   durations_ns=[int(ns) for ns in data["ns"]])


def from_spans(spans: Iterable[Any], repriced: Mapping[str, Decimal] | None = None
               ) -> list[ModelShare]:
    """The pairs of one trace's spans (live or stored), in the order their calls are met;
    ``repriced`` (span id -> cost, from a reprice's tags) wins over a call's stored cost."""
    shares: dict[tuple[Any, Any], ModelShare] = {}
    for item in counted(spans):
        key = (item.model, item.provider)
        share = shares.setdefault(key, ModelShare(model=key[0], provider=key[1]))
        cost = item.cost["total_cost"] if item.cost is not None else None
        unpriced = item.unpriced
        if repriced and (new := repriced.get(item.span.span_id)) is not None:
            cost, unpriced = new, False
            share.repriced_calls += 1
        if cost is not None:
            share.cost = (share.cost or Decimal(0)) + cost
        if item.usage is not None:
            share.input_tokens += item.usage.get("input_tokens", 0)
            share.output_tokens += item.usage.get("output_tokens", 0)
        if item.is_call:
            share.calls += 1
            share.unpriced_calls += int(unpriced)
            span = item.span
            if span.end_time_ns and span.start_time_ns:
                share.durations_ns.append(span.end_time_ns - span.start_time_ns)
    return list(shares.values())


def write(trace: Any) -> None:
    """Write the breakdown of MLflow's in-memory ``trace`` into its metadata (again, if a late
    call span changed it); never raises."""
    try:
        metadata = _mlflow.trace_metadata(trace)
        for key in [k for k in metadata if k == COUNT_KEY or k.startswith(COUNT_KEY + ".")]:
            del metadata[key]
        shares = from_spans(_mlflow.trace_spans(trace))
        packed = json.dumps([share.packed() for share in shares], separators=(",", ":"))
        if len(packed) <= MAX_VALUE:
            metadata[COUNT_KEY] = packed
            return
        entries = [share.encode() for share in shares]
        if any(len(entry) > MAX_VALUE for entry in entries):
            return  # too long for every store: reports read this trace's spans
        for number, entry in enumerate(entries):
            metadata[f"{COUNT_KEY}.{number}"] = entry
        metadata[COUNT_KEY] = str(len(entries))
    except Exception:
        internal_error("per-model breakdown")


def read(metadata: Mapping[str, str]) -> list[ModelShare] | None:
    """The breakdown stored with a trace; ``None`` if it has none (or an unreadable one)."""
    raw_count = metadata.get(COUNT_KEY)
    if raw_count is None:
        return None
    try:
        if raw_count.startswith("["):
            return [ModelShare.unpack(item) for item in json.loads(raw_count)]
        return [ModelShare.decode(metadata[f"{COUNT_KEY}.{number}"])
                for number in range(int(raw_count))]
    except (KeyError, ValueError, TypeError, InvalidOperation, AttributeError):
        return None
