"""Provider modules: each knows only how its SDK's spans spell model and usage.

The contract is small and fixed. A provider module defines:

- ``NAME``: the provider name used in configuration and in ``mlflow.llm.provider``;
- ``claims(span) -> bool``: this span is one call to the provider (made by MLflow autolog or
  by the module's own patch); a claimed span inside another claimed span is the same call;
- ``extract(span) -> Call``: model and normalized usage of the call;
- optionally ``patch()`` / ``unpatch()``: fill holes autolog leaves, at one choke point.

Adding a provider is one module here and one line in ``_config.PROVIDERS``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._keys import CALL as CALL_ATTRIBUTE  # noqa: F401  - the attribute our own spans carry
from .._usage import Usage

if TYPE_CHECKING:
    from .._pricing import Cost


@dataclass(frozen=True)
class Call:
    """What one provider call used, as read off its span."""

    provider: str
    model: str | None
    usage: Usage | None
    # A cost the provider itself put in the response (e.g. OpenRouter's ``usage.cost``).
    reported_cost: Cost | None = None
    # The model name the request asked for, when the response names another (a dated snapshot,
    # an Azure deployment): prices filed under either name apply.
    requested_model: str | None = None
    # A price variant within the model, for per-image prices ("hd/1024x1792"): prices filed
    # under "<model>/<variant>" apply before those filed under the model alone.
    variant: str | None = None


def span_inputs(span: Any) -> dict[str, Any]:
    value = span.inputs
    return value if isinstance(value, dict) else {}


def span_outputs(span: Any) -> Any:
    return span.outputs


def dig(value: Any, *path: str | int) -> Any:
    """``value[path[0]][path[1]]...`` over dicts, lists and objects; ``None`` where it stops."""
    for key in path:
        if value is None:
            return None
        if isinstance(key, int):
            value = value[key] if isinstance(value, (list, tuple)) and -len(value) <= key < len(value) \
                else None
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            value = getattr(value, key, None)
    return value


def text_model(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def load(names: tuple[str, ...]) -> tuple[ModuleType, ...]:
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)

