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
from typing import TYPE_CHECKING

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


def load(names: tuple[str, ...]) -> tuple[ModuleType, ...]:
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)


# Span attribute our own patches put on the spans they create, naming the provider.
CALL_ATTRIBUTE = "genai_tracing.call"
