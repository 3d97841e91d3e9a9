"""``reprice()``: put today's prices on stored traces, in their tags, without touching the rest.

A stored trace's spans and metadata are immutable in MLflow; its tags are not. So a reprice
records, per trace, the new total (``genai_tracing.repriced.cost``), the new cost of each call it
changed (``genai_tracing.repriced.calls``, by span id), the calls still unpriced, the price
source and when. Reports read those tags ahead of the stored totals. Each call is priced from its
stored usage at its own start time (so ``valid_from`` applies), by the precedence spans use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Sequence

from ._accounting import counted
from ._gaps import COST_TAG, OURS, PARTIAL, REPRICED, UNPRICED, cost_gap
from ._repriced import repriced_calls
from ._keys import (COST_PARTIAL, COST_SOURCE, ENDPOINT, REQUESTED_MODEL, TRACE_REPRICED_AT,
                    TRACE_REPRICED_CALLS, TRACE_REPRICED_COST, TRACE_REPRICED_SOURCE,
                    TRACE_REPRICED_UNPRICED, USAGE)
from ._money import plain, to_decimal
from ._usage import Usage

# Trace tag values are capped (8,000 characters in MLflow's stores); past this the per-call
# costs are left out and only the trace's new total is recorded.
_MAX_CALLS_TAG = 4000


@dataclass(frozen=True)
class RepricedCall:
    """One call whose cost a reprice changes: ``old_cost`` ``None`` means it was unpriced."""

    trace_id: str
    span_id: str
    model: str | None
    old_cost: Decimal | None
    new_cost: Decimal
    source: str


@dataclass(frozen=True)
class RepriceResult:
    """What ``reprice()`` changed (``applied``) or would change (a dry run)."""

    calls: tuple[RepricedCall, ...]
    traces_read: int
    applied: bool
    still_unpriced: int = 0
    experiments: tuple[str, ...] = field(default=())

    @property
    def traces_changed(self) -> int:
        return len({c.trace_id for c in self.calls})

    @property
    def difference(self) -> Decimal:
        """New minus old, over every changed call (an unpriced call counts as 0 before)."""
        return sum((c.new_cost - (c.old_cost or Decimal(0)) for c in self.calls), Decimal(0))


def reprice(
    *,
    since: Any = None,
    until: Any = None,
    models: Sequence[str] | None = None,
    only_unpriced: bool = True,
    dry_run: bool = True,
    prices: Any = None,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,  # noqa: A002
    tracking_uri: str | None = None,
) -> RepriceResult:
    """Recompute stored calls' costs with the prices in force now; record them in trace tags.

    By default only calls that were unpriced get a cost, and nothing is written
    (``dry_run=True``): look at the result, then call again with ``dry_run=False``. Running it
    again changes nothing. ``only_unpriced=False`` also reprices priced calls (say, a negotiated
    rate that arrived after the traffic). ``prices`` is a price file or mapping, else the prices
    ``enable_tracing()`` loaded, else ``GENAI_TRACING_PRICES``; then the catalogs::

        result = genai_tracing.reprice(since="30d", prices="prices.toml")
        print(result.traces_changed, result.difference)      # 12 Decimal('0.0483')
        genai_tracing.reprice(since="30d", prices="prices.toml", dry_run=False)

    The other options are those of ``cost_report()``.

    Raises:
        ConfigurationError: as ``cost_report()``, or an unreadable price file.
    """
    from ._reports import Window, _source, _traces

    resolver = _resolver(prices)
    wanted = set(models) if models is not None else None
    window = Window.of(since, until)
    source = _source(experiment, tracking_uri)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    changes: list[RepricedCall] = []
    traces = still_unpriced = 0
    for trace in _traces(source, window, filter, include_spans=True):
        traces += 1
        found, tags, unpriced = _reprice_trace(trace, resolver, wanted, only_unpriced)
        still_unpriced += unpriced
        changes.extend(found)
        if found and not dry_run:
            _write_tags(source.client, trace.info, tags, now)
    return RepriceResult(tuple(changes), traces, not dry_run, still_unpriced,
                         source.experiment_names)


def _resolver(prices: Any) -> Any:
    from ._config import active_config
    from ._pricing import PriceResolver, active_resolver, load_price_table

    if prices is not None or active_config() is None:
        return PriceResolver(load_price_table(prices)[0])
    return active_resolver()


def _reprice_trace(trace: Any, resolver: Any, wanted: set[str] | None, only_unpriced: bool
                   ) -> tuple[list[RepricedCall], dict[str, str], int]:
    info = trace.info
    recorded = repriced_calls(info.tags)
    total = Decimal(0)
    changes: list[RepricedCall] = []
    sources: set[str] = set()
    items = counted(trace.data.spans)
    unpriced = 0
    for item in items:
        span = item.span
        current = recorded.get(span.span_id)
        old = current if current is not None else (item.cost or {}).get("total_cost")
        # A cost that left out a fee it could not price (a tool call) is as good as unpriced.
        partial = current is None and bool(span.get_attribute(COST_PARTIAL))
        if item.is_call and (wanted is None or _model_names(item) & wanted) and (
                old is None or partial or not only_unpriced):
            priced = _price(span, item, resolver)
            if priced is not None and not _same(priced[0].total_cost, old):
                cost, source = priced
                changes.append(RepricedCall(info.trace_id, span.span_id, item.model, old,
                                            cost.total_cost, source))
                recorded[span.span_id] = old = cost.total_cost
                sources.add(source)
                partial = False
        if old is None:
            unpriced += int(item.is_call)
        else:
            total += old
            unpriced += int(item.is_call and partial)
    calls_tag = json.dumps({k: plain(v) for k, v in recorded.items()})
    tags = {TRACE_REPRICED_COST: json.dumps({"total_cost": plain(total)}),
            TRACE_REPRICED_UNPRICED: str(unpriced),
            TRACE_REPRICED_SOURCE: ", ".join(sorted(sources))}
    if len(calls_tag) <= _MAX_CALLS_TAG:
        tags[TRACE_REPRICED_CALLS] = calls_tag
    calls = sum(1 for item in items if item.is_call)
    gap = cost_gap(calls, unpriced)
    tags[COST_TAG] = REPRICED if gap is None else PARTIAL if gap == PARTIAL else UNPRICED
    return changes, tags, unpriced


def _same(new: Decimal, old: Decimal | None) -> bool:
    """Span costs are stored as floats: equal as floats is no change (no spurious repricing)."""
    return old is not None and float(new) == float(old)


def _model_names(item: Any) -> set[str]:
    return {n for n in (item.model, item.span.get_attribute(REQUESTED_MODEL)) if n}


def _price(span: Any, item: Any, resolver: Any) -> tuple[Any, str] | None:
    """The call's cost by the prices in force, from its stored usage at its own start time."""
    from ._pricing import Cost, Unpriced, price_call
    from .providers import Call

    usage = _stored_usage(span)
    if usage is None:
        return None
    reported = None
    if span.get_attribute(COST_SOURCE) == "provider" and item.cost is not None:
        reported = Cost(item.cost["input_cost"], item.cost["output_cost"])
    where = span.get_attribute(ENDPOINT)
    where = where if isinstance(where, dict) else {}
    call = Call(item.provider or "", item.model, usage, reported_cost=reported,
                requested_model=span.get_attribute(REQUESTED_MODEL),
                endpoint=where.get("url"), deployment=where.get("deployment"))
    when = datetime.fromtimestamp(span.start_time_ns / 1e9, tz=timezone.utc) \
        if span.start_time_ns else None
    try:
        cost, source, price = price_call(call, resolver, when)
    except Unpriced:
        return None
    if cost.missing:
        return None  # still a fee short: not a complete price
    if source == "user" and price is not None and price.origin:
        source = f"user ({price.origin})"
    return cost, source


def _stored_usage(span: Any) -> Usage | None:
    raw = span.get_attribute(USAGE)
    if not isinstance(raw, dict):
        return None
    known = {k: v for k, v in raw.items() if k in Usage.__dataclass_fields__}
    known["flags"] = tuple(known.get("flags") or ())
    try:
        usage = Usage(**known)
    except TypeError:
        return None
    if "malformed" in usage.flags or usage.input_tokens is None or usage.output_tokens is None:
        return None
    return usage


def _write_tags(client: Any, info: Any, tags: dict[str, str], now: str) -> None:
    if info.tags.get(COST_TAG) not in (None, *OURS):
        tags = {k: v for k, v in tags.items() if k != COST_TAG}  # the user's own tag stays
    if TRACE_REPRICED_CALLS not in tags and TRACE_REPRICED_CALLS in info.tags:
        client.delete_trace_tag(info.trace_id, TRACE_REPRICED_CALLS)
    for key, value in {**tags, TRACE_REPRICED_AT: now}.items():
        client.set_trace_tag(info.trace_id, key, value)
