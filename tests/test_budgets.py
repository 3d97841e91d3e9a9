"""Budgets: in-process running totals from the traced costs, crossed under concurrency.

Eight threads make real OpenAI SDK calls against the fake, each under ``attribute()`` and a root
span set at a fixed time yesterday, so every call falls on one known day. A call costs
100,000 * 0.15 / 1e6 + 10,000 * 0.6 / 1e6 = 0.015 + 0.006 = $0.021.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterator

import mlflow
import pytest
from mlflow.tracing.provider import safe_set_span_in_context

import genai_tracing
from genai_tracing import Budget, BudgetExceeded, ConfigurationError
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, openai_client

PRICES = {"models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}}
USAGE = FakeUsage(input_tokens=100_000, output_tokens=10_000)
CALL_COST = Decimal("0.021")
THREADS = 8
CALLS_PER_THREAD = 4
DAY = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=12, minute=0, second=0,
                                                                microsecond=0)


@pytest.fixture(autouse=True)
def no_budgets() -> Iterator[None]:
    genai_tracing.clear_budgets()
    yield
    genai_tracing.clear_budgets()


def request(client: Any, user: str | None, when: datetime = DAY) -> None:
    start_ns = int(when.timestamp()) * 1_000_000_000
    with genai_tracing.attribute(user=user):
        root = mlflow.start_span_no_context("handle_request", start_time_ns=start_ns)
        with safe_set_span_in_context(root):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        root.end(end_time_ns=start_ns + 1_000_000)


def hammer(fake: FakeProvider, users: list[str | None]) -> None:
    """THREADS threads, CALLS_PER_THREAD requests each; thread i acts for users[i % len]."""
    fake.usage = USAGE
    client = openai_client(fake)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            start.wait()
            for _ in range(CALLS_PER_THREAD):
                request(client, users[i % len(users)])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def budget_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "genai_tracing" and "budget of" in r.getMessage()]


def test_daily_app_limit_crossed_by_8_threads_warns_and_calls_back_once(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[BudgetExceeded] = []
    genai_tracing.enable_tracing(prices=PRICES)
    genai_tracing.set_budget(0.5, per="day", on_exceeded=seen.append)
    caplog.set_level(logging.WARNING, logger="genai_tracing")

    hammer(fake_provider, ["ana", "bob", None])

    # 32 calls of $0.021; the 24th makes $0.504, the first total above $0.50.
    assert len(seen) == 1
    event = seen[0]
    assert event.spent == 24 * CALL_COST == Decimal("0.504")
    assert event.limit == Decimal("0.5")
    assert (event.user, event.period) == (None, f"{DAY:%Y-%m-%d}")
    assert event.trace_id is not None
    assert len(budget_warnings(caplog)) == 1
    assert "daily budget of $0.50 for the whole app exceeded: $0.504 spent" in budget_warnings(caplog)[0]


def test_each_user_limit_fires_once_per_user(fake_provider, mlflow_store, caplog):
    seen: list[BudgetExceeded] = []
    lock = threading.Lock()

    def record(event: BudgetExceeded) -> None:
        with lock:
            seen.append(event)

    genai_tracing.enable_tracing(prices=PRICES,
                                 budgets=[{"limit_usd": "0.10", "user": "*",
                                           "on_exceeded": record}])
    caplog.set_level(logging.WARNING, logger="genai_tracing")

    hammer(fake_provider, ["ana", "bob", "carol", "dan"])

    # Each user makes 8 calls ($0.168) from 2 threads; the 5th ($0.105) is the first above $0.10.
    assert sorted(e.user for e in seen) == ["ana", "bob", "carol", "dan"]
    assert {e.spent for e in seen} == {5 * CALL_COST}
    assert len(budget_warnings(caplog)) == 4


def test_one_user_limit_ignores_other_users_and_unattributed_calls(fake_provider, mlflow_store):
    seen: list[BudgetExceeded] = []
    genai_tracing.enable_tracing(prices=PRICES)
    genai_tracing.set_budget(Decimal("0.05"), per="month", user="bob", on_exceeded=seen.append)
    client = openai_client(fake_provider)
    fake_provider.usage = USAGE

    for user in ("ana", None, "ana", None, "bob", "bob"):
        request(client, user)
    assert seen == []                           # bob: $0.042
    request(client, "bob")
    assert [(e.user, e.spent, e.period) for e in seen] == [("bob", 3 * CALL_COST,
                                                            f"{DAY:%Y-%m}")]


def test_a_raising_callback_never_fails_the_call(fake_provider, mlflow_store, caplog):
    def refuse(event: BudgetExceeded) -> None:
        raise RuntimeError("over budget")

    genai_tracing.enable_tracing(prices=PRICES)
    genai_tracing.set_budget(0.01, on_exceeded=refuse)
    fake_provider.usage = USAGE
    client = openai_client(fake_provider)
    caplog.set_level(logging.WARNING, logger="genai_tracing")

    reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert reply.usage.prompt_tokens == 100_000
    assert mlflow_store.last_trace().info.cost["total_cost"] == pytest.approx(0.021)
    assert any("on_exceeded callback" in r.getMessage() for r in caplog.records)
    # Blocking is explicit: check_budget() raises before the next request's work.
    with pytest.raises(BudgetExceeded, match="daily budget of \\$0.01 for the whole app"):
        genai_tracing.check_budget()


def test_check_budget_uses_the_attributed_user(fake_provider, mlflow_store):
    genai_tracing.enable_tracing(prices=PRICES)
    genai_tracing.set_budget(0.03, user="*")
    fake_provider.usage = USAGE
    client = openai_client(fake_provider)
    with genai_tracing.attribute(user="ana"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        genai_tracing.check_budget()            # $0.021 of $0.03
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with pytest.raises(BudgetExceeded) as e:
            genai_tracing.check_budget()
    assert (e.value.user, e.value.spent) == ("ana", 2 * CALL_COST)
    genai_tracing.check_budget("bob")           # bob has spent nothing


def test_budget_options_are_validated():
    with pytest.raises(ConfigurationError, match="limit_usd=-1: must be more than 0"):
        genai_tracing.set_budget(-1)
    with pytest.raises(ConfigurationError, match="per='week'"):
        genai_tracing.set_budget(5, per="week")
    with pytest.raises(ConfigurationError, match="is not an amount"):
        genai_tracing.set_budget("five dollars")
    with pytest.raises(ConfigurationError, match=r"budgets\[0\].limit_usd"):
        genai_tracing.enable_tracing(budgets=[{"limit_usd": "lots"}])
    with pytest.raises(ConfigurationError, match=r"budgets\[1\].period"):
        genai_tracing.enable_tracing(budgets=[Budget.of(1), {"limit_usd": 1, "period": "day"}])


def test_same_period_and_user_replaces_a_budget():
    from genai_tracing import _budgets

    genai_tracing.set_budget(1, per="day")
    genai_tracing.set_budget(2, per="day")
    genai_tracing.set_budget(3, per="day", user="*")
    assert [(b.limit_usd, b.user) for b in _budgets._budgets] == [(Decimal(2), None),
                                                                  (Decimal(3), "*")]


# --- scope="fleet": spend read from the store, one callback through an experiment tag ---------

def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def now_request(client: Any, user: str | None) -> None:
    with genai_tracing.attribute(user=user):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_a_fleet_budget_counts_the_store_and_fires_once_through_an_experiment_tag(
        fake_provider, mlflow_store, caplog):
    from genai_tracing import _budget_store

    seen: list[BudgetExceeded] = []
    config = genai_tracing.enable_tracing(prices=PRICES)
    genai_tracing.set_budget(0.05, per="day", scope="fleet", on_exceeded=seen.append)
    caplog.set_level(logging.WARNING, logger="genai_tracing")
    fake_provider.usage = USAGE
    client = openai_client(fake_provider)

    for _ in range(3):                       # $0.063: the third call crosses $0.05
        now_request(client, "ana")
    assert wait_for(lambda: seen), "no callback"
    assert [(e.user, e.spent, e.limit) for e in seen] == [(None, 3 * CALL_COST, Decimal("0.05"))]
    assert seen[0].trace_id == mlflow.get_last_active_trace_id()
    # The claim is an experiment tag naming this process.
    tags = mlflow.MlflowClient().get_experiment(config.experiment_id).tags
    claims = [k for k in tags if k.startswith("genai_tracing.budget.")]
    assert claims == [_budget_store.tag_key(seen[0])]

    # A restart: new totals, the spend read back from the store; the claim stands, no new call.
    genai_tracing.clear_budgets()
    mlflow_store.flush()
    genai_tracing.set_budget(0.05, per="day", scope="fleet", on_exceeded=seen.append)
    period = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    assert _budget_store.spent("day", period, None) == 0  # nothing read yet: never blocks
    assert wait_for(_budget_store.refreshed)
    assert _budget_store.spent("day", period, None) == 3 * CALL_COST
    with pytest.raises(BudgetExceeded):
        genai_tracing.check_budget()
    now_request(client, "ana")
    mlflow_store.flush()
    assert wait_for(lambda: _budget_store.spent("day", period, None) == 4 * CALL_COST)
    import time

    time.sleep(_budget_store.SETTLE_SECONDS + 0.5)
    assert len(seen) == 1 and len(budget_warnings(caplog)) == 1


def test_a_fleet_budget_never_double_counts_a_trace_stored_and_counted_here(
        fake_provider, mlflow_store):
    from genai_tracing import _budget_store

    genai_tracing.enable_tracing(prices=PRICES)
    genai_tracing.set_budget(1, per="month", user="*", scope="fleet")
    fake_provider.usage = USAGE
    client = openai_client(fake_provider)
    assert wait_for(_budget_store.refreshed)
    month = f"{datetime.now(timezone.utc):%Y-%m}"
    for user in ("ana", "bob", "ana"):
        now_request(client, user)
    # Counted here at once, before any scan saw the traces.
    assert _budget_store.spent("month", month, "ana") == 2 * CALL_COST
    mlflow_store.flush()
    before = _budget_store._scanned["since_ms"]
    assert wait_for(lambda: _budget_store._scanned["since_ms"] != before and
                    not _budget_store._local)
    assert _budget_store.spent("month", month, "ana") == 2 * CALL_COST
    assert _budget_store.spent("month", month, "bob") == CALL_COST
    assert _budget_store.spent("month", month, None) == 3 * CALL_COST


def test_a_fleet_budget_with_the_store_down_counts_locally_and_still_fires(
        fake_provider, tmp_path, caplog):
    from fleet import free_port

    seen: list[BudgetExceeded] = []
    down = f"http://127.0.0.1:{free_port()}"
    caplog.set_level(logging.WARNING, logger="genai_tracing")
    with TemporaryStore(folder=tmp_path, uri=down):
        genai_tracing.enable_tracing(tracking_uri=down, prices=PRICES)
        genai_tracing.set_budget(0.03, scope="fleet", on_exceeded=seen.append)
        fake_provider.usage = USAGE
        client = openai_client(fake_provider)
        for _ in range(2):
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert reply.usage.prompt_tokens == 100_000
        assert wait_for(lambda: seen)
        assert [e.spent for e in seen] == [2 * CALL_COST]
        with pytest.raises(BudgetExceeded):
            genai_tracing.check_budget()
        genai_tracing.disable_tracing()
    messages = [r.getMessage() for r in caplog.records]
    assert any("could not claim" in m for m in messages)


def test_budget_scope_is_validated_and_read_from_the_environment(monkeypatch):
    with pytest.raises(ConfigurationError, match="scope='everywhere'"):
        genai_tracing.set_budget(1, scope="everywhere")
    monkeypatch.setenv("GENAI_TRACING_BUDGET_SCOPE", "fleet")
    assert Budget.of(1).scope == "fleet"
    assert Budget.of(1, scope="process").scope == "process"
    monkeypatch.setenv("GENAI_TRACING_BUDGET_SCOPE", "cluster")
    with pytest.raises(ConfigurationError, match="GENAI_TRACING_BUDGET_SCOPE='cluster'"):
        Budget.of(1)
    monkeypatch.setenv("GENAI_TRACING_BUDGET_SCOPE", "process")
    monkeypatch.setenv("GENAI_TRACING_BUDGET_REFRESH_SECONDS", "0.01")
    with pytest.raises(ConfigurationError,
                       match="GENAI_TRACING_BUDGET_REFRESH_SECONDS='0.01': is not a number"):
        genai_tracing.set_budget(1, scope="fleet")
    from genai_tracing import _budgets

    assert _budgets._budgets == []              # nothing was set
