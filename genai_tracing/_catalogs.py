"""The price catalogs in use, their versions and ages, and the one networked command.

LiteLLM's price map ships inside the litellm package and ages with it. ``genai-tracing prices
update`` fetches the current map into a cache file; later runs read that file (at enable time, no
network) ahead of the bundled copy. A catalog older than ``GENAI_TRACING_CATALOG_MAX_AGE_DAYS``
(30 by default) gets one warning per process naming the update command.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ._errors import ConfigurationError
from ._guard import logger

ENV_CACHE_DIR = "GENAI_TRACING_CACHE_DIR"
ENV_PRICES_URL = "GENAI_TRACING_PRICES_URL"
ENV_MAX_AGE = "GENAI_TRACING_CATALOG_MAX_AGE_DAYS"
DEFAULT_PRICES_URL = ("https://raw.githubusercontent.com/BerriAI/litellm/main/"
                      "model_prices_and_context_window.json")
DEFAULT_MAX_AGE_DAYS = 30.0
_CACHE_FILE = "litellm_model_prices.json"
UPDATE_COMMAND = "genai-tracing prices update"

_lock = threading.Lock()
_loaded: tuple[tuple[str, float], Mapping[str, Any] | None] | None = None
_warned_stale = False


@dataclass(frozen=True)
class Catalog:
    """One catalog, as ``genai-tracing prices`` lists it."""

    name: str
    where: str            # a file, or the package and version it ships in
    models: int | None
    as_of: datetime | None  # fetched (cache), else the package's install time
    as_of_kind: str         # "fetched" or "installed"

    def age_days(self, now: datetime | None = None) -> float | None:
        if self.as_of is None:
            return None
        return ((now or datetime.now(timezone.utc)) - self.as_of).total_seconds() / 86400


def cache_dir() -> Path:
    if raw := os.environ.get(ENV_CACHE_DIR, "").strip():
        return Path(raw).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "genai-tracing"


def cache_path() -> Path:
    return cache_dir() / _CACHE_FILE


def max_age_days() -> float:
    raw = os.environ.get(ENV_MAX_AGE, "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_DAYS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigurationError(ENV_MAX_AGE, raw, "is not a number of days",
                                 f"set it to e.g. 30, or unset it (default "
                                 f"{DEFAULT_MAX_AGE_DAYS:g})")
    return value


def cached_map() -> Mapping[str, Any] | None:
    """The fetched map (``{"fetched_at", "url", "models"}``) if the cache file exists; read once
    per version of the file."""
    global _loaded
    path = cache_path()
    try:
        stamp = (str(path), path.stat().st_mtime)
    except OSError:
        return None
    with _lock:
        if _loaded is not None and _loaded[0] == stamp:
            return _loaded[1]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
                raise ValueError("no models")
        except (OSError, ValueError) as e:
            logger.warning("genai_tracing: ignoring the price cache %s (%s); run %s to fetch it "
                           "again", path, e, UPDATE_COMMAND)
            data = None
        _loaded = (stamp, data)
        return data


def litellm_maps() -> list[tuple[Mapping[str, Any], str | None]]:
    """LiteLLM price maps in lookup order, each with its origin (the cache file, or None for the
    bundled copy)."""
    maps: list[tuple[Mapping[str, Any], str | None]] = []
    if (cached := cached_map()) is not None:
        maps.append((cached["models"], str(cache_path())))
    try:
        import litellm

        maps.append((litellm.model_cost, None))
    except ImportError:
        pass
    return maps


def _fetched_at(data: Mapping[str, Any]) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(data.get("fetched_at")))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _installed(package: str) -> tuple[str | None, datetime | None]:
    from importlib import metadata

    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None, None
    # The install time: the release date is not known offline, so the age is a lower bound.
    when = None
    for file in dist.files or ():
        if file.name == "METADATA":
            try:
                stamp = Path(str(dist.locate_file(file))).stat().st_mtime
            except OSError:
                break
            when = datetime.fromtimestamp(stamp, tz=timezone.utc)
            break
    return dist.version, when


def _bundled_litellm(count: bool) -> Catalog | None:
    try:
        import litellm
    except ImportError:
        return None
    from importlib import metadata

    # The bundled map's file was written at install time (one stat; the release date is not
    # known offline, so the age is a lower bound).
    bundled = Path(litellm.__file__).parent / "model_prices_and_context_window_backup.json"
    try:
        installed = datetime.fromtimestamp(bundled.stat().st_mtime, tz=timezone.utc)
    except OSError:
        installed = None
    try:
        version = metadata.version("litellm")
    except metadata.PackageNotFoundError:
        version = "?"
    models = sum(1 for k in litellm.model_cost if k != "sample_spec") if count else None
    return Catalog("LiteLLM (bundled)", f"litellm {version}", models, installed, "installed")


def _fetched_litellm() -> Catalog | None:
    if (cached := cached_map()) is None:
        return None
    return Catalog("LiteLLM (fetched)", f"{cache_path()} from {cached.get('url')}",
                   len(cached["models"]), _fetched_at(cached), "fetched")


def catalogs() -> list[Catalog]:
    """The catalogs a price is looked up in, in order (the user's price file comes first)."""
    found = [c for c in (_fetched_litellm(), _bundled_litellm(count=True)) if c is not None]
    version, installed = _installed("genai-prices")
    if version is not None:
        found.append(Catalog("genai-prices", f"genai-prices {version}", None, installed,
                             "installed"))
    return found


def warn_if_stale() -> None:
    """One warning per process when the LiteLLM map in use is older than the configured age."""
    global _warned_stale
    limit = max_age_days()
    if _warned_stale:
        return
    in_use = _fetched_litellm() or _bundled_litellm(count=False)
    age = in_use.age_days() if in_use else None
    if age is None or age <= limit:
        return
    _warned_stale = True
    logger.warning("genai_tracing: the LiteLLM price map in use (%s) was %s %.0f days ago; new "
                   "models and price changes since then are missing. Run `%s` to fetch the "
                   "current one (no network is used otherwise; %s sets this age, now %g days).",
                   in_use.where, in_use.as_of_kind, age, UPDATE_COMMAND, ENV_MAX_AGE, limit)


def update(url: str | None = None, *, timeout: float = 60.0) -> Catalog:
    """Fetch LiteLLM's current price map into the cache file; the only networked call.

    Raises:
        ConfigurationError: the URL cannot be fetched or does not hold a price map.
    """
    import urllib.error
    import urllib.request

    option = "url" if url else ENV_PRICES_URL
    url = url or os.environ.get(ENV_PRICES_URL, "").strip() or DEFAULT_PRICES_URL
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            raw = response.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ConfigurationError(option, url, f"could not be fetched ({e})",
                                 "check the network, or point it at a reachable copy of LiteLLM's "
                                 "model_prices_and_context_window.json") from None
    try:
        models = json.loads(raw)
    except ValueError as e:
        raise ConfigurationError(option, url, f"did not return JSON ({e})",
                                 "point it at LiteLLM's raw model_prices_and_context_window.json"
                                 ) from None
    priced = sum(1 for v in models.values() if isinstance(v, dict) and (
        "input_cost_per_token" in v or "output_cost_per_token" in v)) \
        if isinstance(models, dict) else 0
    if not priced:
        raise ConfigurationError(option, url, "returned no model prices",
                                 "point it at LiteLLM's raw model_prices_and_context_window.json")
    fetched_at = datetime.now(timezone.utc)
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps({"fetched_at": fetched_at.isoformat(), "url": url,
                                   "models": models}), encoding="utf-8")
    os.replace(partial, path)  # readers never see half a file
    return Catalog("LiteLLM (fetched)", f"{path} from {url}", len(models), fetched_at,
                   "fetched")
