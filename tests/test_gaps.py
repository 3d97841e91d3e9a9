"""A trace whose total leaves unpriced calls out carries the tag ``cost`` (``partial`` or
``unpriced``) in the store, and the CLI report says under its table how many calls it left out."""

from __future__ import annotations

import io

import mlflow
import pytest

import genai_tracing
from genai_tracing.cli import main
from genai_tracing.testing import FakeUsage

from conftest import MESSAGES, openai_client

PRICES = {"models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}}


def request(client, *models: str, **tags: str) -> str:
    with genai_tracing.attribute(**tags), mlflow.start_span("handle_request") as root:
        for model in models:
            client.chat.completions.create(model=model, messages=MESSAGES)
    return root.trace_id


def test_partial_and_unpriced_traces_are_tagged_and_counted(fake_provider, mlflow_store):
    genai_tracing.enable_tracing(prices=PRICES)
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=100)
    client = openai_client(fake_provider)
    partial = request(client, "gpt-4o-mini", "mystery-model")
    unpriced = request(client, "mystery-model", "mystery-model")
    priced = request(client, "gpt-4o-mini")
    users_own = request(client, "mystery-model", cost="high")   # a tag the user chose stays

    tags = {t: mlflow_store.get_trace(t).info.tags.get("cost")
            for t in (partial, unpriced, priced, users_own)}
    assert tags == {partial: "partial", unpriced: "unpriced", priced: None, users_own: "high"}
    # The priced part of the partial trace: 1000 * 0.15 / 1e6 + 100 * 0.6 / 1e6.
    assert mlflow_store.get_trace(partial).info.cost["total_cost"] == pytest.approx(
        1000 * 0.15 / 1e6 + 100 * 0.6 / 1e6, rel=1e-12)

    out, err = io.StringIO(), io.StringIO()
    code = main(["report", "--by", "user", "--tracking-uri", mlflow_store.uri], out=out, err=err)

    assert (code, err.getvalue()) == (0, "")
    assert "\n4 calls unpriced in 3 traces: the totals leave them out." in out.getvalue()
    assert "genai-tracing reprice" in out.getvalue()
    frame = genai_tracing.cost_report(by="model")
    assert (frame.attrs["unpriced_calls"], frame.attrs["unpriced_traces"]) == (4, 3)
    partial_only = genai_tracing.cost_report(filter="tags.cost = 'partial'")
    assert partial_only.attrs["traces"] == 1 and partial_only["unpriced_calls"].sum() == 1


def test_no_footer_when_every_call_is_priced(fake_provider, mlflow_store):
    genai_tracing.enable_tracing(prices=PRICES)
    request(openai_client(fake_provider), "gpt-4o-mini")
    mlflow_store.flush()
    out = io.StringIO()
    assert main(["report", "--tracking-uri", mlflow_store.uri], out=out, err=io.StringIO()) == 0
    assert "unpriced in" not in out.getvalue()
