"""Budgets: spend limits per day or month, for the whole app or per user.

The span processor hands every priced call to ``observe()``. A ``scope="process"`` budget (the
default) checks this process's running totals, which start when the first budget is set and
restart with the process. A ``scope="fleet"`` budget checks what every process wrote to the
tracking store plus this process's calls not stored yet, and fires once for the whole fleet
(``_budget_store``).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ._budget_rules import FIX, PERIODS, Budget, BudgetExceeded, announce, period_of
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan

_KEPT_PERIODS = 3  # per period kind: the current one, and a little slack for late spans

_lock = threading.Lock()
_budgets: list[Budget] = []
_from_enable: list[Budget] = []
# (period kind, period) -> user key (None = the whole app) -> spend.
_spent: dict[tuple[str, str], dict[str | None, Decimal]] = {}
_fired: set[tuple[Budget, str, str | None]] = set()
_active = False  # read without the lock: the processor's fast path when no budget is set


def set_budget(limit_usd: float | Decimal | str, *, per: str = "day", user: str | None = None,
               on_exceeded: Callable[[BudgetExceeded], Any] | None = None,
               scope: str | None = None) -> Budget:
    """Watch spend against a limit, per day or per month (UTC).

    Crossing the limit logs one warning per period (and per user for ``user="*"``) and calls
    ``on_exceeded`` once with a :class:`BudgetExceeded`. The traced call itself is never blocked
    or failed: its cost is known only after it returned. An exception raised by ``on_exceeded`` is
    logged and goes no further. To refuse requests once a budget is spent, call
    ``check_budget()`` at the start of each request; it raises ``BudgetExceeded``::

        genai_tracing.set_budget(50, per="month")                    # the whole app
        genai_tracing.set_budget(2.5, per="day", user="*",           # each user, each day
                                 on_exceeded=lambda e: notify(e.user, e.spent))

    A second budget with the same ``per`` and ``user`` replaces the first. With
    ``scope="process"`` (the default, or ``GENAI_TRACING_BUDGET_SCOPE``) totals are kept in this
    process only and start when the first budget is set; the callback runs in the call that
    crossed the limit. With ``scope="fleet"`` the spend is what every process wrote to the
    experiment this period, read in the background, plus this process's calls not stored yet;
    the callback runs once in the whole fleet, from a background thread, within seconds::

        genai_tracing.set_budget(100, per="day", scope="fleet", on_exceeded=page_someone)

    Raises:
        ConfigurationError: a limit that is not a positive amount, an unknown period or scope.
    """
    budget = Budget.of(limit_usd, per=per, user=user, on_exceeded=on_exceeded, scope=scope)
    _install([budget])
    return budget


def clear_budgets() -> None:
    """Remove every budget and forget the running totals.

    Example::

        genai_tracing.clear_budgets()
    """
    global _active
    with _lock:
        _budgets.clear()
        _from_enable.clear()
        _spent.clear()
        _fired.clear()
        _active = False
    from . import _budget_store

    _budget_store.configure([])


def check_budget(user: str | None = None) -> None:
    """Raise :class:`BudgetExceeded` if a budget covering ``user`` is spent for this period.

    ``user`` defaults to the user of the enclosing ``attribute()`` block. Whole-app budgets always
    apply. Call it before the work you want to refuse, e.g. in a FastAPI dependency::

        def within_budget(email: str) -> None:
            try:
                genai_tracing.check_budget(email)
            except genai_tracing.BudgetExceeded as e:
                raise HTTPException(429, str(e))
    """
    if user is None:
        from ._attribution import current

        attribution = current()
        user = attribution.user if attribution else None
    now = datetime.now(timezone.utc)
    with _lock:
        for budget in _budgets:
            key = budget.covers(user)
            if key is False:
                continue
            period = period_of(budget.per, now)
            if budget.scope == "fleet":
                from ._budget_store import spent as fleet_spent

                spent = fleet_spent(budget.per, period, key)
            else:
                spent = _spent.get((budget.per, period), {}).get(key, Decimal(0))
            if spent > budget.limit_usd:
                raise BudgetExceeded(budget, key, period, spent)


def configure(budgets: Iterable[Budget | Mapping[str, Any]] | None) -> None:
    """``enable_tracing(budgets=...)``: replace the budgets a previous enable set; None keeps them."""
    global _active
    if budgets is None:
        return
    parsed = parse(budgets)
    with _lock:
        for old in _from_enable:
            if old in _budgets:
                _budgets.remove(old)
        _from_enable[:] = parsed
    _install(parsed)
    with _lock:
        _active = bool(_budgets)


def parse(budgets: Any) -> list[Budget]:
    """Validate ``enable_tracing(budgets=...)``: Budget objects or mappings of set_budget's options."""
    if isinstance(budgets, (Budget, Mapping)):
        budgets = [budgets]
    try:
        items = list(budgets)
    except TypeError:
        raise ConfigurationError("budgets", budgets, "must be a list of budgets",
                                 f"pass e.g. {FIX}") from None
    parsed = []
    for i, item in enumerate(items):
        if isinstance(item, Budget):
            parsed.append(item)
            continue
        if not isinstance(item, Mapping) or "limit_usd" not in item:
            raise ConfigurationError(f"budgets[{i}]", item, "is not a budget",
                                     f"pass a mapping with limit_usd (and per, user), e.g. {FIX}")
        unknown = set(item) - {"limit_usd", "per", "user", "on_exceeded", "scope"}
        if unknown:
            raise ConfigurationError(f"budgets[{i}].{sorted(unknown)[0]}", item,
                                     "is not a budget option",
                                     "use only limit_usd, per, user, on_exceeded and scope")
        parsed.append(Budget.of(item["limit_usd"], per=item.get("per", "day"),
                                user=item.get("user"), on_exceeded=item.get("on_exceeded"),
                                scope=item.get("scope"), option=f"budgets[{i}].limit_usd"))
    return parsed


def _install(new: list[Budget]) -> None:
    global _active
    if any(b.scope == "fleet" for b in new):
        from ._budget_store import resolve_refresh

        resolve_refresh()  # a bad setting fails here, before any budget changes
    with _lock:
        for budget in new:
            _budgets[:] = [b for b in _budgets if (b.per, b.user) != (budget.per, budget.user)]
            _budgets.append(budget)
        _active = bool(_budgets)
        fleet = [b for b in _budgets if b.scope == "fleet"]
    from . import _budget_store

    if fleet or _budget_store.active():
        _budget_store.configure(fleet)


# ---------------------------------------------------------------------------------------------
# Fed by the span processor


def observe(span: LiveSpan) -> None:
    """Count a priced call's cost; called by the span processor once the span has its cost."""
    if not _active:
        return
    from ._accounting import is_call, span_cost

    cost = span_cost(span)
    if cost is None or not is_call(span):
        return
    amount = cost["total_cost"]
    if amount <= 0:
        return
    add(amount, user=_user_of(span), when=_request_time(span), trace_id=span.trace_id)


def add(amount: Decimal, *, user: str | None, when: datetime,
        trace_id: str | None = None) -> None:
    """Add spend; warn and call back, outside the lock, for each limit this crossed."""
    crossed: list[BudgetExceeded] = []
    with _lock:
        periods = {per: period_of(per, when) for per in PERIODS}
        for per, period in periods.items():
            totals = _spent.get((per, period))
            if totals is None:
                totals = _spent[(per, period)] = {}
                _forget_old(per, keep=period)
            totals[None] = totals.get(None, Decimal(0)) + amount
            if user is not None:
                totals[user] = totals.get(user, Decimal(0)) + amount
        fleet = False
        for budget in _budgets:
            key = budget.covers(user)
            if budget.scope == "fleet":
                fleet = True
                continue
            if key is False:
                continue
            period = periods[budget.per]
            spent = _spent[(budget.per, period)].get(key, Decimal(0))
            if spent > budget.limit_usd and (budget, period, key) not in _fired:
                _fired.add((budget, period, key))
                crossed.append(BudgetExceeded(budget, key, period, spent, trace_id))
    if fleet:
        from . import _budget_store

        _budget_store.add(amount, user=user, when=when, trace_id=trace_id)
    for event in crossed:
        announce(event)


def _forget_old(per: str, *, keep: str) -> None:
    """Drop all but the latest periods' totals; ``keep`` (the one being added to) stays."""
    periods = sorted(p for kind, p in _spent if kind == per and p != keep)
    for old in periods[:-(_KEPT_PERIODS - 1)]:
        del _spent[(per, old)]
        _fired.difference_update({f for f in _fired if f[0].per == per and f[1] == old})


def _user_of(span: Any) -> str | None:
    from ._attribution import Attribution, current
    from ._keys import SPAN_ATTRIBUTION

    attribution = current() or Attribution.from_json(span.get_attribute(SPAN_ATTRIBUTION))
    return attribution.user if attribution else None


def _request_time(span: Any) -> datetime:
    """When the request began: its trace's start, so a request counts toward a single day."""
    from ._mlflow import trace_start_ms

    start_ms = trace_start_ms(span.trace_id)
    if start_ms:
        return datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc)
    return datetime.fromtimestamp((span.start_time_ns or 0) / 1e9, tz=timezone.utc)
