"""The harness that runs MLflow's own autolog tests (tests/mlflow_autolog/run.py), without them.

MLflow's test files are not in this repository; these tests check the two parts that decide the
harness's verdict: the autolog swap (no recursion, on and off) and the pass/fail report.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Iterator

import pytest

import genai_tracing

HARNESS = Path(__file__).parent / "mlflow_autolog"


def _load(name: str, path: Path) -> ModuleType:
    # By path, so that neither file's generic module name lands on sys.path.
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


genai_tracing_swap = _load("_harness_swap", HARNESS / "support" / "genai_tracing_swap.py")
run = _load("_harness_run", HARNESS / "run.py")


@pytest.fixture
def swapped_openai_autolog(mlflow_store) -> Iterator[None]:
    module = importlib.import_module("mlflow.openai")
    original = module.autolog
    module.autolog = genai_tracing_swap._swapped("openai", original)
    try:
        yield
    finally:
        module.autolog = original
        genai_tracing.disable_tracing()


def test_swapped_autolog_turns_genai_tracing_on_and_off_without_recursing(swapped_openai_autolog):
    import mlflow.openai

    mlflow.openai.autolog()
    config = genai_tracing.active_config()
    assert config is not None and config.providers == ("openai",)
    # enable_tracing() called MLflow's own autolog through the swapped name: it is on.
    from mlflow.utils.autologging_utils import autologging_is_disabled

    assert not autologging_is_disabled("openai")

    mlflow.openai.autolog(disable=True)
    assert genai_tracing.active_config() is None
    assert autologging_is_disabled("openai")


def test_report_fails_only_when_a_test_passing_plain_fails_with_genai_tracing(capsys):
    plain = {"a.py::t1": ("passed", ""), "a.py::t2": ("FAILED", "AssertionError: x"),
             "a.py::t3": ("passed", "")}
    ours = {"a.py::t1": ("passed", ""), "a.py::t2": ("FAILED", "AssertionError: x"),
            "a.py::t3": ("passed", "")}
    assert run._report(plain, ours, allowed={}) == 0

    ours["a.py::t3"] = ("FAILED", "AssertionError: assert {} == {'input_cost': 1.0}")
    assert run._report(plain, ours, allowed={}) == 1
    assert "a.py::t3" in capsys.readouterr().out
    # An allow-list entry forgives only a failure whose message names the cost.
    assert run._report(plain, ours, allowed={"a.py::t3": "input_cost"}) == 0
    ours["a.py::t3"] = ("FAILED", "AssertionError: assert 'Completions.create' == 'Completions'")
    assert run._report(plain, ours, allowed={"a.py::t3": "input_cost"}) == 1


def test_report_flags_a_test_that_fails_in_both_runs_differently(capsys):
    plain = {"a.py::t": ("FAILED", "AssertionError: assert 1 == 2 (tr-" + "0" * 32 + ")")}
    same = {"a.py::t": ("FAILED", "AssertionError: assert 1 == 2 (tr-" + "1" * 32 + ")")}
    assert run._report(plain, same, allowed={}) == 0
    assert "fails differently" not in capsys.readouterr().out
    other = {"a.py::t": ("FAILED", "KeyError: 'id'")}
    run._report(plain, other, allowed={})
    assert "fails differently" in capsys.readouterr().out
