"""The price file contract, price precedence, catalog resolution and ``estimate_cost()``.

Most of these need no store: ``estimate_cost()`` runs the same engine a span is priced with. Every
expected amount is computed by hand from a price written in the test (USD per million tokens).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import litellm
import pytest

import genai_tracing
from genai_tracing import ConfigurationError, estimate_cost
from genai_tracing._pricing import Cost, PriceResolver, candidate_names, parse_price_table
from genai_tracing._pricing import price_call
from genai_tracing._usage import Usage
from genai_tracing.providers import Call
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, llm_spans, openai_client

M = Decimal(1_000_000)

# The example of the price file format in the issue, in full.
FULL_EXAMPLE_TOML = """
[models."acme-finetune-7b"]          # model name as the SDK reports it
input_per_million = 0.9
output_per_million = 3.6
cached_input_per_million = 0.45      # optional: cache reads
cache_write_per_million = 1.125      # optional: cache creation
image_input_per_million = 10.0       # optional
image_output_per_million = 40.0      # optional
per_image = 0.04                     # optional: price per generated image
match = "^ft:gpt-4o-mini:acme:.*"    # optional: regex instead of the exact name
valid_from = 2026-01-01              # optional: historic prices; latest valid_from <= call time wins

[[models."acme-finetune-7b".tiers]]  # optional: long-context prices
above_input_tokens = 200000
input_per_million = 1.8
output_per_million = 7.2
"""
FULL_EXAMPLE_JSON = {"models": {"acme-finetune-7b": {
    "input_per_million": 0.9, "output_per_million": 3.6, "cached_input_per_million": 0.45,
    "cache_write_per_million": 1.125, "image_input_per_million": 10.0,
    "image_output_per_million": 40.0, "per_image": 0.04, "match": "^ft:gpt-4o-mini:acme:.*",
    "valid_from": "2026-01-01",
    "tiers": [{"above_input_tokens": 200000, "input_per_million": 1.8,
               "output_per_million": 7.2}]}}}
FT_MODEL = "ft:gpt-4o-mini:acme:support:9xZ1"
AFTER_2026 = datetime(2026, 6, 1, tzinfo=timezone.utc)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- The price file ------------------------------------------------------------------------

@pytest.fixture(params=["toml", "json", "mapping"])
def full_example(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "toml":
        return write(tmp_path, "prices.toml", FULL_EXAMPLE_TOML)
    if request.param == "json":
        return str(write(tmp_path, "prices.json", json.dumps(FULL_EXAMPLE_JSON)))
    return FULL_EXAMPLE_JSON


def test_full_example_in_every_format(full_example: Any) -> None:
    est = estimate_cost(FT_MODEL, input_tokens=10_000, cached_input_tokens=4000,
                        cache_write_tokens=1000, image_input_tokens=500, output_tokens=2000,
                        prices=full_example, when=AFTER_2026)
    assert est.source == "user"
    assert est.price["key"] == "acme-finetune-7b"
    text_in = 10_000 - 4000 - 1000 - 500
    assert est.input_cost == (text_in * Decimal("0.9") + 4000 * Decimal("0.45")
                              + 1000 * Decimal("1.125") + 500 * Decimal("10")) / M
    assert est.output_cost == 2000 * Decimal("3.6") / M
    assert est.total_cost == est.input_cost + est.output_cost
    assert est.fallbacks == ()


def test_full_example_image_tokens_at_image_rate_not_per_image(full_example: Any) -> None:
    # With both an image-token rate and a per-image price, the tokens are what is billed.
    est = estimate_cost(FT_MODEL, input_tokens=100, output_tokens=1300,
                        image_output_tokens=1290, images=1, prices=full_example,
                        when=AFTER_2026)
    assert est.output_cost == (10 * Decimal("3.6") + 1290 * Decimal("40")) / M


def test_per_image_price_without_image_token_rate() -> None:
    prices = {"models": {"acme-image": {"input_per_million": 5.0, "per_image": 0.04}}}
    est = estimate_cost("acme-image", input_tokens=50, output_tokens=4160,
                        image_output_tokens=4160, images=2, prices=prices)
    assert (est.input_cost, est.output_cost) == (50 * Decimal(5) / M, 2 * Decimal("0.04"))


def test_full_example_long_context_tier(full_example: Any) -> None:
    at = estimate_cost(FT_MODEL, input_tokens=200_000, output_tokens=1000, prices=full_example,
                       when=AFTER_2026)
    above = estimate_cost(FT_MODEL, input_tokens=200_001, output_tokens=1000,
                          prices=full_example, when=AFTER_2026)
    assert (at.input_cost, at.output_cost) == (200_000 * Decimal("0.9") / M,
                                               1000 * Decimal("3.6") / M)
    # Past the threshold the whole call is billed at the tier's rates.
    assert (above.input_cost, above.output_cost) == (200_001 * Decimal("1.8") / M,
                                                     1000 * Decimal("7.2") / M)


def test_full_example_not_yet_valid(full_example: Any) -> None:
    est = estimate_cost(FT_MODEL, input_tokens=1000, output_tokens=100, prices=full_example,
                        when=datetime(2025, 12, 31, tzinfo=timezone.utc))
    assert est.source != "user"


def test_match_is_instead_of_the_exact_name(full_example: Any) -> None:
    # With a regex, the table key is only a label.
    assert estimate_cost("ft:gpt-4o-mini:other-org:x:1", input_tokens=1, output_tokens=1,
                         prices=full_example, when=AFTER_2026).source != "user"


VERSIONED_TOML = """
[[models."acme-7b"]]
input_per_million = 4.0
output_per_million = 8.0

[[models."acme-7b"]]
valid_from = 2025-01-01
input_per_million = 2.0
output_per_million = 4.0

[[models."acme-7b"]]
valid_from = 2025-07-01T12:00:00Z
input_per_million = 1.0
output_per_million = 2.0
"""


@pytest.mark.parametrize("when, rates", [
    (datetime(2024, 5, 1, tzinfo=timezone.utc), ("4.0", "8.0")),  # before any valid_from
    (datetime(2025, 1, 1, tzinfo=timezone.utc), ("2.0", "4.0")),  # on the day it starts
    (datetime(2025, 7, 1, 11, 59, tzinfo=timezone.utc), ("2.0", "4.0")),
    (datetime(2025, 7, 1, 12, 0, tzinfo=timezone.utc), ("1.0", "2.0")),
    (datetime(2030, 1, 1, tzinfo=timezone.utc), ("1.0", "2.0")),
])
def test_valid_from_latest_version_in_force_wins(tmp_path: Path, when: datetime,
                                                 rates: tuple[str, str]) -> None:
    path = write(tmp_path, "prices.toml", VERSIONED_TOML)
    est = estimate_cost("acme-7b", input_tokens=1000, output_tokens=100, prices=path, when=when)
    assert (est.input_cost, est.output_cost) == (1000 * Decimal(rates[0]) / M,
                                                 100 * Decimal(rates[1]) / M)


def test_missing_optional_rates_fall_back_to_input_rate() -> None:
    prices = {"models": {"acme-7b": {"input_per_million": 2.0, "output_per_million": 8.0}}}
    est = estimate_cost("acme-7b", input_tokens=1000, cached_input_tokens=300,
                        cache_write_tokens=200, image_input_tokens=100, output_tokens=50,
                        prices=prices)
    assert est.input_cost == 1000 * Decimal("2.0") / M
    assert set(est.fallbacks) == {"cached_input=input", "cache_write=input", "image_input=input"}


def test_reasoning_tokens_are_output() -> None:
    prices = {"models": {"acme-7b": {"input_per_million": 2.0, "output_per_million": 8.0}}}
    est = estimate_cost("acme-7b", input_tokens=100, output_tokens=500, reasoning_tokens=450,
                        prices=prices)
    assert est.output_cost == 500 * Decimal("8.0") / M


def test_image_output_without_an_image_price_is_unpriced_not_text_priced() -> None:
    prices = {"models": {"acme-image": {"input_per_million": 0.3, "output_per_million": 2.5}}}
    est = estimate_cost("acme-image", input_tokens=100, output_tokens=1400,
                        image_output_tokens=1290, images=1, prices=prices)
    assert est.total_cost is None
    assert "image_output" in est.unpriced_reason


# -- Errors at enable time -----------------------------------------------------------------

BAD_FILES = {
    "unknown key": ('[models."acme-7b"]\ninput_per_million = 1\noutput_per_milion = 2\n',
                    "acme-7b", "output_per_milion", "use only"),
    "negative": ('[models."acme-7b"]\ninput_per_million = -0.5\noutput_per_million = 2\n',
                 "acme-7b", "input_per_million", ">= 0"),
    "not a number": ('[models."acme-7b"]\ninput_per_million = "cheap"\n'
                     'output_per_million = 2\n', "acme-7b", "input_per_million", "number"),
    "nan": ('[models."acme-7b"]\ninput_per_million = nan\noutput_per_million = 2\n',
            "acme-7b", "input_per_million", "number"),
    "boolean": ('[models."acme-7b"]\ninput_per_million = true\noutput_per_million = 2\n',
                "acme-7b", "input_per_million", "number"),
    "bad regex": ('[models."acme-ft"]\ninput_per_million = 1\noutput_per_million = 2\n'
                  'match = "^ft:(gpt-4o"\n', "acme-ft", "match", "pattern"),
    "bad date": ('[models."acme-7b"]\ninput_per_million = 1\noutput_per_million = 2\n'
                 'valid_from = "last tuesday"\n', "acme-7b", "valid_from", "2026-01-01"),
    "bad tier": ('[models."acme-7b"]\ninput_per_million = 1\noutput_per_million = 2\n'
                 '[[models."acme-7b".tiers]]\nabove_input_tokens = "200k"\n'
                 'input_per_million = 2\n', "acme-7b", "above_input_tokens", "200000"),
    "unknown tier key": ('[models."acme-7b"]\ninput_per_million = 1\noutput_per_million = 2\n'
                         '[[models."acme-7b".tiers]]\nabove_input_tokens = 10\n'
                         'outptu_per_million = 2\n', "acme-7b", "outptu_per_million",
                         "use only"),
    "no price": ('[models."acme-7b"]\nmatch = "^acme"\n', "acme-7b", "acme-7b",
                 "input_per_million"),
    "unknown top-level key": ('currency = "EUR"\n[models."acme-7b"]\ninput_per_million = 1\n'
                              'output_per_million = 2\n', "", "currency", "[models."),
}


@pytest.mark.parametrize("text, model, key, fix", BAD_FILES.values(), ids=list(BAD_FILES))
def test_bad_price_file_fails_at_enable_naming_file_model_key_and_fix(
        mlflow_store: TemporaryStore, tmp_path: Path, text: str, model: str, key: str,
        fix: str) -> None:
    path = write(tmp_path, "prices.toml", text)
    with pytest.raises(ConfigurationError) as raised:
        genai_tracing.enable_tracing(prices=path)
    message = str(raised.value)
    assert str(path) in message
    assert model in message and key in message
    assert "Fix: " in message and fix in message.split("Fix: ", 1)[1]
    assert genai_tracing.active_config() is None


@pytest.mark.parametrize("name, content, problem", [
    ("missing.toml", None, "cannot be read"),
    ("broken.toml", '[models."acme-7b"\ninput_per_million = 1\n', "not valid TOML"),
    ("broken.json", '{"models": {"acme-7b": {"input_per_million": 1,}}}', "not valid JSON"),
    ("latin1.toml", b'[models."caf\xe9"]\n', "not UTF-8"),
])
def test_unreadable_price_file_fails_at_enable(mlflow_store: TemporaryStore, tmp_path: Path,
                                               name: str, content: str | bytes | None,
                                               problem: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError) as raised:
        genai_tracing.enable_tracing(prices=str(path))
    assert raised.value.option == "prices"
    assert str(path) in str(raised.value) and problem in str(raised.value)
    assert "Fix: " in str(raised.value)


def test_bad_file_named_by_environment_variable_fails_at_enable(
        mlflow_store: TemporaryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nowhere.toml"
    monkeypatch.setenv("GENAI_TRACING_PRICES", str(path))
    with pytest.raises(ConfigurationError) as raised:
        genai_tracing.enable_tracing()
    assert raised.value.option == "GENAI_TRACING_PRICES"
    assert str(path) in str(raised.value)


def test_bad_mapping_fails_at_enable(mlflow_store: TemporaryStore) -> None:
    with pytest.raises(ConfigurationError, match=r'models\."acme-7b"\.output_per_million'):
        genai_tracing.enable_tracing(prices={"models": {"acme-7b": {
            "input_per_million": 1, "output_per_million": -2}}})
    with pytest.raises(ConfigurationError, match="path to a TOML/JSON file or a mapping"):
        genai_tracing.enable_tracing(prices=42)  # type: ignore[arg-type]


# -- Where the prices come from ------------------------------------------------------------

SEED_TOML = """
# One text tier and one image tier, as the seed app configured them from its environment.
[models."gpt-4o-mini"]
input_per_million = 0.1
output_per_million = 0.4

[models."gpt-image-1"]
input_per_million = 5.0
image_output_per_million = 40.0
"""


def test_environment_variable_names_the_price_file(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    path = write(tmp_path, "seed-prices.toml", SEED_TOML)
    monkeypatch.setenv("GENAI_TRACING_PRICES", str(path))
    config = genai_tracing.enable_tracing()
    assert config.prices == str(path) and config.sources["prices"] == "GENAI_TRACING_PRICES"
    client = openai_client(fake_provider)

    @mlflow.trace
    def illustrated_answer() -> None:
        fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        fake_provider.usage = FakeUsage(input_tokens=50, output_tokens=4160)
        client.images.generate(model="gpt-image-1", prompt="a cat")

    illustrated_answer()
    trace = mlflow_store.last_trace()
    text, image = sorted(llm_spans(trace), key=lambda s: s.attributes["mlflow.llm.model"])
    assert text.attributes["mlflow.llm.cost"]["total_cost"] == pytest.approx(
        (1000 * 0.1 + 200 * 0.4) / 1e6, rel=1e-9)
    assert image.attributes["mlflow.llm.cost"]["total_cost"] == pytest.approx(
        (50 * 5.0 + 4160 * 40.0) / 1e6, rel=1e-9)
    assert text.attributes["genai_tracing.cost.price"]["origin"] == str(path)
    assert trace.info.cost["total_cost"] == pytest.approx(
        (1000 * 0.1 + 200 * 0.4 + 50 * 5.0 + 4160 * 40.0) / 1e6, rel=1e-9)


def test_argument_beats_environment_variable(mlflow_store: TemporaryStore, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_TRACING_PRICES", str(write(tmp_path, "env.toml", SEED_TOML)))
    config = genai_tracing.enable_tracing(prices={"models": {"gpt-4o-mini": {
        "input_per_million": 0.12, "output_per_million": 0.48}}})
    assert config.sources["prices"] == "argument" and config.prices == "<mapping>"
    # estimate_cost() prices with what enable_tracing() loaded.
    est = estimate_cost("gpt-4o-mini", input_tokens=1000, output_tokens=100)
    assert (est.source, est.total_cost) == ("user", (1000 * Decimal("0.12")
                                                     + 100 * Decimal("0.48")) / M)


def test_estimate_cost_reads_the_environment_variable_when_not_enabled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_TRACING_PRICES", str(write(tmp_path, "env.toml", SEED_TOML)))
    est = estimate_cost("gpt-4o-mini", input_tokens=1000, output_tokens=100)
    assert (est.source, est.total_cost) == ("user", (1000 * Decimal("0.1")
                                                     + 100 * Decimal("0.4")) / M)


# -- Precedence ----------------------------------------------------------------------------

USER_GPT_4O_MINI = parse_price_table({"models": {"gpt-4o-mini": {
    "input_per_million": 0.1, "output_per_million": 0.4}}}, origin="test")


def test_precedence_user_then_provider_reported_then_catalogs() -> None:
    usage = Usage(input_tokens=1000, output_tokens=200)
    reported = Cost(Decimal("0.0007"), Decimal("0.0003"))
    call = Call("openai", "gpt-4o-mini", usage, reported_cost=reported)

    # The user's price beats everything, even a cost the provider reports.
    cost, source, _ = price_call(call, PriceResolver(USER_GPT_4O_MINI))
    assert source == "user"
    assert (cost.input_cost, cost.output_cost) == (1000 * Decimal("0.1") / M,
                                                   200 * Decimal("0.4") / M)
    # Without one, the provider's own figure beats the catalogs.
    cost, source, price = price_call(call, PriceResolver())
    assert (cost, source, price) == (reported, "provider", None)
    # Without that, LiteLLM's map (gpt-4o-mini: 0.15 / 0.6).
    cost, source, _ = price_call(Call("openai", "gpt-4o-mini", usage), PriceResolver())
    assert source == "litellm"
    assert cost.total_cost == (1000 * Decimal("0.15") + 200 * Decimal("0.6")) / M


def test_user_price_overrides_a_catalog_model() -> None:
    est = estimate_cost("gpt-4o-mini", input_tokens=1000, output_tokens=200,
                        prices={"models": {"gpt-4o-mini": {"input_per_million": 0.1,
                                                           "output_per_million": 0.4}}})
    assert est.source == "user"
    assert est.total_cost == (1000 * Decimal("0.1") + 200 * Decimal("0.4")) / M


def test_litellm_catalog() -> None:
    est = estimate_cost("gpt-4o-mini", input_tokens=1000, cached_input_tokens=400,
                        output_tokens=200)
    assert est.source == "litellm" and est.price["key"] == "gpt-4o-mini"
    assert est.input_cost == (600 * Decimal("0.15") + 400 * Decimal("0.075")) / M
    assert est.output_cost == 200 * Decimal("0.6") / M


@pytest.mark.parametrize("input_tokens, rates", [
    (200_000, ("1.25", "10", "0.125")),
    (200_001, ("2.5", "15", "0.25")),  # LiteLLM's *_above_200k_tokens prices, whole call
])
def test_litellm_catalog_long_context_prices(input_tokens: int,
                                             rates: tuple[str, str, str]) -> None:
    assert litellm.model_cost["gemini/gemini-2.5-pro"]["input_cost_per_token_above_200k_tokens"]
    est = estimate_cost("gemini-2.5-pro", provider="gemini", input_tokens=input_tokens,
                        cached_input_tokens=1000, output_tokens=1000)
    input_rate, output_rate, cached_rate = map(Decimal, rates)
    assert est.source == "litellm"
    assert est.input_cost == ((input_tokens - 1000) * input_rate + 1000 * cached_rate) / M
    assert est.output_cost == 1000 * output_rate / M


def test_genai_prices_fills_gaps_in_litellm() -> None:
    # Anthropic's claude-opus-4-1 alias: 15 / 75 per million in genai-prices, absent from LiteLLM.
    assert not {"claude-opus-4-1", "anthropic/claude-opus-4-1"} & set(litellm.model_cost)
    est = estimate_cost("claude-opus-4-1", provider="anthropic", input_tokens=1000,
                        output_tokens=100)
    assert est.source == "genai-prices" and est.price["key"] == "anthropic/claude-opus-4-1"
    assert (est.input_cost, est.output_cost) == (1000 * Decimal(15) / M, 100 * Decimal(75) / M)


def test_unknown_model_is_unpriced_never_zero() -> None:
    est = estimate_cost("acme-private-llm", input_tokens=1000, output_tokens=100)
    assert (est.input_cost, est.output_cost, est.total_cost, est.source) == (None, None, None,
                                                                              None)
    assert "acme-private-llm" in est.unpriced_reason


def test_estimate_cost_returns_decimals_and_the_price_used() -> None:
    est = estimate_cost("acme-7b", input_tokens=3, output_tokens=7, prices={"models": {
        "acme-7b": {"input_per_million": "0.1", "output_per_million": "0.3"}}})
    # Decimal all the way: 3 * 0.1 / 1e6 is exact, where floats would drift.
    assert isinstance(est.input_cost, Decimal) and isinstance(est.total_cost, Decimal)
    assert est.input_cost == Decimal("0.0000003") and est.output_cost == Decimal("0.0000021")
    assert est.total_cost == Decimal("0.0000024")
    assert est.price == {"source": "user", "key": "acme-7b", "origin": "<mapping>",
                         "per_million": {"input": "0.1", "output": "0.3"}}
    assert est.unpriced_reason is None


# -- Model names ---------------------------------------------------------------------------

@pytest.mark.parametrize("reported, priced_as", [
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("openai/gpt-4o-mini", "gpt-4o-mini"),
    ("openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("gemini/gemini-2.5-flash-001", "gemini-2.5-flash"),
    ("GPT-4o-Mini", "gpt-4o-mini"),
])
def test_reported_names_resolve_to_the_priced_model(reported: str, priced_as: str) -> None:
    assert priced_as in candidate_names(reported)
    est = estimate_cost(reported, input_tokens=1000, output_tokens=100, prices={"models": {
        priced_as: {"input_per_million": 1.0, "output_per_million": 2.0}}})
    assert (est.source, est.price["key"]) == ("user", priced_as)
    assert est.total_cost == (1000 * Decimal(1) + 100 * Decimal(2)) / M


def test_exact_name_beats_its_undated_family() -> None:
    prices = {"models": {
        "gpt-4o-mini": {"input_per_million": 0.1, "output_per_million": 0.4},
        "gpt-4o-mini-2024-07-18": {"input_per_million": 0.2, "output_per_million": 0.8}}}
    est = estimate_cost("gpt-4o-mini-2024-07-18", input_tokens=1000, output_tokens=0,
                        prices=prices)
    assert est.price["key"] == "gpt-4o-mini-2024-07-18"
