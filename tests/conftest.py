"""Shared test set-up: real SDK clients pointed at the loopback fakes, a fresh store per test.

The ``fake_provider`` and ``mlflow_store`` fixtures come from genai_tracing's own pytest plugin,
the same ones users get.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Iterator

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Tests must never reach a real provider or a shared store by accident.
os.environ.pop("MLFLOW_TRACKING_URI", None)
for _var in ("GENAI_TRACING_ENABLED", "GENAI_TRACING_EXPERIMENT", "GENAI_TRACING_PROVIDERS",
             "GENAI_TRACING_PRICES", "GENAI_TRACING_PRICES_URL",
             "GENAI_TRACING_CATALOG_MAX_AGE_DAYS"):
    os.environ.pop(_var, None)
# A price map fetched on this machine (genai-tracing prices update) must not change test prices.
os.environ["GENAI_TRACING_CACHE_DIR"] = tempfile.mkdtemp(prefix="genai-tracing-cache-")

import pytest

from genai_tracing._guard import clear_internal_errors, internal_errors
from genai_tracing.testing import FakeProvider

# The session's PostgreSQL and the multi-worker mlflow server on it (tests marked `fleet`).
from fleet import fleet_server, postgres  # noqa: E402,F401


@pytest.fixture(autouse=True)
def no_internal_errors() -> Iterator[None]:
    """The library swallows its own failures in production; in tests each one fails the test."""
    clear_internal_errors()
    yield
    errors = internal_errors()
    clear_internal_errors()
    assert not errors, f"genai_tracing internal errors: {errors}"


@pytest.fixture(autouse=True)
def _fresh_unpriced_warnings() -> Iterator[None]:
    from genai_tracing import _processor

    _processor._warned_unpriced.clear()
    yield


def openai_client(fake: FakeProvider, *, asynchronous: bool = False) -> Any:
    import openai

    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=fake.openai_base_url, api_key="test", max_retries=0)


def anthropic_client(fake: FakeProvider, *, asynchronous: bool = False) -> Any:
    import anthropic

    cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    return cls(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)


def gemini_client(fake: FakeProvider) -> Any:
    """Keep the returned client referenced: a collected client closes its HTTP connection."""
    from google import genai
    from google.genai import types

    return genai.Client(api_key="test", http_options=types.HttpOptions(
        base_url=fake.gemini_base_url, retry_options=types.HttpRetryOptions(attempts=1)))


def llm_spans(trace: Any) -> list[Any]:
    """The spans that stand for a provider call (one per call): priced or flagged unpriced, and
    not a second span of a call another span counts (MLflow traces some calls twice, e.g.
    Gemini's generate_content around _generate_content; both keep what MLflow wrote)."""
    return [s for s in trace.data.spans if (s.attributes.get("mlflow.llm.cost")
            or s.attributes.get("genai_tracing.cost.unpriced"))
            and not s.attributes.get("genai_tracing.counted_on")]


MESSAGES = [{"role": "user", "content": "Say hello"}]


def counts(token_usage: dict[str, int]) -> dict[str, int]:
    """A ``mlflow.chat.tokenUsage`` without the zero-valued cache keys MLflow's autolog writes
    for some SDKs (kept on the span as MLflow wrote them)."""
    return {k: v for k, v in token_usage.items()
            if v or k in ("input_tokens", "output_tokens", "total_tokens")}


# MLflow's own autolog tests run only through tests/mlflow_autolog/run.py (see its README): they
# need MLflow's test files, fetched separately, and take minutes.
collect_ignore = ["mlflow_autolog"]
