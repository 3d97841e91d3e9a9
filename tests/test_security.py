"""API keys never reach a stored trace or a log line.

A distinctive fake key goes through every SDK the way users pass it: OpenAI's ``Authorization``
header, Anthropic's ``x-api-key``, Gemini's ``x-goog-api-key``, and LiteLLM's ``api_key``
argument, and a key in the URL's query string. Then the whole store is searched for
it: every trace as JSON, the sqlite file and anything next to it, and every log record of
genai_tracing, MLflow and OpenTelemetry, at DEBUG.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import MESSAGES

import genai_tracing
from genai_tracing.testing import FakeProvider, TemporaryStore

SECRET = "sk-canary-7f3a9c41d2e8b6"


def every_sdk_with_the_key(fake: FakeProvider) -> None:
    import anthropic
    import litellm
    import openai
    from google import genai
    from google.genai import types

    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key=SECRET, max_retries=0)
    oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    list(oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                     stream_options={"include_usage": True}))
    oai.embeddings.create(model="text-embedding-3-small", input="hi")
    keyed_url = openai.OpenAI(base_url=fake.openai_base_url, api_key=SECRET, max_retries=0,
                              default_query={"key": SECRET})  # a key-bearing URL
    keyed_url.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    claude = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key=SECRET,
                                 max_retries=0)
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=MESSAGES)
    with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=16,
                                messages=MESSAGES) as stream:
        list(stream)

    gemini = genai.Client(api_key=SECRET, http_options=types.HttpOptions(
        base_url=fake.gemini_base_url, retry_options=types.HttpRetryOptions(attempts=1)))
    gemini.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    list(gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hello"))

    for model, base in (("openai/gpt-4o-mini", fake.openai_base_url),
                        ("anthropic/claude-sonnet-4-5", fake.anthropic_base_url),
                        ("gemini/gemini-2.5-flash", fake.gemini_base_url)):
        litellm.completion(model=model, api_base=base, api_key=SECRET, messages=MESSAGES)
        list(litellm.completion(model=model, api_base=base, api_key=SECRET, messages=MESSAGES,
                                stream=True))

    fake.error = (401, "invalid x-api-key")  # an error path too
    with pytest.raises(anthropic.AuthenticationError):
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=MESSAGES)
    with pytest.raises(litellm.AuthenticationError):
        litellm.completion(model="anthropic/claude-sonnet-4-5", api_base=fake.anthropic_base_url,
                           api_key=SECRET, messages=MESSAGES)
    fake.error = None


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_api_keys_never_reach_a_stored_trace_or_a_log_line(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        caplog: pytest.LogCaptureFixture) -> None:
    for logger in ("genai_tracing", "mlflow", "opentelemetry"):
        caplog.set_level(logging.DEBUG, logger=logger)
    genai_tracing.enable_tracing(prices={"models": {"gemini/gemini-2.5-flash": {
        "input_per_million": 0.3, "output_per_million": 2.5}}})

    every_sdk_with_the_key(fake_provider)

    # The key really went out, in each of the ways users pass it.
    headers = [r.headers for r in fake_provider.requests]
    assert any(h.get("authorization") == f"Bearer {SECRET}" for h in headers)
    assert any(h.get("x-api-key") == SECRET for h in headers)
    assert any(h.get("x-goog-api-key") == SECRET for h in headers)
    assert any(r.query.get("key") == SECRET for r in fake_provider.requests)

    traces = mlflow_store.traces()
    assert len(traces) == 16  # every call above made one trace, the failed ones too
    for trace in traces:
        assert SECRET not in trace.to_json(), trace.info.trace_id
    stored = files_under(mlflow_store.folder)
    assert stored
    for path in stored:
        assert SECRET.encode() not in path.read_bytes(), path
    # What tracing logs. The SDKs' own HTTP client logs request URLs at INFO, traced or not.
    logged = [r.getMessage() + str(r.exc_text or "") for r in caplog.records
              if r.name.startswith(("genai_tracing", "mlflow", "opentelemetry"))]
    assert logged
    assert not [line for line in logged if SECRET in line]


def test_our_own_span_inputs_leave_out_credentials(fake_provider: FakeProvider,
                                                   mlflow_store: TemporaryStore) -> None:
    import litellm

    genai_tracing.enable_tracing(providers=["litellm"])
    litellm.completion(model="anthropic/claude-sonnet-4-5", api_base=fake_provider.url,
                       api_key=SECRET, messages=MESSAGES, extra_headers={
                           "Authorization": f"Bearer {SECRET}", "x-api-key": SECRET})

    trace = mlflow_store.last_trace()
    # The span is MLflow's own LiteLLM span: its logger records the messages, never the key.
    (span,) = [s for s in trace.data.spans if s.name == "litellm-completion"]
    assert "messages" in span.inputs and "api_key" not in span.inputs
    assert SECRET not in trace.to_json()
    assert fake_provider.requests[-1].headers["x-api-key"] == SECRET
