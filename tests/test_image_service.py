"""examples/image_service: the FastAPI app through its real ASGI interface, 50 requests at once.

The app's google-genai client talks to the loopback fake, which answers slowly enough that all
50 requests are in flight together; every trace must still carry its own request's user.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import httpx
import pytest

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import gemini_client

APP = Path(__file__).resolve().parents[1] / "examples" / "image_service" / "app.py"
USERS = [f"user{i}@example.com" for i in range(5)]
REQUESTS = 50
M = 1_000_000
# USD: $0.30 per million input tokens, $30 per million image output tokens.
PRICES = {"models": {"gemini-2.5-flash-image": {"input_per_million": 0.3,
                                                "output_per_million": 2.5,
                                                "image_output_per_million": 30.0}}}


def load_app_module():
    spec = importlib.util.spec_from_file_location("image_service_app", APP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.asyncio
async def test_50_concurrent_requests_from_5_users_are_each_attributed_right(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    fake_provider.usage = FakeUsage(input_tokens=20, output_tokens=1290, image_output_tokens=1290)
    fake_provider.delay = 0.2
    client = gemini_client(fake_provider)
    app = load_app_module().create_app(client=client, prices=PRICES)
    requests = [{"email": USERS[i % len(USERS)], "prompt": f"picture {i}",
                 "aspect_ratio": ("1:1", "16:9", "9:16")[i % 3]} for i in range(REQUESTS)]

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            replies = await asyncio.gather(*(http.post("/images", json=r) for r in requests))
        calls_made = len(fake_provider.requests)

    assert [r.status_code for r in replies] == [200] * REQUESTS
    assert calls_made == REQUESTS
    assert all(r.json()["image_base64"] for r in replies)
    traces = {t.info.trace_id: t for t in mlflow_store.traces()}
    assert len(traces) == REQUESTS
    for request, reply in zip(requests, replies):
        trace = traces[reply.json()["trace_id"]]
        assert trace.info.trace_metadata["mlflow.trace.user"] == request["email"]
        assert trace.info.tags["aspect_ratio"] == request["aspect_ratio"]
        assert trace.info.tags["feature"] == "images"
        root = next(s for s in trace.data.spans if s.parent_id is None)
        assert root.inputs["prompt"] == request["prompt"]      # the trace is this request's
        # 20 input tokens at $0.30/M and 1290 image tokens at $30/M.
        assert trace.info.cost["total_cost"] == pytest.approx((20 * 0.3 + 1290 * 30.0) / M)

    report = genai_tracing.cost_report(by="user")
    assert sorted(report["user"]) == USERS
    assert report["requests"].tolist() == [10] * 5
    assert report["total_cost"].tolist() == pytest.approx([10 * (20 * 0.3 + 1290 * 30.0) / M] * 5)


@pytest.mark.asyncio
async def test_bad_requests_are_refused_before_any_call(fake_provider, mlflow_store):
    app = load_app_module().create_app(client=gemini_client(fake_provider))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://app") as http:
            not_an_email = await http.post("/images", json={"email": "ana", "prompt": "x"})
            bad_ratio = await http.post("/images", json={"email": "a@b.co", "prompt": "x",
                                                         "aspect_ratio": "7:3"})
    assert (not_an_email.status_code, bad_ratio.status_code) == (422, 422)
    assert fake_provider.requests == []
