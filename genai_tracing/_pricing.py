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
    audio_input: Decimal | None = None
    audio_output: Decimal | None = None
    cached_audio_input: Decimal | None = None
    cache_write_1h: Decimal | None = None

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
    "audio_input_per_million": "audio_input",
    "audio_output_per_million": "audio_output",
    "cached_audio_input_per_million": "cached_audio_input",
    "cache_write_1h_per_million": "cache_write_1h",
}
# The price-file key of each per-call tool fee (USD per call), and the tool it prices.
_FEE_KEYS = {
    "web_search_per_call": "web_search",
    "file_search_per_call": "file_search",
    "code_interpreter_per_call": "code_interpreter",
    "code_execution_per_call": "code_execution",
    "google_maps_per_call": "google_maps",
}
# Service tiers a price can carry rates for (OpenAI's service_tier, Anthropic's usage tier).
SERVICE_TIERS = ("flex", "priority", "batch", "scale", "ultrafast", "provisioned")
# Tools a provider reports but bills nothing for beyond their tokens: counted, never flagged.
# Anthropic web fetch: "no additional charges beyond standard token costs" (anthropic.com/pricing).
FREE_TOOLS = frozenset({"web_fetch"})
_ENTRY_KEYS = set(_RATE_KEYS) | set(_FEE_KEYS) | {"match", "valid_from", "tiers", "service_tiers"}
_TIER_KEYS = set(_RATE_KEYS) - {"per_image"} | {"above_input_tokens"}


@dataclass(frozen=True)
class Fee:
    """A built-in tool's fee: ``amount`` USD per call the provider reports (``per="call"``), or
    once per request that used the tool (``per="request"``, Gemini 2.x grounding)."""

    amount: Decimal
    per: str = "call"


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
    # The service tier these rates are for (None: standard), and the other tiers' prices.
    service_tier: str | None = None
    service_tiers: tuple[tuple[str, Price], ...] = ()
    fees: tuple[tuple[str, Fee], ...] = ()

    def for_service_tier(self, tier: str) -> Price | None:
        return dict(self.service_tiers).get(tier)

    def fee(self, tool: str) -> Fee | None:
        return dict(self.fees).get(tool)

    def rates_for(self, input_tokens: int) -> Rates:
        """Long-context prices apply to the whole call once its input passes a tier's threshold."""
        rates = self.rates
        for tier in self.tiers:  # sorted ascending
            if input_tokens > tier.above_input_tokens:
                rates = tier.rates.merged_over(self.rates)
        return rates

    def describe(self, *, full: bool = False) -> dict[str, Any]:
        """The price as a span attribute records it; ``full`` adds every service tier's rates
        (``genai-tracing price MODEL``)."""
        out: dict[str, Any] = {"source": self.source, "key": self.key}
        if self.origin:
            out["origin"] = self.origin
        if self.service_tier:
            out["service_tier"] = self.service_tier
        out["per_million"] = {f.name: plain(getattr(self.rates, f.name))
                              for f in fields(Rates) if getattr(self.rates, f.name) is not None}
        if self.tiers:
            out["tiers"] = [{"above_input_tokens": t.above_input_tokens,
                             **{f.name: plain(getattr(t.rates, f.name)) for f in fields(Rates)
                                if getattr(t.rates, f.name) is not None}} for t in self.tiers]
        if self.valid_from:
            out["valid_from"] = self.valid_from.isoformat()
        for per in ("call", "request"):
            fees = {tool: plain(f.amount) for tool, f in self.fees if f.per == per}
            if fees:
                out[f"per_{per}"] = fees
        if full and self.service_tiers:
            out["service_tiers"] = {}
            for name, tier in self.service_tiers:
                described = tier.describe()
                out["service_tiers"][name] = {k: v for k, v in described.items()
                                              if k in ("per_million", "tiers")}
        return out


@dataclass(frozen=True)
class Cost:
    """``input_cost`` includes the built-in tool fees (``tool_costs`` lists them): MLflow's
    cost has input and output only, and its total must stay their sum. ``missing`` says what
    could not be billed (a tool with no known fee): the cost is then a lower bound."""

    input_cost: Decimal
    output_cost: Decimal
    fallbacks: tuple[str, ...] = ()
    tool_costs: tuple[tuple[str, Decimal], ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def total_cost(self) -> Decimal:
        return self.input_cost + self.output_cost

    def as_attribute(self) -> dict[str, float]:
        """MLflow's ``mlflow.llm.cost`` shape; money becomes float only here."""
        return {"input_cost": float(self.input_cost), "output_cost": float(self.output_cost),
                "total_cost": float(self.total_cost)}


class Unpriced(Exception):
    """No price can be put on a call; the message is the reason shown on the span."""


def compute_cost(usage: Usage, price: Price, fallbacks: list[str] | None = None) -> Cost:
    """Bill each part of the usage at its own rate; missing optional rates fall back, recorded.

    Audio tokens and 1-hour cache writes are never billed at the text or 5-minute rates: without
    their own rate the call is unpriced. A built-in tool with no fee leaves the cost partial.
    """
    rates = price.rates_for(usage.input_tokens or 0)
    fallbacks = list(fallbacks or ())

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
    cached_audio = usage.cached_audio_input_tokens
    written = usage.cache_write_tokens
    written_1h = usage.cache_write_1h_tokens
    image_in = usage.image_input_tokens
    audio_in = usage.audio_input_tokens
    text_in = (usage.input_tokens or 0) - cached - written - image_in - audio_in
    image_out = usage.image_output_tokens
    audio_out = usage.audio_output_tokens
    text_out = (usage.output_tokens or 0) - image_out - audio_out
    if text_in < 0 or text_out < 0 or cached_audio > cached or written_1h > written:
        raise Unpriced("usage parts add up to more than the reported total")

    input_cost = (text_in * rate("input", text_in)
                  + (cached - cached_audio) * rate("cached_input", cached - cached_audio, "input")
                  + cached_audio * rate("cached_audio_input", cached_audio, "audio_input")
                  + (written - written_1h) * rate("cache_write", written - written_1h, "input")
                  + written_1h * rate("cache_write_1h", written_1h)
                  + image_in * rate("image_input", image_in, "input")
                  + audio_in * rate("audio_input", audio_in)) / MILLION
    output_cost = (text_out * rate("output", text_out)
                   + audio_out * rate("audio_output", audio_out)) / MILLION
    # Image output is never billed at the text rate (12x too low): image-token rate, else a
    # price per image; with neither the call stays unpriced.
    if image_out and (rates.image_output is not None or rates.per_image is None
                      or not usage.images):
        output_cost += image_out * rate("image_output", image_out) / MILLION
    elif usage.images:
        output_cost += usage.images * rate("per_image", usage.images)
    tool_costs: list[tuple[str, Decimal]] = []
    missing: list[str] = []
    for tool, count in usage.tool_calls:
        if tool in FREE_TOOLS or count <= 0:
            continue
        fee = price.fee(tool)
        if fee is None:
            missing.append(f"{count} {tool} call{'' if count == 1 else 's'} not billed: no "
                           f"per-call fee known (add {tool}_per_call to your price file)")
            continue
        tool_costs.append((tool, fee.amount * (count if fee.per == "call" else 1)))
    input_cost += sum((c for _, c in tool_costs), Decimal(0))
    return Cost(input_cost, output_cost, tuple(fallbacks), tuple(tool_costs), tuple(missing))


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


def _reject_unknown(table: Mapping[str, Any], known: set[str], ctx: str,
                    problem: str = "is not a known key") -> None:
    """Refuse the first key of ``table`` (in sorted order) that is not in ``known``."""
    unknown = set(table) - known
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigurationError(f"{ctx}.{key}", table[key], problem,
                                 _did_you_mean(key, known)
                                 + f"use only {', '.join(sorted(known))}")


def _did_you_mean(key: str, known: set[str]) -> str:
    """'did you mean 'input_per_million'? ' for a near miss, else ''; the fix's sentence follows."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? Otherwise " if close else ""


def _parse_entry(name: str, value: Any, where: str, from_file: bool = False) -> _Entry:
    ctx = f"{where}: models.{json.dumps(name)}"
    if not isinstance(value, Mapping):
        raise ConfigurationError(ctx, value, "must be a table of prices", _FIX_FORMAT)
    _reject_unknown(value, _ENTRY_KEYS, ctx)
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
        _reject_unknown(tier, _TIER_KEYS, tctx, "is not a known tier key")
        threshold = tier.get("above_input_tokens")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
            raise ConfigurationError(f"{tctx}.above_input_tokens", threshold,
                                     "must be a whole number of tokens >= 0",
                                     "e.g. above_input_tokens = 200000")
        tiers.append(Tier(threshold, _parse_rates(tier, tctx, allowed=_TIER_KEYS,
                                                  from_file=from_file)))
    fees = tuple((tool, Fee(_parse_number(value[key], f"{ctx}.{key}", key, from_file)))
                 for key, tool in _FEE_KEYS.items() if key in value)
    service_tiers = _parse_service_tiers(value.get("service_tiers"), name, f"{ctx}.service_tiers",
                                         where, fees, from_file) if "service_tiers" in value else ()
    price = Price(rates, "user", name, where, tuple(sorted(tiers, key=lambda t:
                                                            t.above_input_tokens)), valid_from,
                  service_tiers=service_tiers, fees=fees)
    return _Entry(name, price, pattern)


def _parse_service_tiers(raw: Any, name: str, ctx: str, where: str,
                         fees: tuple[tuple[str, Fee], ...], from_file: bool
                         ) -> tuple[tuple[str, Price], ...]:
    """``service_tiers = { flex = { input_per_million = ..., ... }, priority = {...} }``."""
    example = "e.g. [models.\"gpt-5\".service_tiers.flex] with input_per_million = 0.625"
    if not isinstance(raw, Mapping):
        raise ConfigurationError(ctx, raw, "must be a table of service tiers", example)
    parsed = []
    for tier, table in raw.items():
        tctx = f"{ctx}.{tier}"
        if tier not in SERVICE_TIERS:
            raise ConfigurationError(tctx, table, "is not a known service tier",
                                     _did_you_mean(tier, set(SERVICE_TIERS))
                                     + f"use only {', '.join(SERVICE_TIERS)}")
        if not isinstance(table, Mapping):
            raise ConfigurationError(tctx, table, "must be a table of prices", example)
        allowed = set(_RATE_KEYS) - {"per_image"}
        _reject_unknown(table, allowed, tctx)
        rates = _parse_rates(table, tctx, allowed=allowed, from_file=from_file)
        if rates.input is None and rates.output is None:
            raise ConfigurationError(tctx, dict(table), "has no price",
                                     "give at least input_per_million and output_per_million")
        parsed.append((tier, Price(rates, "user", name, where, service_tier=tier, fees=fees)))
    return tuple(parsed)


def _parse_rates(value: Mapping[str, Any], ctx: str, allowed: set[str], from_file: bool = False
                 ) -> Rates:
    parsed: dict[str, Decimal] = {}
    for key, attr in _RATE_KEYS.items():
        if key not in value or key not in allowed:
            continue
        parsed[attr] = _parse_number(value[key], f"{ctx}.{key}", key, from_file)
    return Rates(**parsed)


def _parse_number(raw: Any, ctx: str, key: str, from_file: bool) -> Decimal:
    if from_file and isinstance(raw, str):
        quoted = to_decimal(raw.strip()) is not None
        raise ConfigurationError(ctx, raw, "is a string, not a number",
                                 f"remove the quotes: {key} = {raw.strip()}" if quoted
                                 else f"write it as a number of USD, e.g. {key} = 0.5")
    try:
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
            raise InvalidOperation
        number = Decimal(str(raw))
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise ConfigurationError(ctx, raw, "is not a number",
                                 f"write it as a number of USD, e.g. {key} = 0.5") from None
    if number < 0:
        raise ConfigurationError(ctx, raw, "is negative", "prices are USD amounts >= 0")
    return number


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
                   "openrouter": "openrouter", "vllm": "hosted_vllm", "ollama": "ollama",
                   "bedrock": "bedrock", "vertex_ai": "vertex_ai"}
_GENAI_PRICES_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "google",
                          "azure": "azure", "databricks": "databricks", "groq": "groq",
                          "deepseek": "deepseek", "together_ai": "together",
                          "fireworks_ai": "fireworks", "mistral": "mistral", "xai": "x-ai",
                          "openrouter": "openrouter", "bedrock": "aws", "vertex_ai": "google"}
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
        # A serving provider's entries filed under the bare name count only when the entry says
        # it is that provider's (Bedrock's "us.anthropic.claude-...-v1:0", Vertex's Gemini).
        keys.append(name)
    for catalog, origin in litellm_maps():
        for key in keys:
            entry = catalog.get(key)
            if isinstance(entry, Mapping) and _litellm_has_price(entry) and (
                    not own_only or "/" in key or _filed_by(entry, prefix)):
                return _litellm_to_price(key, entry, origin, provider)
        if own_only and prefix and (price := _litellm_pixel_price(catalog, prefix, names, origin)):
            return price
    return None


def _filed_by(entry: Mapping[str, Any], prefix: str | None) -> bool:
    """Whether a LiteLLM entry is ``prefix``'s own (``bedrock_converse``, ``vertex_ai-...``)."""
    owner = str(entry.get("litellm_provider") or "")
    return bool(prefix) and prefix in ("bedrock", "vertex_ai") and (
        owner == prefix or owner.startswith((prefix + "_", prefix + "-")))


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


# LiteLLM's key of each per-token rate (USD per token).
_LITELLM_TIER_FIELD = {"input_cost_per_token": "input", "output_cost_per_token": "output",
                       "cache_read_input_token_cost": "cached_input",
                       "cache_creation_input_token_cost": "cache_write",
                       "input_cost_per_image_token": "image_input",
                       "output_cost_per_image_token": "image_output",
                       "input_cost_per_audio_token": "audio_input",
                       "output_cost_per_audio_token": "audio_output",
                       "cache_read_input_audio_token_cost": "cached_audio_input",
                       "cache_creation_input_token_cost_above_1hr": "cache_write_1h"}
_LITELLM_TIER = re.compile(r"^(" + "|".join(sorted(_LITELLM_TIER_FIELD, key=len, reverse=True))
                           + r")_above_(\d+)k_tokens$")
# LiteLLM files a service tier's rates under the standard keys plus a suffix
# (input_cost_per_token_flex, cache_read_input_token_cost_priority, ..._batches).
_LITELLM_SERVICE_TIERS = {"_flex": "flex", "_priority": "priority", "_batches": "batch",
                          "_ultrafast": "ultrafast"}


def _litellm_to_price(key: str, entry: Mapping[str, Any], origin: str | None = None,
                      provider: str | None = None) -> Price:
    rates = Rates(per_image=_decimal(entry.get("output_cost_per_image")),
                  **{field: _per_million(entry.get(k)) for k, field in
                     _LITELLM_TIER_FIELD.items()})
    tiers: dict[int, dict[str, Decimal]] = {}
    for k, v in entry.items():
        if m := _LITELLM_TIER.match(k):
            rate = _per_million(v)
            if rate is not None:
                tiers.setdefault(int(m.group(2)) * 1000, {})[_LITELLM_TIER_FIELD[m.group(1)]] = rate
    fees = _litellm_fees(entry, provider or key.split("/", 1)[0])
    service_tiers = []
    for suffix, tier in _LITELLM_SERVICE_TIERS.items():
        sub = {k[:-len(suffix)]: v for k, v in entry.items() if k.endswith(suffix)}
        if sub.get("input_cost_per_token") is not None or \
                sub.get("output_cost_per_token") is not None:
            priced = _litellm_to_price(key, sub, origin, provider)
            service_tiers.append((tier, replace(priced, service_tier=tier, fees=fees)))
    return Price(rates, "litellm", key, origin, tiers=tuple(
        Tier(t, Rates(**r)) for t, r in sorted(tiers.items())),
        service_tiers=tuple(service_tiers), fees=fees)


def _litellm_fees(entry: Mapping[str, Any], provider: str) -> tuple[tuple[str, Fee], ...]:
    fees: list[tuple[str, Fee]] = []
    search = entry.get("search_context_cost_per_query")
    if isinstance(search, Mapping):
        # OpenAI's default search context size is medium; the map gives one rate per size.
        search = search.get("search_context_size_medium", next(iter(search.values()), None))
    if (amount := _decimal(search)) is not None:
        # Gemini 2.x grounding is billed per grounded prompt, Gemini 3 per search query
        # (ai.google.dev/gemini-api/docs/pricing); LiteLLM marks the latter "per_query".
        per = "request" if provider in ("gemini", "vertex_ai") and \
            entry.get("web_search_billing_unit") != "per_query" else "call"
        fees.append(("web_search", Fee(amount, per)))
    if (amount := _decimal(entry.get("google_maps_grounding_cost_per_query"))) is not None:
        # Grounding with Google Maps bills like Google Search grounding: per grounded prompt on
        # Gemini 2.x ($25 per 1,000), per Maps query where LiteLLM marks "per_query".
        per = "call" if entry.get("web_search_billing_unit") == "per_query" else "request"
        fees.append(("google_maps", Fee(amount, per)))
    if (amount := _decimal(entry.get("file_search_cost_per_1k_calls"))) is not None:
        fees.append(("file_search", Fee(amount / 1000)))
    if (amount := _decimal(entry.get("code_interpreter_cost_per_session"))) is not None:
        fees.append(("code_interpreter", Fee(amount)))
    return tuple(fees)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


# genai-prices' name of each rate (USD per million tokens).
_GENAI_PRICES_FIELD = {"input_mtok": "input", "output_mtok": "output",
                       "cache_read_mtok": "cached_input", "cache_write_mtok": "cache_write",
                       "input_image_mtok": "image_input", "output_image_mtok": "image_output",
                       "input_audio_mtok": "audio_input", "output_audio_mtok": "audio_output",
                       "cache_audio_read_mtok": "cached_audio_input",
                       "cache_write_1h_mtok": "cache_write_1h"}


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

        rates = Rates(**{kind: base(attr) for attr, kind in _GENAI_PRICES_FIELD.items()})
        if rates.input is None and rates.output is None:
            continue
        tiers: dict[int, dict[str, Decimal]] = {}
        for attr, kind in _GENAI_PRICES_FIELD.items():
            value = getattr(prices, attr, None)
            if isinstance(value, TieredPrices):
                for tier in value.tiers:
                    tiers.setdefault(int(tier.start), {})[kind] = tier.price
        fees = []
        for attr, tool in (("web_searches_kcount", "web_search"),
                           ("storage_searches_kcount", "file_search")):
            if (amount := _decimal(getattr(prices, attr, None))) is not None:
                # Per thousand; Gemini grounding is per grounded prompt (see _litellm_fees).
                per = "request" if provider == "gemini" and tool == "web_search" else "call"
                fees.append((tool, Fee(amount / 1000, per)))
        return Price(rates, "genai-prices", f"{found_provider.id}/{info.id}", tiers=tuple(
            Tier(t, Rates(**r)) for t, r in sorted(tiers.items())), fees=tuple(fees))
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
    # A region with its own price (Bedrock's GovCloud "bedrock/us-gov-west-1/<model id>"): that
    # entry, where a catalog files one under the exact name, before the model's own.
    regional = [f"{call.region}/{n}" for n in names] if call.region else []
    if resolver.table:
        served = [f"{call.provider}/{n}" for n in regional + names] \
            if call.provider in _SERVING_ONLY else []
        candidates = [c for n in served + names for c in candidate_names(n, call.provider)]
        user_price = resolver.table.lookup(list(dict.fromkeys(candidates)),
                                          when or datetime.now(timezone.utc))
        if user_price is not None:
            return _bill(call, user_price, when)
    if call.reported_cost is not None:
        return call.reported_cost, "provider", None
    for name in regional:
        if (price := litellm_price(name, call.provider)) is not None:
            return _bill(call, price, when)
    for name in dict.fromkeys(names):
        price = resolver.resolve(name, call.provider, when)
        if price is not None:
            return _bill(call, price, when)
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


# The rates a call may need that a price may lack, filled from the next source that has them.
_SUPPLEMENTED_RATES = (("audio_input", "audio_input_tokens"),
                       ("audio_output", "audio_output_tokens"),
                       ("cached_audio_input", "cached_audio_input_tokens"),
                       ("cache_write_1h", "cache_write_1h_tokens"))


def _bill(call: Call, price: Price, when: datetime | None) -> tuple[Cost, str, Price]:
    """The cost of a call at ``price``, at the service tier the call was billed at.

    A rate or fee the price lacks for a part of this call (a service tier, audio, 1-hour cache
    writes, a tool's fee) comes from the next source that has it, in precedence order (LiteLLM's
    map, genai-prices, then genai_tracing's own fees), and each such fallback is recorded.
    A service tier no source prices leaves the call unpriced: never the standard rates.
    """
    usage = call.usage
    assert usage is not None
    fallbacks: list[str] = []
    source = price.source
    tier = usage.service_tier
    if tier:
        tiered = price.for_service_tier(tier)
        if tiered is None:
            for other in _other_prices(call, price, when):
                if (tiered := other.for_service_tier(tier)) is not None:
                    fallbacks.append(f"service_tier {tier}={other.source} {other.key!r}")
                    source = other.source
                    break
        if tiered is None:
            raise Unpriced(f"no {tier!r} service-tier rates for model {call.model!r} in "
                           f"{price.source} price {price.key!r} or any catalog (add "
                           f"service_tiers.{tier} to its entry in your price file)")
        price = replace(tiered, fees=_merged_fees(tiered.fees, price.fees))
    else:
        rates = price.rates_for(usage.input_tokens or 0)
        for kind, part in _SUPPLEMENTED_RATES:
            if not getattr(usage, part) or getattr(rates, kind) is not None:
                continue
            for other in _other_prices(call, price, when):
                value = getattr(other.rates_for(usage.input_tokens or 0), kind)
                if value is not None:
                    fallbacks.append(f"{kind}={other.source} {other.key!r}")
                    price = replace(price, rates=replace(price.rates, **{kind: value}))
                    break
    for tool, count in usage.tool_calls:
        if count and tool not in FREE_TOOLS and price.fee(tool) is None:
            for other in _other_prices(call, price, when):
                if (fee := other.fee(tool)) is not None:
                    fallbacks.append(f"{tool}={other.source} {other.key!r}")
                    price = replace(price, fees=price.fees + ((tool, fee),))
                    break
    return compute_cost(usage, price, fallbacks), source, price


def _merged_fees(first: tuple[tuple[str, Fee], ...], then: tuple[tuple[str, Fee], ...]
                 ) -> tuple[tuple[str, Fee], ...]:
    have = {tool for tool, _ in first}
    return first + tuple((tool, fee) for tool, fee in then if tool not in have)


def _other_prices(call: Call, price: Price, when: datetime | None) -> Any:
    """The catalogs' prices for the call's model other than ``price``, in precedence order."""
    when = when or datetime.now(timezone.utc)
    names = list(dict.fromkeys(n for n in (call.model, call.requested_model) if n))
    for name in names:
        for found in (litellm_price(name, call.provider),
                      genai_prices_price(name, call.provider, when)):
            if found is not None and (found.source, found.key) != (price.source, price.key):
                yield found
    yield builtin_fees(call.provider)


def builtin_fees(provider: str | None) -> Price:
    from ._builtin_prices import SOURCE, TOOL_FEES

    return Price(Rates(), SOURCE, f"{provider} tool fees", fees=tuple(
        (tool, Fee(Decimal(amount))) for (p, tool), amount in TOOL_FEES.items() if p == provider))
