"""Load at full size: a 2,000-call burst on 8 threads and 200 concurrent asyncio tasks.

One child process makes every call, each in its own attributed trace, and exits the moment its
last call returns, so the bounded flush at exit has to write what is still queued. The test then
reads the store back: every trace is there, each with exactly its own span, user, request and
cost (nothing lost, nothing mixed), and the summed cost equals the hand-computed total to the cent.

Calls alternate between four models with different prices, so a span or a user that ended up in
another call's trace would show as a wrong cost, not pass unnoticed.

``GENAI_TRACING_LOAD_CALLS`` (default 2000) sets the number of threaded calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path
import pytest

from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

pytestmark = pytest.mark.load

CALLS = int(os.environ.get("GENAI_TRACING_LOAD_CALLS", "2000"))
THREADS = 8
TASKS = 200
USAGE = FakeUsage(input_tokens=1234, output_tokens=321)
# USD per million tokens (input, output); one model per call in turn.
RATES = {
    "load-model-a": ("0.15", "0.60"),
    "load-model-b": ("2.50", "10.00"),
    "load-model-c": ("0.07", "0.30"),
    "load-model-d": ("15.00", "75.00"),
}
MODELS = sorted(RATES)
# Bounded, but loose enough for 2 shared cores: the flush itself is what is being waited for.
EXIT_BOUND_S = 240

CHILD = textwrap.dedent("""
    import asyncio, json, os, sys, threading, time

    import openai

    import genai_tracing
    from genai_tracing import _guard

    uri, base_url, prices, calls, threads, tasks = sys.argv[1:7]
    calls, threads, tasks = int(calls), int(threads), int(tasks)
    genai_tracing.enable_tracing(tracking_uri=uri, experiment="load", providers=["openai"],
                                 prices=json.loads(prices))
    models = sorted(json.loads(prices)["models"])
    answers, failures = [], []

    def call(client, user, number):
        with genai_tracing.attribute(user=user):
            return client.chat.completions.create(
                model=models[number % len(models)],
                messages=[{"role": "user", "content": f"request of {user}"}])

    def worker(n):
        client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=0)
        for i in range(calls // threads):
            number = n * (calls // threads) + i
            try:
                answers.append(call(client, f"thread-{n}-{i}", number).choices[0].message.content)
            except Exception as e:
                failures.append(repr(e))

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    started = time.time()
    for t in pool:
        t.start()
    for t in pool:
        t.join()

    async def attributed(client, n, gate):
        user = f"task-{n}"
        with genai_tracing.attribute(user=user):
            await gate.wait()  # all tasks open their attribution before any call is made
            reply = await client.chat.completions.create(
                model=models[n % len(models)],
                messages=[{"role": "user", "content": f"request of {user}"}])
        return reply.choices[0].message.content

    async def main():
        client = openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0)
        gate = asyncio.Event()
        running = [asyncio.create_task(attributed(client, n, gate)) for n in range(tasks)]
        await asyncio.sleep(0)
        gate.set()
        for result in await asyncio.gather(*running, return_exceptions=True):
            (failures.append(repr(result)) if isinstance(result, BaseException)
             else answers.append(result))

    asyncio.run(main())
    print(json.dumps({"at": time.time(), "seconds": time.time() - started,
                      "answers": len(answers), "distinct_answers": sorted(set(answers)),
                      "failures": failures[:5], "failed": len(failures),
                      "dropped": genai_tracing.dropped_traces(),
                      "internal_errors": [str(e) for e in _guard.internal_errors()][:5]}),
          flush=True)
    # ...and exit at once, with traces still queued: the exit flush must write them all.
""")


def expected_cost(model: str) -> Decimal:
    rate_in, rate_out = RATES[model]
    return (USAGE.input_tokens * Decimal(rate_in)
            + USAGE.output_tokens * Decimal(rate_out)) / 1_000_000


def test_a_burst_on_8_threads_and_200_tasks_is_stored_whole_and_unmixed(
        fake_provider: FakeProvider, tmp_path: Path) -> None:
    fake_provider.usage = USAGE
    fake_provider.text = "the answer"
    store = TemporaryStore.create(tmp_path / "load")
    uri = store.uri
    prices = {"models": {m: {"input_per_million": float(i), "output_per_million": float(o)}
                         for m, (i, o) in RATES.items()}}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GENAI_TRACING_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, uri, fake_provider.openai_base_url, json.dumps(prices),
         str(CALLS), str(THREADS), str(TASKS)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = child.communicate(timeout=EXIT_BOUND_S + 600)
    finally:
        child.kill()
    exited_at = time.time()
    assert child.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    made = CALLS + TASKS

    # The user's side: every call answered, nothing from the library raised or went wrong.
    assert report["failed"] == 0, report["failures"]
    assert report["answers"] == made and report["distinct_answers"] == ["the answer"]
    assert report["internal_errors"] == []
    assert report["dropped"] == 0
    # Exit right after the last call is bounded, and (below) still wrote every trace.
    exit_seconds = exited_at - report["at"]
    assert exit_seconds < EXIT_BOUND_S, f"exit took {exit_seconds:.0f} s"

    expected: dict[str, str] = {}  # user -> model
    per_thread = CALLS // THREADS
    for n in range(THREADS):
        for i in range(per_thread):
            expected[f"thread-{n}-{i}"] = MODELS[(n * per_thread + i) % len(MODELS)]
    for n in range(TASKS):
        expected[f"task-{n}"] = MODELS[n % len(MODELS)]

    traces = store.traces()
    assert len(traces) == made  # nothing lost
    seen: set[str] = set()
    total = Decimal(0)
    for trace in traces:
        user = trace.info.request_metadata["mlflow.trace.user"]
        assert user not in seen  # one trace per call
        seen.add(user)
        model = expected[user]
        spans = trace.data.spans
        assert len(spans) == 1  # exactly its own span: nothing from another call
        (span,) = spans
        assert f"request of {user}" in json.dumps(span.inputs)  # its own request
        assert span.attributes["mlflow.llm.model"] == model
        assert span.attributes["mlflow.chat.tokenUsage"]["input_tokens"] == USAGE.input_tokens
        cost = expected_cost(model)
        assert Decimal(str(span.attributes["mlflow.llm.cost"]["total_cost"])) == cost
        assert Decimal(str(trace.info.cost["total_cost"])) == cost
        assert trace.info.request_metadata["genai_tracing.cost.complete"] == "true"
        total += Decimal(str(trace.info.cost["total_cost"]))
    assert seen == set(expected)

    hand_total = sum(expected_cost(m) for m in expected.values())
    assert round(total, 2) == round(hand_total, 2)  # to the cent
    assert total == hand_total  # and in fact exactly
