"""A throwaway MLflow tracking store for tests: real sqlite, its own file, read back whole."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities import Trace

_MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
# FIXME(mlflow private): MLflow gives a sqlite store opened by the client the artifact root
# "./mlruns" (relative to the working directory) unless this variable names one; experiments
# created meanwhile keep their artifacts (trace data) under it. Public alternative: none short of
# creating every experiment with artifact_location=. See
# mlflow/tracking/_tracking_service/utils.py::_get_sqlalchemy_store.
_ARTIFACT_ROOT_ENV = "_MLFLOW_SERVER_ARTIFACT_ROOT"
_template_lock = threading.Lock()
_template: Path | None = None


def _migrated_template() -> Path:
    """An empty, fully migrated sqlite store, made once per process; copying it is ~1000x faster."""
    global _template
    with _template_lock:
        if _template is None or not _template.exists():
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            folder = Path(tempfile.mkdtemp(prefix="genai-tracing-template-"))
            path = folder / "template.db"
            store = SqlAlchemyStore(f"sqlite:///{path}", str(folder / "artifacts"))
            store.engine.dispose()
            _template = path
        return _template


def _wake_export_queue() -> None:
    from .._mlflow import wake_export_queue

    wake_export_queue()


@dataclass
class TemporaryStore:
    """A real sqlite MLflow store in ``folder``, set as the tracking URI while in use.

    Example::

        with TemporaryStore.create(tmp_path) as store:
            genai_tracing.enable_tracing()
            client.chat.completions.create(...)
            trace = store.last_trace()
    """

    folder: Path
    uri: str
    _previous_uri: str | None = field(default=None, repr=False)
    _previous_experiment: str | None = field(default=None, repr=False)
    _previous_env: dict[str, str | None] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, folder: str | Path | None = None) -> TemporaryStore:
        folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="mlflow-"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "mlflow.db"
        shutil.copyfile(_migrated_template(), path)
        return cls(folder=folder, uri=f"sqlite:///{path}")

    def __enter__(self) -> TemporaryStore:
        import mlflow

        from .._mlflow import choose_experiment_id, chosen_experiment_id, tracking_uri_set_in_code

        self._previous_uri = tracking_uri_set_in_code()
        self._previous_experiment = chosen_experiment_id()
        # mlflow.set_experiment() also exports the choice to the environment (for subprocesses);
        # an experiment id from another store must not leak into this one.
        self._previous_env = {k: os.environ.pop(k, None) for k in (*_MLFLOW_ENV,
                                                                   _ARTIFACT_ROOT_ENV)}
        # Artifacts (trace data) go under the store's own folder, never ./mlruns in the cwd.
        os.environ[_ARTIFACT_ROOT_ENV] = str(self.folder / "artifacts")
        choose_experiment_id(None)
        _wake_export_queue()
        mlflow.set_tracking_uri(self.uri)
        return self

    def __exit__(self, *exc: Any) -> None:
        import mlflow

        from .._enable import disable_tracing
        from .._mlflow import choose_experiment_id

        disable_tracing()
        self.flush()
        choose_experiment_id(self._previous_experiment)
        _wake_export_queue()
        mlflow.set_tracking_uri(self._previous_uri)
        for key, value in self._previous_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    @staticmethod
    def flush(timeout: float = 60.0) -> None:
        """Wait until every finished trace has been written (MLflow exports asynchronously).

        MLflow's own ``flush_trace_async_logging()`` restarts its worker threads and takes about
        a second even with nothing queued; waiting for the queue to drain is as safe and fast.
        """
        import time

        import mlflow

        try:
            from .._export import _export_queues, _pending

            queues = _export_queues(timeout)
            deadline = time.monotonic() + timeout
            while _pending(queues) and time.monotonic() < deadline:
                time.sleep(0.002)
            return
        except Exception:
            pass  # MLflow's internals moved: fall back to the public, slower flush
        mlflow.flush_trace_async_logging(terminate=False)

    def experiment_ids(self) -> list[str]:
        from mlflow import MlflowClient

        return [e.experiment_id for e in MlflowClient(self.uri).search_experiments()]

    def traces(self) -> list[Trace]:
        """Every trace in the store, oldest first, as MLflow returns them (spans included)."""
        from mlflow import MlflowClient

        self.flush()
        client = MlflowClient(self.uri)
        found: list[Trace] = []
        token = None
        while True:
            page = client.search_traces(locations=self.experiment_ids(), max_results=500,
                                        page_token=token, order_by=["timestamp_ms ASC"])
            found.extend(page)
            token = page.token
            if not token:
                return found

    def get_trace(self, trace_id: str) -> Trace:
        from mlflow import MlflowClient

        self.flush()
        return MlflowClient(self.uri).get_trace(trace_id)

    def last_trace(self) -> Trace:
        """The trace of the most recent traced call in this process."""
        import mlflow

        trace_id = mlflow.get_last_active_trace_id()
        if trace_id is None:
            raise AssertionError("no trace has been recorded in this process")
        return self.get_trace(trace_id)
