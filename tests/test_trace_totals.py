"""Exact trace totals: 200 traces of 12 provider calls each, MLflow's default async export, sqlite.

Plain MLflow stores a partial sum in most such traces (span batches race on the store); here every
``trace.info.cost`` must equal the sum of its spans' costs and the total computed by hand.
"""

from __future__ import annotations

from typing import Any, Callable

import mlflow
import pytest
from mlflow.environment_variables import MLFLOW_ENABLE_ASYNC_TRACE_LOGGING

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, anthropic_client, counts, gemini_client, llm_spans, openai_client

TRACES = 200
PLAN = ("openai", "anthropic", "gemini") * 4  # 12 calls per trace, the providers interleaved
M = 1_000_000

# USD per million tokens: (input, output, cache read, cache write).
RATES = {
    "openai": (0.15, 0.6, 0.075, None),
    "anthropic": (3.0, 15.0, 0.3, 3.75),
    "gemini": (0.3, 2.5, 0.075, None),
}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
PRICES = {"models": {
    MODELS[provider]: {k: v for k, v in zip(
        ("input_per_million", "output_per_million", "cached_input_per_million",
         "cache_write_per_million"), rates) if v is not None}
    for provider, rates in RATES.items()}}


def usage_for(trace: int, call: int, provider: str) -> FakeUsage:
    """Different counts for every call, with cache reads, cache writes and reasoning mixed in."""
    input_tokens = 1000 + 37 * trace + 11 * call
    output_tokens = 50 + trace % 17 + 3 * call
    return FakeUsage(
        input_tokens=input_tokens,
        cached_tokens=input_tokens // 4 if call % 2 else 0,
        cache_write_tokens=200 if provider == "anthropic" and call % 3 == 1 else 0,
        output_tokens=output_tokens,
        reasoning_tokens=output_tokens // 3 if provider != "anthropic" else 0,
    )


def expected_cost(provider: str, u: FakeUsage) -> tuple[float, float]:
    input_rate, output_rate, cached_rate, write_rate = RATES[provider]
    text_in = u.input_tokens - u.cached_tokens - u.cache_write_tokens
    input_cost = (text_in * input_rate + u.cached_tokens * cached_rate
                  + u.cache_write_tokens * (write_rate or 0)) / M
    return input_cost, u.output_tokens * output_rate / M


def test_every_trace_total_is_exact(fake_provider: FakeProvider,
                                    mlflow_store: TemporaryStore) -> None:
    assert MLFLOW_ENABLE_ASYNC_TRACE_LOGGING.get(), "this test is about MLflow's async export"
    genai_tracing.enable_tracing(prices=PRICES)
    oai, claude, gemini = (openai_client(fake_provider), anthropic_client(fake_provider),
                           gemini_client(fake_provider))
    call: dict[str, Callable[[], Any]] = {
        "openai": lambda: oai.chat.completions.create(model=MODELS["openai"],
                                                      messages=MESSAGES),
        "anthropic": lambda: claude.messages.create(model=MODELS["anthropic"], max_tokens=500,
                                                    messages=MESSAGES),
        "gemini": lambda: gemini.models.generate_content(model=MODELS["gemini"],
                                                         contents="Say hello"),
    }

    @mlflow.trace
    def conversation(trace: int) -> None:
        for number, provider in enumerate(PLAN):
            fake_provider.usage = usage_for(trace, number, provider)
            call[provider]()

    trace_ids = []
    for trace in range(TRACES):
        conversation(trace)
        trace_ids.append(mlflow.get_last_active_trace_id())

    stored = {t.info.trace_id: t for t in mlflow_store.traces()}
    assert len(stored) == TRACES
    wrong = []
    for trace, trace_id in enumerate(trace_ids):
        info = stored[trace_id].info
        spans = llm_spans(stored[trace_id])
        usages = [usage_for(trace, n, provider) for n, provider in enumerate(PLAN)]
        costs = [expected_cost(provider, u) for provider, u in zip(PLAN, usages)]
        expected = {"input_cost": sum(c[0] for c in costs),
                    "output_cost": sum(c[1] for c in costs)}
        expected["total_cost"] = expected["input_cost"] + expected["output_cost"]
        span_sum = {k: sum(s.attributes["mlflow.llm.cost"][k] for s in spans) for k in expected}
        expected_tokens = {
            "input_tokens": sum(u.input_tokens for u in usages),
            "output_tokens": sum(u.output_tokens for u in usages),
            "total_tokens": sum(u.total_tokens for u in usages),
            "cache_read_input_tokens": sum(u.cached_tokens for u in usages),
            "cache_creation_input_tokens": sum(u.cache_write_tokens for u in usages),
        }
        if (len(spans) != len(PLAN)
                or info.cost != pytest.approx(span_sum, rel=1e-9)
                or info.cost != pytest.approx(expected, rel=1e-9)
                or counts(info.token_usage) != counts(expected_tokens)
                or info.request_metadata.get("genai_tracing.llm_calls") != str(len(PLAN))
                or info.request_metadata.get("genai_tracing.cost.complete") != "true"):
            wrong.append((trace, len(spans), info.cost, expected, info.token_usage))
    assert not wrong, f"{len(wrong)} of {TRACES} traces have wrong totals; first: {wrong[0]}"


def test_client_side_cost_like_databricks_gives_the_same_totals(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # With a databricks tracking URI MLflow prices spans and sums the trace on the client, before
    # and after genai_tracing's processor. Here that code path is switched on over sqlite.
    import litellm
    import mlflow.entities.span as span_module
    import mlflow.tracing.processor.base_mlflow as processor_module
    from google.genai import types as gtypes

    monkeypatch.setattr(span_module, "should_compute_cost_client_side", lambda: True)
    monkeypatch.setattr(processor_module, "should_compute_cost_client_side", lambda: True)
    prices = {"models": {
        "gpt-4o-mini": {"input_per_million": 0.1, "output_per_million": 0.5},
        "claude-sonnet-4-5": {"input_per_million": 2, "output_per_million": 10,
                              "cached_input_per_million": 0.2, "cache_write_per_million": 2.5},
        "gemini-2.5-flash-image": {"input_per_million": 0.3, "output_per_million": 2.5}}}
    genai_tracing.enable_tracing(prices=prices)

    @mlflow.trace
    def request() -> None:
        fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
        litellm.completion(model="openai/gpt-4o-mini", api_base=fake_provider.openai_base_url,
                           api_key="test", messages=MESSAGES)
        fake_provider.usage = FakeUsage(input_tokens=3000, cached_tokens=2000,
                                        cache_write_tokens=500, output_tokens=200)
        anthropic_client(fake_provider).messages.create(model="claude-sonnet-4-5",
                                                        max_tokens=300, messages=MESSAGES)
        # Image output with no image price: unpriced here, whatever MLflow's LiteLLM lookup says.
        fake_provider.usage = FakeUsage(input_tokens=10, output_tokens=1300,
                                        image_output_tokens=1290)
        gemini = gemini_client(fake_provider)
        gemini.models.generate_content(
            model="gemini-2.5-flash-image", contents="Draw a cat",
            config=gtypes.GenerateContentConfig(response_modalities=["IMAGE"]))

    request()

    trace = mlflow_store.last_trace()
    openai_cost = (1000 * 0.1 / M, 100 * 0.5 / M)
    claude_cost = ((500 * 2 + 2000 * 0.2 + 500 * 2.5) / M, 200 * 10 / M)
    expected_in = openai_cost[0] + claude_cost[0]
    expected_out = openai_cost[1] + claude_cost[1]
    assert trace.info.cost == pytest.approx({"input_cost": expected_in,
                                             "output_cost": expected_out,
                                             "total_cost": expected_in + expected_out}, rel=1e-9)
    priced = [s for s in llm_spans(trace) if s.attributes.get("mlflow.llm.cost")]
    assert sorted(s.attributes["mlflow.llm.cost"]["total_cost"] for s in priced) == \
        pytest.approx(sorted([sum(openai_cost), sum(claude_cost)]), rel=1e-9)
    assert trace.info.request_metadata["genai_tracing.unpriced_calls"] == "1"
    assert trace.info.token_usage["input_tokens"] == 1000 + 3000 + 10
