"""What a new user meets in the first hour: reports that find no store say so, one money format,
exact Decimals, price-file mistakes caught with their fix, public exception names, and test
fixtures that leave the working directory clean."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import traceback
from decimal import Decimal

import pytest

import genai_tracing
from genai_tracing._money import format_money, plain
from genai_tracing.cli import main
from genai_tracing.testing import FakeUsage, TemporaryStore

from conftest import MESSAGES, openai_client


def cli(*argv: str) -> tuple[int, str, str]:
    import io

    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def test_report_with_no_store_says_so_exits_2_and_creates_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GENAI_TRACING_"))}
    done = subprocess.run([sys.executable, "-m", "genai_tracing", "report"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 2, done.stderr
    assert f"no MLflow store at {tmp_path / 'mlflow.db'}" in done.stderr
    assert "--tracking-uri" in done.stderr                 # the fix names where to point
    assert "Creating initial MLflow database tables" not in done.stdout + done.stderr
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_cost_report_with_no_store_raises_and_creates_nothing(tmp_path):
    missing = tmp_path / "mlflow.db"
    with pytest.raises(genai_tracing.ConfigurationError, match="no MLflow store at"):
        genai_tracing.cost_report(tracking_uri=f"sqlite:///{missing}")
    with pytest.raises(genai_tracing.ConfigurationError, match="no MLflow store at"):
        genai_tracing.latency_report(tracking_uri=str(tmp_path / "mlruns"))
    assert list(tmp_path.iterdir()) == []


def test_reports_default_to_the_experiment_enable_tracing_uses(mlflow_store):
    # The store has only MLflow's "Default": a report must not quietly read that one.
    with pytest.raises(genai_tracing.ConfigurationError) as raised:
        genai_tracing.cost_report()
    assert raised.value.value == "genai-tracing" and "Default" in raised.value.fix
    code, _, err = cli("report", "--tracking-uri", mlflow_store.uri)
    assert code == 2 and "experiment='genai-tracing'" in err

    genai_tracing.enable_tracing()
    genai_tracing.disable_tracing()
    assert genai_tracing.cost_report().attrs["experiments"] == ["genai-tracing"]


@pytest.mark.parametrize("amount, shown", [
    (1234.5, "$1,234.50"), (1.3912, "$1.39"), (0.8881, "$0.888"), (0.5, "$0.50"),
    (0.504, "$0.504"), (0.0041163, "$0.00412"), (0.00027, "$0.00027"), (0, "$0.00"),
    (Decimal("0.15000000"), "$0.15"), (None, "-"), (float("nan"), "-"), (-0.25, "-$0.25"),
])
def test_one_money_format(amount, shown):
    assert format_money(amount) == shown


def test_budget_messages_use_the_money_format():
    budget = genai_tracing.Budget.of(0.5, per="day")
    error = genai_tracing.BudgetExceeded(budget, None, "2026-12-01", Decimal("0.504"))
    assert "budget of $0.50 for the whole app exceeded: $0.504 spent" in str(error)


def test_estimate_cost_decimals_are_normalised():
    est = genai_tracing.estimate_cost("acme-7b", input_tokens=1000, output_tokens=200, prices={
        "models": {"acme-7b": {"input_per_million": 0.15, "output_per_million": 0.6}}})
    # 1000 * 0.15 / 1e6 and 200 * 0.6 / 1e6, as the README shows them.
    assert (repr(est.input_cost), repr(est.output_cost)) == ("Decimal('0.00015')",
                                                             "Decimal('0.00012')")
    assert plain(Decimal("1E+1")) == "10" and plain("0.15000000") == "0.15"


def test_price_json_has_plain_numbers(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."acme-7b"]\ninput_per_million = 0.150\noutput_per_million = 0.6\n')
    code, out, _ = cli("price", "acme-7b", "--prices", str(prices), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["price"]["per_million"] == {"input": "0.15", "output": "0.6"}
    assert data["example"]["total_cost"] == "0.75"            # 1M * 0.15 + 1M * 0.6, per million


def test_a_quoted_price_in_a_file_fails_with_file_key_and_fix(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."acme-7b"]\ninput_per_million = "0.9"\noutput_per_million = 3.6\n')
    with pytest.raises(genai_tracing.ConfigurationError) as raised:
        genai_tracing.enable_tracing(prices=str(prices), tracking_uri=f"sqlite:///{tmp_path}/x.db")
    message = str(raised.value)
    assert str(prices) in message and 'models."acme-7b".input_per_million' in message
    assert "remove the quotes: input_per_million = 0.9" in message
    assert genai_tracing.active_config() is None


def test_a_misspelled_price_key_suggests_the_known_one(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."acme-7b"]\ninput_per_milion = 0.9\noutput_per_million = 3.6\n')
    with pytest.raises(genai_tracing.ConfigurationError, match="did you mean 'input_per_million'"):
        genai_tracing.estimate_cost("acme-7b", input_tokens=1, output_tokens=1, prices=str(prices))
    tiers = {"models": {"m": {"input_per_million": 1, "output_per_million": 1, "tiers": [
        {"above_input_tokens": 10, "output_per_millon": 2}]}}}
    with pytest.raises(genai_tracing.ConfigurationError, match="did you mean 'output_per_million'"):
        genai_tracing.estimate_cost("m", input_tokens=1, output_tokens=1, prices=tiers)


@pytest.mark.parametrize("name", ["ConfigurationError", "BudgetExceeded"])
def test_public_exceptions_are_named_from_the_package(name):
    cls = getattr(genai_tracing, name)
    assert name in genai_tracing.__all__
    assert f"{cls.__module__}.{cls.__qualname__}" == f"genai_tracing.{name}"
    assert pickle.loads(pickle.dumps(cls)) is cls


def test_a_configuration_error_traceback_names_the_public_class():
    try:
        genai_tracing.enable_tracing(providers=["cohere"])
    except genai_tracing.ConfigurationError:
        text = traceback.format_exc()
    assert "\ngenai_tracing.ConfigurationError: providers='cohere'" in text


def test_temporary_store_leaves_no_mlruns_in_the_working_directory(tmp_path, monkeypatch,
                                                                   fake_provider):
    monkeypatch.chdir(tmp_path)
    with TemporaryStore.create(tmp_path / "store") as store:
        genai_tracing.enable_tracing()
        fake_provider.usage = FakeUsage(input_tokens=10, output_tokens=2)
        openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini",
                                                             messages=MESSAGES)
        assert store.last_trace().info.token_usage["input_tokens"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_ui_with_no_store_says_so_and_starts_nothing(tmp_path, capsys):
    from genai_tracing import _ui

    code = _ui.main_ui(["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--no-browser"])

    assert code == 2 and "no MLflow store at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
