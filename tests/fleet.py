"""A fleet for the tests: PostgreSQL, a multi-worker ``mlflow server`` on it, app processes.

Everything here is a real process on loopback: Debian's ``postgres`` (``initdb`` into a temporary
folder, a free port, run as an unprivileged user when the tests run as root, since PostgreSQL
refuses to run as root), ``mlflow server --backend-store-uri postgresql+psycopg2://...
--workers 2``, and the example apps under real ``uvicorn``. The session fixtures ``postgres`` and
``fleet_server`` (imported by conftest) start one of each for the whole session and skip, with
the reason, where PostgreSQL is not installed (``.ci/run`` installs it with apt).

Example::

    pg = Postgres.start(Path(tempfile.mkdtemp()))
    server = MlflowServer(pg.create_database("mlflow"), folder, workers=2).start()
    ...
    server.stop(); pg.stop()
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest

# Debian's postgresql package puts its server binaries here, one folder per major version.
PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# Who runs PostgreSQL when the tests run as root.
PG_USER = "nobody"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries folder, or ``None``."""
    found = [Path(p) for p in glob.glob(PG_BIN_GLOB)
             if (Path(p) / "initdb").exists() and (Path(p) / "postgres").exists()]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def unavailable_reason() -> str | None:
    """Why the fleet cannot run here, or ``None`` if it can."""
    if os.name != "posix":
        return "the fleet tests run PostgreSQL and uvicorn workers on POSIX only"
    if postgres_bin() is None:
        return (f"PostgreSQL is not installed (no initdb and postgres under {PG_BIN_GLOB}); "
                "install Debian's postgresql package, as .ci/run does")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install -e '.[test]')"
    return None


def _as_user() -> dict[str, str]:
    """Popen arguments that drop root for PostgreSQL, which refuses to run as root."""
    return {"user": PG_USER} if os.geteuid() == 0 else {}


class Postgres:
    """A throwaway PostgreSQL server: its own data folder, a free loopback port, trust auth."""

    def __init__(self, folder: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.folder, self.port, self.process = folder, port, process

    @classmethod
    def start(cls, folder: Path | None = None, *, durable: bool = False,
              timeout: float = 60.0) -> Postgres:
        """initdb and start. ``durable=False`` (tests) turns fsync off: nothing here must
        survive a power cut, and the tests should not wait for the disk."""
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError(unavailable_reason() or "no PostgreSQL")
        # Not under pytest's tmp dirs: those are private to root, and PostgreSQL is not root.
        folder = folder or Path(tempfile.mkdtemp(prefix="genai-tracing-pg-"))
        data = folder / "data"
        if os.geteuid() == 0:
            shutil.chown(folder, PG_USER)
        log = folder / "postgres.log"
        subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                       check=True, capture_output=True, cwd=folder, **_as_user())
        port = free_port()
        settings = {"listen_addresses": "127.0.0.1", "port": str(port),
                    "unix_socket_directories": str(folder), "max_connections": "200",
                    "fsync": "on" if durable else "off",
                    "synchronous_commit": "on" if durable else "off",
                    "full_page_writes": "on" if durable else "off"}
        command = [str(bin_dir / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        with open(log, "ab") as out:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, cwd=folder,
                                       start_new_session=True, **_as_user())
        pg = cls(folder, port, process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"postgres exited early:\n{pg.log_tail()}")
            if pg._answers():
                return pg
            time.sleep(0.1)
        pg.stop()
        raise RuntimeError(f"postgres did not answer within {timeout} s:\n{pg.log_tail()}")

    def _answers(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                             dbname="postgres", connect_timeout=2).close()
            return True
        except psycopg2.OperationalError:
            return False

    def url(self, database: str) -> str:
        """The SQLAlchemy URL MLflow takes as ``--backend-store-uri``."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                      dbname="postgres")
        try:
            connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.url(name)

    def stop(self) -> None:
        process, self.process = self.process, None  # type: ignore[assignment]
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # "fast" shutdown: no waiting for clients
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(30)
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.folder / "postgres.log", lines)


def group_cpu_seconds(group: int) -> float:
    """CPU seconds used so far by the live processes of process group ``group`` (Linux)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def _tail(path: Path, lines: int) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without MLflow's and genai_tracing's settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GENAI_"))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", MLFLOW_DISABLE_TELEMETRY="true",
               DO_NOT_TRACK="true")
    env.update(extra)
    return env


class Service:
    """A server subprocess in its own process group at ``url``, up once ``url + health``
    answers 200."""

    def __init__(self, command: Sequence[str], folder: Path, url: str, health: str,
                 env: dict[str, str], name: str, *, ready_line: str | None = None,
                 ready_count: int = 1) -> None:
        self.command, self.folder, self.url = list(command), folder, url
        self.health_url, self.env, self.name = url + health, env, name
        # Up only once the log holds ready_line ready_count times (e.g. one per worker).
        self.ready_line, self.ready_count = ready_line, ready_count
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / f"{name}.log"

    def start(self, timeout: float = 180.0) -> Service:
        with open(self.log, "ab") as out:
            # Its own group: stop() also ends the workers it forks.
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, cwd=self.folder,
                                            env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if self.healthy() and (self.ready_line is None or self.log.read_text(
                    errors="replace").count(self.ready_line) >= self.ready_count):
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} not healthy after {timeout} s:\n{self.log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log, lines)


def mlflow_server(backend_uri: str, folder: Path, *, workers: int = 2) -> Service:
    """``mlflow server`` on ``backend_uri`` with ``workers`` worker processes, on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
               "--artifacts-destination", str(folder / "artifacts"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return Service(command, folder, f"http://127.0.0.1:{port}", "/health",
                   clean_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"), "mlflow-server")


EXAMPLE_APP = Path(__file__).resolve().parents[1] / "examples" / "image_service"


def image_service(folder: Path, env: dict[str, str], *, workers: int = 1) -> Service:
    """examples/image_service under ``uvicorn --workers N`` on a free port, up once every worker
    has started. Each worker answers with its own loopback fake Gemini (no key in ``env``)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLE_APP),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--log-level", "info", "--no-access-log"]
    return Service(command, folder, f"http://127.0.0.1:{port}", "/healthz", env,
                   f"image-service-{port}", ready_line="Application startup complete.",
                   ready_count=workers)


def start_all(services: Sequence[Service], timeout: float = 240.0) -> None:
    """Start services side by side (their imports overlap), stopping all if one fails."""
    with ThreadPoolExecutor(len(services)) as pool:
        futures = [pool.submit(service.start, timeout) for service in services]
        errors = [f.exception() for f in futures]
    if any(errors):
        for service in services:
            service.stop()
        raise next(e for e in errors if e is not None)


@dataclass
class Burst:
    """What a burst sent and got back, request by request."""

    emails: list[str]
    statuses: list[int]
    trace_ids: list[str | None]  # from each reply: the app returns its request's trace id
    seconds: float  # first request sent to last reply


def burst(urls: Sequence[str], *, requests: int, users: int, threads: int,
          timeout: float = 120.0) -> Burst:
    """``requests`` POST /images from ``users`` users on ``threads`` threads, spread over
    ``urls`` in turn."""
    import httpx

    emails = [f"user{i % users:02d}@example.com" for i in range(requests)]

    def send(i: int) -> tuple[int, str | None]:
        reply = http.post(f"{urls[i % len(urls)]}/images",
                          json={"email": emails[i], "prompt": f"picture {i}"})
        return reply.status_code, (reply.json().get("trace_id") if reply.is_success else None)

    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(timeout=timeout, limits=limits) as http, \
            ThreadPoolExecutor(threads) as pool:
        started = time.perf_counter()
        results = list(pool.map(send, range(requests)))
        seconds = time.perf_counter() - started
    return Burst(emails, [r[0] for r in results], [r[1] for r in results], seconds)


def stored_traces(uri: str, experiment: str) -> list[Any]:
    """Every trace of the experiment named ``experiment`` (spans left out)."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    found_experiment = client.get_experiment_by_name(experiment)
    if found_experiment is None:
        return []
    found: list[Any] = []
    token = None
    while True:
        page = client.search_traces(locations=[found_experiment.experiment_id],
                                    max_results=500, page_token=token, include_spans=False)
        found.extend(page)
        token = page.token
        if not token:
            return found


# Set when a trace's own record is written. MLflow's store creates a trace as soon as its first
# spans arrive and writes the trace's record (user, tags, genai_tracing's totals) on top later,
# so a trace is stored whole only once one of these is there.
FINALIZED = ("mlflow.trace.infoFinalized", "genai_tracing.cost.complete")


def finalized(trace: Any) -> bool:
    return any(key in trace.info.request_metadata for key in FINALIZED)


def wait_stored(uri: str, experiment: str, expected: int, timeout: float = 120.0
                ) -> tuple[list[Any], float]:
    """The experiment's traces once ``expected`` are stored whole (or at ``timeout``), and the
    seconds waited; the export is asynchronous, so traces land after the replies."""
    started = time.perf_counter()
    while True:
        traces = stored_traces(uri, experiment)
        whole = sum(1 for t in traces if finalized(t))
        if whole >= expected or time.perf_counter() - started > timeout:
            return traces, time.perf_counter() - started
        time.sleep(0.5)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One PostgreSQL server for the session; skips with the reason where there is none."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    pg = Postgres.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def fleet_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of one ``mlflow server --workers 2`` on PostgreSQL, shared by the session."""
    server = mlflow_server(postgres.create_database("mlflow"),
                           tmp_path_factory.mktemp("fleet-server"), workers=2)
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
