"""``cost_report()``, ``latency_report()`` and ``cost_chart()``: who spends what, from MLflow's traces.

Every grouping reads trace metadata only (``include_spans=False``): by request (user, session, day,
hour, tag) the trace's totals, by model or provider the per-model breakdown the span processor
writes with them (``_breakdown``). Traces written without that breakdown (before it existed, or
with too many calls of one model for a metadata value) are read again with their spans. Every
path adds up the numbers the span processor stored by the same rule, so a report by model sums to
the same total as a report by user.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from . import _breakdown
from ._breakdown import ModelShare
from ._errors import ConfigurationError
from ._money import format_money  # noqa: F401 - re-exported for the CLI and examples
from ._money import to_decimal
from ._repriced import repriced_calls, repriced_total
from ._keys import (LATENCY_MS, PROMPT_CHARS, TRACE_COST,
                    TRACE_LLM_CALLS, TRACE_REPRICED_COST, TRACE_REPRICED_UNPRICED, TRACE_SESSION,
                    TRACE_TOKEN_USAGE, TRACE_UNPRICED_CALLS, TRACE_USER)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# What ``by`` accepts, besides ``tag:<name>``.
PER_REQUEST_KEYS = ("user", "session", "day", "hour")
PER_CALL_KEYS = ("model", "provider")
TIME_KEYS = ("day", "hour")
COLUMNS = ("requests", "llm_calls", "input_tokens", "output_tokens", "total_cost",
           "unpriced_calls", "repriced_calls", "p50_latency_ms", "p95_latency_ms")
_TIME_FORMS = ("a datetime, an ISO date or time such as 2026-11-24 or 2026-11-24T09:30, 'now', "
               "'today', 'yesterday', or an age such as '30m', '24h', '7d', '2w'")
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?|h|hours?|d|days?|w|weeks?)$")
_AGE_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Traces per search page: metadata-only pages are cheap, pages with spans hold whole traces.
# 500 is the most an mlflow server accepts (it refuses the whole search above that).
_PAGE = 500
_PAGE_WITH_SPANS = 200
# Time slices of a report's window searched side by side on a remote server.
_PARALLEL = 4
# Through a tracking server, metadata-only searches read MLflow's REST JSON themselves and page by
# time (each page starts at the last one's last trace time) instead of by offset, which the
# server's database pays for on every page; this many time slices side by side.
_REST_PARALLEL = 2
# Traces written without a per-model breakdown are read again with their spans: up to this many
# fetched one by one on a few threads, more paged through like any search.
_FETCH_ONE_BY_ONE = 50
_FETCH_THREADS = 8
# From a SQL store (the URI of its database, as ``mlflow server --backend-store-uri`` takes it),
# metadata-only reads query its tables for the few columns and keys reports read, this many
# traces a query, instead of MLflow's search building every trace's record. Off: always search.
_SQL_READS = True
_SQL_CHUNK = 20_000
_SQL_METADATA = (TRACE_USER, TRACE_SESSION, TRACE_TOKEN_USAGE, TRACE_COST)
_SQL_METADATA_PREFIX = "genai_tracing."  # every key genai_tracing writes (totals, breakdown)


# ---------------------------------------------------------------------------------------------
# Time windows


def parse_time(value: Any, *, option: str = "since", now: datetime | None = None
               ) -> datetime | None:
    """A point in time, in UTC, from a datetime, a date or a string.

    Strings: ``"now"``, ``"today"`` and ``"yesterday"`` (midnight UTC), an age before now
    (``"30m"``, ``"24h"``, ``"7d"``, ``"2w"``), or an ISO date or time. A time without a zone is
    UTC::

        >>> parse_time("2026-11-24")
        datetime.datetime(2026, 11, 24, 0, 0, tzinfo=datetime.timezone.utc)

    Raises:
        ConfigurationError: the value is none of these.
    """
    if value is None:
        return None
    now = now or datetime.now(timezone.utc)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str):
        text = value.strip().lower()
        midnight = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0,
                                                        microsecond=0)
        if text == "now":
            return now
        if text == "today":
            return midnight
        if text == "yesterday":
            return midnight - timedelta(days=1)
        if match := _AGE.match(text):
            unit = _AGE_UNIT[match.group(2)[0]]
            return now - timedelta(**{unit: float(match.group(1))})
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ConfigurationError(option, value, "is not a time I can read", f"use {_TIME_FORMS}")


@dataclass(frozen=True)
class Window:
    """The time range of a report: ``since`` inclusive, ``until`` exclusive, either open."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(cls, since: Any = None, until: Any = None, *, now: datetime | None = None) -> Window:
        now = now or datetime.now(timezone.utc)
        window = cls(parse_time(since, option="since", now=now),
                     parse_time(until, option="until", now=now))
        if window.since and window.until and window.since >= window.until:
            raise ConfigurationError(
                "since", since, f"is not before until={until!r} ({window.since:%Y-%m-%d %H:%M} "
                f">= {window.until:%Y-%m-%d %H:%M} UTC)",
                "pick a since earlier than until, e.g. since='yesterday', until='today'")
        return window

    def filters(self) -> list[str]:
        out = []
        if self.since:
            out.append(f"timestamp_ms >= {_ms(self.since)}")
        if self.until:
            out.append(f"timestamp_ms < {_ms(self.until)}")
        return out

    def describe(self) -> str:
        def show(t: datetime) -> str:
            return f"{t:%Y-%m-%d %H:%M} UTC"
        if self.since and self.until:
            return f"from {show(self.since)} to {show(self.until)}"
        if self.since:
            return f"since {show(self.since)}"
        if self.until:
            return f"before {show(self.until)}"
        return "at any time"


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ms(t: datetime) -> int:
    # Integer arithmetic: t.timestamp() * 1000 can land a float's width below a whole ms.
    return (t - _EPOCH) // timedelta(milliseconds=1)


def _from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


# ---------------------------------------------------------------------------------------------
# Reading traces


@dataclass(frozen=True)
class _Source:
    """Which store and experiments a report reads, resolved once."""

    client: Any
    experiment_ids: tuple[str, ...]
    experiment_names: tuple[str, ...]
    tracking_uri: str


def _source(experiment: str | Sequence[str] | None, tracking_uri: str | None) -> _Source:
    import mlflow
    from mlflow import MlflowClient

    from ._config import require_store

    uri = require_store(tracking_uri if tracking_uri is not None else mlflow.get_tracking_uri())
    client = MlflowClient(uri)
    if experiment is None:
        found = [_default_experiment(client, uri)]
    else:
        wanted = [experiment] if isinstance(experiment, str) else list(experiment)
        found = [_find_experiment(client, str(e), uri) for e in wanted]
    return _Source(client, tuple(e.experiment_id for e in found),
                   tuple(e.name for e in found), uri)


def _default_experiment(client: Any, uri: str) -> Any:
    """The configured experiment, else the one enable_tracing() would pick (which must exist:
    MLflow's ``Default`` instead would report on the wrong traces), else the one chosen in
    MLflow."""
    from ._config import active_config, resolve_experiment

    config = active_config()
    if config is not None and config.experiment_id and config.tracking_uri == uri:
        return client.get_experiment(config.experiment_id)
    name, _ = resolve_experiment(None, uri)
    if name is not None:
        return _find_experiment(client, name, uri)
    from ._mlflow import current_experiment_id

    return client.get_experiment(current_experiment_id() or "0")


def _find_experiment(client: Any, name_or_id: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name_or_id)
    if found is None and name_or_id.isdigit():
        try:
            found = client.get_experiment(name_or_id)
        except MlflowException:
            found = None
    if found is None:
        names = sorted(e.name for e in client.search_experiments(max_results=50))
        raise ConfigurationError("experiment", name_or_id, f"no experiment has that name or id "
                                 f"on {uri}", f"use one of: {', '.join(names) or '(none)'}")
    return found


def _traces(source: _Source, window: Window, user_filter: str | None, *,
            include_spans: bool, parallel: bool = False) -> Iterator[Any]:
    """Every matching trace, page by page: oldest first, or with ``parallel`` from a remote
    server, time slices of the window searched side by side, in no set order. Metadata only
    from a SQL store (sqlite, PostgreSQL...) with no ``user_filter``: read from its tables."""
    if not include_spans and not (user_filter and user_filter.strip()) and _SQL_READS:
        found = _sql_traces(source, window)
        if found is not None:
            yield from found
            return
    if not include_spans and _is_remote(source.tracking_uri) and _rest_available(source):
        parts = _REST_PARALLEL if parallel else 1
        slices = _slices(source, window, user_filter, parts) if parts > 1 else [window]
        yield from _keyset_side_by_side(source, slices, user_filter)
        return
    if parallel and not include_spans and _is_remote(source.tracking_uri):
        slices = _slices(source, window, user_filter, _PARALLEL)
        if len(slices) > 1:
            yield from _side_by_side(source, slices, user_filter)
            return
    token = None
    while True:
        page = _page(source, window, user_filter, token, include_spans=include_spans)
        yield from page
        token = page.token
        if not token:
            return


def _page(source: _Source, window: Window, user_filter: str | None, token: str | None, *,
          include_spans: bool = False, order: str = "ASC", size: int | None = None) -> Any:
    from mlflow.exceptions import MlflowException

    clauses = window.filters() + ([user_filter.strip()] if user_filter and user_filter.strip()
                                  else [])
    try:
        return source.client.search_traces(
            locations=list(source.experiment_ids), filter_string=" AND ".join(clauses) or None,
            max_results=size or (_PAGE_WITH_SPANS if include_spans else _PAGE),
            order_by=[f"timestamp_ms {order}"], page_token=token, include_spans=include_spans)
    except MlflowException as e:
        _filter_error(user_filter, e)
        raise


def _filter_error(user_filter: str | None, e: Any) -> None:
    if user_filter and "filter" in str(e).lower():
        raise ConfigurationError(
            "filter", user_filter, f"MLflow cannot search with it ({e.message})",
            "write it in MLflow's trace search syntax, e.g. \"tags.feature = 'search'\" "
            "or \"request_metadata.`mlflow.trace.user` LIKE '%@acme.com'\"") from None


# --- from a SQL store's tables --------------------------------------------------------------


def _sql_traces(source: _Source, window: Window) -> Iterator[_JsonTrace] | None:
    """The window's traces read from the store's tables, oldest first, with the metadata reports
    read (``_SQL_METADATA``, every ``genai_tracing.`` key) and every tag; ``None`` where the
    store is not a SQL one this MLflow lets genai_tracing read, or the first read fails."""
    from ._guard import logger
    from ._mlflow import sql_trace_reader

    reader = sql_trace_reader(source.tracking_uri)
    if reader is None:
        return None
    rows = reader(list(source.experiment_ids), _ms(window.since) if window.since else None,
                  _ms(window.until) if window.until else None, list(_SQL_METADATA),
                  _SQL_METADATA_PREFIX, _SQL_CHUNK)
    try:
        first = next(rows, None)
    except Exception:
        logger.debug("genai_tracing: reading traces from the store's tables failed; searching "
                     "instead", exc_info=True)
        return None

    def traces() -> Iterator[_JsonTrace]:
        if first is None:
            return
        for trace_id, request_time, duration, metadata, tags in itertools.chain([first], rows):
            yield _JsonTrace(_JsonInfo(trace_id, request_time, duration, metadata, tags))

    return traces()


# --- through a tracking server: MLflow's REST JSON, paged by time ----------------------------


def _rest_available(source: _Source) -> bool:
    from ._mlflow import rest_search_available

    return rest_search_available(source.tracking_uri)


@dataclass
class _JsonInfo:
    """The fields of a trace's ``TraceInfo`` that reports read, from the REST JSON."""

    trace_id: str
    request_time: int
    execution_duration: int | None
    trace_metadata: dict[str, str]
    tags: dict[str, str]


@dataclass
class _JsonTrace:
    info: _JsonInfo


_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                      r"(Z|[+-]\d\d:\d\d)$")


def _timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch of a protobuf JSON timestamp (``2026-11-05T13:22:09.208Z``)."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not a timestamp: {text!r}")
    y, mo, d, h, mi, sec = (int(match.group(i)) for i in range(1, 7))
    ms = _ms(datetime(y, mo, d, h, mi, sec, tzinfo=timezone.utc))
    ms += int((match.group(7) or "0")[:3].ljust(3, "0"))
    zone = match.group(8)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        ms -= sign * (int(zone[1:3]) * 60 + int(zone[4:6])) * 60_000
    return ms


def _duration_ms(text: str | None) -> int | None:
    """Whole milliseconds of a protobuf JSON duration (``1.112s``), as ``TraceInfo`` has them."""
    if not text:
        return None
    return int(Decimal(text.rstrip("s")) * 1000)


def _json_trace(raw: dict[str, Any]) -> _JsonTrace:
    return _JsonTrace(_JsonInfo(raw["trace_id"], _timestamp_ms(raw["request_time"]),
                                _duration_ms(raw.get("execution_duration")),
                                raw.get("trace_metadata") or {}, raw.get("tags") or {}))


class _KeysetSlice:
    """One time slice of a search, page by page: each page asks for the traces from the last
    page's last trace time on (those already read at that very millisecond are skipped), so the
    database never skips rows by offset. More traces than a page at one millisecond are paged
    through with the server's own page token."""

    def __init__(self, source: _Source, window: Window, user_filter: str | None) -> None:
        self.source, self.window, self.user_filter = source, window, user_filter
        self.since = _ms(window.since) if window.since else None
        self.seen_at_since: set[str] = set()
        self.in_millisecond = False  # paging by offset through the traces of one millisecond
        self.token: str | None = None
        self.done = False

    def fetch(self) -> list[_JsonTrace]:
        if self.in_millisecond:
            return self._fetch_one_millisecond()
        page = self._search(Window(_from_ms(self.since) if self.since is not None else None,
                                   self.window.until), None)
        traces = [_json_trace(raw) for raw in page.get("traces", [])]
        fresh = [t for t in traces if t.info.trace_id not in self.seen_at_since]
        if not page.get("next_page_token"):
            self.done = True
            return fresh
        last = traces[-1].info.request_time
        if last == self.since:  # a whole page at one millisecond: offsets within it, from 0
            self.in_millisecond, self.token = True, None
            self.seen_at_since |= {t.info.trace_id for t in traces}
            return fresh
        self.since = last
        self.seen_at_since = {t.info.trace_id for t in traces if t.info.request_time == last}
        return fresh

    def _fetch_one_millisecond(self) -> list[_JsonTrace]:
        assert self.since is not None
        page = self._search(Window(_from_ms(self.since), _from_ms(self.since + 1)), self.token)
        traces = [_json_trace(raw) for raw in page.get("traces", [])]
        fresh = [t for t in traces if t.info.trace_id not in self.seen_at_since]
        self.seen_at_since |= {t.info.trace_id for t in traces}
        self.token = page.get("next_page_token") or None
        if self.token is None:  # on with the rest of the slice, after that millisecond
            self.in_millisecond = False
            self.since += 1
            self.seen_at_since = set()
            if self.window.until and self.since >= _ms(self.window.until):
                self.done = True
        return fresh

    def _search(self, window: Window, token: str | None) -> dict[str, Any]:
        from mlflow.exceptions import MlflowException

        from ._mlflow import rest_search_traces

        clauses = window.filters() + ([self.user_filter.strip()] if self.user_filter and
                                      self.user_filter.strip() else [])
        body: dict[str, Any] = {
            "locations": [{"type": "MLFLOW_EXPERIMENT",
                           "mlflow_experiment": {"experiment_id": e}}
                          for e in self.source.experiment_ids],
            "max_results": _PAGE, "order_by": ["timestamp_ms ASC"]}
        if clauses:
            body["filter"] = " AND ".join(clauses)
        if token:
            body["page_token"] = token
        try:
            page = rest_search_traces(self.source.tracking_uri, body)
        except MlflowException as e:
            _filter_error(self.user_filter, e)
            raise
        if page is None:
            raise RuntimeError("MLflow's REST trace search became unavailable")
        return page


def _keyset_side_by_side(source: _Source, slices: list[Window], user_filter: str | None
                         ) -> Iterator[Any]:
    """Every trace of the slices, one page per slice in flight at a time, in no set order."""
    parts = [_KeysetSlice(source, w, user_filter) for w in slices]
    if len(parts) == 1:
        while not parts[0].done:
            yield from parts[0].fetch()
        return
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(len(parts)) as pool:
        pending = {pool.submit(part.fetch): part for part in parts}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                part = pending.pop(future)
                traces = future.result()
                if not part.done:
                    pending[pool.submit(part.fetch)] = part
                yield from traces


def _is_remote(uri: str) -> bool:
    return uri.strip().lower().startswith(("http://", "https://"))


def _slices(source: _Source, window: Window, user_filter: str | None, parts: int
            ) -> list[Window]:
    """``window`` cut into up to ``parts`` equal time slices, each [since, until), between the
    first and the last matching trace where the window is open."""
    def edge(order: str) -> int | None:
        page = _page(source, window, user_filter, None, order=order, size=1)
        return page[0].info.request_time if len(page) else None

    first = _ms(window.since) if window.since else edge("ASC")
    last = _ms(window.until) - 1 if window.until else edge("DESC")
    if first is None or last is None or last - first < parts:
        return [window]
    cuts = [first + (last + 1 - first) * i // parts for i in range(parts + 1)]
    return [Window(_from_ms(a), _from_ms(b)) for a, b in zip(cuts, cuts[1:])]


def _side_by_side(source: _Source, slices: list[Window], user_filter: str | None
                  ) -> Iterator[Any]:
    """The traces of each slice, one page per slice in flight at a time: the server answers
    one while this process reads another (the pages are offset-based, so shorter too)."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(len(slices)) as pool:
        pending = {pool.submit(_page, source, w, user_filter, None): w for w in slices}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                window = pending.pop(future)
                page = future.result()
                if page.token:
                    pending[pool.submit(_page, source, window, user_filter, page.token)] = window
                yield from page


# ---------------------------------------------------------------------------------------------
# What each trace (or each call in it) adds to its group


@dataclass
class _Share:
    """What one request, or one model's calls within a request, adds to a group."""

    model: str | None = None
    provider: str | None = None
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal | None = None
    unpriced_calls: int = 0
    repriced_calls: int = 0
    latencies: list[float] = field(default_factory=list)


def _json(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def request_latency_ms(info: Any) -> float | None:
    """End-to-end latency of a request.

    MLflow's ``execution_duration`` (root span end minus start) comes first: it is exact even for
    a root span ended with an explicit ``end_time_ns``, which span processors cannot see.
    """
    if info.execution_duration is not None:
        return float(info.execution_duration)
    raw = info.trace_metadata.get(LATENCY_MS)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _request_share(info: Any) -> _Share:
    metadata = info.trace_metadata
    tokens = _json(metadata.get(TRACE_TOKEN_USAGE))
    latency = request_latency_ms(info)
    share = _Share(llm_calls=_int(metadata.get(TRACE_LLM_CALLS)),
                   input_tokens=_int(tokens.get("input_tokens")),
                   output_tokens=_int(tokens.get("output_tokens")),
                   cost=to_decimal(_json(metadata.get(TRACE_COST)).get("total_cost")),
                   unpriced_calls=_int(metadata.get(TRACE_UNPRICED_CALLS)),
                   latencies=[latency] if latency is not None else [])
    if TRACE_REPRICED_COST in info.tags:  # reprice() recorded a newer total: it wins
        share.cost = repriced_total(info.tags)
        share.unpriced_calls = _int(info.tags.get(TRACE_REPRICED_UNPRICED))
        # The per-call list is left out on traces too large for one tag: at least one call.
        share.repriced_calls = len(repriced_calls(info.tags)) or 1
    return share


def _call_shares(info: Any, models: list[ModelShare]) -> list[_Share]:
    """The trace's calls, one share per (model, provider), from its breakdown or its spans.

    ``_breakdown.from_spans`` summed them by the span processor's own rules, when the trace
    ended or now from its stored spans.
    """
    if not models:
        # No call spans (none made, or spans not stored): the trace's own totals stand for them.
        return [_request_share(info)]
    return [_Share(model=m.model, provider=m.provider, llm_calls=m.calls,
                   input_tokens=m.input_tokens, output_tokens=m.output_tokens, cost=m.cost,
                   unpriced_calls=m.unpriced_calls, repriced_calls=m.repriced_calls,
                   latencies=[ns / 1e6 for ns in m.durations_ns]) for m in models]


def _per_call(source: _Source, window: Window, user_filter: str | None
              ) -> Iterator[tuple[Any, list[_Share]]]:
    """(trace info, its per-model shares) for every matching trace: from the breakdown in its
    metadata, else (older traces) from its spans, read afterwards."""
    without: dict[str, int] = {}  # trace id -> its time (ms)
    for trace in _traces(source, window, user_filter, include_spans=False, parallel=True):
        models = _breakdown.read(trace.info.trace_metadata)
        # A reprice recorded new costs per call (span id): those traces are read with spans.
        if models is None or TRACE_REPRICED_COST in trace.info.tags:
            without[trace.info.trace_id] = trace.info.request_time
        else:
            yield trace.info, _call_shares(trace.info, models)
    if not without:
        return
    if len(without) <= _FETCH_ONE_BY_ONE:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(_FETCH_THREADS) as pool:
            found = [t for t in pool.map(lambda trace_id: _get_trace(source.client, trace_id),
                                         without) if t is not None]
    else:
        # Many: page through them with their spans, over the time range they span only.
        first, last = min(without.values()), max(without.values())
        since, until = _from_ms(first), _from_ms(last + 1)
        narrowed = Window(max(since, window.since) if window.since else since,
                          min(until, window.until) if window.until else until)
        found = (t for t in _traces(source, narrowed, user_filter, include_spans=True)
                 if t.info.trace_id in without)
    for trace in found:
        yield trace.info, _call_shares(trace.info, _breakdown.from_spans(
            trace.data.spans, repriced_calls(trace.info.tags)))


def _get_trace(client: Any, trace_id: str) -> Any:
    try:
        return client.get_trace(trace_id, display=False)  # no notebook display per trace
    except TypeError:  # an MLflow without the option
        return client.get_trace(trace_id)


# ---------------------------------------------------------------------------------------------
# Grouping


def _parse_by(by: str | Sequence[str]) -> tuple[str, ...]:
    keys = [by] if isinstance(by, str) else list(by or [])
    keys = [k.strip() for key in keys for k in str(key).split(",") if k.strip()]
    fix = ("group by some of: user, session, model, provider, day, hour, tag:<name>, "
           "e.g. by=['user', 'model']")
    if not keys:
        raise ConfigurationError("by", by, "names no grouping", fix)
    for key in keys:
        if key not in PER_REQUEST_KEYS + PER_CALL_KEYS and not (
                key.startswith("tag:") and len(key) > 4):
            raise ConfigurationError("by", key, "is not a grouping", fix)
    if len(set(keys)) != len(keys):
        raise ConfigurationError("by", by, "names a grouping twice", fix)
    return tuple(keys)


def _key_function(key: str) -> Callable[[Any, _Share], Any]:
    if key == "user":
        return lambda info, share: info.trace_metadata.get(TRACE_USER)
    if key == "session":
        return lambda info, share: info.trace_metadata.get(TRACE_SESSION)
    if key == "model":
        return lambda info, share: share.model
    if key == "provider":
        return lambda info, share: share.provider
    if key in TIME_KEYS:
        form = "%Y-%m-%d" if key == "day" else "%Y-%m-%d %H:00"
        return lambda info, share: datetime.fromtimestamp(
            info.request_time / 1000, tz=timezone.utc).strftime(form)
    tag = key[4:]
    return lambda info, share: info.tags.get(tag)


@dataclass
class _Group:
    trace_ids: set[str] = field(default_factory=set)
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    priced: bool = False
    unpriced_calls: int = 0
    repriced_calls: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, trace_id: str, share: _Share) -> None:
        self.trace_ids.add(trace_id)
        self.llm_calls += share.llm_calls
        self.input_tokens += share.input_tokens
        self.output_tokens += share.output_tokens
        if share.cost is not None:
            self.cost += share.cost
            self.priced = True
        self.unpriced_calls += share.unpriced_calls
        self.repriced_calls += share.repriced_calls
        self.latencies.extend(share.latencies)

    def row(self) -> dict[str, Any]:
        import numpy as np

        p50 = p95 = math.nan
        if self.latencies:
            p50, p95 = (float(v) for v in np.percentile(self.latencies, [50, 95]))
        # A group whose every call is unpriced has no known cost: NaN, never a $0 that reads
        # as "free". A group that made no call at all did cost nothing.
        total = float(self.cost) if self.priced or not self.unpriced_calls else math.nan
        return {"requests": len(self.trace_ids), "llm_calls": self.llm_calls,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_cost": total, "unpriced_calls": self.unpriced_calls,
                "repriced_calls": self.repriced_calls, "p50_latency_ms": p50, "p95_latency_ms": p95}


def cost_report(
    by: str | Sequence[str] = "user",
    *,
    since: Any = None,
    until: Any = None,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,  # noqa: A002 - the name MLflow's search uses
    tracking_uri: str | None = None,
) -> pd.DataFrame:
    """Cost, tokens and latency per group of requests, as a pandas DataFrame.

    ``by`` takes one or more of ``user``, ``session``, ``model``, ``provider``, ``day``, ``hour``
    and ``tag:<name>`` (a tag given to ``attribute()``). ``since`` and ``until`` take datetimes,
    ISO dates and strings like ``"24h"``, ``"7d"``, ``"today"``, ``"yesterday"`` (UTC);
    ``since`` is inclusive and ``until`` exclusive. ``experiment`` is a name or id (or a list of
    them) and defaults to the one ``enable_tracing()`` set up. ``filter`` is an extra MLflow trace
    search clause::

        >>> genai_tracing.cost_report(by="user", since="yesterday", until="today")
                        user  requests  llm_calls  input_tokens  output_tokens  total_cost  ...
        0   ana@example.com        41         82        120500          20100      0.4521  ...
        1   bob@example.com         7         14         10200           1900      0.0310  ...

    One row per group, most expensive first (time groupings in time order). Columns: the group
    keys, ``requests``, ``llm_calls``, ``input_tokens``, ``output_tokens``, ``total_cost`` (USD,
    summed as ``Decimal``; NaN when every call in the group is unpriced), ``unpriced_calls``,
    ``repriced_calls`` (calls whose cost comes from ``reprice()``, which wins over the cost
    stored at trace time), ``p50_latency_ms`` and ``p95_latency_ms``. The latency is the
    request's end-to-end latency; grouped by ``model`` or ``provider`` it is the latency of the
    calls to that model, and ``requests`` counts the requests that called it. A request without
    a user or a tag falls in the group ``None``. ``df.attrs`` holds the experiments and the time
    window read, and ``unpriced_calls`` / ``unpriced_traces``: what the totals leave out.

    Raises:
        ConfigurationError: an unknown grouping or experiment, an unreadable time, ``since`` not
            before ``until``, or a filter MLflow cannot parse.
    """
    import pandas as pd

    keys = _parse_by(by)
    window = Window.of(since, until)
    source = _source(experiment, tracking_uri)
    per_call = any(k in PER_CALL_KEYS for k in keys)
    key_functions = [_key_function(k) for k in keys]
    groups: dict[tuple[Any, ...], _Group] = {}
    traces = unpriced_traces = unpriced_calls = 0
    shares = _per_call(source, window, filter) if per_call else (
        (trace.info, [_request_share(trace.info)])
        for trace in _traces(source, window, filter, include_spans=False, parallel=True))
    for info, trace_shares in shares:
        traces += 1
        for share in trace_shares:
            group_key = tuple(f(info, share) for f in key_functions)
            groups.setdefault(group_key, _Group()).add(info.trace_id, share)
        if gap := sum(share.unpriced_calls for share in trace_shares):
            unpriced_traces += 1
            unpriced_calls += gap
    rows = [{**dict(zip(keys, group_key)), **group.row()} for group_key, group in groups.items()]
    frame = pd.DataFrame(rows, columns=[*keys, *COLUMNS])
    frame = _sorted(frame, keys)
    frame.attrs.update(experiments=list(source.experiment_names), since=window.since,
                       until=window.until, traces=traces, tracking_uri=source.tracking_uri,
                       unpriced_calls=unpriced_calls, unpriced_traces=unpriced_traces)
    return frame


def _sorted(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    if frame.empty:
        return frame.astype({"requests": int, "llm_calls": int, "input_tokens": int,
                             "output_tokens": int, "total_cost": float, "unpriced_calls": int,
                             "repriced_calls": int,
                             "p50_latency_ms": float, "p95_latency_ms": float})
    time_keys = [k for k in keys if k in TIME_KEYS]
    others = [k for k in keys if k not in TIME_KEYS]
    order = [*time_keys, "total_cost", *others]
    ascending = [True] * len(time_keys) + [False] + [True] * len(others)
    frame = frame.sort_values(order, ascending=ascending, na_position="last",
                              kind="stable").reset_index(drop=True)
    # A missing user or tag stays None (pandas would make it NaN, which reads as a number).
    for key in keys:
        frame[key] = frame[key].astype(object).where(frame[key].notna(), None)
    return frame


# ---------------------------------------------------------------------------------------------
# Latency against prompt length


LATENCY_MEASURES = ("prompt_chars", "input_tokens")


def latency_report(
    *,
    since: Any = None,
    until: Any = None,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,  # noqa: A002
    tracking_uri: str | None = None,
    measure: str = "prompt_chars",
    buckets: int | Sequence[float] = 5,
) -> pd.DataFrame:
    """Request latency by prompt length, with the correlation between the two.

    Prompt length is ``measure``: ``"prompt_chars"`` (characters of text in the request, which
    every root trace records) or ``"input_tokens"``. ``buckets`` is a number of equal-count buckets
    or a list of bucket edges. One row per bucket, columns ``bucket``, ``min_<measure>``,
    ``max_<measure>``, ``requests``, ``mean_latency_ms``, ``p50_latency_ms``, ``p95_latency_ms``;
    ``df.attrs["correlation"]`` is Pearson's r over all requests (NaN under two requests or when
    either side is constant)::

        >>> df = genai_tracing.latency_report(since="7d")
        >>> df.attrs["correlation"]    # close to 1: longer prompts, slower answers
        0.83

    The other options are those of ``cost_report()``.
    """
    import numpy as np
    import pandas as pd

    if measure not in LATENCY_MEASURES:
        raise ConfigurationError("measure", measure, "is not a prompt-length measure",
                                 f"use one of: {', '.join(LATENCY_MEASURES)}")
    edges = _bucket_spec(buckets)
    window = Window.of(since, until)
    source = _source(experiment, tracking_uri)
    sizes: list[int] = []
    latencies: list[float] = []
    for trace in _traces(source, window, filter, include_spans=False):
        info = trace.info
        latency = request_latency_ms(info)
        if measure == "prompt_chars":
            raw = info.trace_metadata.get(PROMPT_CHARS)
            size = int(raw) if raw is not None and raw.isdigit() else None
        else:
            tokens = _json(info.trace_metadata.get(TRACE_TOKEN_USAGE))
            size = _int(tokens["input_tokens"]) if "input_tokens" in tokens else None
        if latency is not None and size is not None:
            sizes.append(size)
            latencies.append(latency)
    columns = ["bucket", f"min_{measure}", f"max_{measure}", "requests", "mean_latency_ms",
               "p50_latency_ms", "p95_latency_ms"]
    rows = []
    if sizes:
        x = pd.Series(sizes)
        if isinstance(edges, int) and x.nunique() == 1:
            bins = pd.Series([0] * len(x))       # one length only: one bucket
        elif isinstance(edges, int):
            bins = pd.qcut(x, q=min(edges, len(x)), duplicates="drop")
        else:
            bins = pd.cut(x, bins=[-math.inf, *edges, math.inf], right=False)
        frame = pd.DataFrame({"size": sizes, "latency": latencies, "bin": bins})
        for _, part in frame.groupby("bin", observed=True, sort=True):
            low, high = int(part["size"].min()), int(part["size"].max())
            p50, p95 = np.percentile(part["latency"], [50, 95])
            rows.append({"bucket": f"{low}-{high}", f"min_{measure}": low,
                         f"max_{measure}": high, "requests": len(part),
                         "mean_latency_ms": float(part["latency"].mean()),
                         "p50_latency_ms": float(p50), "p95_latency_ms": float(p95)})
    result = pd.DataFrame(rows, columns=columns).astype(
        {f"min_{measure}": int, f"max_{measure}": int, "requests": int})
    result.attrs.update(correlation=pearson(sizes, latencies), measure=measure,
                        requests=len(sizes), experiments=list(source.experiment_names),
                        since=window.since, until=window.until)
    return result


def _bucket_spec(buckets: Any) -> int | list[float]:
    if isinstance(buckets, int) and not isinstance(buckets, bool) and buckets >= 1:
        return buckets
    if isinstance(buckets, (list, tuple)) and buckets and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in buckets) and \
            list(buckets) == sorted(set(buckets)):
        return [float(b) for b in buckets]
    raise ConfigurationError("buckets", buckets, "is neither a number of buckets nor a list of "
                             "increasing edges", "pass e.g. buckets=4 or buckets=[100, 1000, 5000]")


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson's correlation coefficient; NaN when it is undefined."""
    import numpy as np

    if len(xs) < 2:
        return math.nan
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


# ---------------------------------------------------------------------------------------------
# Charts


_MAX_SERIES = 8
_OTHER = "other"
_NONE_LABEL = "(none)"


def cost_chart(
    by: str = "day",
    *,
    stack: str | None = "model",
    since: Any = None,
    until: Any = None,
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,  # noqa: A002
    tracking_uri: str | None = None,
    out: str | None = None,
    title: str | None = None,
) -> Figure:
    """Stacked bars of cost: one bar per ``by`` group, one colour per ``stack`` group.

    Returns the matplotlib ``Figure`` (a notebook shows it) and writes it to ``out`` (PNG, SVG or
    PDF by extension) when given. The options are those of ``cost_report()``::

        genai_tracing.cost_chart(by="day", stack="model", since="30d", out="cost.png")

    Raises:
        ConfigurationError: as ``cost_report()``, or ``stack`` equal to ``by``.
    """
    figure, _ = chart_with_report(by, stack=stack, since=since, until=until,
                                  experiment=experiment, filter=filter,
                                  tracking_uri=tracking_uri, title=title)
    if out is not None:
        figure.savefig(out, dpi=110, bbox_inches="tight")
    return figure


def chart_with_report(by: str, *, stack: str | None, since: Any = None, until: Any = None,
                      experiment: str | Sequence[str] | None = None, filter: str | None = None,
                      tracking_uri: str | None = None, title: str | None = None
                      ) -> tuple[Figure, pd.DataFrame]:
    """``cost_chart()``'s figure and the ``cost_report()`` frame it was drawn from."""
    keys = _parse_by([by] if stack is None else [by, stack])
    if len(keys) > 2:
        raise ConfigurationError("by", by, "takes one grouping in a chart",
                                 "pass one grouping to by and one to stack")
    window = Window.of(since, until)
    frame = cost_report(list(keys), since=window.since, until=window.until,
                        experiment=experiment, filter=filter, tracking_uri=tracking_uri)
    figure = draw_cost_chart(frame, by=keys[0], stack=keys[1] if len(keys) > 1 else None,
                             title=title or _chart_title(keys, window, frame))
    return figure, frame


def _chart_title(keys: Sequence[str], window: Window, frame: pd.DataFrame) -> str:
    names = [k.removeprefix("tag:") for k in keys]
    stacked = f", stacked by {names[1]}" if len(names) > 1 else ""
    where = ", ".join(frame.attrs.get("experiments", []))
    return f"LLM cost by {names[0]}{stacked}\n{where} {window.describe()}".strip()


def draw_cost_chart(frame: pd.DataFrame, *, by: str, stack: str | None,
                    title: str = "LLM cost") -> Figure:
    """The stacked bar chart of a ``cost_report()`` frame, drawn with no GUI backend."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    table = _pivot(frame, by, stack)
    labels = [str(i) for i in table.index]
    crowded = len(labels) > 6 or sum(len(label) for label in labels) > 50
    figure = Figure(figsize=(max(8.0, min(16.0, 0.45 * len(labels) + 4)), 5.0))
    axes = figure.add_subplot()
    positions = range(len(table.index))
    bottom = [0.0] * len(table.index)
    for series in table.columns:
        heights = [float(v) for v in table[series]]
        axes.bar(positions, heights, bottom=bottom, label=str(series), width=0.8)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axes.set_xticks(list(positions), labels, rotation=35 if crowded else 0,
                    ha="right" if crowded else "center")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_money(v)))
    axes.set_xlabel(by.removeprefix("tag:"))
    axes.set_ylabel("cost (USD)")
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    if stack is not None and len(table.columns):
        axes.legend(title=stack.removeprefix("tag:"), loc="upper left",
                    bbox_to_anchor=(1.01, 1.0), frameon=False)
    if table.empty:
        axes.text(0.5, 0.5, "no traces", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    return figure


def _pivot(frame: pd.DataFrame, by: str, stack: str | None) -> pd.DataFrame:
    """Cost per ``by`` (rows) and ``stack`` (columns); small series folded into "other"."""
    import pandas as pd

    data = frame.assign(**{by: frame[by].fillna(_NONE_LABEL),
                           "_cost": frame["total_cost"].fillna(0.0)})
    series_key = stack if stack is not None else "_all"
    if stack is None:
        data = data.assign(_all="total")
    else:
        data[stack] = data[stack].fillna(_NONE_LABEL)
    totals = data.groupby(series_key)["_cost"].sum().sort_values(ascending=False)
    if len(totals) > _MAX_SERIES:
        keep = set(totals.index[:_MAX_SERIES - 1])
        data[series_key] = data[series_key].where(data[series_key].isin(keep), _OTHER)
        totals = data.groupby(series_key)["_cost"].sum().sort_values(ascending=False)
    table = data.pivot_table(index=by, columns=series_key, values="_cost", aggfunc="sum",
                             fill_value=0.0)
    table = table.reindex(columns=list(totals.index))
    if by in TIME_KEYS:
        table = table.sort_index()
        if by == "day" and len(table.index) > 1:
            days = pd.date_range(table.index[0], table.index[-1], freq="D")
            table = table.reindex([d.strftime("%Y-%m-%d") for d in days], fill_value=0.0)
    else:
        table = table.loc[table.sum(axis=1).sort_values(ascending=False).index]
    return table


def draw_latency_chart(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """p50 and p95 latency per prompt-length bucket of a ``latency_report()`` frame."""
    from matplotlib.figure import Figure

    measure = frame.attrs.get("measure", "prompt_chars")
    r = frame.attrs.get("correlation", math.nan)
    figure = Figure(figsize=(7.0, 4.5))
    axes = figure.add_subplot()
    positions = list(range(len(frame)))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], frame["p50_latency_ms"], width, label="p50")
    axes.bar([p + width / 2 for p in positions], frame["p95_latency_ms"], width, label="p95")
    axes.set_xticks(positions, list(frame["bucket"]))
    axes.set_xlabel(measure.replace("_", " "))
    axes.set_ylabel("latency (ms)")
    axes.set_title(title or f"Latency by prompt length (Pearson r = {r:.2f}, "
                            f"{frame.attrs.get('requests', 0)} requests)")
    axes.legend(frameon=False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    figure.tight_layout()
    return figure


def describe_source(frame: pd.DataFrame) -> str:
    """Which experiments and window a report frame covers, for messages."""
    names = ", ".join(repr(n) for n in frame.attrs.get("experiments", [])) or "?"
    return f"experiment {names} {Window(frame.attrs.get('since'), frame.attrs.get('until')).describe()}"


def iter_rows(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """Rows as plain dicts with None for NaN, for JSON."""
    for record in frame.to_dict(orient="records"):
        yield {k: (None if isinstance(v, float) and math.isnan(v) else
                   v.item() if hasattr(v, "item") else v) for k, v in record.items()}
