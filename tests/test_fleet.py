"""A fleet: one ``mlflow server --workers 2`` on PostgreSQL, written to by many processes.

The session's PostgreSQL and server come from ``tests/fleet.py`` (fixtures ``postgres`` and
``fleet_server``); each test writes to an experiment of its own there. Every trace must be stored
exactly once, with its own user, its tokens and the cost computed here by hand.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import mlflow
import pytest

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, openai_client

pytestmark = pytest.mark.fleet

M = 1_000_000
TOKENS = ("input_tokens", "output_tokens", "total_tokens")
PRICES = {"models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}}


def gpt_4o_mini_cost(input_tokens: int, output_tokens: int) -> float:
    return input_tokens * 0.15 / M + output_tokens * 0.6 / M


def stored_traces(uri: str, experiment_id: str) -> list[Any]:
    """Every trace of the experiment, read back through the server (spans left out)."""
    client = mlflow.MlflowClient(uri)
    found: list[Any] = []
    token = None
    while True:
        page = client.search_traces(locations=[experiment_id], max_results=500,
                                    page_token=token, include_spans=False)
        found.extend(page)
        token = page.token
        if not token:
            return found


def test_traces_on_a_postgres_backed_server_are_stored_once_with_user_tokens_and_cost(
        fake_provider: FakeProvider, fleet_server: str, tmp_path: Path) -> None:
    calls = [("ana@example.com", 1_200, 300), ("bo@example.com", 700, 90),
             ("ana@example.com", 5, 1), ("cy@example.com", 100_000, 2_000)]
    made: dict[str, tuple[str, int, int]] = {}
    with TemporaryStore(folder=tmp_path, uri=fleet_server):
        config = genai_tracing.enable_tracing(tracking_uri=fleet_server, prices=PRICES,
                                              experiment=f"fleet-{uuid.uuid4().hex[:8]}")
        client = openai_client(fake_provider)
        for user, input_tokens, output_tokens in calls:
            fake_provider.usage = FakeUsage(input_tokens=input_tokens,
                                            output_tokens=output_tokens)
            with genai_tracing.attribute(user=user):
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            made[mlflow.get_last_active_trace_id()] = (user, input_tokens, output_tokens)
        TemporaryStore.flush()
        traces = stored_traces(fleet_server, config.experiment_id)

    assert sorted(t.info.trace_id for t in traces) == sorted(made)  # each once, nothing else
    for trace in traces:
        user, input_tokens, output_tokens = made[trace.info.trace_id]
        info = trace.info
        assert info.request_metadata["mlflow.trace.user"] == user
        # The three counts (MLflow may add cache keys beside them).
        assert {k: info.token_usage[k] for k in TOKENS} == {
            "input_tokens": input_tokens, "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens}
        assert info.cost["total_cost"] == pytest.approx(
            gpt_4o_mini_cost(input_tokens, output_tokens), rel=1e-12)
    total = sum(t.info.cost["total_cost"] for t in traces)
    assert total == pytest.approx(sum(gpt_4o_mini_cost(i, o) for _, i, o in calls), rel=1e-12)
