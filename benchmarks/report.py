"""How long ``cost_report()`` and ``latency_report()`` take on a store of 10,000 traces.

    python benchmarks/report.py [--traces 10000] [--templates 60] [--repeat 3] [--keep DIR]
                                [--without-breakdown]

MLflow's exporter writes about 30 traces a second to sqlite, so filling the store through it would
take minutes. The script therefore traces ``--templates`` requests for real: MLflow's tracer, with
genai_tracing's span processor pricing spans shaped like the OpenAI and Anthropic autolog spans,
1 to 3 calls per request. It then copies those requests' rows inside the store, in one sqlite
transaction, into ``--traces`` requests spread over 30 days, 200 users, 40 sessions and 3
features, each with its own trace id and times. Every stored trace thus looks like one the library
wrote itself. A check compares the report's total with the sum of the copies' costs.

Prints the fill time and, for each report, the median of ``--repeat`` runs. Reports by model
read the per-model breakdown each trace carries; ``--without-breakdown`` deletes it first, to
time the fallback that reads the spans of traces written before it existed.

Each report runs from two sources, side by side in one run, and must give the same frame from
both: on sqlite, read from the store's tables (``tables``, what reports do) and through MLflow's
trace search (``search``, as before); with ``--store postgres``, through ``mlflow server``
(``server``, MLflow's REST search) and from the server's PostgreSQL database given as the
tracking URI (``database``, its tables).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

DAYS = 30
USERS = [f"user{i:03d}@example.com" for i in range(200)]
SESSIONS = [f"session-{i:02d}" for i in range(40)]
FEATURES = ["search", "chat", "summaries"]
# (span name, message format, model, USD per million in/out as LiteLLM's map has them)
CALLS = [
    ("Completions", "openai", "gpt-4o-mini"),
    ("Completions", "openai", "gpt-4o"),
    ("Completions", "openai", "o4-mini"),
    ("Messages.create", "anthropic", "claude-sonnet-4-5"),
    ("Messages.create", "anthropic", "claude-haiku-4-5"),
]
# The tables holding one trace's rows, and the column naming the trace in each.
TRACE_TABLES = {"trace_info": "request_id", "trace_tags": "request_id",
                "trace_request_metadata": "request_id", "trace_metrics": "request_id",
                "spans": "trace_id", "span_metrics": "trace_id"}


def trace_templates(count: int, rng: random.Random) -> None:
    """Real traces through MLflow's tracer and genai_tracing's processor."""
    import mlflow

    import genai_tracing

    start = (int(time.time()) - 3600) * 1_000_000_000
    for n in range(count):
        prompt = "x" * rng.randint(20, 4000)
        latency_ms = 300 + len(prompt) // 4 + rng.randint(0, 400)
        t0 = start + n * 1_000_000_000
        with genai_tracing.attribute(user=USERS[0], session=SESSIONS[0], feature=FEATURES[0]):
            root = mlflow.start_span_no_context("handle_request", inputs={"prompt": prompt},
                                                start_time_ns=t0)
            calls = rng.randint(1, 3)
            for i in range(calls):
                name, fmt, model = rng.choice(CALLS)
                t1 = t0 + 1_000_000 + i * latency_ms * 1_000_000 // calls
                messages = [{"role": "user", "content": prompt}]
                span = mlflow.start_span_no_context(
                    name, span_type="CHAT_MODEL", parent_span=root,
                    inputs={"model": model, "messages": messages},
                    attributes={"mlflow.message.format": fmt}, start_time_ns=t1)
                in_tokens, out_tokens = len(prompt) // 4 + 20, rng.randint(20, 800)
                usage = ({"prompt_tokens": in_tokens, "completion_tokens": out_tokens}
                         if fmt == "openai" else
                         {"input_tokens": in_tokens, "output_tokens": out_tokens})
                span.end(outputs={"model": model, "usage": usage},
                         end_time_ns=t1 + (latency_ms - 5) * 1_000_000 // calls)
            root.end(outputs="ok", end_time_ns=t0 + latency_ms * 1_000_000)


def copy_traces(db: Path, total: int, rng: random.Random) -> Decimal:
    """Copy the traced requests into ``total`` requests; returns the copies' summed cost."""
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    columns = {table: [row["name"] for row in connection.execute(
        f"PRAGMA table_xinfo({table})") if row["hidden"] == 0] for table in TRACE_TABLES}
    templates = []
    for info in connection.execute("SELECT * FROM trace_info"):
        trace_id = info["request_id"]
        rows = {table: [dict(r) for r in connection.execute(
            f"SELECT * FROM {table} WHERE {key} = ?", (trace_id,))]
            for table, key in TRACE_TABLES.items()}
        metadata = {r["key"]: r["value"] for r in rows["trace_request_metadata"]}
        # MLflow 3.x's sqlite store keeps the trace cost in trace_info columns, older ones in
        # the metadata.
        cost = info["total_cost"] if "total_cost" in info.keys() else json.loads(
            metadata.get("mlflow.trace.cost", "{}")).get("total_cost")
        templates.append((trace_id, info["timestamp_ms"], rows, Decimal(str(cost or 0))))
    now_ms = int(time.time() * 1000)
    spent = Decimal(0)
    order = ("trace_info", "trace_tags", "trace_request_metadata", "trace_metrics", "spans",
             "span_metrics")
    with connection:
        for table in TRACE_TABLES:
            for trace_id, *_ in templates:
                connection.execute(f"DELETE FROM {table} WHERE {TRACE_TABLES[table]} = ?",
                                   (trace_id,))
    for first in range(0, total, _BATCH):  # in batches, so 100,000 traces need little memory
        inserts: dict[str, list[tuple]] = {table: [] for table in TRACE_TABLES}
        for _ in range(min(_BATCH, total - first)):
            spent += _copy_one(rng.choice(templates), rng, now_ms, columns, inserts)
        with connection:
            for table in order:
                names = columns[table]
                connection.executemany(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                    f"({', '.join('?' for _ in names)})", inserts[table])
    connection.close()
    return spent


_BATCH = 10_000


def _copy_one(template: tuple, rng: random.Random, now_ms: int, columns: dict[str, list[str]],
              inserts: dict[str, list[tuple]]) -> Decimal:
    old_id, old_ms, rows, cost = template
    new_hex = uuid.uuid4().hex
    new_id = f"tr-{new_hex}"
    old_hex = old_id[3:]
    # Between an hour and 30 days less an hour ago, so that since='30d' still covers every copy
    # when the reports run long after the fill (100,000 traces copied to PostgreSQL: minutes).
    shift_ms = now_ms - rng.randint(3_600_000, DAYS * 86_400_000 - 3_600_000) - old_ms
    user, session, feature = rng.choice(USERS), rng.choice(SESSIONS), rng.choice(FEATURES)
    replacements = {"mlflow.trace.user": user, "mlflow.trace.session": session}
    for table, key in TRACE_TABLES.items():
        for row in rows[table]:
            row = dict(row)
            row[key] = new_id
            if table == "trace_info":
                row["timestamp_ms"] += shift_ms
                if "session_id" in row:
                    row["session_id"] = session
            elif table == "trace_request_metadata" and row["key"] in replacements:
                row["value"] = replacements[row["key"]]
            elif table == "trace_tags" and row["key"] == "feature":
                row["value"] = feature
            elif table == "spans":
                row["start_time_unix_nano"] += shift_ms * 1_000_000
                if row["end_time_unix_nano"] is not None:
                    row["end_time_unix_nano"] += shift_ms * 1_000_000
                content = json.loads(row["content"].replace(old_hex, new_hex))
                for field in ("start_time_unix_nano", "end_time_unix_nano"):
                    if isinstance(content.get(field), int):
                        content[field] += shift_ms * 1_000_000
                row["content"] = json.dumps(content)
            inserts[table].append(tuple(row[c] for c in columns[table]))
    return cost


def to_postgres(db: Path, url: str, experiment_id: str) -> None:
    """Copy the sqlite store's trace rows into a PostgreSQL store MLflow has set up, into the
    experiment ``experiment_id`` there."""
    import psycopg2
    from psycopg2.extras import execute_values
    from sqlalchemy.engine import make_url

    where = make_url(url)
    target = psycopg2.connect(host=where.host, port=where.port, user=where.username,
                              dbname=where.database)
    source = sqlite3.connect(db)
    order = ("trace_info", "trace_tags", "trace_request_metadata", "trace_metrics", "spans",
             "span_metrics")
    with target, target.cursor() as cursor:
        for table in order:
            cursor.execute("SELECT column_name FROM information_schema.columns WHERE "
                           "table_name = %s AND is_generated = 'NEVER'", (table,))
            theirs = {row[0] for row in cursor.fetchall()}
            names = [row[1] for row in source.execute(f"PRAGMA table_xinfo({table})")
                     if row[6] == 0 and row[1] in theirs]
            rows = source.execute(f"SELECT {', '.join(names)} FROM {table}")
            experiment = names.index("experiment_id") if "experiment_id" in names else None
            while batch := rows.fetchmany(20_000):
                if experiment is not None:
                    batch = [(*r[:experiment], int(experiment_id), *r[experiment + 1:])
                             for r in batch]
                execute_values(cursor, f"INSERT INTO {table} ({', '.join(names)}) VALUES %s",
                               batch, page_size=2_000)
        cursor.execute("ANALYZE")
    target.close()
    source.close()


def drop_breakdowns(db: Path) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM trace_request_metadata WHERE key = "
                           "'genai_tracing.by_model' OR key LIKE 'genai_tracing.by_model.%'")
    connection.close()


def timed(repeat: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--templates", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="folder for the store (default: a temporary one)")
    parser.add_argument("--without-breakdown", action="store_true",
                        help="delete the per-model breakdown from every trace, as traces written "
                             "before it existed: reports by model read the spans")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite",
                        help="postgres: copy the traces into a fresh PostgreSQL and report "
                             "through mlflow server --workers 2 on it (needs Debian's postgresql)")
    args = parser.parse_args()
    rng = random.Random(6)

    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    import genai_tracing
    from genai_tracing.testing import TemporaryStore

    folder = Path(args.keep or tempfile.mkdtemp(prefix="genai-tracing-bench-"))
    started = time.perf_counter()
    with TemporaryStore.create(folder) as store:
        genai_tracing.enable_tracing(providers=["openai", "anthropic"], experiment="bench")
        trace_templates(args.templates, rng)
        store.flush()
        traced = time.perf_counter() - started
        genai_tracing.disable_tracing()
        spent = copy_traces(folder / "mlflow.db", args.traces, rng)
        per_model = "per-model breakdown"
        if args.without_breakdown:
            drop_breakdowns(folder / "mlflow.db")
            per_model = "reads spans"
        filled = time.perf_counter() - started
        print(f"store {store.uri}")
        print(f"filled with {args.traces:,} traces in {filled:.1f} s ({args.templates} traced "
              f"for real in {traced:.1f} s, the rest copied)")
        uri = store.uri
        if args.store == "postgres":
            server, pg, backend = postgres_server(folder)
            started = time.perf_counter()
            from mlflow import MlflowClient

            to_postgres(folder / "mlflow.db", backend,
                        MlflowClient(server.url).create_experiment("bench"))
            uri = server.url
            print(f"copied to PostgreSQL in {time.perf_counter() - started:.1f} s; reports go "
                  f"through mlflow server --workers 2 at {uri}")
        try:
            if args.store == "postgres":
                # The same reports through the server and from its database's tables.
                run_reports({"server": uri, "database": backend}, args, per_model, spent)
            else:
                run_reports({"tables": uri, "search": uri}, args, per_model, spent)
        finally:
            if args.store == "postgres":
                server.stop()
                pg.stop()


def postgres_server(folder: Path) -> tuple[Any, Any, str]:
    """A fresh PostgreSQL and an mlflow server on it (tests/fleet.py's), schema migrated."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from fleet import Postgres, mlflow_server, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        raise SystemExit(f"--store postgres: {reason}")
    pg = Postgres.start()  # fsync off: the load is a copy; reports only read
    backend = pg.create_database("mlflow")
    server = mlflow_server(backend, folder / "server", workers=2)
    server.start()
    return server, pg, backend


def run_reports(uris: dict[str, str], args: argparse.Namespace, per_model: str,
                spent: Decimal) -> None:
    """Each report from each source, side by side: ``server`` (MLflow's REST search), or the
    store's ``database`` URI and sqlite's ``tables``, both read from the tables, or ``search``
    (the same store through MLflow's search, as before genai_tracing read the tables)."""
    import genai_tracing
    from genai_tracing import _reports

    def report(fn: str, **options: Any):
        def run(uri: str):
            return getattr(genai_tracing, fn)(experiment="bench", tracking_uri=uri, **options)
        return run

    reports = {
        "cost_report(by='user', since='30d')": report("cost_report", by="user", since="30d"),
        "cost_report(by='session')": report("cost_report", by="session"),
        "cost_report(by='day')": report("cost_report", by="day"),
        "cost_report(by='hour')": report("cost_report", by="hour"),
        "cost_report(by=['user', 'tag:feature'])": report("cost_report",
                                                          by=["user", "tag:feature"]),
        f"cost_report(by='model')  [{per_model}]": report("cost_report", by="model"),
        f"cost_report(by='provider')  [{per_model}]": report("cost_report", by="provider"),
        f"cost_report(by=['day', 'model'])  [{per_model}]": report("cost_report",
                                                                   by=["day", "model"]),
        "latency_report()": report("latency_report"),
    }
    names = list(uris)
    print(f"\n{'report':52}" + "".join(f" {n + ' s':>10}" for n in names)
          + (f" {names[0] + '/' + names[1]:>16}" if len(names) == 2 else "") + f" {'rows':>5}")
    for name, run in reports.items():
        seconds, frames = [], []
        for source, uri in uris.items():
            _reports._SQL_READS = source != "search"
            took, frame = timed(args.repeat, lambda: run(uri))
            seconds.append(took)
            frames.append(frame)
            if "total_cost" in frame:
                total = Decimal(str(frame["total_cost"].sum()))
                assert abs(total - spent) < Decimal("1e-6"), (name, source, total, spent)
        _reports._SQL_READS = True
        same = all(f.equals(frames[0]) for f in frames[1:])
        assert same or "since=" in name, (name, frames)  # since='30d' moves between runs
        ratio = f" {seconds[0] / seconds[1]:16.2f}" if len(seconds) == 2 else ""
        print(f"{name:52}" + "".join(f" {t:10.2f}" for t in seconds) + ratio
              + f" {len(frames[0]):5d}", flush=True)
    print(f"\ncheck: every cost report sums to ${spent:.6f}, the copies' own total, and each "
          f"source gives the same frame ({args.repeat} runs each)")


if __name__ == "__main__":
    main()
