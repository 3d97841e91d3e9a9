"""Per-call overhead: the real OpenAI SDK alone, with plain MLflow autolog, with genai_tracing.

    python benchmarks/overhead.py [--calls 2000] [--rounds 4] [--threads 1 8]
                                  [--server-calls 500] [--server-rounds 2]

One process, one loopback fake, a sqlite store per configuration. The configurations take turns
in blocks (their order rotating every round) so machine noise hits them alike; each block starts
with a warm-up and ends with the export queue drained, untimed. genai_tracing runs with pricing
and attribution on (each call inside ``genai_tracing.attribute(user=...)``). Then the price lookup
itself is timed: genai_tracing's cached resolver against LiteLLM's, genai-prices' and MLflow's.

LiteLLM is imported up front, so plain MLflow's export thread cannot hit the half-imported httpx
race during the run (see tests/test_faults.py).

Last, a call's cost against a tracking server, up or down: fresh processes (their order rotating
every round) time ``--server-calls`` calls each with the SDK alone, with genai_tracing exporting to
a real ``mlflow server`` on loopback, and with genai_tracing pointed at a closed port from the
start (the server down: traces cannot be written, the experiment cannot be set), once with the
experiment given to ``enable_tracing()`` and once named in ``MLFLOW_EXPERIMENT_NAME`` instead
(which MLflow itself looks up at trace start). ``--server-only`` runs just these rows, and
``--server-modes`` picks some of them (``sdk up down down-env``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
for _var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
    os.environ.pop(_var, None)

import litellm  # noqa: E402,F401
import mlflow  # noqa: E402
import openai  # noqa: E402

import genai_tracing  # noqa: E402
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say hello"}]
WARM_UP = 50


class Configuration:
    def __init__(self, name: str, folder: str) -> None:
        self.name = name
        self.store = TemporaryStore.create(os.path.join(folder, name.replace(" ", "-")))
        self.made = 0
        self.failed = 0

    def setup(self) -> None:
        pass

    def teardown(self) -> None:
        pass

    def wrap(self, call: Callable[[], Any], number: int) -> Any:
        return call()


class SdkAlone(Configuration):
    pass


class PlainAutolog(Configuration):
    def setup(self) -> None:
        mlflow.set_tracking_uri(self.store.uri)
        mlflow.set_experiment("bench")
        mlflow.openai.autolog()

    def teardown(self) -> None:
        mlflow.openai.autolog(disable=True)
        TemporaryStore.flush(600)


class GenaiTracing(Configuration):
    def setup(self) -> None:
        genai_tracing.enable_tracing(tracking_uri=self.store.uri, experiment="bench",
                                     providers=["openai"])

    def teardown(self) -> None:
        genai_tracing.disable_tracing()
        TemporaryStore.flush(600)

    def wrap(self, call: Callable[[], Any], number: int) -> Any:
        with genai_tracing.attribute(user=f"user-{number % 50}", feature="bench"):
            return call()


def block(config: Configuration, client: Any, calls: int, threads: int) -> tuple[list[float],
                                                                                   float]:
    """``calls`` calls on ``threads`` threads: per-call seconds, and the block's wall time."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one() -> Any:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def work(count: int, offset: int) -> None:
        mine = []
        for i in range(count):
            started = time.perf_counter()
            try:
                config.wrap(one, offset + i)
            except Exception:
                config.failed += 1
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    per_thread = calls // threads
    pool = [threading.Thread(target=work, args=(per_thread, n * per_thread))
            for n in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    config.made += per_thread * threads
    return latencies, time.perf_counter() - started


def stored(config: Configuration) -> int:
    if isinstance(config, SdkAlone):
        return 0
    client = mlflow.MlflowClient(config.store.uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    count, token = 0, None
    while True:
        page = client.search_traces(locations=ids, max_results=1000, page_token=token)
        count += len(page)
        token = page.token
        if not token:
            return count


def per_call_us(function: Callable[[], Any], repeat: int = 20000) -> float:
    for _ in range(200):
        function()
    started = time.perf_counter()
    for _ in range(repeat):
        function()
    return (time.perf_counter() - started) / repeat * 1e6


def price_lookups() -> list[tuple[str, float]]:
    from datetime import datetime, timezone

    from mlflow.tracing.utils import calculate_cost_by_model_and_token_usage

    from genai_tracing import providers
    from genai_tracing._pricing import PriceResolver
    from genai_tracing._pricing import price_call
    from genai_tracing._usage import Usage

    resolver = PriceResolver()
    usage = Usage(input_tokens=1000, output_tokens=200)
    call = providers.Call("openai", "gpt-4o-mini-2024-07-18", usage,
                          requested_model="gpt-4o-mini")
    when = datetime.now(timezone.utc)
    rows = [
        ("genai_tracing: cached resolver lookup",
         per_call_us(lambda: resolver.resolve("gpt-4o-mini", "openai", when))),
        ("genai_tracing: a span's whole pricing (lookup + Decimal cost)",
         per_call_us(lambda: price_call(call, resolver, when))),
        ("litellm.cost_per_token",
         per_call_us(lambda: litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=1000,
                                                    completion_tokens=200), 5000)),
        ("mlflow calculate_cost_by_model_and_token_usage",
         per_call_us(lambda: calculate_cost_by_model_and_token_usage(
             "gpt-4o-mini", {"input_tokens": 1000, "output_tokens": 200,
                             "total_tokens": 1200}), 5000)),
    ]
    try:
        import genai_prices

        gp_usage = genai_prices.Usage(input_tokens=1000, output_tokens=200)
        rows.append(("genai_prices.calc_price", per_call_us(
            lambda: genai_prices.calc_price(gp_usage, "gpt-4o-mini", provider_id="openai"),
            5000)))
    except Exception as e:  # an API change there must not stop the rest of the report
        rows.append((f"genai_prices.calc_price (failed: {e})", float("nan")))
    return rows


SERVER_CHILD = """
import json, os, statistics, sys, time
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm  # noqa: F401
import openai
import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage

mode, uri, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
fake = FakeProvider(usage=FakeUsage(input_tokens=1000, output_tokens=200)).start()
client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
if mode == "down-env":  # the experiment named in MLFLOW_EXPERIMENT_NAME (set by the parent)
    genai_tracing.enable_tracing(tracking_uri=uri, providers=["openai"])
elif mode != "sdk":
    genai_tracing.enable_tracing(tracking_uri=uri, experiment="bench", providers=["openai"])

def call(number):
    if mode == "sdk":
        return client.chat.completions.create(model="gpt-4o-mini",
                                              messages=[{"role": "user", "content": "hi"}])
    with genai_tracing.attribute(user=f"user-{number % 50}", feature="bench"):
        return client.chat.completions.create(model="gpt-4o-mini",
                                              messages=[{"role": "user", "content": "hi"}])

for number in range(50):
    call(number)
ms = []
for number in range(calls):
    started = time.perf_counter()
    call(number)
    ms.append((time.perf_counter() - started) * 1000)
print(json.dumps(ms), flush=True)
os._exit(0)  # now: the exit flush would wait for a server that is down
"""
SERVER_MODES = {"sdk": "SDK alone", "up": "genai_tracing, server up",
                "down": "genai_tracing, server down",
                "down-env": "server down, MLFLOW_EXPERIMENT_NAME"}


def server_rows(calls: int, rounds: int, modes: list[str] | None = None
                ) -> dict[str, list[float]]:
    """Per-call ms for each mode, from fresh processes against a real mlflow server and a
    closed port."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    from fleet import mlflow_server  # a server kept in its own folder, artifacts included

    # Bound and never listening for the whole run: connections are refused, and no server
    # started meanwhile (the mlflow server below picks a free port too) can take the port.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{holder.getsockname()[1]}"
    modes = modes or list(SERVER_MODES)
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    # Not this process's MLflow settings: mlflow.set_experiment() above exported an experiment
    # name, and with the server down MLflow would look it up over HTTP at every trace start.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GENAI_"))}
    with tempfile.TemporaryDirectory() as folder:
        store = TemporaryStore.create(folder)
        server = mlflow_server(store.uri, Path(folder), workers=1).start()
        url = server.url
        try:
            for round_number in range(rounds):
                shift = round_number % len(modes)
                for mode in modes[shift:] + modes[:shift]:
                    uri = {"sdk": "", "up": url, "down": closed, "down-env": closed}[mode]
                    child_env = dict(env, MLFLOW_EXPERIMENT_NAME="bench") \
                        if mode == "down-env" else env
                    out = subprocess.run([sys.executable, "-c", SERVER_CHILD, mode, uri,
                                          str(calls)], capture_output=True, text=True,
                                         check=True, timeout=3600, env=child_env)
                    results[mode] += json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            server.stop()
            holder.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per configuration "
                        "and thread count, split over the rounds")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--server-calls", type=int, default=500,
                        help="timed calls per process in the server up / down rows (0: skip)")
    parser.add_argument("--server-rounds", type=int, default=2)
    parser.add_argument("--server-only", action="store_true",
                        help="only the rows against a tracking server")
    parser.add_argument("--server-modes", nargs="+", choices=list(SERVER_MODES),
                        help="which server rows (default: all)")
    args = parser.parse_args()

    started = time.perf_counter()
    if args.server_only:
        print_server_rows(args)
        print(f"({time.perf_counter() - started:.0f} s in all)")
        return
    with tempfile.TemporaryDirectory() as folder, FakeProvider(
            usage=FakeUsage(input_tokens=1000, output_tokens=200)) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        configs: list[Configuration] = [SdkAlone("SDK alone", folder),
                                        PlainAutolog("plain MLflow autolog", folder),
                                        GenaiTracing("genai_tracing", folder)]
        results: dict[tuple[str, int], tuple[list[float], float]] = {}
        per_block = max(args.calls // args.rounds, 1)
        for threads in args.threads:
            for round_number in range(args.rounds):
                shift = round_number % len(configs)
                for config in configs[shift:] + configs[:shift]:
                    config.setup()
                    try:
                        block(config, client, WARM_UP, 1)
                        latencies, wall = block(config, client, per_block, threads)
                    finally:
                        config.teardown()
                    so_far = results.setdefault((config.name, threads), ([], 0.0))
                    results[(config.name, threads)] = (so_far[0] + latencies, so_far[1] + wall)
        kept = {c.name: stored(c) for c in configs}

    print(f"Per call, real OpenAI SDK against a loopback fake, sqlite store; {args.rounds} "
          f"interleaved rounds, {per_block * args.rounds} timed calls per row.")
    header = (f"{'configuration':24} {'threads':>7} {'median ms':>9} {'p99 ms':>8} "
              f"{'calls/s':>8} {'x SDK':>6} {'x MLflow':>8}")
    print(header)
    for threads in args.threads:
        base_sdk = _summary(*results[("SDK alone", threads)])
        base_mlflow = _summary(*results[("plain MLflow autolog", threads)])
        for config in configs:
            median, p99, rate = _summary(*results[(config.name, threads)])
            print(f"{config.name:24} {threads:7d} {median:9.2f} {p99:8.2f} {rate:8.0f} "
                  f"{median / base_sdk[0]:6.2f} {median / base_mlflow[0]:8.2f}")
        print(f"{'':24} {'':7} throughput genai_tracing / plain MLflow: "
              f"{_summary(*results[('genai_tracing', threads)])[2] / base_mlflow[2]:.2f}")
    print()
    print(f"{'configuration':24} {'calls made':>10} {'traces stored':>13} {'failed':>6}")
    for config in configs[1:]:
        print(f"{config.name:24} {config.made:10d} {kept[config.name]:13d} {config.failed:6d}")
    print()
    print(f"{'price lookup':62} {'us/call':>8}")
    for name, us in price_lookups():
        print(f"{name:62} {us:8.1f}")
    if args.server_calls:
        print()
        print_server_rows(args)
    print(f"({time.perf_counter() - started:.0f} s in all)")


def print_server_rows(args: argparse.Namespace) -> None:
    modes = args.server_modes or list(SERVER_MODES)
    rows = server_rows(args.server_calls, args.server_rounds, modes)
    print(f"Per call against a tracking server, 1 thread, fresh processes; "
          f"{args.server_rounds} rounds of {args.server_calls} timed calls per row.")
    print(f"{'configuration':36} {'median ms':>9} {'p99 ms':>8} {'+ms over SDK':>12}")
    sdk = statistics.median(rows["sdk"]) if "sdk" in rows else float("nan")
    for mode in modes:
        ordered = sorted(rows[mode])
        median = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"{SERVER_MODES[mode]:36} {median:9.2f} {p99:8.2f} {median - sdk:12.2f}")


def _summary(latencies: list[float], wall: float) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000, len(ordered) / wall


if __name__ == "__main__":
    main()
