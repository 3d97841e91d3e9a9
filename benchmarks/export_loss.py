"""Traces stored vs calls made in a burst: plain MLflow autolog against genai_tracing.

    python benchmarks/export_loss.py [--calls 2100] [--threads 1 8]

Each configuration runs in a fresh interpreter (MLflow sizes its export queue when its exporter is
created) with the real OpenAI SDK against the loopback fake and a sqlite store. The calls go as
fast as they can; then the process waits for MLflow's export queue to drain and counts what the
store holds. Plain MLflow drops traces once its queue of 1,000 tasks (two per trace) is full
("Trace export queue is full, trace will be discarded").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, os, sys, threading, time
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # noqa: F401 - imported up front, so plain MLflow does not hit the import race
from genai_tracing.testing import FakeProvider, TemporaryStore

mode, calls, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = TemporaryStore.create(sys.argv[4])
fake = FakeProvider().start()
if mode == "plain":
    import mlflow
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_experiment("bench")
    mlflow.openai.autolog()
else:
    import genai_tracing
    genai_tracing.enable_tracing(tracking_uri=store.uri, experiment="bench",
                                 providers=["openai"])
import mlflow, openai

client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
failures = []

def work(count):
    for _ in range(count):
        try:
            client.chat.completions.create(model="gpt-4o-mini",
                                           messages=[{"role": "user", "content": "hi"}])
        except Exception as e:
            failures.append(repr(e))

started = time.perf_counter()
pool = [threading.Thread(target=work, args=(calls // threads,)) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
called = time.perf_counter()
mlflow.flush_trace_async_logging()
drained = time.perf_counter()
client_ = mlflow.MlflowClient(store.uri)
ids = [e.experiment_id for e in client_.search_experiments()]
stored, token = 0, None
while True:
    page = client_.search_traces(locations=ids, max_results=1000, page_token=token)
    stored += len(page)
    token = page.token
    if not token:
        break
print(json.dumps({"calls": calls // threads * threads, "stored": stored,
                  "failures": len(failures), "call_s": called - started,
                  "drain_s": drained - called}))
"""


def run(mode: str, calls: int, threads: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GENAI_"))}
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, "-c", CHILD, mode, str(calls), str(threads),
                              folder], capture_output=True, text=True, env=env, cwd=folder,
                             timeout=1800)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2100)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{'configuration':24} {'threads':>7} {'calls':>6} {'stored':>6} {'lost':>6} "
          f"{'failed':>6} {'calls s':>8} {'drain s':>8}")
    for threads in args.threads:
        for mode, name in (("plain", "plain MLflow autolog"), ("genai", "genai_tracing")):
            r = run(mode, args.calls, threads)
            lost = r["calls"] - r["stored"]
            print(f"{name:24} {threads:7d} {r['calls']:6d} {r['stored']:6d} {lost:6d} "
                  f"{r['failures']:6d} {r['call_s']:8.1f} {r['drain_s']:8.1f}", flush=True)
    print(f"({time.perf_counter() - started:.0f} s in all; sqlite store, loopback fake)")


if __name__ == "__main__":
    main()
