"""Differential fidelity: genai_tracing adds to MLflow's spans and never replaces them.

Every call type of tests/test_calls.py runs twice against the same fake: once under plain MLflow
autolog (``mlflow.<flavor>.autolog()``), once under ``enable_tracing()``. The span trees must be
the same: the same spans, in the same places, with the same names, types, status, inputs,
outputs, events and every attribute MLflow wrote. The only differences allowed are what
genai_tracing adds: its own ``genai_tracing.*`` attributes, OpenTelemetry GenAI ``gen_ai.*``
attributes, usage and model where MLflow wrote none, and the cost (``mlflow.llm.cost``) where it
prices differently. Where plain autolog makes no span for a call, genai_tracing makes exactly one.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import mlflow
import pytest

import genai_tracing
from genai_tracing.testing import FakeProvider, TemporaryStore

from test_calls import PRICES, ROWS, Row

FLAVORS = ("openai", "anthropic", "gemini", "litellm")
# What genai_tracing may add to a span MLflow wrote (any value), or write differently.
ADDED_PREFIXES = ("genai_tracing.", "gen_ai.")
ADDED_IF_ABSENT = ("mlflow.chat.tokenUsage", "mlflow.llm.model", "mlflow.llm.provider")
MAY_DIFFER = ("mlflow.llm.cost",)
# Usage keeps every key MLflow wrote; its totals are genai_tracing's normalized ones, which differ
# where MLflow's leave billed tokens out (Gemini's thinking tokens are billed as output).
TOKEN_USAGE = "mlflow.chat.tokenUsage"
# Values that differ between any two runs of the same call (present in both, values not compared).
VOLATILE = ("mlflow.traceRequestId", "mlflow.spanStartTimeNs", "litellm_call_id")


def _plain_autolog(on: bool) -> None:
    for flavor in FLAVORS:
        importlib.import_module(f"mlflow.{flavor}").autolog(disable=not on, silent=True)


def _run(row: Row, fake: FakeProvider) -> Any:
    @mlflow.trace(name="request")
    def request() -> None:
        row.run(fake)

    request()
    # The store's flush waits for this process's queued exports. MLflow's own
    # flush_trace_async_logging() would also do, but on MLflow 3.12 it takes a second more for
    # every tracking URI set earlier in the process (its span processors accumulate), which over
    # a file of tests each on a fresh store grows to minutes per call.
    TemporaryStore.flush()
    return mlflow.get_trace(mlflow.get_last_active_trace_id())


def _tree(trace: Any) -> list[dict[str, Any]]:
    """Spans depth-first in start order, each with its path of names from the root."""
    spans = sorted(trace.data.spans, key=lambda s: (s.start_time_ns, s.name))
    by_id = {s.span_id: s for s in spans}

    def path(span: Any) -> str:
        names = []
        while span is not None:
            names.append(span.name)
            span = by_id.get(span.parent_id)
        return "/".join(reversed(names))

    return [{"path": path(s), "type": s.span_type, "status": s.status.status_code,
             "attributes": dict(s.attributes),
             "events": [(e.name, _stable(e.attributes)) for e in s.events]} for s in spans]


_ID_KEYS = ("id", "created", "created_at", "response_id", "item_id", "system_fingerprint",
            "date")


def _stable(value: Any) -> Any:
    """The same value with the fields that differ between two identical calls blanked."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _stable(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: "<volatile>" if k.lower() in _ID_KEYS or k.endswith("_ms") else _stable(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str) and value.startswith("mlflow-attachment://"):
        return "mlflow-attachment://<volatile>"  # a new id, naming its trace, on every call
    if isinstance(value, str) and " object at 0x" in value:
        return value.split(" object at 0x")[0]
    return value


def _nested_in_litellm(span: dict[str, Any], ours: list[dict[str, Any]]) -> dict[str, Any]:
    """MLflow's LiteLLM logger makes its span after the call, beside the provider SDK's span of
    the same call; genai_tracing opens it during the call, so the SDK's span sits inside it (and
    the call is counted once). The same spans, one level deeper: the only structural change."""
    parent, _, name = span["path"].rpartition("/")
    for mine in ours:
        if mine["path"].endswith(f"/{name}") and mine["path"].rpartition("/")[0].startswith(
                f"{parent}/litellm-") and parent + "/" + name != mine["path"]:
            return {**span, "path": mine["path"]}
    return span


def differences(plain: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[str]:
    """Everything that differs beyond what genai_tracing may add, one line per span and key."""
    problems: list[str] = []
    plain = sorted((_nested_in_litellm(s, ours) for s in plain), key=lambda s: s["path"])
    ours = sorted(ours, key=lambda s: s["path"])
    if [s["path"] for s in plain] != [s["path"] for s in ours]:
        return [f"span trees differ: plain autolog {[s['path'] for s in plain]}, "
                f"genai_tracing {[s['path'] for s in ours]}"]
    for mine, theirs in zip(ours, plain):
        where = mine["path"]
        for key in ("type", "status", "events"):
            if mine[key] != theirs[key]:
                problems.append(f"{where}: {key} {theirs[key]!r} became {mine[key]!r}")
        for key, value in theirs["attributes"].items():
            if key in MAY_DIFFER:
                continue
            if key not in mine["attributes"]:
                problems.append(f"{where}: attribute {key} is gone")
            elif key in VOLATILE:
                continue
            elif key == TOKEN_USAGE:
                if missing := set(value) - set(mine["attributes"][key]):
                    problems.append(f"{where}: {key} lost MLflow's keys {sorted(missing)}")
            elif _stable(mine["attributes"][key]) != _stable(value):
                problems.append(f"{where}: attribute {key} {_stable(value)!r} became "
                                f"{_stable(mine['attributes'][key])!r}")
        for key in mine["attributes"].keys() - theirs["attributes"].keys():
            if not (key.startswith(ADDED_PREFIXES) or key in ADDED_IF_ABSENT
                    or key in MAY_DIFFER):
                problems.append(f"{where}: attribute {key} was added")
    return problems


def _call_spans(tree: list[dict[str, Any]]) -> list[str]:
    """Spans that count as a call: inner spans MLflow made for the same call show its cost too,
    marked ``counted_on`` the outer one (MLflow's own totals, too, count the outermost only)."""
    return [s["path"] for s in tree if (s["attributes"].get("mlflow.llm.cost")
            or s["attributes"].get("genai_tracing.cost.unpriced"))
            and "genai_tracing.counted_on" not in s["attributes"]]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_genai_tracing_only_adds_to_mlflow_spans(row: Row, fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore) -> None:
    fake_provider.usage = row.usage
    _plain_autolog(True)
    try:
        plain = _tree(_run(row, fake_provider))
    finally:
        _plain_autolog(False)
    fake_provider.usage = row.usage
    genai_tracing.enable_tracing(prices=PRICES)
    try:
        ours = _tree(_run(row, fake_provider))
    finally:
        genai_tracing.disable_tracing()

    if len(plain) == 1:
        # MLflow traces nothing here: genai_tracing's one span follows MLflow's conventions.
        assert len(ours) == 2, [s["path"] for s in ours]
    else:
        assert differences(plain, ours) == []
    assert len(_call_spans(ours)) == 1, _call_spans(ours)
