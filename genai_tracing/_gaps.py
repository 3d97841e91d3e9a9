"""A trace whose total leaves calls out says so where people look: a trace tag in the trace list.

The trace's cost (``mlflow.trace.cost``) covers its priced calls only; ``genai_tracing.cost.
complete`` says so in metadata, which the trace list does not show. The tag ``cost`` does:
``partial`` when some calls are unpriced, ``unpriced`` when none could be priced, ``repriced``
once ``reprice()`` has put a newer total in the trace's tags.
"""

from __future__ import annotations

from typing import MutableMapping

COST_TAG = "cost"
PARTIAL = "partial"
UNPRICED = "unpriced"
REPRICED = "repriced"
OURS = (PARTIAL, UNPRICED, REPRICED)


def cost_gap(calls: int, unpriced: int, in_part: int = 0) -> str | None:
    """The tag value for a trace of ``calls`` provider calls, ``unpriced`` of them unpriced
    (``in_part`` of those priced in part: a cost without a fee that could not be priced)."""
    if not calls or not unpriced:
        return None
    return UNPRICED if unpriced >= calls and not in_part else PARTIAL


def mark_cost_gap(tags: MutableMapping[str, str], calls: int, unpriced: int,
                  in_part: int = 0) -> None:
    """Set, update or clear the tag; a ``cost`` tag the user set (any other value) is kept."""
    current = tags.get(COST_TAG)
    if current is not None and current not in OURS:
        return
    value = cost_gap(calls, unpriced, in_part)
    if value is None:
        tags.pop(COST_TAG, None)
    else:
        tags[COST_TAG] = value
