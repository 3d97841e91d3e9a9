"""cost_report() and latency_report(), read back from a real sqlite store.

The traffic below is made by the real SDK clients against the loopback fakes, each request under
``attribute()`` and under a root span whose start and end times the test sets: the days and the
latencies are known exactly. Every expected cost is computed by hand from the prices written here.

A request "yesterday" runs now with the span clock set back (``span_clock_at``), so the calls'
own spans fall inside their request's span, as in live traffic. MLflow's store takes a trace's
duration from its spans' range; a child span stamped "now" under a root stamped "yesterday" would
stretch it to a day.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import mlflow
import pytest
from mlflow.tracing.provider import safe_set_span_in_context

import genai_tracing
from genai_tracing import ConfigurationError
from genai_tracing import _reports
from genai_tracing._reports import Window, parse_time
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import anthropic_client, gemini_client, openai_client

M = 1_000_000
# USD per million tokens.
PRICES = {"models": {
    "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6},
    "claude-sonnet-4-5": {"input_per_million": 3.0, "output_per_million": 15.0},
    "gemini-2.5-flash": {"input_per_million": 0.3, "output_per_million": 2.5},
}}
# One call of each kind, with its cost worked out from PRICES.
OPENAI = ("openai", "gpt-4o-mini", FakeUsage(input_tokens=200_000, output_tokens=50_000))
OPENAI_COST = 200_000 * 0.15 / M + 50_000 * 0.6 / M            # 0.03 + 0.03 = 0.06
CLAUDE = ("anthropic", "claude-sonnet-4-5", FakeUsage(input_tokens=100_000, output_tokens=20_000))
CLAUDE_COST = 100_000 * 3.0 / M + 20_000 * 15.0 / M            # 0.30 + 0.30 = 0.60
GEMINI = ("gemini", "gemini-2.5-flash", FakeUsage(input_tokens=100_000, output_tokens=40_000))
GEMINI_COST = 100_000 * 0.3 / M + 40_000 * 2.5 / M             # 0.03 + 0.10 = 0.13
MYSTERY = ("openai", "mystery-model", FakeUsage(input_tokens=1_000, output_tokens=100))  # unpriced

TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
YESTERDAY = TODAY - timedelta(days=1)
TWO_DAYS_AGO = TODAY - timedelta(days=2)


@dataclass
class Request:
    user: str | None
    calls: list[tuple[str, str, FakeUsage]]
    at: datetime
    latency_ms: int
    session: str | None = None
    prompt: str = "Draw me a sheep"
    tags: dict[str, str] = field(default_factory=dict)


TRAFFIC = [
    Request("ana", [CLAUDE, OPENAI], YESTERDAY + timedelta(hours=9), 1000, "s1",
            tags={"feature": "search"}),
    Request("ana", [CLAUDE], YESTERDAY + timedelta(hours=15), 2000, "s1", tags={"feature": "chat"}),
    Request("bob", [GEMINI, GEMINI], YESTERDAY + timedelta(hours=10), 1500, "s2",
            tags={"feature": "search"}),
    Request("bob", [OPENAI], TWO_DAYS_AGO + timedelta(hours=12), 500, tags={"feature": "chat"}),
    Request("carol", [OPENAI, MYSTERY], TODAY + timedelta(minutes=1), 700),
    Request(None, [OPENAI], YESTERDAY + timedelta(hours=11), 800),
]
ALL_COST = 2 * CLAUDE_COST + 4 * OPENAI_COST + 2 * GEMINI_COST      # 1.70


def callers(fake: FakeProvider) -> dict[str, Callable[[str], Any]]:
    oai, claude, gemini = openai_client(fake), anthropic_client(fake), gemini_client(fake)
    messages = [{"role": "user", "content": "Draw me a sheep"}]
    return {
        "openai": lambda model: oai.chat.completions.create(model=model, messages=messages),
        "anthropic": lambda model: claude.messages.create(model=model, max_tokens=100,
                                                          messages=messages),
        "gemini": lambda model: gemini.models.generate_content(model=model,
                                                               contents="Draw me a sheep"),
    }


@contextmanager
def span_clock_at(when_ns: int) -> Iterator[None]:
    """Spans started inside read a clock set back to ``when_ns``; the calls still run now.

    MLflow's spans take their times from OpenTelemetry's SDK clock, and nothing else reads it.
    """
    import opentelemetry.sdk.trace as sdk

    real = sdk.time_ns
    offset = real() - when_ns
    sdk.time_ns = lambda: real() - offset
    try:
        yield
    finally:
        sdk.time_ns = real


def send(fake: FakeProvider, call: dict[str, Callable[[str], Any]], request: Request) -> str:
    """One request: a root span at the request's time, the calls inside it, a known latency."""
    start_ns = int(request.at.timestamp()) * 1_000_000_000
    with span_clock_at(start_ns), genai_tracing.attribute(
            user=request.user, session=request.session, **request.tags):
        root = mlflow.start_span_no_context("handle_request", inputs={"prompt": request.prompt},
                                            start_time_ns=start_ns)
        with safe_set_span_in_context(root):
            for provider, model, usage in request.calls:
                fake.usage = usage
                call[provider](model)
        root.end(outputs="done", end_time_ns=start_ns + request.latency_ms * 1_000_000)
    return root.trace_id


def fill(fake: FakeProvider, store: TemporaryStore, traffic: list[Request] = TRAFFIC) -> None:
    genai_tracing.enable_tracing(prices=PRICES)
    call = callers(fake)
    for request in traffic:
        send(fake, call, request)
    store.flush()


def rows(frame: Any, *keys: str) -> dict[Any, dict[str, Any]]:
    """Report rows by their group key (a tuple when grouped by several keys)."""
    out = {}
    for record in frame.to_dict(orient="records"):
        key = tuple(record[k] for k in keys)
        out[key if len(keys) > 1 else key[0]] = record
    return out


def cents(value: float) -> int:
    return round(value * 100)


# -- by request ----------------------------------------------------------------------------

def test_report_by_user_yesterday_sums_to_the_cent(fake_provider, mlflow_store):
    fill(fake_provider, mlflow_store)

    frame = genai_tracing.cost_report(by="user", since="yesterday", until="today")

    assert list(frame.columns) == ["user", "requests", "llm_calls", "input_tokens",
                                   "output_tokens", "total_cost", "unpriced_calls",
                                   "repriced_calls", "p50_latency_ms", "p95_latency_ms"]
    by_user = rows(frame, "user")
    assert set(by_user) == {"ana", "bob", None}
    ana = by_user["ana"]
    assert (ana["requests"], ana["llm_calls"]) == (2, 3)
    assert (ana["input_tokens"], ana["output_tokens"]) == (400_000, 90_000)
    assert ana["total_cost"] == pytest.approx(2 * CLAUDE_COST + OPENAI_COST, rel=1e-12)
    assert cents(ana["total_cost"]) == 126
    assert cents(by_user["bob"]["total_cost"]) == 26
    assert by_user["bob"]["requests"] == 1                 # his other request was 2 days ago
    assert by_user[None]["total_cost"] == pytest.approx(OPENAI_COST, rel=1e-12)
    # The most expensive first; the latencies are the root spans' own: 1000 and 2000 ms.
    assert frame["user"].tolist()[0] == "ana"
    assert ana["p50_latency_ms"] == pytest.approx(1500)
    assert ana["p95_latency_ms"] == pytest.approx(1000 + 0.95 * 1000)
    assert cents(frame["total_cost"].sum()) == 126 + 26 + 6
    assert frame.attrs["experiments"] == ["genai-tracing"]


def test_report_over_all_time_counts_unpriced_calls_apart(fake_provider, mlflow_store):
    fill(fake_provider, mlflow_store)

    by_user = rows(genai_tracing.cost_report(by="user"), "user")

    carol = by_user["carol"]
    assert (carol["requests"], carol["llm_calls"], carol["unpriced_calls"]) == (1, 2, 1)
    assert carol["total_cost"] == pytest.approx(OPENAI_COST, rel=1e-12)  # the priced call only
    assert carol["input_tokens"] == 200_000 + 1_000
    bob = by_user["bob"]
    assert (bob["requests"], bob["llm_calls"]) == (2, 3)
    assert bob["total_cost"] == pytest.approx(2 * GEMINI_COST + OPENAI_COST, rel=1e-12)
    # bob's latencies 1500 and 500: numpy's linear interpolation between the two.
    assert bob["p50_latency_ms"] == pytest.approx(1000)
    assert bob["p95_latency_ms"] == pytest.approx(500 + 0.95 * 1000)
    assert sum(r["total_cost"] for r in by_user.values()) == pytest.approx(ALL_COST, rel=1e-12)


def test_report_by_day_hour_session_and_tag(fake_provider, mlflow_store):
    fill(fake_provider, mlflow_store)

    by_day = genai_tracing.cost_report(by="day")
    assert by_day["day"].tolist() == [f"{d:%Y-%m-%d}" for d in (TWO_DAYS_AGO, YESTERDAY, TODAY)]
    assert [cents(v) for v in by_day["total_cost"]] == [6, 126 + 26 + 6, 6]
    assert by_day["requests"].tolist() == [1, 4, 1]

    by_hour = rows(genai_tracing.cost_report(by="hour", since=YESTERDAY, until=TODAY), "hour")
    assert set(by_hour) == {f"{YESTERDAY:%Y-%m-%d} {h:02d}:00" for h in (9, 10, 11, 15)}
    assert by_hour[f"{YESTERDAY:%Y-%m-%d} 09:00"]["total_cost"] == pytest.approx(
        CLAUDE_COST + OPENAI_COST, rel=1e-12)

    by_session = rows(genai_tracing.cost_report(by="session"), "session")
    assert cents(by_session["s1"]["total_cost"]) == 126
    assert cents(by_session["s2"]["total_cost"]) == 26
    assert by_session[None]["requests"] == 3

    by_feature = rows(genai_tracing.cost_report(by="tag:feature"), "tag:feature")
    assert by_feature["search"]["total_cost"] == pytest.approx(
        CLAUDE_COST + OPENAI_COST + 2 * GEMINI_COST, rel=1e-12)
    assert by_feature["chat"]["total_cost"] == pytest.approx(CLAUDE_COST + OPENAI_COST, rel=1e-12)
    assert by_feature[None]["requests"] == 2


# -- by call -------------------------------------------------------------------------------

def test_report_by_model_and_provider_reads_the_spans(fake_provider, mlflow_store):
    fill(fake_provider, mlflow_store)

    by_model = genai_tracing.cost_report(by="model")
    models = rows(by_model, "model")
    assert set(models) == {"claude-sonnet-4-5", "gpt-4o-mini", "gemini-2.5-flash",
                           "mystery-model"}
    assert by_model["model"].tolist()[0] == "claude-sonnet-4-5"    # it drives the bill
    claude = models["claude-sonnet-4-5"]
    assert (claude["requests"], claude["llm_calls"]) == (2, 2)
    assert claude["total_cost"] == pytest.approx(2 * CLAUDE_COST, rel=1e-12)
    mini = models["gpt-4o-mini"]
    assert (mini["requests"], mini["llm_calls"], mini["input_tokens"]) == (4, 4, 800_000)
    assert mini["total_cost"] == pytest.approx(4 * OPENAI_COST, rel=1e-12)
    assert (models["gemini-2.5-flash"]["requests"], models["gemini-2.5-flash"]["llm_calls"]) \
        == (1, 2)
    mystery = models["mystery-model"]
    assert mystery["unpriced_calls"] == 1
    assert math.isnan(mystery["total_cost"])        # unknown, never $0
    # Per call or per request, the money adds up the same.
    assert by_model["total_cost"].sum() == pytest.approx(ALL_COST, rel=1e-12)
    assert by_model["input_tokens"].sum() == \
        genai_tracing.cost_report(by="user")["input_tokens"].sum()

    providers = rows(genai_tracing.cost_report(by="provider"), "provider")
    assert providers["openai"]["llm_calls"] == 5
    assert providers["openai"]["unpriced_calls"] == 1
    assert providers["openai"]["total_cost"] == pytest.approx(4 * OPENAI_COST, rel=1e-12)
    assert providers["anthropic"]["total_cost"] == pytest.approx(2 * CLAUDE_COST, rel=1e-12)


def drop_breakdowns(store: TemporaryStore, trace_ids: list[str] | None = None) -> None:
    """Delete the per-model breakdown from stored traces: traces as an older genai_tracing
    wrote them, before the breakdown existed."""
    import sqlite3

    where = "key = 'genai_tracing.by_model' OR key LIKE 'genai\\_tracing.by\\_model.%' ESCAPE '\\'"
    with sqlite3.connect(store.folder / "mlflow.db") as db:
        if trace_ids is None:
            db.execute(f"DELETE FROM trace_request_metadata WHERE {where}")
        else:
            db.executemany(f"DELETE FROM trace_request_metadata WHERE request_id = ? AND "
                           f"({where})", [(t,) for t in trace_ids])
    db.close()


PER_CALL_REPORTS = ["model", "provider", ["user", "model"], ["day", "provider"]]


def test_report_by_model_reads_the_breakdown_and_equals_the_span_based_one(
        fake_provider, mlflow_store, monkeypatch):
    fill(fake_provider, mlflow_store)
    traces = mlflow_store.traces()
    # Each trace carries its calls per model, written with its totals: ana's first request
    # called Claude then GPT-4o mini.
    first = traces[[t.info.trace_metadata.get("mlflow.trace.user") for t in traces].index("ana")]
    metadata = first.info.trace_metadata
    # One metadata value: [model, provider, calls, input, output, cost, unpriced, durations].
    entries = sorted(json.loads(metadata["genai_tracing.by_model"]))
    assert [e[:5] + [e[6]] for e in entries] == [
        ["claude-sonnet-4-5", "anthropic", 1, 100_000, 20_000, 0],
        ["gpt-4o-mini", "openai", 1, 200_000, 50_000, 0]]
    assert [float(e[5]) for e in entries] == pytest.approx([CLAUDE_COST, OPENAI_COST],
                                                          rel=1e-12)
    assert not [k for k in metadata if k.startswith("genai_tracing.by_model.")]
    from_breakdown = [genai_tracing.cost_report(by=by) for by in PER_CALL_REPORTS]

    # Half the traces without it (written by an older version): those are read from spans.
    drop_breakdowns(mlflow_store, [t.info.trace_id for t in traces[::2]])
    mixed = [genai_tracing.cost_report(by=by) for by in PER_CALL_REPORTS]  # fetched one by one
    monkeypatch.setattr(_reports, "_FETCH_ONE_BY_ONE", 0)  # as if there were many: paged
    mixed_paged = [genai_tracing.cost_report(by=by) for by in PER_CALL_REPORTS]
    drop_breakdowns(mlflow_store)
    from_spans = [genai_tracing.cost_report(by=by) for by in PER_CALL_REPORTS]

    for by, fast, half, paged, slow in zip(PER_CALL_REPORTS, from_breakdown, mixed,
                                           mixed_paged, from_spans):
        assert fast.equals(slow), (by, fast, slow)
        assert half.equals(slow), (by, half, slow)
        assert paged.equals(slow), (by, paged, slow)
    models = rows(from_spans[0], "model")
    assert models["claude-sonnet-4-5"]["total_cost"] == pytest.approx(2 * CLAUDE_COST, rel=1e-12)
    assert models["gpt-4o-mini"]["llm_calls"] == 4
    assert math.isnan(models["mystery-model"]["total_cost"])


def test_a_breakdown_too_long_for_one_value_is_written_one_pair_per_entry(
        fake_provider, mlflow_store):
    """Four models in one trace do not fit in one 250-character value: one entry per pair (the
    form earlier versions wrote, which reports still read), and the report equals the spans'."""
    request = Request("erin", [OPENAI, CLAUDE, GEMINI, MYSTERY, OPENAI],
                      YESTERDAY + timedelta(hours=10), 3000)
    fill(fake_provider, mlflow_store, [request])
    (trace,) = mlflow_store.traces()
    metadata = trace.info.trace_metadata
    assert metadata["genai_tracing.by_model"] == "4"
    assert sorted(json.loads(metadata[f"genai_tracing.by_model.{i}"])["m"] for i in range(4)) == \
        ["claude-sonnet-4-5", "gemini-2.5-flash", "gpt-4o-mini", "mystery-model"]
    from_breakdown = [genai_tracing.cost_report(by=by) for by in PER_CALL_REPORTS]
    drop_breakdowns(mlflow_store)
    for by, fast in zip(PER_CALL_REPORTS, from_breakdown):
        assert fast.equals(genai_tracing.cost_report(by=by)), by
    models = rows(from_breakdown[0], "model")
    assert models["gpt-4o-mini"]["llm_calls"] == 2
    assert models["gpt-4o-mini"]["total_cost"] == pytest.approx(2 * OPENAI_COST, rel=1e-12)


def test_a_model_called_too_often_for_a_metadata_value_is_reported_from_spans(
        fake_provider, mlflow_store):
    """30 calls of one model: their durations do not fit in MLflow's 250-character metadata
    value, so no breakdown is written and the report reads the trace's spans."""
    calls = 30
    request = Request("dana", [OPENAI] * calls, YESTERDAY + timedelta(hours=9), 9000)
    fill(fake_provider, mlflow_store, [request])
    (trace,) = mlflow_store.traces()
    assert "genai_tracing.by_model" not in trace.info.trace_metadata
    (row,) = genai_tracing.cost_report(by="model").to_dict(orient="records")
    assert (row["model"], row["requests"], row["llm_calls"]) == ("gpt-4o-mini", 1, calls)
    assert row["input_tokens"] == calls * 200_000
    assert row["total_cost"] == pytest.approx(calls * OPENAI_COST, rel=1e-12)


def test_report_by_user_and_model(fake_provider, mlflow_store):
    fill(fake_provider, mlflow_store)

    frame = genai_tracing.cost_report(by=["user", "model"], since="yesterday", until="today")

    table = rows(frame, "user", "model")
    assert set(table) == {("ana", "claude-sonnet-4-5"), ("ana", "gpt-4o-mini"),
                          ("bob", "gemini-2.5-flash"), (None, "gpt-4o-mini")}
    assert table[("ana", "claude-sonnet-4-5")]["total_cost"] == pytest.approx(
        2 * CLAUDE_COST, rel=1e-12)
    assert table[("ana", "claude-sonnet-4-5")]["requests"] == 2
    assert table[("ana", "gpt-4o-mini")]["requests"] == 1
    assert cents(frame["total_cost"].sum()) == 158
    # "user,model" is the same as a list.
    assert genai_tracing.cost_report(by="user,model", since="yesterday", until="today").equals(
        frame)


# -- filters and options -------------------------------------------------------------------

def test_filter_experiment_and_empty_results(fake_provider, mlflow_store):
    fill(fake_provider, mlflow_store)

    searched = genai_tracing.cost_report(by="user", filter="tags.feature = 'search'")
    assert rows(searched, "user").keys() == {"ana", "bob"}
    assert searched["requests"].sum() == 2

    same = genai_tracing.cost_report(by="user", experiment="genai-tracing")
    assert same["total_cost"].sum() == pytest.approx(ALL_COST, rel=1e-12)

    future = genai_tracing.cost_report(by="user", since=TODAY + timedelta(days=2))
    assert future.empty
    assert list(future.columns)[0] == "user"

    with pytest.raises(ConfigurationError, match="no experiment has that name") as e:
        genai_tracing.cost_report(experiment="no-such-experiment")
    assert "genai-tracing" in e.value.fix                     # the fix lists the real ones
    with pytest.raises(ConfigurationError, match="filter"):
        genai_tracing.cost_report(filter="this is not a filter")
    with pytest.raises(ConfigurationError, match="is not a grouping"):
        genai_tracing.cost_report(by="country")
    with pytest.raises(ConfigurationError, match="is not before until"):
        genai_tracing.cost_report(since="today", until="yesterday")


def test_parse_time_forms():
    now = datetime(2026, 11, 25, 15, 30, tzinfo=timezone.utc)
    midnight = datetime(2026, 11, 25, tzinfo=timezone.utc)

    assert parse_time("24h", now=now) == now - timedelta(hours=24)
    assert parse_time("7d", now=now) == now - timedelta(days=7)
    assert parse_time("30m", now=now) == now - timedelta(minutes=30)
    assert parse_time("2w", now=now) == now - timedelta(weeks=2)
    assert parse_time("today", now=now) == midnight
    assert parse_time("Yesterday", now=now) == midnight - timedelta(days=1)
    assert parse_time("now", now=now) == now
    assert parse_time("2026-11-01", now=now) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_time("2026-11-01T08:15Z", now=now) == \
        datetime(2026, 11, 1, 8, 15, tzinfo=timezone.utc)
    assert parse_time("2026-11-01T08:15+02:00", now=now) == \
        datetime(2026, 11, 1, 6, 15, tzinfo=timezone.utc)
    assert parse_time(datetime(2026, 1, 2, 3, 4), now=now) == \
        datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)                  # naive means UTC
    assert parse_time(date(2026, 1, 2), now=now) == datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert parse_time(None) is None

    for bad in ("last tuesday", "7 parsecs", "", 42):
        with pytest.raises(ConfigurationError, match="is not a time"):
            parse_time(bad, now=now)
    window = Window.of("yesterday", "today", now=now)
    assert (window.since, window.until) == (midnight - timedelta(days=1), midnight)
    assert window.filters() == [f"timestamp_ms >= {int(window.since.timestamp() * 1000)}",
                                f"timestamp_ms < {int(midnight.timestamp() * 1000)}"]
    with pytest.raises(ConfigurationError, match="is not before until"):
        Window.of("2026-11-02", "2026-11-01", now=now)


# -- latency -------------------------------------------------------------------------------

def test_latency_report_buckets_and_correlation(fake_provider, mlflow_store):
    sizes = [100, 200, 300, 400, 500, 600]
    latencies = [1000, 1400, 1600, 2600, 3000, 2400]
    traffic = [Request("ana", [OPENAI], YESTERDAY + timedelta(hours=i), latency,
                       prompt="x" * size) for i, (size, latency) in enumerate(zip(sizes,
                                                                                  latencies))]
    fill(fake_provider, mlflow_store, traffic)

    frame = genai_tracing.latency_report(buckets=3)

    # Pearson's r by its definition.
    n = len(sizes)
    mx, my = sum(sizes) / n, sum(latencies) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(sizes, latencies))
    r = cov / math.sqrt(sum((x - mx) ** 2 for x in sizes) * sum((y - my) ** 2 for y in latencies))
    assert frame.attrs["correlation"] == pytest.approx(r, rel=1e-9)
    assert frame.attrs["requests"] == 6
    assert frame["bucket"].tolist() == ["100-200", "300-400", "500-600"]
    assert frame["requests"].tolist() == [2, 2, 2]
    assert frame["p50_latency_ms"].tolist() == pytest.approx([1200, 2100, 2700])
    assert frame["p95_latency_ms"].tolist() == pytest.approx(
        [1000 + 0.95 * 400, 1600 + 0.95 * 1000, 2400 + 0.95 * 600])

    edges = genai_tracing.latency_report(buckets=[250])
    assert edges["requests"].tolist() == [2, 4]
    assert edges["max_prompt_chars"].tolist() == [200, 600]
    assert str(edges["max_prompt_chars"].dtype) == "int64"      # lengths print as 600, not 600.0
    by_tokens = genai_tracing.latency_report(measure="input_tokens")
    assert math.isnan(by_tokens.attrs["correlation"])     # every request read 200,000 tokens


# -- per-request runs ----------------------------------------------------------------------

def test_log_runs_writes_one_run_per_request(fake_provider, mlflow_store):
    from genai_tracing import _runs

    genai_tracing.enable_tracing(prices=PRICES, log_runs=True)
    call = callers(fake_provider)
    trace_ids = [send(fake_provider, call, request) for request in TRAFFIC[:3]]
    _runs.flush()
    mlflow_store.flush()

    experiment_id = genai_tracing.active_config().experiment_id
    runs = {r.data.tags["genai_tracing.trace_id"]: r for r in
            mlflow.MlflowClient(mlflow_store.uri).search_runs([experiment_id])}
    assert set(runs) == set(trace_ids)
    first = runs[trace_ids[0]]
    assert first.data.tags["user"] == "ana"
    assert first.data.tags["session"] == "s1"
    assert first.data.params == {"feature": "search"}
    assert first.data.metrics["input_tokens"] == 300_000
    assert first.data.metrics["output_tokens"] == 70_000
    assert first.data.metrics["estimated_cost_usd"] == pytest.approx(CLAUDE_COST + OPENAI_COST,
                                                                     rel=1e-12)
    assert "processing_time_ms" in first.data.metrics
    assert runs[trace_ids[2]].data.tags["user"] == "bob"
    assert runs[trace_ids[2]].data.metrics["estimated_cost_usd"] == pytest.approx(
        2 * GEMINI_COST, rel=1e-12)

    genai_tracing.disable_tracing()
    assert _runs._writer is None


def test_log_runs_option_is_validated(mlflow_store, monkeypatch):
    with pytest.raises(ConfigurationError, match="log_runs"):
        genai_tracing.enable_tracing(log_runs="yes")
    monkeypatch.setenv("GENAI_TRACING_LOG_RUNS", "maybe")
    with pytest.raises(ConfigurationError, match="GENAI_TRACING_LOG_RUNS"):
        genai_tracing.enable_tracing()


# -- read from a SQL store's tables ----------------------------------------------------------

EVERY_REPORT = ["user", "session", "day", "hour", "tag:feature", "model", "provider",
                ["user", "model"], ["day", "provider"], ["user", "tag:feature"]]


def reports_read_both_ways(monkeypatch: pytest.MonkeyPatch, **options: Any
                           ) -> tuple[list[Any], list[Any]]:
    """Every report read from the store's tables, then from MLflow's trace search."""
    def every() -> list[Any]:
        frames = [genai_tracing.cost_report(by=by, **options) for by in EVERY_REPORT]
        return frames + [genai_tracing.latency_report(buckets=2, **options)]

    from_tables = every()
    monkeypatch.setattr(_reports, "_SQL_READS", False)
    searched = every()
    monkeypatch.setattr(_reports, "_SQL_READS", True)
    return from_tables, searched


def assert_same_reports(ours: list[Any], theirs: list[Any]) -> None:
    for by, mine, other in zip([*EVERY_REPORT, "latency"], ours, theirs):
        assert mine.equals(other), (by, mine, other)
        assert list(mine.columns) == list(other.columns), by
        assert list(mine.dtypes) == list(other.dtypes), by
        assert mine.attrs == other.attrs or (by == "latency" and math.isnan(
            mine.attrs["correlation"]) and math.isnan(other.attrs["correlation"])), by


def test_reports_read_from_the_store_tables_equal_the_searched_ones(
        fake_provider, mlflow_store, monkeypatch):
    """On sqlite: traces by user, session, tag, several models, an unpriced call repriced
    afterwards (tags), one trace without its breakdown (read from spans), a window, and chunks
    of two traces: the very same frames as through MLflow's search."""
    fill(fake_provider, mlflow_store)
    genai_tracing.reprice(prices={"models": {"mystery-model": {
        "input_per_million": 1.0, "output_per_million": 2.0}}}, dry_run=False)
    traces = mlflow_store.traces()
    drop_breakdowns(mlflow_store, [traces[0].info.trace_id])
    source = _reports._source(None, None)
    assert _reports._sql_traces(source, Window()) is not None  # the tables are read

    ours, theirs = reports_read_both_ways(monkeypatch)
    assert_same_reports(ours, theirs)
    assert ours[0].attrs["traces"] == len(TRAFFIC)
    assert rows(ours[0], "user")["carol"]["repriced_calls"] == 1
    window = dict(since=YESTERDAY, until=TODAY)
    assert_same_reports(*reports_read_both_ways(monkeypatch, **window))
    monkeypatch.setattr(_reports, "_SQL_CHUNK", 2)
    assert_same_reports(*reports_read_both_ways(monkeypatch, **window))
    assert_same_reports(*reports_read_both_ways(monkeypatch))
    # A filter in MLflow's search syntax is MLflow's to apply: searched, not read from tables.
    assert _reports._sql_traces(source, Window()) is not None
    only_ana = genai_tracing.cost_report(by="user", filter="request_metadata.`mlflow.trace.user`"
                                                           " = 'ana'")
    assert only_ana["user"].tolist() == ["ana"]


def test_reading_the_store_tables_is_off_where_mlflow_lacks_them(
        fake_provider, mlflow_store, monkeypatch):
    """An MLflow without the names the seam reads (as 3.12 lacks the promoted metadata keys):
    reports search as before, with the same result."""
    import builtins

    fill(fake_provider, mlflow_store)
    before = genai_tracing.cost_report(by="user")
    real_import = builtins.__import__

    def without_trace_analytics(name, *args, **kwargs):
        if name == "mlflow.store.tracking.utils.trace_analytics":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_trace_analytics)
    from genai_tracing import _mlflow

    assert _mlflow.sql_trace_reader(mlflow_store.uri) is None
    assert _reports._sql_traces(_reports._source(None, None), Window()) is None
    assert genai_tracing.cost_report(by="user").equals(before)
