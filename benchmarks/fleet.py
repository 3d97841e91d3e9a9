"""Traces a fleet stores without loss: the FastAPI example on uvicorn workers, one tracking store.

    python benchmarks/fleet.py [--store postgres|sqlite|both] [--requests 400 1000]
                               [--users 20] [--threads 20] [--workers 4] [--replicas 1]

The fleet is real processes on loopback, as in tests/test_fleet.py: examples/image_service under
``uvicorn --workers N`` plus ``--replicas`` independent single-worker app processes, each worker
answering from its own fake Gemini. The store is either ``mlflow server --workers 2`` on a fresh
PostgreSQL (fsync on, as in production), or one sqlite file that every app process writes itself.
A thread pool sends each burst as fast as the apps answer; then the script waits until the store
holds every trace. It prints, per burst: requests answered per second, traces stored per second
(first request to last trace stored, the rate the fleet sustained), traces lost or duplicated,
and traces with a wrong user or cost. Needs Debian's postgresql for the PostgreSQL rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from fleet import (Postgres, burst, clean_env, group_cpu_seconds, image_service,  # noqa: E402
                   mlflow_server, start_all, unavailable_reason, wait_stored)

M = 1_000_000
PRICES = {"models": {"gemini-2.5-flash-image": {
    "input_per_million": 0.3, "output_per_million": 2.5, "image_output_per_million": 30.0}}}
COST = 12 * 0.3 / M + 1290 * 30.0 / M  # the example's fake: 12 tokens in, 1290 image tokens out


def _right(info: object, email: str) -> bool:
    cost = (getattr(info, "cost", None) or {}).get("total_cost")
    return (info.request_metadata.get("mlflow.trace.user") == email  # type: ignore[attr-defined]
            and cost is not None and abs(cost - COST) <= COST * 1e-12)


def cpu(groups: dict[str, int]) -> dict[str, float]:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    return {**{name: group_cpu_seconds(pid) for name, pid in groups.items()},
            "this script": own.ru_utime + own.ru_stime}


def run(store: str, uri: str, folder: Path, args: argparse.Namespace,
        groups: dict[str, int]) -> None:
    prices = folder / "prices.json"
    prices.write_text(json.dumps(PRICES))
    for requests in args.requests:
        experiment = f"bench-{uuid.uuid4().hex[:8]}"
        env = clean_env(MLFLOW_TRACKING_URI=uri, GENAI_TRACING_EXPERIMENT=experiment,
                        GENAI_TRACING_PRICES=str(prices), GENAI_TRACING_PROVIDERS="gemini")
        env.pop("GEMINI_API_KEY", None)
        apps = [image_service(folder / f"app-{experiment}", env, workers=args.workers)]
        apps += [image_service(folder / f"replica{r}-{experiment}", env, workers=1)
                 for r in range(args.replicas)]
        started = time.perf_counter()
        start_all(apps)
        start_seconds = time.perf_counter() - started
        try:
            watched = [*groups, "this script", "apps"]
            before = {**cpu(groups), "apps": sum(group_cpu_seconds(a.process.pid)
                                                 for a in apps if a.process)}
            sent = burst([a.url for a in apps], requests=requests, users=args.users,
                         threads=args.threads, timeout=300)
            traces, waited = wait_stored(uri, experiment, requests, timeout=600)
            after = {**cpu(groups), "apps": sum(group_cpu_seconds(a.process.pid)
                                                for a in apps if a.process)}
        finally:
            for app in apps:
                app.stop()
        ids = [t.info.trace_id for t in traces]
        by_id = {t.info.trace_id: t for t in traces}
        wrong = [by_id[trace_id].info for email, trace_id in zip(sent.emails, sent.trace_ids)
                 if trace_id in by_id and not _right(by_id[trace_id].info, email)]
        answered = sum(1 for s in sent.statuses if s == 200)
        lost = len(set(t for t in sent.trace_ids if t) - set(by_id))
        print(f"{store:8s} {args.workers} workers + {args.replicas} replica(s), "
              f"{requests} requests from {args.users} users on {args.threads} threads: "
              f"apps up in {start_seconds:.1f} s; "
              f"answered {answered}/{requests} in {sent.seconds:.1f} s "
              f"({answered / sent.seconds:.1f}/s); "
              f"all stored {waited:.1f} s after the last reply "
              f"({len(by_id) / (sent.seconds + waited):.1f} traces/s sustained); "
              f"lost {lost}, duplicated {len(ids) - len(by_id)}, wrong user or cost "
              f"{len(wrong)}; errors {requests - answered}", flush=True)
        busy = sent.seconds + waited
        print("  CPU seconds used meanwhile (of " + f"{busy * (os.cpu_count() or 1):.0f} "
              "on the machine): " + ", ".join(f"{name} {after[name] - before[name]:.1f}"
                                         for name in watched), flush=True)
        for info in wrong[:3]:
            print(f"  wrong: {info.trace_id} state={info.state} cost={info.cost} "
                  f"tokens={info.token_usage} metadata={info.request_metadata}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--store", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument("--requests", type=int, nargs="+", default=[400, 1000])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="genai-tracing-fleet-bench-"))
    try:
        run_stores(folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_stores(folder: Path, args: argparse.Namespace) -> None:
    if args.store in ("sqlite", "both"):
        from genai_tracing.testing import TemporaryStore

        store = TemporaryStore.create(folder / "sqlite")  # migrated once, before the writers
        run("sqlite", store.uri, folder, args, {})
    if args.store in ("postgres", "both"):
        reason = unavailable_reason()
        if reason is not None:
            print(f"postgres: skipped: {reason}")
            return
        pg = Postgres.start(durable=True)
        server = mlflow_server(pg.create_database("mlflow"), folder / "server", workers=2)
        try:
            server.start()
            assert server.process is not None and pg.process is not None
            run("postgres", server.url, folder, args,
                {"mlflow server": server.process.pid, "postgres": pg.process.pid})
        finally:
            server.stop()
            pg.stop()


if __name__ == "__main__":
    main()
