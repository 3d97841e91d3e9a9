"""Stand-in for MLflow's root tests/conftest.py: only what the four autolog test files use.

Written for genai_tracing's harness (run.py copies it into the run folder); MLflow's own root
conftest needs MLflow's whole development set-up. Each test gets a fresh sqlite store, a clean
tracing state and no autolog left on from the test before.
"""

from __future__ import annotations

import importlib
import os
import sys
from unittest import mock

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network for litellm's prices
# The tests read a trace right after the call (mlflow.get_trace(get_last_active_trace_id())):
# it must be in the store by then, so traces are written synchronously.
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
for _var in ("MLFLOW_TRACKING_URI", "GENAI_TRACING_ENABLED", "GENAI_TRACING_EXPERIMENT",
             "GENAI_TRACING_PROVIDERS", "GENAI_TRACING_PRICES"):
    os.environ.pop(_var, None)

import pytest


def _setenvs(self: pytest.MonkeyPatch, envs: dict[str, str]) -> None:
    for name, value in envs.items():
        self.setenv(name, value)


def _delenvs(self: pytest.MonkeyPatch, names, raising: bool = True) -> None:
    for name in names:
        self.delenv(name, raising=raising)


# MLflow's test suite gives MonkeyPatch these two helpers; litellm's conftest uses setenvs.
pytest.MonkeyPatch.setenvs = _setenvs
pytest.MonkeyPatch.delenvs = _delenvs

FLAVORS = ("openai", "anthropic", "gemini", "litellm")


@pytest.fixture(autouse=True)
def tracking_store(tmp_path, monkeypatch):
    from genai_tracing.testing._store import TemporaryStore

    monkeypatch.chdir(tmp_path)  # mlruns/ of logged models lands in the test's own folder
    with TemporaryStore.create(tmp_path / "store"):
        yield
    _reset_mlflow()


def _reset_mlflow() -> None:
    import mlflow
    from mlflow.tracing.fluent import _set_last_active_trace_id

    while mlflow.active_run() is not None:
        mlflow.end_run()
    if hasattr(mlflow, "clear_active_model"):
        mlflow.clear_active_model()
    for flavor in FLAVORS:  # what a test turned on must not trace the next test's calls
        module = sys.modules.get(f"mlflow.{flavor}")
        if module is not None:
            module.autolog(disable=True, silent=True)
    _set_last_active_trace_id(None)
    mlflow.tracing.reset()


@pytest.fixture
def mock_litellm_cost():
    """A price of 1.0 per input token and 2.0 per output token for every model."""

    def cost_per_token(model=None, prompt_tokens=0, completion_tokens=0, **kwargs):
        return prompt_tokens * 1.0, completion_tokens * 2.0

    with mock.patch("litellm.cost_per_token", side_effect=cost_per_token) as patched:
        yield patched
