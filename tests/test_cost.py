"""Cost on every provider call's span, per provider and billing rule, read back from a real store.

Each test writes the price it bills at and computes the expected cost by hand from it; the real
SDK clients (and LiteLLM) talk to the loopback fakes, and the assertions read the stored trace.
Rates are USD per million tokens, so a cost is ``tokens * rate / 1e6``.
"""

from __future__ import annotations

import logging
from typing import Any

import litellm
import mlflow
import pytest
from google.genai import types as gtypes

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, anthropic_client, counts, gemini_client, llm_spans, openai_client

M = 1_000_000


def cost(input_cost: float, output_cost: float) -> Any:
    """``mlflow.llm.cost`` as it should read, compared to 1e-9 relative."""
    return pytest.approx({"input_cost": input_cost, "output_cost": output_cost,
                          "total_cost": input_cost + output_cost}, rel=1e-9)


def only_call(trace: Any) -> Any:
    (span,) = llm_spans(trace)
    return span


def assert_priced(trace: Any, input_cost: float, output_cost: float, source: str) -> Any:
    """The single call span carries the cost, and the trace total is exactly that cost."""
    span = only_call(trace)
    assert span.attributes["mlflow.llm.cost"] == cost(input_cost, output_cost)
    assert span.attributes["genai_tracing.cost.source"] == source
    assert "genai_tracing.cost.unpriced" not in span.attributes
    assert trace.info.cost == cost(input_cost, output_cost)
    assert trace.info.request_metadata["genai_tracing.cost.complete"] == "true"
    return span


# -- OpenAI --------------------------------------------------------------------------------

O4_MINI = {"o4-mini": {"input_per_million": 1.1, "output_per_million": 4.4,
                       "cached_input_per_million": 0.275}}


def test_openai_chat_cached_and_reasoning_tokens(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": O4_MINI})
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=400, output_tokens=300,
                                    reasoning_tokens=120)
    openai_client(fake_provider).chat.completions.create(model="o4-mini", messages=MESSAGES)

    trace = mlflow_store.last_trace()
    # Cache reads at the cached rate; reasoning is part of the output and billed at its rate.
    span = assert_priced(trace, (600 * 1.1 + 400 * 0.275) / M, 300 * 4.4 / M, "user")
    assert span.attributes["mlflow.chat.tokenUsage"] == {
        "input_tokens": 1000, "output_tokens": 300, "total_tokens": 1300,
        "cache_read_input_tokens": 400}
    assert span.attributes["genai_tracing.usage"] == {
        "input_tokens": 1000, "output_tokens": 300, "total_tokens": 1300,
        "cached_input_tokens": 400, "reasoning_tokens": 120}
    assert trace.info.token_usage == {"input_tokens": 1000, "output_tokens": 300,
                                      "total_tokens": 1300, "cache_read_input_tokens": 400}


def test_openai_responses_cached_and_reasoning_tokens(fake_provider: FakeProvider,
                                                      mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": O4_MINI})
    fake_provider.usage = FakeUsage(input_tokens=2000, cached_tokens=1500, output_tokens=500,
                                    reasoning_tokens=450)
    openai_client(fake_provider).responses.create(model="o4-mini", input="Say hello")

    trace = mlflow_store.last_trace()
    span = assert_priced(trace, (500 * 1.1 + 1500 * 0.275) / M, 500 * 4.4 / M, "user")
    assert span.attributes["genai_tracing.usage"]["reasoning_tokens"] == 450


def test_missing_cached_rate_falls_back_to_input_rate_and_says_so(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    prices = {"models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}}
    genai_tracing.enable_tracing(prices=prices)
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=400, output_tokens=200)
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    span = assert_priced(mlflow_store.last_trace(), 1000 * 0.15 / M, 200 * 0.6 / M, "user")
    assert span.attributes["genai_tracing.cost.fallbacks"] == ["cached_input=input"]


def test_gpt_image_1_token_usage(fake_provider: FakeProvider,
                                 mlflow_store: TemporaryStore) -> None:
    prices = {"models": {"gpt-image-1": {"input_per_million": 5.0, "image_input_per_million": 10.0,
                                         "image_output_per_million": 40.0}}}
    genai_tracing.enable_tracing(prices=prices)
    # An edit-style prompt: 30 text and 20 image input tokens; all output is image tokens.
    fake_provider.usage = FakeUsage(input_tokens=50, image_input_tokens=20, output_tokens=4160)
    openai_client(fake_provider).images.generate(model="gpt-image-1", prompt="a cat")

    span = assert_priced(mlflow_store.last_trace(), (30 * 5.0 + 20 * 10.0) / M,
                         4160 * 40.0 / M, "user")
    assert span.attributes["genai_tracing.usage"]["image_output_tokens"] == 4160
    assert span.attributes["genai_tracing.usage"]["images"] == 1


def test_gpt_image_1_per_image_price(fake_provider: FakeProvider,
                                     mlflow_store: TemporaryStore) -> None:
    prices = {"models": {"gpt-image-1": {"input_per_million": 5.0, "per_image": 0.042}}}
    genai_tracing.enable_tracing(prices=prices)
    fake_provider.usage = FakeUsage(input_tokens=50, output_tokens=4160)
    openai_client(fake_provider).images.generate(model="gpt-image-1", prompt="a cat", n=3)

    assert_priced(mlflow_store.last_trace(), 50 * 5.0 / M, 3 * 0.042, "user")


def test_openai_zero_completion_tokens_is_a_count_not_a_gap(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": {"gpt-4o-mini": {
        "input_per_million": 0.1, "output_per_million": 0.4}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=0)
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert_priced(mlflow_store.last_trace(), 1000 * 0.1 / M, 0.0, "user")


# -- Anthropic -----------------------------------------------------------------------------

SONNET = {"claude-sonnet-4-5": {"input_per_million": 3.0, "output_per_million": 15.0,
                                "cached_input_per_million": 0.3,
                                "cache_write_per_million": 3.75}}


def test_anthropic_cache_read_and_cache_write(fake_provider: FakeProvider,
                                              mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": SONNET})
    fake_provider.usage = FakeUsage(input_tokens=5000, cached_tokens=3000, cache_write_tokens=1500,
                                    output_tokens=400)
    reply = anthropic_client(fake_provider).messages.create(
        model="claude-sonnet-4-5", max_tokens=500, messages=MESSAGES)
    # On the wire Anthropic's input_tokens leaves out what was read from or written to the cache.
    assert reply.usage.input_tokens == 500

    trace = mlflow_store.last_trace()
    span = assert_priced(trace, (500 * 3.0 + 3000 * 0.3 + 1500 * 3.75) / M, 400 * 15.0 / M,
                         "user")
    # Normalized, input counts everything the model read.
    # (MLflow 3.17 also writes the 1-hour share of the writes, 0 here; kept as MLflow wrote it.)
    assert counts(span.attributes["mlflow.chat.tokenUsage"]) == {
        "input_tokens": 5000, "output_tokens": 400, "total_tokens": 5400,
        "cache_read_input_tokens": 3000, "cache_creation_input_tokens": 1500}
    assert trace.info.token_usage["input_tokens"] == 5000


def test_anthropic_missing_cache_write_rate_falls_back_to_input_rate(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    prices = {"models": {"claude-sonnet-4-5": {"input_per_million": 3.0,
                                               "output_per_million": 15.0,
                                               "cached_input_per_million": 0.3}}}
    genai_tracing.enable_tracing(prices=prices)
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=200, cache_write_tokens=300,
                                    output_tokens=10)
    anthropic_client(fake_provider).messages.create(model="claude-sonnet-4-5", max_tokens=50,
                                                    messages=MESSAGES)

    span = assert_priced(mlflow_store.last_trace(), (800 * 3.0 + 200 * 0.3) / M,
                         10 * 15.0 / M, "user")
    assert span.attributes["genai_tracing.cost.fallbacks"] == ["cache_write=input"]


# -- Gemini --------------------------------------------------------------------------------

FLASH = {"gemini-2.5-flash": {"input_per_million": 0.3, "output_per_million": 2.5,
                              "cached_input_per_million": 0.075,
                              "image_input_per_million": 0.6}}


def test_gemini_thinking_tokens_billed_as_output(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": FLASH})
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=300, image_input_tokens=258,
                                    output_tokens=700, reasoning_tokens=520)
    client = gemini_client(fake_provider)
    reply = client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    # Gemini reports thoughts apart from the answer's tokens.
    assert reply.usage_metadata.candidates_token_count == 180
    assert reply.usage_metadata.thoughts_token_count == 520

    trace = mlflow_store.last_trace()
    text_in = 1000 - 300 - 258
    span = assert_priced(trace, (text_in * 0.3 + 300 * 0.075 + 258 * 0.6) / M, 700 * 2.5 / M,
                         "user")
    assert span.attributes["mlflow.chat.tokenUsage"]["output_tokens"] == 700
    assert span.attributes["genai_tracing.usage"]["reasoning_tokens"] == 520
    assert trace.info.token_usage["output_tokens"] == 700


def test_gemini_image_output_tokens_at_image_rate(fake_provider: FakeProvider,
                                                  mlflow_store: TemporaryStore) -> None:
    prices = {"models": {"gemini-2.5-flash-image": {
        "input_per_million": 0.3, "output_per_million": 2.5, "image_output_per_million": 30.0}}}
    genai_tracing.enable_tracing(prices=prices)
    fake_provider.usage = FakeUsage(input_tokens=100, output_tokens=1400, image_output_tokens=1290)
    client = gemini_client(fake_provider)
    client.models.generate_content(
        model="gemini-2.5-flash-image", contents="Draw a cat",
        config=gtypes.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]))

    span = assert_priced(mlflow_store.last_trace(), 100 * 0.3 / M,
                         (110 * 2.5 + 1290 * 30.0) / M, "user")
    assert span.attributes["genai_tracing.usage"]["image_output_tokens"] == 1290
    assert span.attributes["genai_tracing.usage"]["images"] == 1


def test_gemini_image_output_is_never_billed_at_the_text_rate(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    prices = {"models": {"gemini-2.5-flash-image": {"input_per_million": 0.3,
                                                    "output_per_million": 2.5}}}
    genai_tracing.enable_tracing(prices=prices)
    fake_provider.usage = FakeUsage(input_tokens=100, output_tokens=1400, image_output_tokens=1290)
    client = gemini_client(fake_provider)
    client.models.generate_content(
        model="gemini-2.5-flash-image", contents="Draw a cat",
        config=gtypes.GenerateContentConfig(response_modalities=["IMAGE"]))

    trace = mlflow_store.last_trace()
    span = only_call(trace)
    # LiteLLM knows the model's text rates, so MLflow's store would bill the image tokens as
    # text; an empty cost (no amount) stops it.
    assert span.attributes["mlflow.llm.cost"] == {}
    assert span.attributes["genai_tracing.cost.unpriced"] is True
    assert "image_output" in span.attributes["genai_tracing.cost.unpriced_reason"]
    assert span.attributes["mlflow.chat.tokenUsage"]["output_tokens"] == 1400
    # MLflow keeps no "unknown" trace total: it stores zero for a trace whose only call has no
    # amount. The trace says its total is incomplete.
    assert not (trace.info.cost or {}).get("total_cost")
    assert trace.info.request_metadata["genai_tracing.cost.complete"] == "false"


def test_gemini_zero_counts_left_out_of_usage_metadata(fake_provider: FakeProvider,
                                                      mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": FLASH})
    # Gemini omits zero counts: a blocked or empty answer reports only the prompt.
    fake_provider.raw_usage = {"promptTokenCount": 1000, "totalTokenCount": 1000}
    client = gemini_client(fake_provider)
    client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")

    span = assert_priced(mlflow_store.last_trace(), 1000 * 0.3 / M, 0.0, "user")
    assert span.attributes["mlflow.chat.tokenUsage"] == {
        "input_tokens": 1000, "output_tokens": 0, "total_tokens": 1000}


def test_gemini_nested_spans_count_the_call_once(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": FLASH})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    client = gemini_client(fake_provider)
    client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")

    trace = mlflow_store.last_trace()
    by_name = {s.name: s for s in trace.data.spans}
    outer, inner = by_name["Models.generate_content"], by_name["Models._generate_content"]
    assert inner.parent_id == outer.span_id
    assert outer.attributes["mlflow.llm.cost"] == cost(1000 * 0.3 / M, 200 * 2.5 / M)
    assert outer.attributes["mlflow.chat.tokenUsage"]["total_tokens"] == 1200
    # The inner span MLflow made for the same call keeps MLflow's usage, and an empty cost:
    # marked counted on the outer one, so that no sum of span costs counts the call twice.
    assert inner.attributes["mlflow.chat.tokenUsage"]["total_tokens"] == 1200
    assert inner.attributes["mlflow.llm.cost"] == {}
    assert inner.attributes["genai_tracing.counted_on"] == outer.span_id
    assert trace.info.cost == cost(1000 * 0.3 / M, 200 * 2.5 / M)
    assert trace.info.token_usage["total_tokens"] == 1200
    assert trace.info.request_metadata["genai_tracing.llm_calls"] == "1"


# -- The same providers through LiteLLM ----------------------------------------------------

LITELLM_PRICES = {"models": {
    "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6,
                    "cached_input_per_million": 0.075},
    **SONNET,
    "gemini-2.5-flash": {"input_per_million": 0.3, "output_per_million": 2.5,
                         "cached_input_per_million": 0.075},
}}


def test_litellm_openai_cache_reads_at_cached_rate(fake_provider: FakeProvider,
                                                   mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices=LITELLM_PRICES)
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=400, output_tokens=200)
    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, api_key="test",
                       api_base=fake_provider.openai_base_url)

    trace = mlflow_store.last_trace()
    # One call, one priced span, even if LiteLLM drives the OpenAI SDK underneath.
    span = assert_priced(trace, (600 * 0.15 + 400 * 0.075) / M, 200 * 0.6 / M, "user")
    assert span.attributes["genai_tracing.cost.price"]["key"] == "gpt-4o-mini"
    assert trace.info.request_metadata["genai_tracing.llm_calls"] == "1"


def test_litellm_anthropic_cache_read_and_write(fake_provider: FakeProvider,
                                                mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices=LITELLM_PRICES)
    fake_provider.usage = FakeUsage(input_tokens=5000, cached_tokens=3000, cache_write_tokens=1500,
                                    output_tokens=400)
    litellm.completion(model="anthropic/claude-sonnet-4-5", messages=MESSAGES, api_key="test",
                       api_base=fake_provider.url, max_tokens=500)

    trace = mlflow_store.last_trace()
    span = assert_priced(trace, (500 * 3.0 + 3000 * 0.3 + 1500 * 3.75) / M, 400 * 15.0 / M,
                         "user")
    assert span.attributes["mlflow.chat.tokenUsage"]["input_tokens"] == 5000
    assert span.attributes["genai_tracing.usage"]["cache_write_tokens"] == 1500


def test_litellm_gemini_cache_reads_and_thinking(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices=LITELLM_PRICES)
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=400, output_tokens=200,
                                    reasoning_tokens=50)
    litellm.completion(model="gemini/gemini-2.5-flash", messages=MESSAGES, api_key="test",
                       api_base=fake_provider.url)

    trace = mlflow_store.last_trace()
    span = assert_priced(trace, (600 * 0.3 + 400 * 0.075) / M, 200 * 2.5 / M, "user")
    assert span.attributes["mlflow.chat.tokenUsage"]["output_tokens"] == 200


# -- Price precedence and model names ------------------------------------------------------

def test_user_price_overrides_the_catalog_for_a_known_model(fake_provider: FakeProvider,
                                                            mlflow_store: TemporaryStore) -> None:
    # gpt-4o-mini is in LiteLLM's map at 0.15/0.6; this user negotiated 0.1/0.4.
    genai_tracing.enable_tracing(prices={"models": {"gpt-4o-mini": {
        "input_per_million": 0.1, "output_per_million": 0.4, "cached_input_per_million": 0.05}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=400, output_tokens=200)
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    span = assert_priced(mlflow_store.last_trace(), (600 * 0.1 + 400 * 0.05) / M, 200 * 0.4 / M,
                         "user")
    assert span.attributes["genai_tracing.cost.price"] == {
        "source": "user", "key": "gpt-4o-mini", "origin": "<mapping>",
        "per_million": {"input": "0.1", "output": "0.4", "cached_input": "0.05"}}


def test_litellm_catalog_prices_a_known_model(fake_provider: FakeProvider,
                                              mlflow_store: TemporaryStore) -> None:
    # LiteLLM's bundled map (checked here so a changed map fails loudly, not mysteriously).
    entry = litellm.model_cost["gpt-4o-mini"]
    assert (entry["input_cost_per_token"] * M, entry["output_cost_per_token"] * M,
            entry["cache_read_input_token_cost"] * M) == pytest.approx((0.15, 0.6, 0.075))
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=400, output_tokens=200)
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    span = assert_priced(mlflow_store.last_trace(), (600 * 0.15 + 400 * 0.075) / M,
                         200 * 0.6 / M, "litellm")
    assert span.attributes["genai_tracing.cost.price"]["key"] == "gpt-4o-mini"


def test_genai_prices_fills_a_gap_in_litellm(fake_provider: FakeProvider,
                                             mlflow_store: TemporaryStore) -> None:
    # claude-opus-4-1 is in genai-prices (15 / 75, cache read 1.5, cache write 18.75) only.
    assert not {"claude-opus-4-1", "anthropic/claude-opus-4-1"} & set(litellm.model_cost)
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=2000, cached_tokens=1000, cache_write_tokens=500,
                                    output_tokens=100)
    anthropic_client(fake_provider).messages.create(model="claude-opus-4-1", max_tokens=200,
                                                    messages=MESSAGES)

    span = assert_priced(mlflow_store.last_trace(),
                         (500 * 15 + 1000 * 1.5 + 500 * 18.75) / M, 100 * 75 / M, "genai-prices")
    assert span.attributes["genai_tracing.cost.price"]["key"] == "anthropic/claude-opus-4-1"


@pytest.mark.parametrize("requested, reported", [
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),  # the API answers with the dated snapshot
    ("gpt-4o-mini-2024-07-18", None),  # the caller pinned the snapshot
])
def test_dated_snapshot_priced_as_its_model(fake_provider: FakeProvider,
                                            mlflow_store: TemporaryStore, requested: str,
                                            reported: str | None) -> None:
    genai_tracing.enable_tracing(prices={"models": {"gpt-4o-mini": {
        "input_per_million": 0.1, "output_per_million": 0.4}}})
    fake_provider.response_model = reported
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    openai_client(fake_provider).chat.completions.create(model=requested, messages=MESSAGES)

    span = assert_priced(mlflow_store.last_trace(), 1000 * 0.1 / M, 200 * 0.4 / M, "user")
    assert span.attributes["genai_tracing.cost.price"]["key"] == "gpt-4o-mini"


def test_anthropic_dated_snapshot_through_litellm(fake_provider: FakeProvider,
                                                  mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": SONNET})
    fake_provider.response_model = "claude-sonnet-4-5-20250929"
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    litellm.completion(model="anthropic/claude-sonnet-4-5", messages=MESSAGES, api_key="test",
                       api_base=fake_provider.url, max_tokens=500)

    assert_priced(mlflow_store.last_trace(), 1000 * 3.0 / M, 100 * 15.0 / M, "user")


def test_match_regex_prices_fine_tuned_models(fake_provider: FakeProvider,
                                              mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": {"acme fine-tunes": {
        "match": "^ft:gpt-4o-mini:acme:.*", "input_per_million": 0.3,
        "output_per_million": 1.2}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    client = openai_client(fake_provider)
    client.chat.completions.create(model="ft:gpt-4o-mini:acme:support:9xZ1", messages=MESSAGES)

    span = assert_priced(mlflow_store.last_trace(), 1000 * 0.3 / M, 200 * 1.2 / M, "user")
    assert span.attributes["genai_tracing.cost.price"]["key"] == "acme fine-tunes"

    # Another organisation's fine-tune does not match the pattern.
    client.chat.completions.create(model="ft:gpt-4o-mini:other:x:1", messages=MESSAGES)
    other = only_call(mlflow_store.last_trace())
    assert other.attributes.get("genai_tracing.cost.source") != "user"


def test_valid_from_latest_version_in_force_wins(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore) -> None:
    versions = [
        {"valid_from": "2020-01-01", "input_per_million": 4.0, "output_per_million": 8.0},
        {"valid_from": "2024-06-01", "input_per_million": 2.0, "output_per_million": 4.0},
        {"valid_from": "2999-01-01", "input_per_million": 1.0, "output_per_million": 2.0},
    ]
    genai_tracing.enable_tracing(prices={"models": {"acme-7b": versions}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    openai_client(fake_provider).chat.completions.create(model="acme-7b", messages=MESSAGES)

    span = assert_priced(mlflow_store.last_trace(), 1000 * 2.0 / M, 200 * 4.0 / M, "user")
    assert span.attributes["genai_tracing.cost.price"]["valid_from"].startswith("2024-06-01")


@pytest.mark.parametrize("input_tokens, rates", [(200_000, (1.25, 10.0)),
                                                 (200_001, (2.5, 15.0))])
def test_long_context_tier_reprices_the_whole_call(fake_provider: FakeProvider,
                                                   mlflow_store: TemporaryStore,
                                                   input_tokens: int,
                                                   rates: tuple[float, float]) -> None:
    genai_tracing.enable_tracing(prices={"models": {"gemini-2.5-pro": {
        "input_per_million": 1.25, "output_per_million": 10.0,
        "tiers": [{"above_input_tokens": 200_000, "input_per_million": 2.5,
                   "output_per_million": 15.0}]}}})
    fake_provider.usage = FakeUsage(input_tokens=input_tokens, output_tokens=1000)
    client = gemini_client(fake_provider)
    client.models.generate_content(model="gemini-2.5-pro", contents="A long document")

    input_rate, output_rate = rates
    assert_priced(mlflow_store.last_trace(), input_tokens * input_rate / M,
                  1000 * output_rate / M, "user")


# -- Unpriced calls ------------------------------------------------------------------------

def unpriced_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "genai_tracing" and r.levelno == logging.WARNING and "no cost" in
            r.getMessage()]


def test_unknown_model_keeps_tokens_and_is_flagged(fake_provider: FakeProvider,
                                                   mlflow_store: TemporaryStore,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="genai_tracing")
    genai_tracing.enable_tracing(prices={"models": {"gpt-4o-mini": {
        "input_per_million": 0.15, "output_per_million": 0.6}}})
    client = openai_client(fake_provider)

    @mlflow.trace
    def answer() -> None:
        fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        fake_provider.usage = FakeUsage(input_tokens=70, output_tokens=30)
        client.chat.completions.create(model="acme-private-llm", messages=MESSAGES)

    answer()
    trace = mlflow_store.last_trace()
    priced, unpriced = sorted(llm_spans(trace),
                              key=lambda s: bool(s.attributes.get("mlflow.llm.cost")),
                              reverse=True)
    assert unpriced.attributes["mlflow.chat.tokenUsage"] == {
        "input_tokens": 70, "output_tokens": 30, "total_tokens": 100,
        "cache_read_input_tokens": 0}  # MLflow's own key, as it wrote it
    assert unpriced.attributes["genai_tracing.cost.unpriced"] is True
    assert "acme-private-llm" in unpriced.attributes["genai_tracing.cost.unpriced_reason"]
    assert "mlflow.llm.cost" not in unpriced.attributes
    assert priced.attributes["mlflow.llm.cost"] == cost(1000 * 0.15 / M, 200 * 0.6 / M)

    # The total holds what is known, says it is incomplete, and never counts the gap as 0.
    assert trace.info.cost == cost(1000 * 0.15 / M, 200 * 0.6 / M)
    assert counts(trace.info.token_usage) == {"input_tokens": 1070, "output_tokens": 230,
                                              "total_tokens": 1300}
    metadata = trace.info.request_metadata
    assert metadata["genai_tracing.cost.complete"] == "false"
    assert metadata["genai_tracing.unpriced_calls"] == "1"
    assert metadata["genai_tracing.llm_calls"] == "2"

    (warning,) = unpriced_warnings(caplog)
    assert "acme-private-llm" in warning.getMessage()
    assert "GENAI_TRACING_PRICES" in warning.getMessage()


def test_unpriced_warning_once_per_model(fake_provider: FakeProvider,
                                         mlflow_store: TemporaryStore,
                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="genai_tracing")
    genai_tracing.enable_tracing()
    client = openai_client(fake_provider)
    for model in ("acme-private-llm", "acme-private-llm", "acme-other-llm", "acme-private-llm"):
        client.chat.completions.create(model=model, messages=MESSAGES)

    warned = [r.getMessage() for r in unpriced_warnings(caplog)]
    assert len(warned) == 2
    assert "acme-private-llm" in warned[0] and "acme-other-llm" in warned[1]
    for trace in mlflow_store.traces():
        assert trace.info.cost is None
        assert only_call(trace).attributes["genai_tracing.cost.unpriced"] is True


def test_unpriced_call_to_a_catalog_model_gets_no_cost_from_the_store(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": {"gpt-4o-mini": {
        "input_per_million": 0.1, "output_per_million": 0.4}}})
    client = openai_client(fake_provider)

    @mlflow.trace
    def answer() -> None:
        fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        # Usage that cannot be trusted: the call is unpriced, whatever catalog knows the model.
        fake_provider.raw_usage = {"prompt_tokens": 1000, "completion_tokens": "lots",
                                   "total_tokens": 1000}
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    answer()
    trace = mlflow_store.last_trace()
    flagged = [s for s in llm_spans(trace) if s.attributes.get("genai_tracing.cost.unpriced")]
    (unpriced,) = flagged
    assert unpriced.attributes["mlflow.llm.cost"] == {}  # no amount: the store adds none either
    span_sum = sum(s.attributes.get("mlflow.llm.cost", {}).get("total_cost", 0)
                   for s in llm_spans(trace))
    assert trace.info.cost == cost(1000 * 0.1 / M, 200 * 0.4 / M)
    assert span_sum == pytest.approx(trace.info.cost["total_cost"], rel=1e-9)
