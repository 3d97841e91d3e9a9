"""Every billed dimension, from the response: service tiers, audio, cache lifetimes, tool fees.

Real SDK clients talk to the loopback fakes; each test reads the stored trace back from a real
MLflow store. Every expected cost is computed by hand from rates written here, each cited from
the LiteLLM map bundled with the installed litellm (its key, USD per token, times 1e6) or from
the provider's price page. Rates are USD per million tokens, so a cost is ``tokens * rate / M``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import mlflow
import pytest

import genai_tracing
from genai_tracing._errors import ConfigurationError
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, anthropic_client, counts, gemini_client, llm_spans, openai_client

M = 1_000_000

# LiteLLM map, "gpt-5": input_cost_per_token 1.25e-06, output_cost_per_token 1e-05,
# cache_read_input_token_cost 1.25e-07, and the same keys suffixed _flex (6.25e-07, 5e-06,
# 6.25e-08) and _priority (2.5e-06, 2e-05, 2.5e-07); search_context_cost_per_query 0.01.
GPT5 = {"input": 1.25, "output": 10.0, "cached": 0.125}
GPT5_FLEX = {"input": 0.625, "output": 5.0, "cached": 0.0625}
GPT5_PRIORITY = {"input": 2.5, "output": 20.0, "cached": 0.25}
GPT5_WEB_SEARCH = 0.01
# LiteLLM map, "gpt-4o": input_cost_per_token 2.5e-06, output_cost_per_token 1e-05;
# input_cost_per_token_priority 4.25e-06, output_cost_per_token_priority 1.7e-05,
# cache_read_input_token_cost_priority 2.125e-06; no *_flex keys at all.
GPT4O_PRIORITY = {"input": 4.25, "output": 17.0, "cached": 2.125}
# LiteLLM map, "gpt-4o-audio-preview-2024-12-17": input_cost_per_token 2.5e-06,
# output_cost_per_token 1e-05, input_cost_per_audio_token 4e-05, output_cost_per_audio_token 8e-05.
AUDIO_MODEL = "gpt-4o-audio-preview-2024-12-17"
AUDIO = {"input": 2.5, "output": 10.0, "audio_input": 40.0, "audio_output": 80.0}
# LiteLLM map, "claude-sonnet-4-5": input_cost_per_token 3e-06, output_cost_per_token 1.5e-05,
# cache_read_input_token_cost 3e-07, cache_creation_input_token_cost 3.75e-06 (1.25x input),
# cache_creation_input_token_cost_above_1hr 6e-06 (2x input), search_context_cost_per_query 0.01
# (Anthropic's "$10 per 1,000 searches").
SONNET = {"input": 3.0, "output": 15.0, "cached": 0.3, "write_5m": 3.75, "write_1h": 6.0}
SONNET_WEB_SEARCH = 0.01
# LiteLLM map, "gemini/gemini-2.5-flash": input_cost_per_token 3e-07, output_cost_per_token
# 2.5e-06, input_cost_per_audio_token 1e-06, cache_read_input_token_cost 3e-08,
# cache_read_input_audio_token_cost 1e-07; search_context_cost_per_query 0.035 with no
# web_search_billing_unit: Gemini 2.5 grounding is "$35 / 1,000 grounded prompts"
# (ai.google.dev/gemini-api/docs/pricing), one fee per grounded request.
FLASH = {"input": 0.3, "output": 2.5, "audio_input": 1.0, "cached": 0.03, "cached_audio": 0.1}
FLASH_GROUNDING = 0.035
# genai-prices (openai/gpt-5): storage_searches_kcount 2.5, i.e. OpenAI's file search
# "$2.50 / 1k tool calls"; LiteLLM's map has no file-search rate for gpt-5.
GPT5_FILE_SEARCH = 0.0025


def cost(input_cost: float, output_cost: float) -> Any:
    return pytest.approx({"input_cost": input_cost, "output_cost": output_cost,
                          "total_cost": input_cost + output_cost}, rel=1e-9)


def priced(trace: Any, input_cost: float, output_cost: float, source: str = "litellm") -> Any:
    """The one call span carries exactly this cost, and the trace total is that cost."""
    (span,) = llm_spans(trace)
    assert span.attributes["mlflow.llm.cost"] == cost(input_cost, output_cost)
    assert span.attributes["genai_tracing.cost.source"] == source
    assert "genai_tracing.cost.unpriced" not in span.attributes
    assert trace.info.cost == cost(input_cost, output_cost)
    assert trace.info.request_metadata["genai_tracing.cost.complete"] == "true"
    return span


def stored(store: TemporaryStore) -> Any:
    """The last trace, read back from the store by id."""
    return mlflow.get_trace(store.last_trace().info.trace_id)


# -- OpenAI: service tiers -------------------------------------------------------------------

def _chat(fake: FakeProvider, mode: str, **kwargs: Any) -> Any:
    streamed = mode.endswith("stream")
    extra = {"stream": True, "stream_options": {"include_usage": True}} if streamed else {}
    if mode.startswith("async"):
        async def call() -> None:
            client = openai_client(fake, asynchronous=True)
            reply = await client.chat.completions.create(messages=MESSAGES, **kwargs, **extra)
            if streamed:
                [chunk async for chunk in reply]
        return asyncio.run(call())
    reply = openai_client(fake).chat.completions.create(messages=MESSAGES, **kwargs, **extra)
    if streamed:
        list(reply)


def _responses(fake: FakeProvider, mode: str, **kwargs: Any) -> Any:
    streamed = mode.endswith("stream")
    if mode.startswith("async"):
        async def call() -> None:
            client = openai_client(fake, asynchronous=True)
            reply = await client.responses.create(input="Say hello", stream=streamed, **kwargs)
            if streamed:
                [event async for event in reply]
        return asyncio.run(call())
    reply = openai_client(fake).responses.create(input="Say hello", stream=streamed, **kwargs)
    if streamed:
        list(reply)


MODES = ["sync", "sync-stream", "async", "async-stream"]


@pytest.mark.parametrize("mode", MODES)
def test_openai_chat_priority_tier(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                                   mode: str) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, cached_tokens=200, output_tokens=300)
    _chat(fake_provider, mode, model="gpt-4o", service_tier="priority")

    trace = stored(mlflow_store)
    r = GPT4O_PRIORITY
    span = priced(trace, (800 * r["input"] + 200 * r["cached"]) / M, 300 * r["output"] / M)
    assert span.attributes["genai_tracing.usage"]["service_tier"] == "priority"
    assert span.attributes["genai_tracing.cost.price"]["service_tier"] == "priority"
    # The tier changes the price, never the counts MLflow reads.
    assert counts(span.attributes["mlflow.chat.tokenUsage"]) == {
        "input_tokens": 1000, "output_tokens": 300, "total_tokens": 1300,
        "cache_read_input_tokens": 200}


def test_openai_chat_stream_helper_tier(fake_provider: FakeProvider,
                                       mlflow_store: TemporaryStore) -> None:
    """``chat.completions.stream()``: a tier not given is the SDK's sentinel, never a tier."""
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=300)
    with openai_client(fake_provider).chat.completions.stream(
            model="gpt-4o", messages=MESSAGES, stream_options={"include_usage": True}) as stream:
        list(stream)
    span = priced(stored(mlflow_store), 1000 * 2.5 / M, 300 * 10.0 / M)  # gpt-4o standard
    assert "service_tier" not in span.attributes["genai_tracing.usage"]

    with openai_client(fake_provider).chat.completions.stream(
            model="gpt-4o", messages=MESSAGES, stream_options={"include_usage": True},
            service_tier="priority") as stream:
        list(stream)
    priced(stored(mlflow_store), 1000 * GPT4O_PRIORITY["input"] / M,
           300 * GPT4O_PRIORITY["output"] / M)


@pytest.mark.parametrize("mode", MODES)
def test_openai_responses_flex_tier(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                                   mode: str) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=2000, cached_tokens=500, output_tokens=400,
                                    reasoning_tokens=100)
    _responses(fake_provider, mode, model="gpt-5", service_tier="flex")

    trace = stored(mlflow_store)
    r = GPT5_FLEX
    span = priced(trace, (1500 * r["input"] + 500 * r["cached"]) / M, 400 * r["output"] / M)
    assert span.attributes["genai_tracing.usage"]["service_tier"] == "flex"
    # Half the standard price: the standard rates would have billed twice as much.
    standard = (1500 * GPT5["input"] + 500 * GPT5["cached"] + 400 * GPT5["output"]) / M
    assert trace.info.cost["total_cost"] == pytest.approx(standard / 2, rel=1e-9)


def test_tier_the_response_reports_wins_over_the_request(fake_provider: FakeProvider,
                                                         mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    fake_provider.service_tier = "default"  # flex asked for, served (and billed) at default
    _responses(fake_provider, "sync", model="gpt-5", service_tier="flex")

    span = priced(stored(mlflow_store), 1000 * GPT5["input"] / M, 100 * GPT5["output"] / M)
    assert "service_tier" not in span.attributes["genai_tracing.usage"]

    fake_provider.service_tier = "priority"  # auto asked for, the project's default was priority
    _chat(fake_provider, "sync", model="gpt-5", service_tier="auto")
    priced(stored(mlflow_store), 1000 * GPT5_PRIORITY["input"] / M,
           100 * GPT5_PRIORITY["output"] / M)


@pytest.mark.parametrize("tier", ["flex", "scale"])
def test_unknown_tier_is_unpriced_and_flagged_never_standard(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore, tier: str,
        caplog: pytest.LogCaptureFixture) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    with caplog.at_level(logging.WARNING, logger="genai_tracing"):
        _chat(fake_provider, "sync", model="gpt-4o", service_tier=tier)  # gpt-4o has no such rate

    trace = stored(mlflow_store)
    (span,) = llm_spans(trace)
    assert not span.attributes.get("mlflow.llm.cost")
    assert span.attributes["genai_tracing.cost.unpriced"] is True
    reason = span.attributes["genai_tracing.cost.unpriced_reason"]
    assert f"no {tier!r} service-tier rates" in reason and f"service_tiers.{tier}" in reason
    assert span.attributes["genai_tracing.usage"]["service_tier"] == tier
    assert span.attributes["mlflow.chat.tokenUsage"]["input_tokens"] == 1000  # tokens stay
    assert trace.info.request_metadata["genai_tracing.cost.complete"] == "false"
    assert trace.info.cost is None or not trace.info.cost.get("total_cost")
    assert any("service-tier rates" in r.getMessage() for r in caplog.records)


def test_price_file_service_tiers(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                                  tmp_path: Any) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gpt-4o"]\ninput_per_million = 2.0\noutput_per_million = 8.0\n'
                      '[models."gpt-4o".service_tiers.flex]\n'
                      'input_per_million = 1.0\noutput_per_million = 4.0\n')
    genai_tracing.enable_tracing(prices=str(prices))
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    _chat(fake_provider, "sync-stream", model="gpt-4o", service_tier="flex")

    span = priced(stored(mlflow_store), 1000 * 1.0 / M, 100 * 4.0 / M, source="user")
    assert span.attributes["genai_tracing.cost.price"]["service_tier"] == "flex"

    # A tier the user's entry lacks comes from the catalog, recorded as a fallback.
    _chat(fake_provider, "sync", model="gpt-4o", service_tier="priority")
    span = priced(stored(mlflow_store), 1000 * GPT4O_PRIORITY["input"] / M,
                  100 * GPT4O_PRIORITY["output"] / M)
    assert span.attributes["genai_tracing.cost.fallbacks"] == [
        "service_tier priority=litellm 'gpt-4o'"]


# -- OpenAI: audio tokens ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_openai_audio_tokens_at_audio_rates(fake_provider: FakeProvider,
                                            mlflow_store: TemporaryStore, mode: str) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, audio_input_tokens=600, output_tokens=500,
                                    audio_output_tokens=400)
    _chat(fake_provider, mode, model=AUDIO_MODEL)

    trace = stored(mlflow_store)
    a = AUDIO
    span = priced(trace, (400 * a["input"] + 600 * a["audio_input"]) / M,
                  (100 * a["output"] + 400 * a["audio_output"]) / M)
    assert span.attributes["genai_tracing.usage"] == {
        "input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500,
        "audio_input_tokens": 600, "audio_output_tokens": 400}
    # MLflow's totals count the audio tokens, as OpenAI's do.
    assert counts(span.attributes["mlflow.chat.tokenUsage"]) == {
        "input_tokens": 1000, "output_tokens": 500, "total_tokens": 1500}
    assert trace.info.token_usage["total_tokens"] == 1500


def test_audio_without_an_audio_rate_is_unpriced(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": {"acme-voice": {
        "input_per_million": 1.0, "output_per_million": 2.0}}})
    fake_provider.usage = FakeUsage(input_tokens=100, audio_input_tokens=60, output_tokens=10)
    _chat(fake_provider, "sync", model="acme-voice")

    (span,) = llm_spans(stored(mlflow_store))
    assert not span.attributes.get("mlflow.llm.cost")
    assert "no audio_input rate" in span.attributes["genai_tracing.cost.unpriced_reason"]


def test_price_file_audio_rates(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                                tmp_path: Any) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."acme-voice"]\ninput_per_million = 1.0\noutput_per_million = 2.0\n'
                      'audio_input_per_million = 20.0\naudio_output_per_million = 30.0\n')
    genai_tracing.enable_tracing(prices=str(prices))
    fake_provider.usage = FakeUsage(input_tokens=100, audio_input_tokens=60, output_tokens=50,
                                    audio_output_tokens=20)
    _chat(fake_provider, "async", model="acme-voice")

    priced(stored(mlflow_store), (40 * 1.0 + 60 * 20.0) / M, (30 * 2.0 + 20 * 30.0) / M,
           source="user")


# -- OpenAI: built-in tools -------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_openai_responses_web_and_file_search_fees(fake_provider: FakeProvider,
                                                   mlflow_store: TemporaryStore,
                                                   mode: str) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=3000, output_tokens=200, web_search_calls=2,
                                    file_search_calls=3)
    _responses(fake_provider, mode, model="gpt-5",
               tools=[{"type": "web_search"},
                      {"type": "file_search", "vector_store_ids": ["vs_1"]}])

    trace = stored(mlflow_store)
    fees = 2 * GPT5_WEB_SEARCH + 3 * GPT5_FILE_SEARCH
    # Tool fees are part of the input cost: MLflow's total stays input + output.
    span = priced(trace, 3000 * GPT5["input"] / M + fees, 200 * GPT5["output"] / M)
    assert span.attributes["genai_tracing.usage"]["tool_calls"] == {"web_search": 2,
                                                                    "file_search": 3}
    assert span.attributes["genai_tracing.cost.tools"] == pytest.approx(
        {"web_search": 2 * GPT5_WEB_SEARCH, "file_search": 3 * GPT5_FILE_SEARCH})
    assert span.attributes["genai_tracing.cost.fallbacks"] == [
        "file_search=genai-prices 'openai/gpt-5'"]


# LiteLLM map, "gpt-4o-mini-search-preview": input_cost_per_token 1.5e-07, output_cost_per_token
# 6e-07, search_context_cost_per_query 0.025 (OpenAI: "$25.00 / 1k calls").
@pytest.mark.parametrize("mode", MODES)
def test_chat_search_model_bills_its_search_per_request(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore, mode: str) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    _chat(fake_provider, mode, model="gpt-4o-mini-search-preview", web_search_options={})
    span = priced(stored(mlflow_store), 1000 * 0.15 / M + 0.025, 100 * 0.6 / M)
    assert span.attributes["genai_tracing.usage"]["tool_calls"] == {"web_search": 1}


def test_unknown_tool_fee_is_partial_and_flagged(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    # A model no catalog knows: its tokens are priced from the file, its file searches nowhere.
    genai_tracing.enable_tracing(prices={"models": {"acme-gpt": {
        "input_per_million": 1.0, "output_per_million": 2.0}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100, file_search_calls=2)
    with caplog.at_level(logging.WARNING, logger="genai_tracing"):
        _responses(fake_provider, "sync", model="acme-gpt")

    trace = stored(mlflow_store)
    (span,) = llm_spans(trace)
    # The tokens are billed; the two file searches are not, and the span says so.
    assert span.attributes["mlflow.llm.cost"] == cost(1000 * 1.0 / M, 100 * 2.0 / M)
    assert span.attributes["genai_tracing.cost.partial"] is True
    assert span.attributes["genai_tracing.cost.unpriced"] is True
    reason = span.attributes["genai_tracing.cost.unpriced_reason"]
    assert "2 file_search calls not billed" in reason and "file_search_per_call" in reason
    assert trace.info.request_metadata["genai_tracing.cost.complete"] == "false"
    assert trace.info.tags["cost"] == "partial"  # priced in part, not unpriced
    assert trace.info.cost == cost(1000 * 1.0 / M, 100 * 2.0 / M)
    assert any("billed in part" in r.getMessage() for r in caplog.records)


def test_price_file_tool_fees(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                              tmp_path: Any) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"acme-gpt": {
        "input_per_million": 1.0, "output_per_million": 2.0, "file_search_per_call": 0.004,
        "web_search_per_call": 0.02}}}))
    genai_tracing.enable_tracing(prices=str(prices))
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100, file_search_calls=2,
                                    web_search_calls=1)
    _responses(fake_provider, "async-stream", model="acme-gpt")

    span = priced(stored(mlflow_store), 1000 * 1.0 / M + 2 * 0.004 + 0.02, 100 * 2.0 / M,
                  source="user")
    assert "genai_tracing.cost.fallbacks" not in span.attributes


def test_code_interpreter_per_container(fake_provider: FakeProvider,
                                       mlflow_store: TemporaryStore, tmp_path: Any) -> None:
    # No catalog prices a container per call (OpenAI bills it once per container, which calls
    # may share): from the catalogs alone the call is partial.
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100,
                                    code_interpreter_containers=2)
    _responses(fake_provider, "sync", model="gpt-5", tools=[
        {"type": "code_interpreter", "container": {"type": "auto"}}])
    (span,) = llm_spans(stored(mlflow_store))
    assert span.attributes["mlflow.llm.cost"] == cost(1000 * GPT5["input"] / M,
                                                      100 * GPT5["output"] / M)
    assert span.attributes["genai_tracing.cost.partial"] is True
    assert "code_interpreter_per_call" in span.attributes["genai_tracing.cost.unpriced_reason"]
    genai_tracing.disable_tracing()

    # OpenAI's price page: "Code Interpreter $0.03 / container".
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gpt-5"]\ninput_per_million = 1.25\noutput_per_million = 10.0\n'
                      'code_interpreter_per_call = 0.03\n')
    genai_tracing.enable_tracing(prices=str(prices))
    _responses(fake_provider, "async-stream", model="gpt-5", tools=[
        {"type": "code_interpreter", "container": {"type": "auto"}}])
    span = priced(stored(mlflow_store), 1000 * 1.25 / M + 2 * 0.03, 100 * 10.0 / M,
                  source="user")
    assert span.attributes["genai_tracing.usage"]["tool_calls"] == {"code_interpreter": 2}


# -- Anthropic: cache lifetimes, server tools -------------------------------------------------

def _anthropic(fake: FakeProvider, mode: str, *, beta: bool = False, **kwargs: Any) -> None:
    args = dict(model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES, **kwargs)
    if mode == "async" or mode == "async-stream":
        async def call() -> None:
            client = anthropic_client(fake, asynchronous=True)
            reply = await client.messages.create(stream=mode == "async-stream", **args)
            if mode == "async-stream":
                [event async for event in reply]
        return asyncio.run(call())
    client = anthropic_client(fake)
    messages = client.beta.messages if beta else client.messages
    if mode == "sync":
        messages.create(**args)
    elif mode == "sync-stream":
        list(messages.create(stream=True, **args))
    else:  # the stream helper
        with messages.stream(**args) as stream:
            list(stream)


ANTHROPIC_MODES = ["sync", "sync-stream", "helper", "async", "async-stream"]


@pytest.mark.parametrize("mode", ANTHROPIC_MODES)
def test_anthropic_cache_writes_by_lifetime(fake_provider: FakeProvider,
                                            mlflow_store: TemporaryStore, mode: str) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=6000, cached_tokens=1000,
                                    cache_write_tokens=4000, cache_write_1h_tokens=3000,
                                    output_tokens=200)
    _anthropic(fake_provider, mode)

    trace = stored(mlflow_store)
    s = SONNET
    # 1000 uncached at input, 1000 reads, 1000 five-minute writes at 1.25x, 3000 one-hour at 2x.
    span = priced(trace, (1000 * s["input"] + 1000 * s["cached"] + 1000 * s["write_5m"]
                          + 3000 * s["write_1h"]) / M, 200 * s["output"] / M)
    assert span.attributes["genai_tracing.usage"] == {
        "input_tokens": 6000, "output_tokens": 200, "total_tokens": 6200,
        "cached_input_tokens": 1000, "cache_write_tokens": 4000, "cache_write_1h_tokens": 3000}
    usage = counts(span.attributes["mlflow.chat.tokenUsage"])
    assert usage["input_tokens"] == 6000 and usage["cache_creation_input_tokens"] == 4000
    # MLflow's own 1-hour key, where its version writes one, stays as MLflow wrote it.
    assert usage.get("cache_creation_input_tokens_above_1hr", 3000) == 3000


def test_anthropic_beta_messages_usage(fake_provider: FakeProvider) -> None:
    """beta.messages answers spell usage as messages does; read the same way where traced."""
    from genai_tracing.providers.anthropic import read_usage

    fake_provider.usage = FakeUsage(input_tokens=500, cache_write_tokens=300,
                                    cache_write_1h_tokens=300, output_tokens=20,
                                    web_search_calls=2)
    reply = anthropic_client(fake_provider).beta.messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES)
    usage = read_usage(reply.usage)
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_write_1h_tokens) == (
        500, 300, 300)
    assert usage.tool_counts == {"web_search": 2}


@pytest.mark.parametrize("mode", ANTHROPIC_MODES)
def test_anthropic_web_search_fee(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                                  mode: str) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=5000, output_tokens=300, web_search_calls=3,
                                    web_fetch_calls=1)
    _anthropic(fake_provider, mode)

    trace = stored(mlflow_store)
    # Web fetch has no fee beyond its tokens (anthropic.com/pricing): counted, not billed.
    span = priced(trace, 5000 * SONNET["input"] / M + 3 * SONNET_WEB_SEARCH,
                  300 * SONNET["output"] / M)
    assert span.attributes["genai_tracing.usage"]["tool_calls"] == {"web_search": 3,
                                                                    "web_fetch": 1}


def test_anthropic_priority_tier_without_a_rate_is_unpriced(fake_provider: FakeProvider,
                                                            mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=100, output_tokens=10)
    fake_provider.service_tier = "priority"  # LiteLLM has no *_priority keys for Claude
    _anthropic(fake_provider, "sync")

    (span,) = llm_spans(stored(mlflow_store))
    assert not span.attributes.get("mlflow.llm.cost")
    assert "no 'priority' service-tier rates" in \
        span.attributes["genai_tracing.cost.unpriced_reason"]


def test_price_file_1h_cache_write_and_web_search(fake_provider: FakeProvider,
                                                  mlflow_store: TemporaryStore,
                                                  tmp_path: Any) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."claude-sonnet-4-5"]\ninput_per_million = 2.0\n'
                      'output_per_million = 10.0\ncache_write_per_million = 2.5\n'
                      'cache_write_1h_per_million = 4.0\nweb_search_per_call = 0.008\n')
    genai_tracing.enable_tracing(prices=str(prices))
    fake_provider.usage = FakeUsage(input_tokens=3000, cache_write_tokens=2000,
                                    cache_write_1h_tokens=500, output_tokens=100,
                                    web_search_calls=2)
    _anthropic(fake_provider, "helper")

    priced(stored(mlflow_store), (1000 * 2.0 + 1500 * 2.5 + 500 * 4.0) / M + 2 * 0.008,
           100 * 10.0 / M, source="user")


@pytest.mark.parametrize("mode", ANTHROPIC_MODES)
def test_anthropic_code_execution_is_partial_until_priced(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore, mode: str) -> None:
    """Anthropic bills code execution by container-hour, which no response reports: the call's
    tokens are billed and the call is flagged partial, naming the price-file key."""
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100,
                                    code_execution_containers=1)
    _anthropic(fake_provider, mode)
    (span,) = llm_spans(stored(mlflow_store))
    s = SONNET
    assert span.attributes["mlflow.llm.cost"] == cost(1000 * s["input"] / M,
                                                      100 * s["output"] / M)
    assert span.attributes["genai_tracing.cost.partial"] is True
    assert "code_execution_per_call" in span.attributes["genai_tracing.cost.unpriced_reason"]
    assert span.attributes["genai_tracing.usage"]["tool_calls"] == {"code_execution": 1}


def test_anthropic_code_execution_priced_by_the_price_file(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    # A team's measured average: $0.0042 of container time per call (5-minute minimum at
    # $0.05 per hour).
    genai_tracing.enable_tracing(prices={"models": {"claude-sonnet-4-5": {
        "input_per_million": 3, "output_per_million": 15, "code_execution_per_call": 0.0042}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100,
                                    code_execution_containers=1)
    _anthropic(fake_provider, "sync-stream")
    priced(stored(mlflow_store), 1000 * 3 / M + 0.0042, 100 * 15 / M, source="user")


# -- Gemini: audio modality, grounding --------------------------------------------------------

def _gemini(fake: FakeProvider, mode: str, **kwargs: Any) -> None:
    client = gemini_client(fake)
    if mode == "sync":
        client.models.generate_content(model="gemini-2.5-flash", contents="hi", **kwargs)
    elif mode == "sync-stream":
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi",
                                                   **kwargs))
    elif mode == "async":
        asyncio.run(client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi",
                                                       **kwargs))
    else:
        async def call() -> None:
            stream = await client.aio.models.generate_content_stream(
                model="gemini-2.5-flash", contents="hi", **kwargs)
            [chunk async for chunk in stream]
        asyncio.run(call())


@pytest.mark.parametrize("mode", MODES)
def test_gemini_audio_input_and_grounding(fake_provider: FakeProvider,
                                          mlflow_store: TemporaryStore, mode: str) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=2000, audio_input_tokens=1500, output_tokens=100,
                                    web_search_calls=2)
    _gemini(fake_provider, mode)

    trace = stored(mlflow_store)
    f = FLASH
    # Two search queries, one grounded prompt: Gemini 2.5 bills the prompt once.
    span = priced(trace, (500 * f["input"] + 1500 * f["audio_input"]) / M + FLASH_GROUNDING,
                  100 * f["output"] / M)
    usage = span.attributes["genai_tracing.usage"]
    assert usage["audio_input_tokens"] == 1500 and usage["tool_calls"] == {"web_search": 2}
    assert span.attributes["genai_tracing.cost.price"]["per_request"] == {
        "web_search": "0.035", "google_maps": "0.025"}


# LiteLLM map, "gemini/gemini-2.5-flash": google_maps_grounding_cost_per_query 0.025 with no
# web_search_billing_unit: Grounding with Google Maps is "$25 / 1,000 grounded prompts"
# (ai.google.dev/gemini-api/docs/pricing), one fee per grounded prompt, like Search grounding.
FLASH_MAPS = 0.025


@pytest.mark.parametrize("mode", MODES)
def test_gemini_maps_grounding(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                               mode: str) -> None:
    """A Maps-grounded answer (maps chunks, three Maps queries) bills one Maps-grounded prompt,
    not web searches."""
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=2000, output_tokens=100,
                                    maps_grounding_queries=3)
    _gemini(fake_provider, mode)

    f = FLASH
    span = priced(stored(mlflow_store), 2000 * f["input"] / M + FLASH_MAPS,
                  100 * f["output"] / M)
    usage = span.attributes["genai_tracing.usage"]
    assert usage["tool_calls"] == {"google_maps": 3}
    assert span.attributes["genai_tracing.cost.price"]["per_request"] == {
        "google_maps": "0.025", "web_search": "0.035"}


def test_price_file_prices_maps_grounding(fake_provider: FakeProvider,
                                          mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"models": {"gemini-2.5-flash": {
        "input_per_million": 1, "output_per_million": 2, "google_maps_per_call": 0.02}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100,
                                    maps_grounding_queries=2)
    _gemini(fake_provider, "sync")
    priced(stored(mlflow_store), 1000 * 1 / M + 2 * 0.02, 100 * 2 / M, source="user")


@pytest.mark.parametrize("mode", ["sync", "async-stream"])
def test_gemini_cached_audio(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                             mode: str) -> None:
    genai_tracing.enable_tracing()
    # 1000 prompt tokens: 200 text (100 of them cached) and 800 audio (500 of them cached).
    fake_provider.usage = FakeUsage(input_tokens=1000, audio_input_tokens=800, cached_tokens=600,
                                    cached_audio_tokens=500, output_tokens=10)
    _gemini(fake_provider, mode)

    f = FLASH
    span = priced(stored(mlflow_store), (100 * f["input"] + 100 * f["cached"]
                                         + 500 * f["cached_audio"] + 300 * f["audio_input"]) / M,
                  10 * f["output"] / M)
    usage = span.attributes["genai_tracing.usage"]
    assert (usage["cached_input_tokens"], usage["cached_audio_input_tokens"],
            usage["audio_input_tokens"]) == (600, 500, 300)


def test_price_file_cached_audio_rate(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                                      tmp_path: Any) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gemini-2.5-flash"]\ninput_per_million = 1.0\n'
                      'output_per_million = 2.0\ncached_input_per_million = 0.1\n'
                      'audio_input_per_million = 5.0\ncached_audio_input_per_million = 0.5\n')
    genai_tracing.enable_tracing(prices=str(prices))
    fake_provider.usage = FakeUsage(input_tokens=1000, audio_input_tokens=800, cached_tokens=600,
                                    cached_audio_tokens=500, output_tokens=10)
    _gemini(fake_provider, "async")

    # 100 text uncached, 100 cached text, 500 cached audio, 300 uncached audio.
    priced(stored(mlflow_store), (100 * 1.0 + 100 * 0.1 + 500 * 0.5 + 300 * 5.0) / M,
           10 * 2.0 / M, source="user")


# -- Price file validation and `genai-tracing price` -----------------------------------------

@pytest.mark.parametrize("entry, where, fix", [
    ({"service_tiers": {"flx": {"input_per_million": 1.0}}}, "service_tiers.flx",
     "did you mean 'flex'"),
    ({"service_tiers": {"flex": {"input_per_milion": 1.0}}}, "service_tiers.flex.input_per_milion",
     "did you mean 'input_per_million'"),
    ({"service_tiers": {"flex": {"input_per_million": "0.5"}}},
     "service_tiers.flex.input_per_million", "remove the quotes"),
    ({"web_search_per_cal": 0.01}, "web_search_per_cal", "did you mean 'web_search_per_call'"),
    ({"file_search_per_call": "0.0025"}, "file_search_per_call", "remove the quotes"),
    ({"cache_write_1h_per_million": -1}, "cache_write_1h_per_million", "prices are USD"),
    ({"audio_input_per_million": "x"}, "audio_input_per_million", "is a string"),
    ({"google_maps_per_cal": 0.025}, "google_maps_per_cal", "did you mean 'google_maps_per_call'"),
    ({"code_execution_per_call": -0.01}, "code_execution_per_call", "prices are USD"),
])
def test_price_file_new_keys_are_validated(tmp_path: Any, entry: dict[str, Any], where: str,
                                           fix: str) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"acme": {
        "input_per_million": 1.0, "output_per_million": 2.0, **entry}}}))
    with pytest.raises(ConfigurationError) as raised:
        genai_tracing.enable_tracing(prices=str(prices))
    message = str(raised.value)
    assert str(prices) in message and where in message and fix in message


def test_price_command_shows_every_dimension(tmp_path: Any) -> None:
    from io import StringIO

    from genai_tracing.cli import main

    out = StringIO()
    assert main(["price", "gpt-5"], out=out) == 0
    text = out.getvalue()
    assert "flex: input $0.625, output $5, cached input $0.0625 per million tokens" in text
    assert "priority: input $2.5, output $20" in text
    assert "web search     $0.01 per call" in text
    assert "file search" not in text  # LiteLLM's entry has none (genai-prices is used per call)

    out = StringIO()
    assert main(["price", "claude-sonnet-4-5"], out=out) == 0
    assert "cache write 1h $6 per million tokens" in out.getvalue()

    out = StringIO()
    assert main(["price", "gemini/gemini-2.5-flash"], out=out) == 0
    assert "google maps    $0.025 per request that uses it" in out.getvalue()

    prices = tmp_path / "prices.toml"
    prices.write_text('[models."acme-voice"]\ninput_per_million = 1.0\noutput_per_million = 2.0\n'
                      'audio_input_per_million = 20.0\naudio_output_per_million = 30.0\n'
                      'web_search_per_call = 0.02\n'
                      '[models."acme-voice".service_tiers.priority]\n'
                      'input_per_million = 1.5\noutput_per_million = 3.0\n')
    out = StringIO()
    assert main(["price", "acme-voice", "--prices", str(prices)], out=out) == 0
    text = out.getvalue()
    assert "audio input    $20 per million tokens" in text
    assert "audio output   $30 per million tokens" in text
    assert "web search     $0.02 per call" in text
    assert "priority: input $1.5, output $3 per million tokens" in text


# -- Through LiteLLM --------------------------------------------------------------------------

def test_litellm_anthropic_1h_cache_writes_and_web_search(fake_provider: FakeProvider,
                                                          mlflow_store: TemporaryStore) -> None:
    import litellm

    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=4000, cache_write_tokens=3000,
                                    cache_write_1h_tokens=2000, output_tokens=100,
                                    web_search_calls=1)
    litellm.completion(model="anthropic/claude-sonnet-4-5", messages=MESSAGES, api_key="test",
                       api_base=fake_provider.url, max_tokens=500)

    s = SONNET
    span = priced(stored(mlflow_store), (1000 * s["input"] + 1000 * s["write_5m"]
                                         + 2000 * s["write_1h"]) / M + SONNET_WEB_SEARCH,
                  100 * s["output"] / M)
    assert span.attributes["genai_tracing.usage"]["cache_write_1h_tokens"] == 2000


def test_reprice_completes_a_partial_cost(fake_provider: FakeProvider,
                                          mlflow_store: TemporaryStore, tmp_path: Any) -> None:
    genai_tracing.enable_tracing(prices={"models": {"acme-gpt": {
        "input_per_million": 1.0, "output_per_million": 2.0}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100, file_search_calls=2)
    _responses(fake_provider, "sync", model="acme-gpt")
    trace_id = mlflow_store.last_trace().info.trace_id

    prices = tmp_path / "prices.toml"
    prices.write_text('[models."acme-gpt"]\ninput_per_million = 1.0\noutput_per_million = 2.0\n'
                      'file_search_per_call = 0.004\n')
    result = genai_tracing.reprice(prices=str(prices), dry_run=False)

    tokens = (1000 * 1.0 + 100 * 2.0) / M
    (change,) = result.calls
    assert float(change.old_cost) == pytest.approx(tokens, rel=1e-9)
    assert float(change.new_cost) == pytest.approx(tokens + 2 * 0.004, rel=1e-9)
    tags = mlflow.get_trace(trace_id).info.tags
    assert float(json.loads(tags["genai_tracing.repriced.cost"])["total_cost"]) == \
        pytest.approx(tokens + 2 * 0.004, rel=1e-9)
    assert tags["genai_tracing.repriced.unpriced_calls"] == "0" and tags["cost"] == "repriced"


# LiteLLM map, "gemini/gemini-2.5-flash": input_cost_per_token_flex 1.5e-07,
# output_cost_per_token_flex 1.25e-06; input_cost_per_token_priority 5.4e-07,
# output_cost_per_token_priority 4.5e-06.
FLASH_FLEX = {"input": 0.15, "output": 1.25}
FLASH_PRIORITY = {"input": 0.54, "output": 4.5}


@pytest.mark.parametrize("mode", ["sync", "sync-stream", "async"])
def test_gemini_service_tier(fake_provider: FakeProvider, mlflow_store: TemporaryStore,
                             mode: str) -> None:
    from google.genai import types as gtypes

    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    # The Gemini API reports no tier: the call is billed at the one its config asked for.
    _gemini(fake_provider, mode, config=gtypes.GenerateContentConfig(service_tier="flex"))
    span = priced(stored(mlflow_store), 1000 * FLASH_FLEX["input"] / M,
                  100 * FLASH_FLEX["output"] / M)
    assert span.attributes["genai_tracing.usage"]["service_tier"] == "flex"

    # Vertex reports the traffic type that served it, which wins.
    fake_provider.service_tier = "ON_DEMAND_PRIORITY"
    _gemini(fake_provider, mode, config=gtypes.GenerateContentConfig(service_tier="flex"))
    priced(stored(mlflow_store), 1000 * FLASH_PRIORITY["input"] / M,
           100 * FLASH_PRIORITY["output"] / M)


def test_litellm_openai_flex_tier(fake_provider: FakeProvider,
                                  mlflow_store: TemporaryStore) -> None:
    import litellm

    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    litellm.completion(model="openai/gpt-5", messages=MESSAGES, api_key="test",
                       api_base=fake_provider.openai_base_url, service_tier="flex")

    span = priced(stored(mlflow_store), 1000 * GPT5_FLEX["input"] / M,
                  100 * GPT5_FLEX["output"] / M)
    assert span.attributes["genai_tracing.usage"]["service_tier"] == "flex"


# -- estimate_cost: every dimension a span bills, without a call ------------------------------

def test_estimate_cost_bills_every_dimension() -> None:
    """estimate_cost() takes each billed dimension and prices it as a span would (hand-computed
    from the LiteLLM rates cited at the top of this file)."""
    from decimal import Decimal

    flex = genai_tracing.estimate_cost("gpt-5", input_tokens=1000, output_tokens=100,
                                       cached_input_tokens=200, service_tier="flex")
    assert flex.total_cost == pytest.approx(Decimal(str(
        (800 * GPT5_FLEX["input"] + 200 * GPT5_FLEX["cached"] + 100 * GPT5_FLEX["output"]) / M)))
    assert flex.price["service_tier"] == "flex"
    # A tier the model's entries do not price: no cost, a reason; never the standard rates.
    assert genai_tracing.estimate_cost("gpt-4o", input_tokens=10, output_tokens=1,
                                       service_tier="flex").total_cost is None

    audio = genai_tracing.estimate_cost(AUDIO_MODEL, input_tokens=1000, output_tokens=500,
                                        audio_input_tokens=400, audio_output_tokens=300)
    assert float(audio.total_cost) == pytest.approx(
        (600 * AUDIO["input"] + 400 * AUDIO["audio_input"] + 200 * AUDIO["output"]
         + 300 * AUDIO["audio_output"]) / M)

    cache = genai_tracing.estimate_cost("claude-sonnet-4-5", input_tokens=10_000,
                                        output_tokens=100, cache_write_tokens=4000,
                                        cache_write_1h_tokens=1000, tool_calls={"web_search": 3})
    assert float(cache.total_cost) == pytest.approx(
        (6000 * SONNET["input"] + 3000 * SONNET["write_5m"] + 1000 * SONNET["write_1h"]
         + 100 * SONNET["output"]) / M + 3 * SONNET_WEB_SEARCH)

    bedrock = genai_tracing.estimate_cost("us.anthropic.claude-sonnet-4-5-20250929-v1:0",
                                          provider="bedrock", input_tokens=1000,
                                          output_tokens=200)
    assert float(bedrock.total_cost) == pytest.approx((1000 * 3.3 + 200 * 16.5) / M)


@pytest.mark.parametrize("kwargs", [{"audio_input_tokens": -1}, {"cache_write_1h_tokens": 1.5},
                                    {"tool_calls": {"web_search": -2}},
                                    {"tool_calls": ["web_search"]}])
def test_estimate_cost_refuses_counts_that_are_not_counts(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="estimate_cost"):
        genai_tracing.estimate_cost("gpt-4o", input_tokens=10, output_tokens=1, **kwargs)
