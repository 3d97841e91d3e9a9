"""Reading what a reprice recorded on a trace (its tags); written by ``_reprice``."""

from __future__ import annotations

import json
from decimal import Decimal

from ._keys import TRACE_REPRICED_CALLS, TRACE_REPRICED_COST
from ._money import to_decimal


def repriced_calls(tags: dict[str, str]) -> dict[str, Decimal]:
    """The per-call costs a reprice recorded on a trace, by span id."""
    try:
        data = json.loads(tags.get(TRACE_REPRICED_CALLS) or "{}")
    except ValueError:
        return {}
    costs = {str(k): to_decimal(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v for k, v in costs.items() if v is not None}


def repriced_total(tags: dict[str, str]) -> Decimal | None:
    try:
        data = json.loads(tags.get(TRACE_REPRICED_COST) or "{}")
    except ValueError:
        return None
    return to_decimal(data.get("total_cost")) if isinstance(data, dict) else None
