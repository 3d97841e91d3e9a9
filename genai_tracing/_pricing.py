"""Prices: the user's table first, then a provider-reported cost, LiteLLM's map, genai-prices.

Money is ``Decimal`` throughout; rates are USD per million tokens (or per image).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ._endpoints import (KNOWN_PROVIDERS, LOCAL_PROVIDERS, Endpoint, parse_deployments,
                         parse_endpoints)
from ._errors import ConfigurationError
from ._money import plain, to_decimal
from ._usage import Usage

if TYPE_CHECKING:
    from .providers import Call

MILLION = Decimal(1_000_000)
MAX_REGEX_LENGTH = 512
_FIX_FORMAT = "see the price file format in the README ('Prices')"


@dataclass(frozen=True)
class Rates:
    """USD per million tokens of each kind, and per generated image; ``None`` = not priced."""

    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    image_input: Decimal | None = None
    image_output: Decimal | None = None
    per_image: Decimal | None = None

    def merged_over(self, base: Rates) -> Rates:
        """These rates where set, ``base`` elsewhere (a long-context tier over the base price)."""
        return Rates(**{f.name: getattr(self, f.name) if getattr(self, f.name) is not None
                        else getattr(base, f.name) for f in fields(Rates)})


# The price-file key of each rate.
_RATE_KEYS = {
    "input_per_million": "input",
    "output_per_million": "output",
    "cached_input_per_million": "cached_input",
    "cache_write_per_million": "cache_write",
    "image_input_per_million": "image_input",
    "image_output_per_million": "image_output",
    "per_image": "per_image",
}
_ENTRY_KEYS = set(_RATE_KEYS) | {"match", "valid_from", "tiers"}
_TIER_KEYS = set(_RATE_KEYS) - {"per_image"} | {"above_input_tokens"}


@dataclass(frozen=True)
class Tier:
    above_input_tokens: int
    rates: Rates


@dataclass(frozen=True)
class Price:
    """The price that applies to one model, and where it came from."""

    rates: Rates
    source: str  # "user", "litellm", "genai-prices"
    key: str  # the name the price is filed under in its source
    origin: str | None = None  # the price file, for user prices
    tiers: tuple[Tier, ...] = ()
    valid_from: datetime | None = None

    def rates_for(self, input_tokens: int) -> Rates:
        """Long-context prices apply to the whole call once its input passes a tier's threshold."""
        rates = self.rates
        for tier in self.tiers:  # sorted ascending
            if input_tokens > tier.above_input_tokens:
                rates = tier.rates.merged_over(self.rates)
        return rates

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": self.source, "key": self.key}
        if self.origin:
            out["origin"] = self.origin
        out["per_million"] = {f.name: plain(getattr(self.rates, f.name))
                              for f in fields(Rates) if getattr(self.rates, f.name) is not None}
        if self.tiers:
            out["tiers"] = [{"above_input_tokens": t.above_input_tokens,
                             **{f.name: plain(getattr(t.rates, f.name)) for f in fields(Rates)
                                if getattr(t.rates, f.name) is not None}} for t in self.tiers]
        if self.valid_from:
            out["valid_from"] = self.valid_from.isoformat()
        return out


@dataclass(frozen=True)
class Cost:
    input_cost: Decimal
    output_cost: Decimal
    fallbacks: tuple[str, ...] = ()

    @property
    def total_cost(self) -> Decimal:
        return self.input_cost + self.output_cost

    def as_attribute(self) -> dict[str, float]:
        """MLflow's ``mlflow.llm.cost`` shape; money becomes float only here."""
        return {"input_cost": float(self.input_cost), "output_cost": float(self.output_cost),
                "total_cost": float(self.total_cost)}


class Unpriced(Exception):
    """No price can be put on a call; the message is the reason shown on the span."""


def compute_cost(usage: Usage, price: Price) -> Cost:
    """Bill each part of the usage at its own rate; missing optional rates fall back, recorded."""
    rates = price.rates_for(usage.input_tokens or 0)
    fallbacks: list[str] = []

    def rate(kind: str, tokens: int, fallback: str | None = None) -> Decimal:
        if tokens == 0:
            return Decimal(0)
        value = getattr(rates, kind)
        if value is None and fallback is not None and getattr(rates, fallback) is not None:
            fallbacks.append(f"{kind}={fallback}")
            value = getattr(rates, fallback)
        if value is None:
            raise Unpriced(f"{price.source} price {price.key!r} has no {kind} rate "
                           f"for {tokens} {kind.replace('_', ' ')} tokens")
        return value

    cached = usage.cached_input_tokens
    written = usage.cache_write_tokens
    image_in = usage.image_input_tokens
    text_in = (usage.input_tokens or 0) - cached - written - image_in
    image_out = usage.image_output_tokens
    text_out = (usage.output_tokens or 0) - image_out
    if text_in < 0 or text_out < 0:
        raise Unpriced("usage parts add up to more than the reported total")

    input_cost = (text_in * rate("input", text_in)
                  + cached * rate("cached_input", cached, "input")
                  + written * rate("cache_write", written, "input")
                  + image_in * rate("image_input", image_in, "input")) / MILLION
    output_cost = text_out * rate("output", text_out) / MILLION
    # Image output is never billed at the text rate (12x too low): image-token rate, else a
    # price per image; with neither the call stays unpriced.
    if image_out and (rates.image_output is not None or rates.per_image is None
                      or not usage.images):
        output_cost += image_out * rate("image_output", image_out) / MILLION
    elif usage.images:
        output_cost += usage.images * rate("per_image", usage.images)
    return Cost(input_cost, output_cost, tuple(fallbacks))


# ---------------------------------------------------------------------------------------------
# The user's price table


@dataclass(frozen=True)
class _Entry:
    name: str
    price: Price
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class PriceTable:
    """The user's prices: exact names, regex matches, historic versions by ``valid_from``."""

    by_name: Mapping[str, tuple[_Entry, ...]] = field(default_factory=dict)
    patterns: tuple[_Entry, ...] = ()
    fingerprint: str = "none"
    # Where a call went -> who serves it and which model (see _endpoints).
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    deployments: Mapping[str, str] = field(default_factory=dict)

    def lookup(self, names: list[str], when: datetime) -> Price | None:
        for name in names:
            if entries := self.by_name.get(name):
                if price := _latest(entries, when):
                    return price
        matching = [e for e in self.patterns if any(e.pattern.search(n) for n in names[:1])]
        return _latest(tuple(matching), when)

    def __bool__(self) -> bool:
        return bool(self.by_name or self.patterns)


def _latest(entries: tuple[_Entry, ...], when: datetime) -> Price | None:
    best: Price | None = None
    for entry in entries:
        start = entry.price.valid_from
        if start is not None and start > when:
            continue
        if best is None or (start or datetime.min.replace(tzinfo=timezone.utc)) > \
                (best.valid_from or datetime.min.replace(tzinfo=timezone.utc)):
            best = entry.price
    return best


EMPTY_TABLE = PriceTable()


def load_price_table(prices: str | os.PathLike[str] | Mapping[str, Any] | None
                     ) -> tuple[PriceTable, str | None, str]:
    """Read the user's prices once, at enable time: (table, label for the config, source)."""
    source = "argument"
    if prices is None:
        env = os.environ.get("GENAI_TRACING_PRICES", "").strip()
        if not env:
            return EMPTY_TABLE, None, "default"
        prices, source = env, "GENAI_TRACING_PRICES"
    option = "prices" if source == "argument" else "GENAI_TRACING_PRICES"
    if isinstance(prices, Mapping):
        return parse_price_table(prices, origin="<mapping>"), "<mapping>", source
    if not isinstance(prices, (str, os.PathLike)):
        raise ConfigurationError(option, prices, "must be a path to a TOML/JSON file or a mapping",
                                 _FIX_FORMAT)
    path = Path(prices)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(option, str(prices), f"cannot be read ({e.strerror or e})",
                                 "point it at an existing, readable .toml or .json file") from None
    data = _parse_file(path, raw, option)
    return parse_price_table(data, origin=str(path), from_file=True), str(path), source


def _parse_file(path: Path, raw: bytes, option: str) -> Mapping[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(option, str(path), "is not UTF-8 text", _FIX_FORMAT) from None
    is_json = path.suffix.lower() == ".json" or (path.suffix.lower() != ".toml"
                                                  and text.lstrip().startswith("{"))
    try:
        if is_json:
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except ValueError as e:  # JSONDecodeError and TOMLDecodeError are both ValueErrors
        kind = "JSON" if is_json else "TOML"
        raise ConfigurationError(option, str(path), f"is not valid {kind} ({e})",
                                 _FIX_FORMAT) from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(option, str(path), "must hold a table of models", _FIX_FORMAT)
    return data


def parse_price_table(data: Mapping[str, Any], *, origin: str, from_file: bool = False
                      ) -> PriceTable:
    """Validate a price table (the shape of the price file) into a :class:`PriceTable`.

    In a file a price must be a number: a quoted ``"0.9"`` is a typo there. A mapping from code
    may give strings, the way to write an exact ``Decimal``.
    """
    where = origin
    sections = {"models", "endpoints", "deployments"}
    structured = isinstance(data, Mapping) and bool(sections & set(data))
    models = data.get("models", {}) if structured else data
    extra = set(data) - sections if structured else {
        k for k in data if difflib.get_close_matches(str(k), sorted(sections), cutoff=0.85)}
    if extra:
        key = sorted(extra)[0]
        raise ConfigurationError(f"{where}: {key}", data[key], "is not a known top-level key",
                                 _did_you_mean(key, sections) + "put every price under "
                                 "[models.\"<model name>\"]")
    endpoints = parse_endpoints(data["endpoints"], where) if structured and \
        "endpoints" in data else {}
    deployments = parse_deployments(data["deployments"], where) if structured and \
        "deployments" in data else {}
    if not isinstance(models, Mapping):
        raise ConfigurationError(f"{where}: models", models, "must be a table of models",
                                 _FIX_FORMAT)
    by_name: dict[str, list[_Entry]] = {}
    patterns: list[_Entry] = []
    for name, value in models.items():
        versions = value if isinstance(value, list) else [value]
        for version in versions:
            entry = _parse_entry(str(name), version, where, from_file)
            if entry.pattern is not None:
                patterns.append(entry)
            else:
                by_name.setdefault(str(name), []).append(entry)
    canonical = json.dumps(data, sort_keys=True, default=str)
    fingerprint = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return PriceTable({k: tuple(v) for k, v in by_name.items()}, tuple(patterns), fingerprint,
                      endpoints, deployments)


def _did_you_mean(key: str, known: set[str]) -> str:
    """'did you mean 'input_per_million'? ' for a near miss, else ''; the fix's sentence follows."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? Otherwise " if close else ""


def _parse_entry(name: str, value: Any, where: str, from_file: bool = False) -> _Entry:
    ctx = f"{where}: models.{json.dumps(name)}"
    if not isinstance(value, Mapping):
        raise ConfigurationError(ctx, value, "must be a table of prices", _FIX_FORMAT)
    unknown = set(value) - _ENTRY_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigurationError(f"{ctx}.{key}", value[key], "is not a known key",
                                 _did_you_mean(key, _ENTRY_KEYS)
                                 + f"use only {', '.join(sorted(_ENTRY_KEYS))}")
    rates = _parse_rates(value, ctx, allowed=set(_RATE_KEYS), from_file=from_file)
    if all(getattr(rates, f.name) is None for f in fields(Rates)):
        raise ConfigurationError(ctx, dict(value), "has no price",
                                 "give at least input_per_million and output_per_million")
    pattern = None
    if "match" in value:
        pattern = _compile(value["match"], f"{ctx}.match")
    valid_from = _parse_date(value["valid_from"], f"{ctx}.valid_from") \
        if "valid_from" in value else None
    tiers = []
    for i, tier in enumerate(value.get("tiers", []) or []):
        tctx = f"{ctx}.tiers[{i}]"
        if not isinstance(tier, Mapping):
            raise ConfigurationError(tctx, tier, "must be a table", _FIX_FORMAT)
        unknown = set(tier) - _TIER_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise ConfigurationError(f"{tctx}.{key}", tier[key], "is not a known tier key",
                                     _did_you_mean(key, _TIER_KEYS)
                                     + f"use only {', '.join(sorted(_TIER_KEYS))}")
        threshold = tier.get("above_input_tokens")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
            raise ConfigurationError(f"{tctx}.above_input_tokens", threshold,
                                     "must be a whole number of tokens >= 0",
                                     "e.g. above_input_tokens = 200000")
        tiers.append(Tier(threshold, _parse_rates(tier, tctx, allowed=_TIER_KEYS,
                                                  from_file=from_file)))
    price = Price(rates, "user", name, where, tuple(sorted(tiers, key=lambda t:
                                                            t.above_input_tokens)), valid_from)
    return _Entry(name, price, pattern)


def _parse_rates(value: Mapping[str, Any], ctx: str, allowed: set[str], from_file: bool = False
                 ) -> Rates:
    parsed: dict[str, Decimal] = {}
    for key, attr in _RATE_KEYS.items():
        if key not in value or key not in allowed:
            continue
        raw = value[key]
        if from_file and isinstance(raw, str):
            quoted = to_decimal(raw.strip()) is not None
            raise ConfigurationError(f"{ctx}.{key}", raw, "is a string, not a number",
                                     f"remove the quotes: {key} = {raw.strip()}" if quoted
                                     else f"write it as a number of USD, e.g. {key} = 0.5")
        try:
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
                raise InvalidOperation
            number = Decimal(str(raw))
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise ConfigurationError(f"{ctx}.{key}", raw, "is not a number",
                                     f"write it as a number of USD, e.g. {key} = 0.5") from None
        if number < 0:
            raise ConfigurationError(f"{ctx}.{key}", raw, "is negative",
                                     "prices are USD amounts >= 0")
        parsed[attr] = number
    return Rates(**parsed)


def _compile(raw: Any, ctx: str) -> re.Pattern[str]:
    if not isinstance(raw, str) or not raw:
        raise ConfigurationError(ctx, raw, "must be a non-empty regular expression",
                                 'e.g. match = "^ft:gpt-4o-mini:acme:.*"')
    if len(raw) > MAX_REGEX_LENGTH:
        raise ConfigurationError(ctx, raw[:40] + "...", f"is longer than {MAX_REGEX_LENGTH} "
                                 "characters", "use a shorter pattern")
    try:
        return re.compile(raw)
    except re.error as e:
        raise ConfigurationError(ctx, raw, f"is not a valid regular expression ({e})",
                                 "fix the pattern (Python re syntax)") from None


def _parse_date(raw: Any, ctx: str) -> datetime:
    try:
        if isinstance(raw, datetime):
            value = raw
        elif isinstance(raw, date):
            value = datetime(raw.year, raw.month, raw.day)
        elif isinstance(raw, str):
            value = datetime.fromisoformat(raw.strip())
        else:
            raise ValueError
    except ValueError:
        raise ConfigurationError(ctx, raw, "is not a date", "write it as 2026-01-01") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# Catalogs


_DATED = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{2}-\d{4}|@\d{8}|-latest|-\d{3})$")
_KNOWN_PREFIXES = ("models/", "openai/", "anthropic/", "gemini/", "google/", "vertex_ai/",
                   "azure/", "litellm/")
# How each provider names itself in LiteLLM's map and in genai-prices.
_LITELLM_PREFIX = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini",
                   "azure": "azure", "databricks": "databricks", "groq": "groq",
                   "deepseek": "deepseek", "together_ai": "together_ai",
                   "fireworks_ai": "fireworks_ai", "mistral": "mistral", "xai": "xai",
                   "openrouter": "openrouter", "vllm": "hosted_vllm", "ollama": "ollama"}
_GENAI_PRICES_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "google",
                          "azure": "azure", "databricks": "databricks", "groq": "groq",
                          "deepseek": "deepseek", "together_ai": "together",
                          "fireworks_ai": "fireworks", "mistral": "mistral", "xai": "x-ai",
                          "openrouter": "openrouter"}
# Providers that serve other makers' models (Azure, Databricks, Groq, a local server...): priced
# only from their own entries, never silently at the maker's price filed under the bare name.
_SERVING_ONLY = frozenset(KNOWN_PROVIDERS) - {"openai"}
# DALL-E's per-image variant ("standard/1024x1024"), which LiteLLM files per pixel.
_IMAGE_VARIANT = re.compile(r"^(?P<model>.+)/(?P<quality>[a-z]+)/(?P<w>\d+)x(?P<h>\d+)$")


def candidate_names(model: str, provider: str | None = None) -> list[str]:
    """The names a model may be filed under: as reported, unprefixed, then undated."""
    names = [model]
    bare = model
    for prefix in _KNOWN_PREFIXES:
        if bare.lower().startswith(prefix):
            bare = bare[len(prefix):]
            break
    names.append(bare)
    lowered = bare.lower()
    names.append(lowered)
    undated = _DATED.sub("", lowered)
    if undated != lowered:
        names.append(undated)
    if lowered.startswith("ft:"):
        # ft:<base>:<org>:<suffix>:<id> is priced as the fine-tuned base model, never as the base.
        names.append(":".join(lowered.split(":")[:2]))
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


_litellm_lock = threading.Lock()


def litellm_price(model: str, provider: str | None) -> Price | None:
    """From the fetched map (``genai-tracing prices update``) if there is one, else LiteLLM's
    bundled map."""
    from ._catalogs import litellm_maps

    names = candidate_names(model, provider)
    prefix = _LITELLM_PREFIX.get(provider or "")
    own_only = provider in _SERVING_ONLY
    keys: list[str] = []
    for name in names:
        if prefix:
            keys.append(f"{prefix}/{name}")
        if not own_only:
            keys.append(name)
    for catalog, origin in litellm_maps():
        for key in keys:
            entry = catalog.get(key)
            if isinstance(entry, Mapping) and _litellm_has_price(entry):
                return _litellm_to_price(key, entry, origin)
        if own_only and prefix and (price := _litellm_pixel_price(catalog, prefix, names, origin)):
            return price
    return None


def _litellm_pixel_price(catalog: Mapping[str, Any], prefix: str, names: list[str],
                         origin: str | None) -> Price | None:
    """A provider's per-pixel image price (``azure/standard/1024-x-1024/dall-e-3``), per image."""
    for name in names:
        if not (m := _IMAGE_VARIANT.match(name)):
            continue
        key = f"{prefix}/{m['quality']}/{m['w']}-x-{m['h']}/{m['model']}"
        entry = catalog.get(key)
        per_pixel = _decimal(entry.get("input_cost_per_pixel")) if isinstance(entry, Mapping) \
            else None
        if per_pixel is not None:
            return Price(Rates(input=Decimal(0), output=Decimal(0),
                               per_image=per_pixel * int(m["w"]) * int(m["h"])),
                         "litellm", key, origin)
    return None


def _litellm_has_price(entry: Mapping[str, Any]) -> bool:
    return any(entry.get(k) is not None for k in ("input_cost_per_token", "output_cost_per_token",
                                                   "output_cost_per_image",
                                                   "output_cost_per_image_token"))


def _per_million(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)) * MILLION
    except (InvalidOperation, ValueError):
        return None


_LITELLM_TIER = re.compile(r"^(input_cost_per_token|output_cost_per_token|"
                           r"cache_read_input_token_cost|cache_creation_input_token_cost)"
                           r"_above_(\d+)k_tokens$")
_LITELLM_TIER_FIELD = {"input_cost_per_token": "input", "output_cost_per_token": "output",
                       "cache_read_input_token_cost": "cached_input",
                       "cache_creation_input_token_cost": "cache_write"}


def _litellm_to_price(key: str, entry: Mapping[str, Any], origin: str | None = None) -> Price:
    rates = Rates(
        input=_per_million(entry.get("input_cost_per_token")),
        output=_per_million(entry.get("output_cost_per_token")),
        cached_input=_per_million(entry.get("cache_read_input_token_cost")),
        cache_write=_per_million(entry.get("cache_creation_input_token_cost")),
        image_input=_per_million(entry.get("input_cost_per_image_token")),
        image_output=_per_million(entry.get("output_cost_per_image_token")),
        per_image=_decimal(entry.get("output_cost_per_image")),
    )
    tiers: dict[int, dict[str, Decimal]] = {}
    for k, v in entry.items():
        if m := _LITELLM_TIER.match(k):
            rate = _per_million(v)
            if rate is not None:
                tiers.setdefault(int(m.group(2)) * 1000, {})[_LITELLM_TIER_FIELD[m.group(1)]] = rate
    return Price(rates, "litellm", key, origin, tiers=tuple(
        Tier(t, Rates(**r)) for t, r in sorted(tiers.items())))


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def genai_prices_price(model: str, provider: str | None, when: datetime) -> Price | None:
    try:
        from genai_prices import data_snapshot
        from genai_prices.types import TieredPrices
    except ImportError:
        return None
    snapshot = data_snapshot.get_snapshot()
    provider_id = _GENAI_PRICES_PROVIDER.get(provider or "")
    if provider_id is None and provider in _SERVING_ONLY:
        return None  # a provider genai-prices does not know: no other provider's price applies
    for name in candidate_names(model, provider):
        try:
            found_provider, info = snapshot.find_provider_model(name, None, provider_id, None)
            prices = info.get_prices(when)
        except (LookupError, ValueError):
            continue

        def base(attr: str) -> Decimal | None:
            value = getattr(prices, attr, None)
            return value.base if isinstance(value, TieredPrices) else value

        rates = Rates(input=base("input_mtok"), output=base("output_mtok"),
                      cached_input=base("cache_read_mtok"), cache_write=base("cache_write_mtok"),
                      image_input=base("input_image_mtok"), image_output=base("output_image_mtok"))
        if rates.input is None and rates.output is None:
            continue
        tiers: dict[int, dict[str, Decimal]] = {}
        for attr, kind in (("input_mtok", "input"), ("output_mtok", "output"),
                           ("cache_read_mtok", "cached_input"),
                           ("cache_write_mtok", "cache_write")):
            value = getattr(prices, attr, None)
            if isinstance(value, TieredPrices):
                for tier in value.tiers:
                    tiers.setdefault(int(tier.start), {})[kind] = tier.price
        return Price(rates, "genai-prices", f"{found_provider.id}/{info.id}", tiers=tuple(
            Tier(t, Rates(**r)) for t, r in sorted(tiers.items())))
    return None


# ---------------------------------------------------------------------------------------------
def builtin_price(name: str) -> Price | None:
    from ._builtin_prices import PER_IMAGE, SOURCE

    value = PER_IMAGE.get(name.lower())
    if value is None:
        return None
    return Price(Rates(input=Decimal(0), output=Decimal(0), per_image=Decimal(value)),
                 source=SOURCE, key=name.lower())


# Resolution, cached per model so pricing a span stays cheap


@dataclass
class PriceResolver:
    """Finds the price for (model, provider) in precedence order; results are cached."""

    table: PriceTable = EMPTY_TABLE
    _cache: dict[tuple[str, str | None], Price | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def resolve(self, model: str, provider: str | None, when: datetime | None = None
                ) -> Price | None:
        when = when or datetime.now(timezone.utc)
        if self.table:
            # User prices can depend on the call time (valid_from), so they are not cached.
            if price := self.table.lookup(candidate_names(model, provider), when):
                return price
        key = (model, provider)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if provider in LOCAL_PROVIDERS:
            price = None  # a self-hosted server costs what the user's price file says, or unknown
        else:
            price = litellm_price(model, provider) or genai_prices_price(model, provider, when) \
                or (builtin_price(model) if provider not in _SERVING_ONLY else None)
        with self._lock:
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = price
        return price

    def with_table(self, table: PriceTable) -> PriceResolver:
        return replace(self, table=table, _cache={}, _lock=threading.Lock())


_active_resolver: PriceResolver | None = None


def use_resolver(resolver: PriceResolver | None) -> None:
    """Make ``resolver`` the one in force (``enable_tracing()``); ``None`` restores the default."""
    global _active_resolver
    _active_resolver = resolver


def active_resolver() -> PriceResolver:
    """The resolver in force (the prices ``enable_tracing()`` loaded), or one with no user prices."""
    return _active_resolver or PriceResolver()


def price_call(call: Call, resolver: PriceResolver, when: datetime | None = None
               ) -> tuple[Cost, str, Price | None]:
    """Cost of a call by precedence: user price, provider-reported cost, catalogs."""
    if call.usage is None:
        raise Unpriced("no usage")
    model = call.model
    if not model:
        if call.reported_cost is not None:
            return call.reported_cost, "provider", None
        raise Unpriced("the call names no model")
    mapped = _mapped_model(call, resolver.table)
    names = list(dict.fromkeys(n for n in (model, mapped, call.requested_model) if n))
    if call.variant:
        names = [f"{n}/{call.variant}" for n in names] + names
    if resolver.table:
        served = [f"{call.provider}/{n}" for n in names] if call.provider in _SERVING_ONLY \
            else []
        candidates = [c for n in served + names for c in candidate_names(n, call.provider)]
        user_price = resolver.table.lookup(list(dict.fromkeys(candidates)),
                                          when or datetime.now(timezone.utc))
        if user_price is not None:
            return compute_cost(call.usage, user_price), "user", user_price
    if call.reported_cost is not None:
        return call.reported_cost, "provider", None
    for name in dict.fromkeys(names):
        price = resolver.resolve(name, call.provider, when)
        if price is not None:
            return compute_cost(call.usage, price), price.source, price
    if call.provider in LOCAL_PROVIDERS:
        raise Unpriced(f"{call.provider} serves {model!r} on your own machines: no catalog "
                       "prices it; add it to your price file")
    if call.provider in _SERVING_ONLY:
        raise Unpriced(f"no {call.provider} price known for model {model!r} (another "
                       "provider's price is not assumed)")
    raise Unpriced(f"no price known for model {model!r}")


def _mapped_model(call: Call, table: PriceTable) -> str | None:
    """The model the user's price file says a deployment or endpoint serves, if any."""
    from ._endpoints import mapped_model

    return mapped_model(table, getattr(call, "endpoint", None), getattr(call, "deployment", None))
