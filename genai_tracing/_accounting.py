"""Which spans are provider calls, and what each counts: one rule for totals, reports and budgets.

A span's cost and tokens count unless an ancestor already counted them (MLflow's own rule for
trace totals), and a span is a call when it is priced or flagged unpriced, and was
not counted on another span of the same call. The span processor writes trace totals with it,
reports group stored traces with it, budgets add the cost of each call with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from ._keys import (CHAT_USAGE, COUNTED_ON, LLM_COST, MODEL, MODEL_PROVIDER, PROVIDER, UNPRICED,
                    USAGE_FLAGS)


@dataclass(frozen=True)
class Counted:
    """What one span adds to its trace: its cost and tokens where no ancestor counted them."""

    span: Any
    is_call: bool
    unpriced: bool
    failed: bool
    cost: dict[str, Decimal] | None     # input_cost, output_cost, total_cost
    usage: dict[str, int] | None        # MLflow's token usage keys

    @property
    def model(self) -> Any:
        return self.span.get_attribute(MODEL)

    @property
    def provider(self) -> Any:
        # The provider that served the call (genai_tracing's), else the one MLflow wrote.
        return self.span.get_attribute(PROVIDER) or self.span.get_attribute(MODEL_PROVIDER)


def span_cost(span: Any) -> dict[str, Decimal] | None:
    cost = span.get_attribute(LLM_COST)
    if not isinstance(cost, dict) or cost.get("total_cost") is None:
        return None
    return {k: _decimal(cost.get(k)) for k in ("input_cost", "output_cost", "total_cost")}


def is_call(span: Any) -> bool:
    """Whether ``span`` is the one span that stands for a provider call that was (or may have
    been) billed: priced or flagged unpriced. A call the provider refused bills nothing."""
    if span.get_attribute(COUNTED_ON):
        return False
    return span_cost(span) is not None or bool(span.get_attribute(UNPRICED))


def counted(spans: Iterable[Any]) -> list[Counted]:
    """Every span of one trace that counts toward it, depth-first from the roots.

    ``spans`` are MLflow spans (live or stored); each is read once.
    """
    items = [(s, s.span_id, s.parent_id) for s in spans]
    ids = {span_id for _, span_id, _ in items}
    parent_of = {span_id: parent_id for _, span_id, parent_id in items}
    children: dict[Any, list[tuple[Any, Any]]] = {}
    for s, span_id, parent_id in items:
        children.setdefault(parent_id if parent_id in ids else None, []).append((s, span_id))
    result: list[Counted] = []
    stack = [(s, span_id, False, False) for s, span_id in children.get(None, [])]
    while stack:
        span, span_id, cost_above, usage_above = stack.pop()
        cost = span_cost(span)
        usage = span.get_attribute(CHAT_USAGE)
        usage = usage if isinstance(usage, dict) else None
        unpriced = bool(span.get_attribute(UNPRICED))
        failed = "failed" in (span.get_attribute(USAGE_FLAGS) or ())
        counted_on = span.get_attribute(COUNTED_ON)
        call = (cost is not None or unpriced) and not counted_on
        own_cost = cost if cost is not None and not cost_above else None
        if counted_on and cost is None and not _names_ancestor(counted_on, parent_of.get(span_id),
                                                               parent_of):
            # A framework's span of a call, counted on the call's span below it (or in another
            # trace): it leaves its tokens to that span too, so each call's tokens and cost sit
            # on one span. (The inner span of a call traced twice names its outer span.)
            usage = None
        own_usage = {k: _int(v) for k, v in usage.items()} if usage and not usage_above else None
        if call or own_cost or own_usage:
            result.append(Counted(span, call, unpriced, failed, own_cost, own_usage))
        stack.extend((c, c_id, cost_above or cost is not None, usage_above or usage is not None)
                     for c, c_id in children.get(span_id, []))
    return result


def _names_ancestor(counted_on: Any, parent: Any, parent_of: dict[Any, Any]) -> bool:
    names = set(counted_on) if isinstance(counted_on, list) else {counted_on}
    seen = 0
    while parent is not None and seen < 10_000:
        if parent in names:
            return True
        parent, seen = parent_of.get(parent), seen + 1
    return False


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value or 0))
    except Exception:
        return Decimal(0)


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
