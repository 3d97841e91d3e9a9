"""Stand-in for the helpers of MLflow's tests/tracing/helper.py the autolog tests import."""

from __future__ import annotations

import pytest

import mlflow
from mlflow.version import IS_TRACING_SDK_ONLY

skip_when_testing_trace_sdk = pytest.mark.skipif(
    IS_TRACING_SDK_ONLY, reason="needs the full mlflow package, not mlflow-tracing")


def get_traces(experiment_id: str | None = None) -> list:
    """Every trace of the active experiment, newest first, once MLflow has written them all."""
    from mlflow.tracking.fluent import _get_experiment_id

    from genai_tracing.testing._store import TemporaryStore

    TemporaryStore.flush()
    return mlflow.MlflowClient().search_traces(
        locations=[experiment_id or _get_experiment_id()], max_results=1000)
