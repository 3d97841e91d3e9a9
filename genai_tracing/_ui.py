"""``genai-tracing ui``: the stock MLflow UI for the configured store, opened at the traces.

A local store (sqlite, a file store, a database) has no UI of its own, so ``serve_ui`` starts
``mlflow server`` for it on a free loopback port. A remote ``mlflow server`` or Databricks already
serves one, so only the link is built. Either way the link opens the experiment's traces for all
time (the UI shows only the last 7 days otherwise).

The CLI calls ``main_ui(args)``; ``add_ui_arguments(parser)`` declares the options it reads.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO
from urllib.parse import urlparse

from . import _config
from ._errors import ConfigurationError
from ._guard import logger

_TRACES = "#/experiments/{experiment_id}/traces?startTimeLabel=ALL"
_BIND_ERRORS = ("address already in use", "errno 98", "errno 48", "errno 10048")
# Server process id -> its log file, removed when stop_ui() stops a server that started fine.
_logs: dict[int, str] = {}


def ui_url(tracking_uri: str, experiment_id: str | None) -> str:
    """The link to an experiment's traces, for all time, in the UI that serves ``tracking_uri``.

    ``tracking_uri`` must be served by a UI already: an ``http(s)://`` MLflow server or Databricks
    (a local store needs ``serve_ui``). Without an experiment id the link opens the experiment
    list::

        ui_url("http://127.0.0.1:5000", "1")
        # 'http://127.0.0.1:5000/#/experiments/1/traces?startTimeLabel=ALL'
        ui_url("databricks", "1234")   # with DATABRICKS_HOST=https://adb-1.azuredatabricks.net
        # 'https://adb-1.azuredatabricks.net/ml/experiments/1234/traces?startTimeLabel=ALL'

    Raises:
        ConfigurationError: the store has no UI of its own, or Databricks' host is unknown.
    """
    kind = _store_kind(tracking_uri)
    if kind == "remote":
        base = tracking_uri.rstrip("/")
        if experiment_id is None:
            return f"{base}/#/experiments"
        return f"{base}/{_TRACES.format(experiment_id=experiment_id)}"
    if kind == "databricks":
        # Databricks routes the same pages by path, not by the URL fragment.
        base = f"{_databricks_host(tracking_uri)}/ml/experiments"
        if experiment_id is None:
            return base
        return f"{base}/{experiment_id}/traces?startTimeLabel=ALL"
    raise ConfigurationError("tracking_uri", tracking_uri, "is a local store with no UI of its own",
                             "start one with genai_tracing._ui.serve_ui(tracking_uri), or run "
                             "`genai-tracing ui`")


def serve_ui(tracking_uri: str, *, port: int | None = None, experiment: str | None = None,
             timeout: float = 120.0) -> tuple[subprocess.Popen[bytes] | None, str]:
    """Make the MLflow UI for ``tracking_uri`` reachable; return the server process and the link.

    For a local store this starts ``mlflow server`` on 127.0.0.1 (``port``, or a free one), waits
    until it answers ``/health`` and returns the process: stop it with ``stop_ui``. For a remote
    server or Databricks nothing is started and the process is ``None``. The link opens the
    traces of ``experiment`` (default: the one ``enable_tracing()`` would use) for all time, or
    the experiment list if that experiment does not exist yet::

        process, url = serve_ui("sqlite:///mlflow.db")
        print(url)   # http://127.0.0.1:54321/#/experiments/1/traces?startTimeLabel=ALL
        stop_ui(process)

    The server is started without MLflow's background job runner (judges, scheduled tasks),
    which a cost viewer does not need and which costs several processes; set
    ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true`` to keep it.

    Raises:
        ConfigurationError: ``tracking_uri`` is malformed.
        RuntimeError: the server did not start (the message ends with its log).
    """
    process, ui_root, experiment_id = _serve(tracking_uri, port, experiment, timeout)
    return process, ui_url(ui_root, experiment_id)


def stop_ui(process: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """Stop a server ``serve_ui`` started, with the worker processes it spawned.

    Example::

        process, url = serve_ui("sqlite:///mlflow.db")
        stop_ui(process)
    """
    if process is None:
        return
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, getattr(signal, "SIGKILL", signal.SIGTERM))
            process.wait(timeout)
    log = _logs.pop(process.pid, None)
    if log is not None:
        Path(log).unlink(missing_ok=True)


def is_local_store(tracking_uri: str) -> bool:
    """True for a store with no UI of its own: sqlite, a file store, a database URI, a path."""
    return _store_kind(tracking_uri) == "local"


def add_ui_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Declare the options of ``genai-tracing ui`` on ``parser`` (a subcommand's parser)."""
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow store (default: MLFLOW_TRACKING_URI, else MLflow's default "
                             "sqlite:///mlflow.db)")
    parser.add_argument("--experiment", default=None,
                        help="experiment whose traces to open (default: GENAI_TRACING_EXPERIMENT, "
                             "else genai-tracing)")
    parser.add_argument("--port", type=int, default=None,
                        help="port for the local server (default: a free one)")
    parser.add_argument("--no-browser", action="store_true",
                        help="print the link without opening a browser")
    return parser


def main_ui(args: argparse.Namespace | Sequence[str] | None = None,
            out: TextIO | None = None) -> int:
    """``genai-tracing ui``: print the link to the experiment's traces and open it.

    ``args`` is the namespace of a parser set up with ``add_ui_arguments`` (missing attributes
    take their defaults), or a list of command-line arguments; messages go to ``out`` (default
    stdout), errors to stderr. For a local store it serves the UI until Ctrl+C, SIGTERM or SIGHUP,
    and stops the server on any of them. Returns the exit code: 0; 2 for a configuration error
    or a server that did not start; the server's own code if it stops by itself::

        genai_tracing._ui.main_ui(["--tracking-uri", "sqlite:///mlflow.db", "--no-browser"])
    """
    out = out or sys.stdout
    if args is None or not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog="genai-tracing ui", description=__doc__.split(
            "\n", 1)[0])
        args = add_ui_arguments(parser).parse_args(args)
    with _stop_on_signals():
        return _run_ui(args, out)


class _Stopped(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl+C's KeyboardInterrupt, so the server is stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP (a plain ``kill``, a container stop, a closed terminal) into
    ``_Stopped`` for the duration, so the ``finally`` that stops the server runs; without this
    the default action kills only this process and the server, in its own session, lives on."""
    stopping: list[int] = []

    def stop(signum: int, frame: object) -> None:
        if not stopping:  # a second signal must not cut short the stopping of the server
            stopping.append(signum)
            raise _Stopped(signum)

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # signal.signal's own rule
        for name in ("SIGTERM", "SIGHUP"):
            sig = getattr(signal, name, None)
            if sig is not None:
                previous[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_ui(args: argparse.Namespace, out: TextIO) -> int:
    try:
        tracking_uri, _ = _config.resolve_tracking_uri(getattr(args, "tracking_uri", None))
        process, ui_root, experiment_id = _serve(tracking_uri, getattr(args, "port", None),
                                                 getattr(args, "experiment", None), 120.0)
        url = ui_url(ui_root, experiment_id)
    except (ConfigurationError, RuntimeError) as e:
        print(f"genai-tracing ui: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:  # while the server was starting; _serve left nothing running
        return 130
    except _Stopped as e:  # likewise
        return 128 + e.signum
    try:
        if process is not None:
            print(f"MLflow UI for {tracking_uri} at {ui_root}", file=out, flush=True)
        if experiment_id is None:
            print("The experiment was not found in this store; the link opens the experiment "
                  "list.", file=out, flush=True)
        print(f"Traces, all time: {url}", file=out, flush=True)
        print("Turn on the Cost column under Display > Columns > Cost.", file=out, flush=True)
        if not getattr(args, "no_browser", False):
            webbrowser.open(url)
        if process is None:
            return 0
        print("Press Ctrl+C to stop the server.", file=out, flush=True)
        code = process.wait()
        print(f"genai-tracing ui: mlflow server exited with code {code}:\n"
              f"{_log_tail(_logs.get(process.pid))}", file=sys.stderr, flush=True)
        return code or 1
    except (KeyboardInterrupt, _Stopped):
        return 0
    finally:
        stop_ui(process)


def _store_kind(tracking_uri: str) -> str:
    """"remote" (an MLflow server), "databricks", or "local" (no UI of its own)."""
    lowered = tracking_uri.strip().lower()
    if lowered == "databricks" or lowered.startswith(("databricks://", "databricks-uc")):
        return "databricks"
    if urlparse(lowered).scheme in ("http", "https"):
        return "remote"
    return "local"


def _serve(tracking_uri: str, port: int | None, experiment: str | None, timeout: float
           ) -> tuple[subprocess.Popen[bytes] | None, str, str | None]:
    """(server process or None, URI of the UI's store, experiment id or None)."""
    tracking_uri = _config.validate_tracking_uri(tracking_uri, "tracking_uri")
    if not is_local_store(tracking_uri):
        return None, tracking_uri, _experiment_id(tracking_uri, experiment)
    process, server_url = _start_server(tracking_uri, port, timeout)
    try:
        return process, server_url, _experiment_id(server_url, experiment)
    except BaseException:
        stop_ui(process)
        raise


def _start_server(tracking_uri: str, port: int | None, timeout: float
                  ) -> tuple[subprocess.Popen[bytes], str]:
    attempts = 1 if port is not None else 3  # a free port can be taken before the server binds
    for attempt in range(attempts):
        chosen = port if port is not None else _free_port()
        log = tempfile.NamedTemporaryFile(prefix="genai-tracing-ui-", suffix=".log", delete=False)
        env = dict(os.environ)
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
                   "--host", "127.0.0.1", "--port", str(chosen), "--workers", "1"]
        # Its own process group, so stop_ui() also ends the workers it forks.
        group = ({"start_new_session": True} if os.name == "posix"
                 else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)})
        with log:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, env=env, **group)
        url = f"http://127.0.0.1:{chosen}"
        try:
            healthy = _wait_healthy(process, url, timeout)
        except BaseException:  # Ctrl+C while starting: leave no server behind
            stop_ui(process)
            raise
        if healthy:
            logger.debug("genai_tracing: mlflow server for %s at %s (log: %s)", tracking_uri, url,
                         log.name)
            _logs[process.pid] = log.name
            return process, url
        stop_ui(process)
        output = Path(log.name).read_text(errors="replace")
        if attempt + 1 < attempts and any(e in output.lower() for e in _BIND_ERRORS):
            continue
        tail = _log_tail(log.name)
        if any(e in output.lower() for e in _BIND_ERRORS):
            raise RuntimeError(f"port {chosen} is in use; pass another port, or none to pick a "
                               f"free one. Server log {log.name}:\n{tail}")
        raise RuntimeError(f"mlflow server for {tracking_uri} did not answer on {url} within "
                           f"{timeout:.0f}s. Server log {log.name}:\n{tail}")
    raise AssertionError("unreachable")


def _log_tail(path: str | None, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:]) \
            if path else ""
    except OSError:
        return ""


def _wait_healthy(process: subprocess.Popen[bytes], url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _answers(url, timeout=5):
            return True
        time.sleep(0.25)
    return False


def _answers(url: str, *, timeout: float) -> bool:
    """True if the MLflow server at ``url`` answers its health check."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        if os.name == "posix":
            os.killpg(process.pid, sig)  # the group start_new_session made: this server only
        else:
            process.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


def _experiment_id(tracking_uri: str, experiment: str | None) -> str | None:
    """The id of the experiment ``enable_tracing()`` would use; ``None`` if it does not exist."""
    name, _ = _config.resolve_experiment(experiment, tracking_uri)
    if name is None:  # the user chose it through MLflow's own environment variables
        if os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name:
        return None
    if _store_kind(tracking_uri) == "remote" and not _answers(tracking_uri, timeout=10):
        # MLflow's client retries a dead server for minutes; the link is worth more now.
        logger.warning("genai_tracing: %s does not answer; linking to its experiment list",
                       tracking_uri)
        return None
    from mlflow import MlflowClient

    try:
        found = MlflowClient(tracking_uri).get_experiment_by_name(name)
    except Exception as e:  # an unreachable store still gets a link to its UI
        logger.warning("genai_tracing: could not look up experiment %r on %s (%s)", name,
                       tracking_uri, e)
        return None
    return found.experiment_id if found is not None else None


def _databricks_host(tracking_uri: str) -> str:
    """The workspace URL, read the way the Databricks CLI does, without a network call."""
    host = os.environ.get("DATABRICKS_HOST", "").strip()
    profile = urlparse(tracking_uri).netloc.split(":", 1)[0] or "DEFAULT"
    if not host or urlparse(tracking_uri).netloc:
        config = configparser.ConfigParser()
        config.read(os.environ.get("DATABRICKS_CONFIG_FILE",
                                   os.path.expanduser("~/.databrickscfg")))
        if config.has_option(profile, "host"):
            host = config.get(profile, "host").strip()
    if not host:
        raise ConfigurationError("tracking_uri", tracking_uri, "the Databricks workspace URL is "
                                 "unknown", f"set DATABRICKS_HOST, or a host in profile {profile!r}"
                                 " of ~/.databrickscfg")
    if "://" not in host:
        host = f"https://{host}"
    return host.rstrip("/")


if __name__ == "__main__":  # python -m genai_tracing._ui, until the CLI wires `genai-tracing ui`
    sys.exit(main_ui())
