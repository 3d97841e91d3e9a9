"""The one seam to MLflow: what is missing on an MLflow version is said once, never raised.

Every private MLflow name genai_tracing uses goes through ``genai_tracing._mlflow``. Here names
are taken away, as a future MLflow release might, and the user's calls must still return exactly
what they return untraced, with one warning that says what is off.
"""

from __future__ import annotations

import logging

import pytest

import genai_tracing
from genai_tracing import _mlflow
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, llm_spans, openai_client

USAGE = FakeUsage(input_tokens=100, output_tokens=20)


@pytest.fixture(autouse=True)
def _fresh_warnings():
    _mlflow._warned.clear()
    yield
    _mlflow._warned.clear()


def test_missing_reset_hook_keeps_tracing_on_and_says_so_once(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import mlflow.tracing.provider as provider

    monkeypatch.delattr(provider, "reset_config")
    with caplog.at_level(logging.WARNING, logger="genai_tracing"):
        genai_tracing.enable_tracing()
        genai_tracing.enable_tracing(providers=["openai"])
    said = [r.getMessage() for r in caplog.records if "not available with mlflow" in
            r.getMessage()]
    assert len(said) == 1 and "reset_config" in said[0]
    fake_provider.usage = USAGE
    answer = openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini",
                                                                  messages=MESSAGES)
    assert answer.usage.prompt_tokens == 100
    (span,) = llm_spans(mlflow_store.last_trace())
    assert span.attributes["mlflow.llm.cost"]["total_cost"] > 0
