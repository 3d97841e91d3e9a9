"""One worker of a fleet under a ``scope="fleet"`` budget, run as its own process by test_fleet.

``python budget_worker.py URI EXPERIMENT LIMIT CALLS PAUSE FIRED_FILE CALLS_FILE``: enables
tracing on ``URI``, sets a daily fleet budget of ``LIMIT`` USD whose callback appends one JSON
line to ``FIRED_FILE``, then makes ``CALLS`` real OpenAI SDK calls against its own loopback fake
(100,000 tokens in, 10,000 out: $0.021 at the test's price), ``PAUSE`` seconds apart, appending
``{"trace_id", "end"}`` per call to ``CALLS_FILE``. It stays up until the budget's documented
delay has passed after its last call, so a claim it started can finish, then prints what its
``check_budget()`` says and exits.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

import mlflow

import genai_tracing
from genai_tracing import _budget_store
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

PRICES = {"models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}}
_write = threading.Lock()


def append(path: str, record: dict) -> None:
    with _write, open(path, "a") as out:
        out.write(json.dumps(record) + "\n")


def main(uri: str, experiment: str, limit: str, calls: int, pause: float, fired: str,
         made: str) -> None:
    import openai

    def on_exceeded(event: genai_tracing.BudgetExceeded) -> None:
        append(fired, {"pid": os.getpid(), "at": time.time(), "spent": str(event.spent),
                       "period": event.period, "trace_id": event.trace_id})

    genai_tracing.enable_tracing(tracking_uri=uri, experiment=experiment, prices=PRICES)
    genai_tracing.set_budget(limit, per="day", scope="fleet", on_exceeded=on_exceeded)
    with FakeProvider() as fake:
        fake.usage = FakeUsage(input_tokens=100_000, output_tokens=10_000)
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        for _ in range(calls):
            client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": "hi"}])
            append(made, {"pid": os.getpid(), "trace_id": mlflow.get_last_active_trace_id(),
                          "end": time.time()})
            time.sleep(pause)
    TemporaryStore.flush()
    time.sleep(_budget_store.delay_seconds() + 3)
    try:
        genai_tracing.check_budget()
        print("within budget", flush=True)
    except genai_tracing.BudgetExceeded as e:
        print(f"exceeded {e.spent}", flush=True)


if __name__ == "__main__":
    uri, experiment, limit, calls, pause, fired, made = sys.argv[1:8]
    main(uri, experiment, limit, int(calls), float(pause), fired, made)
