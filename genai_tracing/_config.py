"""Configuration: keyword argument, then environment variable, then default, resolved once."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from ._errors import ConfigurationError

DEFAULT_EXPERIMENT = "genai-tracing"
# Databricks experiments live in the workspace tree, so a bare name is not valid there.
DEFAULT_DATABRICKS_EXPERIMENT = "/Shared/genai-tracing"

ENV_ENABLED = "GENAI_TRACING_ENABLED"
ENV_EXPERIMENT = "GENAI_TRACING_EXPERIMENT"
ENV_PROVIDERS = "GENAI_TRACING_PROVIDERS"
ENV_PRICES = "GENAI_TRACING_PRICES"
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"


@dataclass(frozen=True)
class Provider:
    name: str
    module: str  # what find_spec looks for; importing it is left to enable time
    pip_package: str
    # The mlflow flavor whose autolog traces this SDK; None where the provider module's own
    # patch does it (LiteLLM's MLflow callback logs after the call, outside the caller's trace).
    autolog: str | None


# Adding a provider is one line here and one module under providers/.
def _registry() -> dict[str, Provider]:
    from . import providers

    return {m.NAME: Provider(m.NAME, m.SDK_MODULE, m.PIP_PACKAGE, m.AUTOLOG)
            for m in providers.all_modules()}


PROVIDERS: dict[str, Provider] = _registry()
_PROVIDER_ALIASES = {"google-genai": "gemini", "google_genai": "gemini", "google.genai": "gemini"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Schemes MLflow can track to; "+driver" suffixes (postgresql+psycopg2) are allowed on databases.
_URI_SCHEMES = {"file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks",
                "databricks-uc", "uc"}


@dataclass(frozen=True)
class TracingConfig:
    """What ``enable_tracing()`` resolved and set up; frozen, printable.

    ``experiment_id`` is ``None`` when the tracking store could not be reached at enable time
    (tracing still runs, and MLflow exports once the store answers).
    """

    enabled: bool
    tracking_uri: str
    experiment: str | None
    providers: tuple[str, ...]
    prices: str | None = None
    experiment_id: str | None = None
    # Where each value came from ("argument", an environment variable, "mlflow", "default").
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    # The loaded price table; compared by its content fingerprint, not shown.
    price_table: Any = field(default=None, repr=False, compare=False)
    prices_fingerprint: str | None = field(default=None, repr=False)


# Set by enable_tracing() (under its lock); kept here, a leaf, so reports, budgets and repricing
# read it without importing the module that sets tracing up.
_active: TracingConfig | None = None


def active_config() -> TracingConfig | None:
    """The configuration in force, or ``None`` when tracing is not enabled."""
    return _active


def set_active(config: TracingConfig | None) -> None:
    global _active
    _active = config


def installed_providers() -> tuple[str, ...]:
    return tuple(name for name, p in PROVIDERS.items() if _is_installed(p.module))


def _is_installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def resolve_enabled(enabled: bool | None) -> tuple[bool, str]:
    if enabled is not None:
        if not isinstance(enabled, bool):
            raise ConfigurationError("enabled", enabled, "must be True or False",
                                     "pass enabled=True or enabled=False")
        return enabled, "argument"
    raw = os.environ.get(ENV_ENABLED)
    if raw is None or raw.strip() == "":
        return True, "default"
    value = raw.strip().lower()
    if value in _TRUE:
        return True, ENV_ENABLED
    if value in _FALSE:
        return False, ENV_ENABLED
    raise ConfigurationError(ENV_ENABLED, raw, "is not a boolean",
                             f"set {ENV_ENABLED} to one of 1/true/yes/on or 0/false/no/off")


def resolve_providers(providers: Any) -> tuple[tuple[str, ...], str]:
    option, source = "providers", "argument"
    if providers is None:
        raw = os.environ.get(ENV_PROVIDERS, "").strip()
        if not raw:
            return installed_providers(), "default"
        option, source = ENV_PROVIDERS, ENV_PROVIDERS
        providers = [p for p in re.split(r"[,\s]+", raw) if p]
    if isinstance(providers, str):
        providers = [providers]
    try:
        requested = list(providers)
    except TypeError:
        raise ConfigurationError(option, providers, "must be a list of provider names",
                                 f"pass e.g. providers=['openai', 'anthropic'] (known: "
                                 f"{', '.join(PROVIDERS)})") from None
    resolved: list[str] = []
    for item in requested:
        name = _PROVIDER_ALIASES.get(str(item).strip().lower(), str(item).strip().lower())
        if name not in PROVIDERS:
            raise ConfigurationError(option, item, "is not a provider genai_tracing traces",
                                     f"use some of: {', '.join(PROVIDERS)}")
        provider = PROVIDERS[name]
        if not _is_installed(provider.module):
            raise ConfigurationError(option, item, f"the {provider.pip_package!r} package is "
                                     "not installed", f"pip install {provider.pip_package}, or "
                                     "leave it out of providers")
        if name not in resolved:
            resolved.append(name)
    return tuple(resolved), source


def validate_tracking_uri(uri: str, option: str) -> str:
    """Catch the malformed URIs MLflow would only trip over at the first export."""
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigurationError(option, uri, "must be a non-empty string",
                                 "pass e.g. 'sqlite:///mlflow.db' or 'http://127.0.0.1:5000'")
    uri = uri.strip()
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    # A Windows drive letter parses as a one-letter scheme; a plain path is a local file store.
    if not scheme or (len(scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return uri
    base_scheme = scheme.split("+", 1)[0]
    if base_scheme not in _URI_SCHEMES:
        raise ConfigurationError(option, uri, f"unknown scheme {parsed.scheme!r}",
                                 "use sqlite:///path.db, http(s)://host:port, databricks, "
                                 "a database URI or a local path")
    if base_scheme in ("http", "https"):
        if not parsed.hostname:
            raise ConfigurationError(option, uri, "has no host",
                                     "write it as http://host:port, e.g. http://127.0.0.1:5000")
        try:
            parsed.port  # noqa: B018 - raises on a non-numeric port
        except ValueError:
            raise ConfigurationError(option, uri, "has an invalid port",
                                     "write it as http://host:port with a numeric port") from None
    if base_scheme == "sqlite" and not uri.lower().startswith("sqlite://"):
        raise ConfigurationError(option, uri, "is not a SQLAlchemy sqlite URI",
                                 "write it as sqlite:///relative.db or sqlite:////absolute.db")
    return uri


def local_store_path(uri: str) -> Path | None:
    """The file or folder of a local store URI (sqlite, file:, a plain path); None otherwise."""
    lowered = uri.lower()
    if lowered.startswith("sqlite:///"):
        rest = uri[len("sqlite:///"):].split("?", 1)[0]
        return None if ":memory:" in rest or not rest else Path(rest)
    if lowered.startswith("file:"):
        return Path(urlparse(uri).path)
    scheme = urlparse(uri).scheme
    if not scheme or (len(scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return Path(uri)
    return None


def require_store(uri: str, option: str = "tracking_uri") -> str:
    """Reading commands read a store; a missing local one is a wrong place, never one to create.

    MLflow would create an empty store (and print its table-creation log) at a sqlite path or
    folder that does not exist; a report from it would say "no traces" about the wrong store.
    """
    uri = validate_tracking_uri(uri, option)
    path = local_store_path(uri)
    if path is not None and not path.exists():
        raise ConfigurationError(option, uri, f"no MLflow store at {path}",
                                 "run from the folder your app traced into, or point to its "
                                 "store with --tracking-uri / MLFLOW_TRACKING_URI (sqlite:///"
                                 "mlflow.db; four slashes for an absolute path)")
    return uri


def resolve_tracking_uri(tracking_uri: str | None) -> tuple[str, str]:
    """The URI to use; an explicit MLflow setting the user already made is never overridden."""
    import mlflow

    if tracking_uri is not None:
        return validate_tracking_uri(tracking_uri, "tracking_uri"), "argument"
    from ._mlflow import tracking_uri_set_in_code

    if tracking_uri_set_in_code():
        return str(mlflow.get_tracking_uri()), "mlflow"
    if os.environ.get(ENV_TRACKING_URI):
        return validate_tracking_uri(os.environ[ENV_TRACKING_URI], ENV_TRACKING_URI), \
            ENV_TRACKING_URI
    return str(mlflow.get_tracking_uri()), "default"


def resolve_experiment(experiment: str | None, tracking_uri: str, ours: str | None = None
                       ) -> tuple[str | None, str]:
    """The experiment name; ``None`` means keep the one the user already chose in MLflow.

    ``ours`` is the experiment id a previous ``enable_tracing()`` set: MLflow remembers it like a
    user's choice, but it must not count as one, or a repeated call would resolve differently.
    """
    if experiment is not None:
        if not isinstance(experiment, str) or not experiment.strip():
            raise ConfigurationError("experiment", experiment, "must be a non-empty name",
                                     "pass e.g. experiment='my-app-prod'")
        return experiment.strip(), "argument"
    if raw := os.environ.get(ENV_EXPERIMENT, "").strip():
        return raw, ENV_EXPERIMENT
    from ._mlflow import chosen_experiment_id

    chosen = chosen_experiment_id() or os.environ.get("MLFLOW_EXPERIMENT_ID")
    if (chosen and chosen != ours) or os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return None, "mlflow"
    if tracking_uri.startswith("databricks"):
        return DEFAULT_DATABRICKS_EXPERIMENT, "default"
    return DEFAULT_EXPERIMENT, "default"
