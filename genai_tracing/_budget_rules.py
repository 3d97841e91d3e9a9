"""What a budget is: its periods, its limit and who it covers, and the event of crossing it.

A leaf shared by the in-process counts (``_budgets``) and the fleet's (``_budget_store``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from ._errors import ConfigurationError
from ._guard import logger
from ._money import format_money

PERIODS = ("day", "month")
SCOPES = ("process", "fleet")
SCOPE_ENV = "GENAI_TRACING_BUDGET_SCOPE"
EACH_USER = "*"
FIX = ("set_budget(5.0, per='day'), set_budget(50, per='month', user='*') or "
        "enable_tracing(budgets=[{'limit_usd': 5.0, 'per': 'day', 'user': '*'}])")


class BudgetExceeded(Exception):
    """A budget's limit was crossed: passed to ``on_exceeded``, raised by ``check_budget()``.

    ``user`` is the user whose spend crossed it (``None`` for a whole-app budget), ``period``
    the day (``"2026-11-25"``) or month (``"2026-11"``, UTC), ``spent`` and ``limit`` are
    ``Decimal`` USD, and ``trace_id`` is the trace whose call crossed the limit (``None`` from
    ``check_budget()``)::

        def page_someone(e: genai_tracing.BudgetExceeded) -> None:
            alerts.send(f"{e.user or 'the app'} spent ${e.spent:.2f} on {e.period}")
    """

    def __init__(self, budget: Budget, user: str | None, period: str, spent: Decimal,
                 trace_id: str | None = None) -> None:
        self.budget = budget
        self.user = user
        self.period = period
        self.spent = spent
        self.limit = budget.limit_usd
        self.trace_id = trace_id
        who = f"user {user!r}" if user is not None else "the whole app"
        per = "daily" if budget.per == "day" else "monthly"
        super().__init__(f"{per} budget of {format_money(budget.limit_usd)} for {who} exceeded: "
                         f"{format_money(spent)} spent in {period} (UTC)")


@dataclass(frozen=True)
class Budget:
    """A spend limit in USD per ``per`` ("day" or "month", UTC).

    ``user=None`` limits the whole app, ``user="*"`` each user separately, any other string that
    one user (the ``user`` given to ``attribute()``). Calls outside any ``attribute(user=...)``
    count only toward whole-app budgets. ``scope`` is ``"process"`` (this process's spend) or
    ``"fleet"`` (every process's spend, read from the tracking store).
    """

    limit_usd: Decimal
    per: str = "day"
    user: str | None = None
    on_exceeded: Callable[[BudgetExceeded], Any] | None = field(default=None, compare=False)
    scope: str = "process"

    def covers(self, user: str | None) -> str | None | bool:
        """The user key this budget counts a call of ``user`` under, or False if it does not."""
        if self.user is None:
            return None
        if user is None:
            return False
        return user if self.user == EACH_USER or self.user == user else False

    @classmethod
    def of(cls, limit_usd: Any, *, per: str = "day", user: str | None = None,
           on_exceeded: Callable[[BudgetExceeded], Any] | None = None,
           scope: str | None = None, option: str = "limit_usd") -> Budget:
        try:
            if isinstance(limit_usd, bool):
                raise InvalidOperation
            limit = Decimal(str(limit_usd))
            if not limit.is_finite():
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            raise ConfigurationError(option, limit_usd, "is not an amount of USD",
                                     f"pass a number, e.g. {FIX}") from None
        if limit <= 0:
            raise ConfigurationError(option, limit_usd, "must be more than 0", f"e.g. {FIX}")
        if per not in PERIODS:
            raise ConfigurationError("per", per, "is not a budget period", "use 'day' or 'month'")
        if user is not None and (not isinstance(user, str) or not user):
            raise ConfigurationError("user", user, "must be a user name, '*' or None",
                                     "None limits the whole app, '*' each user")
        if on_exceeded is not None and not callable(on_exceeded):
            raise ConfigurationError("on_exceeded", on_exceeded, "is not callable",
                                     "pass a function that takes a BudgetExceeded")
        option_name = "scope"
        if scope is None:
            scope, option_name = os.environ.get(SCOPE_ENV, "").strip() or "process", SCOPE_ENV
        if scope not in SCOPES:
            raise ConfigurationError(option_name, scope, "is not a budget scope",
                                     "use 'process' (this process's spend) or 'fleet' (every "
                                     "process writing to the tracking store)")
        return cls(limit, per, user, on_exceeded, scope)


def period_of(per: str, when: datetime) -> str:
    return when.strftime("%Y-%m-%d" if per == "day" else "%Y-%m")


def announce(event: BudgetExceeded) -> None:
    logger.warning("genai_tracing: %s%s. Raise the limit with set_budget(), or refuse requests "
                   "with check_budget().", event,
                   f" (trace {event.trace_id})" if event.trace_id else "")
    callback = event.budget.on_exceeded
    if callback is None:
        return
    try:
        callback(event)
    except Exception:
        # The call that crossed the limit already happened; failing it now would only lose its
        # result. MLflow would swallow the exception anyway (span processors run in a try).
        logger.warning("genai_tracing: the on_exceeded callback %r raised; the traced call is "
                       "unaffected. Use check_budget() to refuse requests.", callback,
                       exc_info=True)
