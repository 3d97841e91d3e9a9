"""Provider modules: each knows only how its SDK's spans spell model and usage.

The contract is small and fixed: ``ProviderModule`` below. Everything provider-specific lives in
the provider's module (its SDK's names, exceptions, usage fields, patches); its loopback fake
lives in ``genai_tracing.testing``. Adding a provider is one module here, its fake, and one line
in ``REGISTRY``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from .._keys import CALL as CALL_ATTRIBUTE  # noqa: F401  - the attribute our own spans carry
from .._keys import ENDPOINT, PROVIDER
from .._usage import Usage



# The providers genai_tracing traces, in the order their spans are tried.
REGISTRY: tuple[str, ...] = ("openai", "anthropic", "gemini", "litellm")


class ProviderModule(Protocol):
    """What a provider module supplies (a module, checked structurally)."""

    NAME: str                 # in configuration, and in ``mlflow.llm.provider``
    SDK_MODULE: str           # what must be importable for the provider to be traced
    PIP_PACKAGE: str          # what to install, named in errors
    AUTOLOG: str | None       # the MLflow autolog flavor, if MLflow traces the SDK
    REFUSALS: frozenset[str]  # exception class names: the provider refused, nothing billed
    USAGE_HINT: str           # how to make the SDK report usage it leaves out by default

    def claims(self, span: Any) -> bool:
        """Whether ``span`` is one call to the provider (MLflow's span, or one of ours)."""

    def extract(self, span: Any) -> Call:
        """Model and normalized usage of the call ``span`` shows."""

    def patch(self) -> None:
        """Fill the holes autolog leaves, at the SDK's choke points; idempotent."""

    def unpatch(self) -> None:
        """Undo ``patch()``."""


@dataclass(frozen=True)
class Call:
    """What one provider call used, as read off its span."""

    provider: str
    model: str | None
    usage: Usage | None
    # A cost the provider itself put in the response (e.g. OpenRouter's ``usage.cost``).
    reported_cost: Any = None  # a _pricing.Cost (not imported: pricing reads Call)
    # The model name the request asked for, when the response names another (a dated snapshot,
    # an Azure deployment): prices filed under either name apply.
    requested_model: str | None = None
    # A price variant within the model, for per-image prices ("hd/1024x1792"): prices filed
    # under "<model>/<variant>" apply before those filed under the model alone.
    variant: str | None = None
    # Where the call went (see _endpoints): the base URL, and the Azure deployment or Databricks
    # serving endpoint it named; the price file can map either to a model.
    endpoint: str | None = None
    deployment: str | None = None
    # The cloud region that served it, where prices differ by region (Bedrock's GovCloud
    # entries, "bedrock/us-gov-west-1/<model id>"): regional prices apply before the model's.
    region: str | None = None


def served_by(span: Any, sdk: str) -> tuple[str, dict[str, Any]]:
    """Who served the call ``span`` stands for, made with SDK ``sdk``, and where it went (the
    span's ``genai_tracing.endpoint`` record, ``{}`` without one): the provider detected from the
    endpoint (see ``_endpoints``), else the one genai_tracing's own span was started with (DSPy's
    engine knows it: Groq, Gemini, Bedrock...), else the SDK's own."""
    where = span.get_attribute(ENDPOINT)
    where = where if isinstance(where, dict) else {}
    if url := where.get("url"):
        from .. import _endpoints
        from .._pricing import active_resolver

        return _endpoints.detect(url, where.get("client"), active_resolver().table.endpoints,
                                 default=sdk), where
    preset = span.get_attribute(PROVIDER) if span.get_attribute(CALL_ATTRIBUTE) == sdk else None
    return (preset if isinstance(preset, str) and preset else sdk), where


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
    """The provider modules of ``names`` (importing one imports no SDK)."""
    return tuple(importlib.import_module(f"{__name__}.{name}") for name in names)


def module_named(name: str | None) -> ProviderModule | None:
    return load((name,))[0] if name in REGISTRY else None  # type: ignore[return-value]


def all_modules() -> tuple[ProviderModule, ...]:
    return load(REGISTRY)  # type: ignore[return-value]

