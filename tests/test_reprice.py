"""``reprice()`` and ``genai-tracing reprice``: unpriced traces get the price added later, with
costs computed by hand here; a second run changes nothing; other traces are left alone; reports
use the repriced costs and say so."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import mlflow
import pytest

import genai_tracing
from genai_tracing.cli import main
from genai_tracing.testing import FakeUsage

from conftest import MESSAGES, openai_client

M = Decimal(1_000_000)
TRACED_WITH = {"models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}}
# Every call reads 1,000 tokens and writes 100.
GPT = 1000 * Decimal("0.15") / M + 100 * Decimal("0.6") / M          # 0.00021
ACME = 1000 * Decimal("0.5") / M + 100 * Decimal("1.5") / M          # 0.00065, the price added
GPT_NEGOTIATED = 1000 * Decimal("0.1") / M + 100 * Decimal("0.4") / M  # 0.00014


def request(client, user: str, *models: str) -> str:
    with genai_tracing.attribute(user=user), mlflow.start_span("handle_request") as root:
        for model in models:
            client.chat.completions.create(model=model, messages=MESSAGES)
    return root.trace_id


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def repriced_tags(store, trace_id: str) -> dict[str, str]:
    tags = store.get_trace(trace_id).info.tags
    return {k: v for k, v in tags.items() if k.startswith("genai_tracing.repriced") or k == "cost"}


def repriced_total(tags: dict[str, str]) -> Decimal:
    return Decimal(json.loads(tags["genai_tracing.repriced.cost"])["total_cost"])


@pytest.fixture
def traced(fake_provider, mlflow_store, tmp_path):
    genai_tracing.enable_tracing(prices=TRACED_WITH)
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    client = openai_client(fake_provider)
    ids = {"partial": request(client, "ana", "acme-7b", "gpt-4o-mini"),
           "unpriced": request(client, "ana", "acme-7b", "acme-7b"),
           "priced": request(client, "bob", "gpt-4o-mini"),
           "unknown": request(client, "bob", "other-model")}
    genai_tracing.disable_tracing()
    mlflow_store.flush()
    # The price arrives later; a newer version, valid from after the calls, must not apply to them.
    cut = datetime.now(timezone.utc) + timedelta(seconds=1)
    prices = tmp_path / "prices.toml"
    prices.write_text(f"""
[models."gpt-4o-mini"]
input_per_million = 0.15
output_per_million = 0.6

[[models."acme-7b"]]
input_per_million = 0.5
output_per_million = 1.5

[[models."acme-7b"]]
valid_from = {cut.strftime('%Y-%m-%dT%H:%M:%SZ')}
input_per_million = 9
output_per_million = 9
""")
    time.sleep(max(0.0, (cut - datetime.now(timezone.utc)).total_seconds()) + 1.1)
    return ids, str(prices)


def test_reprice_prices_unpriced_traces_once_and_leaves_the_rest(traced, mlflow_store):
    ids, prices = traced
    assert [mlflow_store.get_trace(ids[k]).info.tags.get("cost") for k in ids] == \
        ["partial", "unpriced", None, "unpriced"]

    dry = genai_tracing.reprice(prices=prices)

    assert not dry.applied and dry.traces_read == 4
    assert sorted((c.trace_id, c.model, c.old_cost, c.new_cost) for c in dry.calls) == sorted([
        (ids["partial"], "acme-7b", None, ACME), (ids["unpriced"], "acme-7b", None, ACME),
        (ids["unpriced"], "acme-7b", None, ACME)])
    assert dry.difference == 3 * ACME and dry.traces_changed == 2 and dry.still_unpriced == 1
    assert {c.source for c in dry.calls} == {f"user ({prices})"}
    assert all(repriced_tags(mlflow_store, t) in ({}, {"cost": "partial"}, {"cost": "unpriced"})
               for t in ids.values())                            # a dry run writes nothing

    applied = genai_tracing.reprice(prices=prices, dry_run=False)

    assert applied.applied and applied.difference == 3 * ACME
    partial = repriced_tags(mlflow_store, ids["partial"])
    assert repriced_total(partial) == ACME + GPT
    assert partial["cost"] == "repriced" and partial["genai_tracing.repriced.unpriced_calls"] == "0"
    assert partial["genai_tracing.repriced.source"] == f"user ({prices})"
    assert datetime.fromisoformat(partial["genai_tracing.repriced.at"]) <= \
        datetime.now(timezone.utc)
    unpriced = repriced_tags(mlflow_store, ids["unpriced"])
    assert repriced_total(unpriced) == 2 * ACME
    assert repriced_tags(mlflow_store, ids["priced"]) == {}
    assert repriced_tags(mlflow_store, ids["unknown"]) == {"cost": "unpriced"}
    # What MLflow stored at trace time is untouched: the trace's own cost is the priced part.
    assert mlflow_store.get_trace(ids["partial"]).info.cost["total_cost"] == pytest.approx(
        float(GPT), rel=1e-12)

    before = {t: repriced_tags(mlflow_store, t) for t in ids.values()}
    again = genai_tracing.reprice(prices=prices, dry_run=False)
    assert again.calls == () and again.difference == 0
    assert {t: repriced_tags(mlflow_store, t) for t in ids.values()} == before

    by_model = {r["model"]: r for r in genai_tracing.cost_report(by="model").to_dict("records")}
    assert Decimal(str(by_model["acme-7b"]["total_cost"])) == pytest.approx(3 * ACME)
    assert (by_model["acme-7b"]["repriced_calls"], by_model["acme-7b"]["unpriced_calls"]) == (3, 0)
    assert by_model["other-model"]["unpriced_calls"] == 1
    by_user = {r["user"]: r for r in genai_tracing.cost_report(by="user").to_dict("records")}
    assert by_user["ana"]["total_cost"] == pytest.approx(float(3 * ACME + GPT), rel=1e-12)
    assert (by_user["ana"]["repriced_calls"], by_user["ana"]["unpriced_calls"]) == (3, 0)
    assert by_user["bob"]["total_cost"] == pytest.approx(float(GPT), rel=1e-12)
    assert (by_user["bob"]["repriced_calls"], by_user["bob"]["unpriced_calls"]) == (0, 1)


def test_reprice_all_with_a_negotiated_rate_for_one_model(traced, mlflow_store, tmp_path):
    ids, prices = traced
    genai_tracing.reprice(prices=prices, dry_run=False)
    negotiated = tmp_path / "negotiated.toml"
    negotiated.write_text('[models."gpt-4o-mini"]\ninput_per_million = 0.1\n'
                          'output_per_million = 0.4\n')

    result = genai_tracing.reprice(prices=str(negotiated), models=["gpt-4o-mini"],
                                   only_unpriced=False, dry_run=False)

    assert sorted((c.trace_id, c.old_cost, c.new_cost) for c in result.calls) == sorted([
        (ids["partial"], GPT, GPT_NEGOTIATED), (ids["priced"], GPT, GPT_NEGOTIATED)])
    assert result.difference == 2 * (GPT_NEGOTIATED - GPT)
    partial = repriced_tags(mlflow_store, ids["partial"])
    assert repriced_total(partial) == ACME + GPT_NEGOTIATED     # the earlier reprice is kept
    total = genai_tracing.cost_report(by="user")["total_cost"].sum()
    assert total == pytest.approx(float(3 * ACME + 2 * GPT_NEGOTIATED), rel=1e-12)


def test_reprice_command_dry_run_then_apply(traced, mlflow_store):
    ids, prices = traced
    uri = ("--tracking-uri", mlflow_store.uri, "--prices", prices)

    code, out, err = cli("reprice", *uri)

    assert (code, err) == (0, "")
    assert out.count("acme-7b") == 3 and ids["unpriced"] in out and "$0.00065" in out
    assert "dry run: 3 calls in 2 traces would change, total +$0.00195" in out
    assert "; 1 call still has no price" in out
    code, out, _ = cli("reprice", *uri, "--apply")
    assert code == 0 and "repriced 3 calls in 2 traces: total +$0.00195" in out
    code, out, _ = cli("reprice", *uri, "--apply", "--format", "json")
    assert code == 0 and json.loads(out)["calls"] == [] and json.loads(out)["difference"] == "0"

    code, out, _ = cli("report", "--by", "user", "--tracking-uri", mlflow_store.uri)
    assert code == 0 and "repriced_calls" in out
    assert "1 call unpriced in 1 trace" in out
