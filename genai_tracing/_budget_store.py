"""Fleet budgets: the spend every process wrote to the tracking store, plus this process's calls
not stored yet, and one ``on_exceeded`` per budget and period for the whole fleet.

One daemon thread per process, started with the first ``scope="fleet"`` budget, does every store
round trip; a traced call only adds to in-memory totals and never waits for the store.

- **The store's figure.** Every ``REFRESH_SECONDS`` (or ``GENAI_TRACING_BUDGET_REFRESH_SECONDS``)
  the thread pages through the experiment's
  traces of the current periods (metadata only, through the reports' reader) and sums their
  totals by user. The first scan reads the whole period (the month for a monthly budget); later
  scans re-read only the last ``LOOKBACK`` (2 minutes) of trace start times, and a full scan
  runs every ``FULL_SCAN_SECONDS`` (an hour) and at each new period, so a scan costs what the
  fleet wrote lately.
- **This process's calls not stored yet.** Each priced call adds to ``_local`` under its trace id;
  once a scan finds that trace stored whole (with genai_tracing's totals), the stored total counts
  and the local entry goes. A trace is never counted twice.
- **Once per fleet.** MLflow has no compare-and-set, so a crossing is claimed through experiment
  tags: a process that sees the limit crossed stops if the crossing's tag
  ``genai_tracing.budget.<budget id>.<period>[.<user hash>]`` is set; else it writes a claim tag
  of its own under it (stamped with the time), waits ``SETTLE_SECONDS`` and reads the claims
  back. The earliest claim wins, so contenders that see the same claims agree; the winner sets
  the crossing's tag before it calls back, and a contender whose claim shows later stops on it.
  Two processes fire only if a claim stamped earlier becomes readable more than
  ``SETTLE_SECONDS`` after it was stamped and before the winner's tag is; a winner that dies
  between its claim and its callback fires nothing.
- **Store down.** Scans fail quietly after one warning: the last figure read stays, local calls
  keep adding (nothing is confirmed stored, so nothing is subtracted). A crossing that cannot be
  claimed is announced in this process anyway, with a warning: without the store the fleet
  cannot agree, so each process that crosses on its own view may fire once (at least once,
  rather than at most once, until the store answers).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable

from ._guard import internal_error, logger

if TYPE_CHECKING:
    from ._budget_rules import Budget, BudgetExceeded

# A crossing is announced at most this long after the store holds the spend that crossed it,
# plus SETTLE_SECONDS and a few store round trips (see delay_seconds()).
REFRESH_SECONDS = 5.0  # the default; GENAI_TRACING_BUDGET_REFRESH_SECONDS sets another
REFRESH_ENV = "GENAI_TRACING_BUDGET_REFRESH_SECONDS"
SETTLE_SECONDS = 2.0
# How far back an incremental scan re-reads trace start times: a trace stored later than this
# after it started is seen by the other processes at the next full scan.
LOOKBACK = timedelta(minutes=2)
FULL_SCAN_SECONDS = 3600.0
TAG_PREFIX = "genai_tracing.budget."

_lock = threading.Lock()
_budgets: list[Budget] = []
# trace id -> (start ms, user, cost) of traces found stored whole, since the earliest period.
_stored: dict[str, tuple[int, str | None, Decimal]] = {}
# (per, period) -> user key (None = the whole app) -> spend, from _stored.
_stored_totals: dict[tuple[str, str], dict[str | None, Decimal]] = {}
# trace id -> [start ms, user, cost] of this process's calls whose trace is not stored yet.
_local: dict[str, list[Any]] = {}
_local_totals: dict[tuple[str, str], dict[str | None, Decimal]] = {}
# (budget, period, user key) this process claimed, lost or found claimed: never claimed again.
_handled: set[tuple[Budget, str, str | None]] = set()
_claims: list[BudgetExceeded] = []
_wake = threading.Event()
_generation = 0
_thread: threading.Thread | None = None
_store_down = False  # the last scan failed (logged once, until a scan succeeds)
_scanned: dict[str, Any] = {"since_ms": None, "full_at": 0.0, "periods": None, "ok": False}


_refresh = REFRESH_SECONDS


def delay_seconds() -> float:
    """The documented bound, past the store holding the crossing spend, for the callback."""
    return _refresh + SETTLE_SECONDS


def resolve_refresh() -> float:
    """The seconds between reads of the store, from ``GENAI_TRACING_BUDGET_REFRESH_SECONDS``."""
    global _refresh
    from ._errors import ConfigurationError

    raw = os.environ.get(REFRESH_ENV, "").strip()
    try:
        seconds = float(raw) if raw else REFRESH_SECONDS
    except ValueError:
        seconds = float("nan")
    if not 1 <= seconds <= 3600:  # also refuses NaN
        raise ConfigurationError(REFRESH_ENV, raw, "is not a number of seconds from 1 to 3600",
                                 f"leave it unset for {REFRESH_SECONDS:g} s, or e.g. 30 to read "
                                 "the store less often")
    _refresh = seconds
    return seconds


def configure(budgets: Iterable[Budget]) -> None:
    """Use these fleet budgets (an empty list stops the thread and forgets every figure)."""
    global _thread, _generation
    budgets = list(budgets)
    with _lock:
        _budgets[:] = budgets
        if budgets and _thread is not None:
            _wake.set()  # new budgets: check them against the figures now
            return
        _generation += 1
        _thread = None
        _stored.clear()
        _stored_totals.clear()
        _local.clear()
        _local_totals.clear()
        _handled.clear()
        _claims.clear()
        _scanned.update(since_ms=None, full_at=0.0, periods=None, ok=False)
        if not budgets:
            _wake.set()
            return
        # Started here, never waited for: the first scan happens in the background.
        _thread = threading.Thread(target=_run, args=(_generation,),
                                   name="genai-tracing-budgets", daemon=True)
        _thread.start()


def active() -> bool:
    return bool(_budgets)


def spent(per: str, period: str, key: str | None) -> Decimal:
    """The fleet's spend as this process knows it: stored figure plus local calls not stored."""
    with _lock:
        return _spent(per, period, key)


def _spent(per: str, period: str, key: str | None) -> Decimal:
    return (_stored_totals.get((per, period), {}).get(key, Decimal(0))
            + _local_totals.get((per, period), {}).get(key, Decimal(0)))


def refreshed() -> bool:
    """Whether a scan of the store has succeeded since the budgets were set."""
    return bool(_scanned["ok"])


def add(amount: Decimal, *, user: str | None, when: datetime, trace_id: str | None) -> None:
    """A priced call of this process: count it and hand any crossing to the thread. No I/O."""
    from ._budget_rules import PERIODS, period_of

    start_ms = _ms(when)
    periods = {per: period_of(per, when) for per in PERIODS}
    with _lock:
        if trace_id is not None and trace_id in _stored:
            return  # already counted from the store (a late span of a stored trace)
        if trace_id is not None:
            entry = _local.setdefault(trace_id, [start_ms, user, Decimal(0)])
            entry[2] += amount
        for per, period in periods.items():
            totals = _local_totals.setdefault((per, period), {})
            totals[None] = totals.get(None, Decimal(0)) + amount
            if user is not None:
                totals[user] = totals.get(user, Decimal(0)) + amount
        queued = _check(periods, [user], trace_id)
    if queued:
        _wake.set()


def _check(periods: dict[str, str], users: Iterable[str | None], trace_id: str | None) -> bool:
    """Queue a claim for each fleet budget these users' spend crossed (under the lock)."""
    from ._budget_rules import BudgetExceeded

    queued = False
    for budget in _budgets:
        period = periods[budget.per]
        for user in users:
            key = budget.covers(user)
            if key is False or (budget, period, key) in _handled:
                continue
            total = _spent(budget.per, period, key)
            if total > budget.limit_usd:
                _handled.add((budget, period, key))
                _claims.append(BudgetExceeded(budget, key, period, total, trace_id))
                queued = True
    return queued


# ---------------------------------------------------------------------------------------------
# The thread: scans and claims


def _run(generation: int) -> None:
    next_scan = 0.0
    while True:
        _wake.wait(max(0.0, next_scan - time.monotonic()))
        _wake.clear()
        if generation != _generation:
            return
        try:
            with _lock:
                claims, _claims[:] = list(_claims), []
            if claims:
                _claim(claims)
            if time.monotonic() >= next_scan:
                _scan(generation)
                next_scan = time.monotonic() + _refresh
        except Exception:
            internal_error("fleet budgets")
            next_scan = time.monotonic() + _refresh


def _where() -> tuple[Any, str, str]:
    """A client on the tracking store, its URI and the experiment this process's traces go to."""
    import mlflow

    from . import _mlflow
    from ._config import active_config

    config = active_config()
    experiment_id = _mlflow.chosen_experiment_id() or (config.experiment_id if config else None) \
        or _mlflow.current_experiment_id()
    uri = mlflow.get_tracking_uri()
    return mlflow.MlflowClient(uri), uri, str(experiment_id or "0")


def _scan(generation: int) -> None:
    """Read the current periods' stored traces (all, or the recent ones) and rebuild the figure."""
    global _store_down, _stored, _stored_totals
    from ._budget_rules import PERIODS, period_of
    from ._keys import TRACE_COST, TRACE_COST_COMPLETE, TRACE_USER
    from ._reports import Window, _request_share, _Source, _traces

    now = datetime.now(timezone.utc)
    with _lock:
        pers = {b.per for b in _budgets}
    if not pers:
        return
    earliest = _start("month" if "month" in pers else "day", now)
    periods = {per: period_of(per, now) for per in PERIODS}
    full = (_scanned["since_ms"] is None or _scanned["periods"] != periods
            or time.monotonic() - _scanned["full_at"] > FULL_SCAN_SECONDS)
    since = earliest if full else max(earliest, _from_ms(_scanned["since_ms"]) - LOOKBACK)
    started_ms = _ms(now)
    try:
        client, uri, experiment_id = _where()
        source = _Source(client, (experiment_id,), (), uri)
        found: dict[str, tuple[int, str | None, Decimal]] = {}
        for trace in _traces(source, Window(since, None), None, include_spans=False,
                             parallel=True):
            info = trace.info
            metadata = info.trace_metadata
            if TRACE_COST not in metadata and TRACE_COST_COMPLETE not in metadata:
                continue  # not stored whole yet (or no call of ours): its writer still counts it
            cost = _request_share(info).cost
            found[info.trace_id] = (info.request_time, metadata.get(TRACE_USER),
                                    cost if cost is not None else Decimal(0))
    except Exception as e:
        if not _store_down:
            _store_down = True
            logger.warning("genai_tracing: fleet budgets could not read the tracking store (%s); "
                           "they count this process's calls on top of the last figure read "
                           "until it answers, and a limit crossed meanwhile may be announced by "
                           "more than one process.", e, exc_info=logger.isEnabledFor(logging.DEBUG))
        return
    if _store_down:
        _store_down = False
        logger.warning("genai_tracing: fleet budgets read the tracking store again.")
    since_ms = _ms(since)
    # The new figure is built outside the lock, which traced calls take.
    with _lock:
        previous = {} if full else dict(_stored)
    kept = {t: v for t, v in previous.items() if since_ms > v[0] >= _ms(earliest)}
    kept.update(found)
    new_totals: dict[tuple[str, str], dict[str | None, Decimal]] = {}
    for start_ms, user, cost in kept.values():
        when = _from_ms(start_ms)
        for per in PERIODS:
            totals = new_totals.setdefault((per, period_of(per, when)), {})
            totals[None] = totals.get(None, Decimal(0)) + cost
            if user is not None:
                totals[user] = totals.get(user, Decimal(0)) + cost
    with _lock:
        if generation != _generation:
            return
        _stored, _stored_totals = kept, new_totals  # swapped, not copied, under the lock
        # Local calls now stored count from the store; those of past periods are dropped.
        for trace_id in [t for t, v in _local.items() if t in _stored or v[0] < _ms(earliest)]:
            start_ms, user, cost = _local.pop(trace_id)
            when = _from_ms(start_ms)
            for per in PERIODS:
                totals = _local_totals.get((per, period_of(per, when)), {})
                for key in (None, user) if user is not None else (None,):
                    if key in totals:
                        totals[key] -= cost
        for key in [k for k in _local_totals if k[1] not in periods.values()]:
            del _local_totals[key]
        _scanned.update(since_ms=started_ms, periods=periods, ok=True)
        if full:
            _scanned["full_at"] = time.monotonic()
        users = {None} | {u for t in list(_stored_totals.values()) + list(_local_totals.values())
                          for u in t}
        queued = _check(periods, users, None)
    if queued:
        _wake.set()


def tag_key(event: BudgetExceeded) -> str:
    """The experiment tag a crossing is claimed under: one per budget, period and user."""
    budget = event.budget
    budget_id = hashlib.sha256(f"{budget.per}|{budget.user}|{budget.limit_usd}".encode()
                               ).hexdigest()[:12]
    key = f"{TAG_PREFIX}{budget_id}.{event.period}"
    if event.user is not None:
        key += "." + hashlib.sha256(event.user.encode()).hexdigest()[:16]
    return key


def _claim(events: list[BudgetExceeded]) -> None:
    """Claim each crossing through the store; announce those this process won.

    Each contender writes its own claim tag (``<key>.claim.<claim id>``, stamped with the time
    it was written), waits ``SETTLE_SECONDS`` and reads the claims back: the earliest claim wins,
    so every contender that sees the same claims picks the same winner. The winner marks the
    crossing as announced under ``<key>`` before it calls back, and a contender that sees the
    mark stops; each removes its own claim tag once decided.
    """
    from ._budget_rules import announce

    mine: dict[str, tuple[str, float, BudgetExceeded]] = {}
    try:
        client, _, experiment_id = _where()
        tags = client.get_experiment(experiment_id).tags
        for event in events:
            key = tag_key(event)
            if key in tags:
                logger.debug("genai_tracing: %s; announced by another process (%s)", event,
                             tags[key])
                continue
            token, at = uuid.uuid4().hex, time.time()
            client.set_experiment_tag(experiment_id, f"{key}{_CLAIM}{token}", json.dumps({
                "claim": token, "at": at, "host": socket.gethostname(), "pid": os.getpid(),
                "spent": str(event.spent)}))
            mine[key] = (token, at, event)
        if not mine:
            return
        time.sleep(SETTLE_SECONDS)
        tags = client.get_experiment(experiment_id).tags
        won = []
        for key, (token, at, event) in mine.items():
            if key not in tags and _winner(tags, key) == token:
                client.set_experiment_tag(experiment_id, key, tags[f"{key}{_CLAIM}{token}"])
                won.append(event)
            else:
                logger.debug("genai_tracing: %s; another process won the claim", event)
    except Exception as e:
        logger.warning("genai_tracing: could not claim %d budget crossing(s) through the "
                       "tracking store (%s); announcing them from this process, so other "
                       "processes may announce them too.", len(events), e)
        for event in events:
            announce(event)
        return
    for event in won:
        announce(event)
    for key, (token, _, _) in mine.items():
        try:
            client.delete_experiment_tag(experiment_id, f"{key}{_CLAIM}{token}")
        except Exception:
            logger.debug("genai_tracing: could not remove a budget claim tag", exc_info=True)


_CLAIM = ".claim."


def _winner(tags: dict[str, str], key: str) -> str | None:
    """The claim id of the earliest claim on ``key`` among ``tags`` (ties: the smaller id)."""
    claims = []
    for tag, value in tags.items():
        if tag.startswith(f"{key}{_CLAIM}"):
            try:
                claim = json.loads(value)
                claims.append((float(claim["at"]), str(claim["claim"])))
            except (ValueError, KeyError, TypeError):
                continue
    return min(claims)[1] if claims else None


def _start(per: str, now: datetime) -> datetime:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if per == "day" else day.replace(day=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ms(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(milliseconds=1)


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
