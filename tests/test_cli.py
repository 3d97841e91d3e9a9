"""The ``genai-tracing`` command: the same numbers as the library, exit codes scripts can rely on,
and a chart that is a real PNG with the expected series.

The store is filled by the same traffic as test_reports.py (real SDK calls against the fakes,
costs computed by hand there).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import genai_tracing
from genai_tracing.cli import build_parser, main, render_chart

from test_reports import (CLAUDE_COST, GEMINI_COST, OPENAI_COST, TODAY, TWO_DAYS_AGO, YESTERDAY,
                          cents, fill)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_report_json_and_csv_match_the_library(fake_provider, mlflow_store):
    fill(fake_provider, mlflow_store)
    window = ("--since", "yesterday", "--until", "today", "--tracking-uri", mlflow_store.uri)

    code, out, err = run("report", "--by", "user", *window, "--format", "json")

    assert (code, err) == (0, "")
    rows = {r["user"]: r for r in json.loads(out)}
    assert rows["ana"]["total_cost"] == pytest.approx(2 * CLAUDE_COST + OPENAI_COST, rel=1e-12)
    assert cents(rows["bob"]["total_cost"]) == 26
    assert rows[None]["requests"] == 1
    library = genai_tracing.cost_report(by="user", since="yesterday", until="today")
    assert [r["total_cost"] for r in json.loads(out)] == library["total_cost"].tolist()
    assert [r["input_tokens"] for r in json.loads(out)] == library["input_tokens"].tolist()

    code, out, _ = run("report", "--by", "day,model", "--tracking-uri", mlflow_store.uri,
                       "--format", "csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["day"] for r in table][0] == f"{TWO_DAYS_AGO:%Y-%m-%d}"
    yesterday = {r["model"]: float(r["total_cost"]) for r in table
                 if r["day"] == f"{YESTERDAY:%Y-%m-%d}"}
    assert yesterday == pytest.approx({"claude-sonnet-4-5": 2 * CLAUDE_COST,
                                       "gpt-4o-mini": 2 * OPENAI_COST,
                                       "gemini-2.5-flash": 2 * GEMINI_COST}, rel=1e-12)

    code, out, _ = run("report", "--by", "user", *window)
    assert code == 0
    assert "ana" in out and "$1.26" in out          # the table shows money as money
    assert "total $1.58 over 4 requests" in out


def test_python_dash_m_gives_the_same_numbers(fake_provider, mlflow_store):
    fill(fake_provider, mlflow_store)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    done = subprocess.run(
        [sys.executable, "-m", "genai_tracing", "report", "--by", "model", "--format", "csv",
         "--tracking-uri", mlflow_store.uri, "--experiment", "genai-tracing"],
        capture_output=True, text=True, env=env, timeout=120)

    assert done.returncode == 0, done.stderr
    costs = {r["model"]: r["total_cost"] for r in csv.DictReader(io.StringIO(done.stdout))}
    assert float(costs["claude-sonnet-4-5"]) == pytest.approx(2 * CLAUDE_COST, rel=1e-12)
    assert float(costs["gpt-4o-mini"]) == pytest.approx(4 * OPENAI_COST, rel=1e-12)
    assert costs["mystery-model"] == ""            # unpriced: no number, not 0
    library = genai_tracing.cost_report(by="model")
    assert float(costs["gemini-2.5-flash"]) == \
        library.set_index("model").loc["gemini-2.5-flash", "total_cost"]


def test_chart_is_a_png_with_one_series_per_model(fake_provider, mlflow_store, tmp_path):
    fill(fake_provider, mlflow_store)
    out_file = tmp_path / "cost.png"
    argv = ["chart", "--by", "day", "--stack", "model", "--since", "30d", "--out", str(out_file),
            "--tracking-uri", mlflow_store.uri]

    code, out, err = run(*argv)

    assert (code, err) == (0, "")
    assert f"wrote {out_file}" in out
    assert out_file.read_bytes()[:8] == PNG_SIGNATURE
    assert out_file.stat().st_size > 10_000

    figure, frame = render_chart(build_parser().parse_args(argv))
    axes = figure.axes[0]
    series = {c.get_label(): [bar.get_height() for bar in c] for c in axes.containers}
    days = [f"{d:%Y-%m-%d}" for d in (TWO_DAYS_AGO, YESTERDAY, TODAY)]
    assert [t.get_text() for t in axes.get_xticklabels()] == days
    # Largest series first ($1.20, $0.26, $0.24, unpriced); one bar per day, 0 where a model
    # was not used that day.
    assert list(series) == ["claude-sonnet-4-5", "gemini-2.5-flash", "gpt-4o-mini",
                            "mystery-model"]
    assert series["claude-sonnet-4-5"] == pytest.approx([0, 2 * CLAUDE_COST, 0])
    assert series["gpt-4o-mini"] == pytest.approx([OPENAI_COST, 2 * OPENAI_COST, OPENAI_COST])
    assert series["gemini-2.5-flash"] == pytest.approx([0, 2 * GEMINI_COST, 0])
    assert series["mystery-model"] == [0, 0, 0]
    assert axes.get_legend().get_title().get_text() == "model"
    assert "LLM cost by day, stacked by model" in axes.get_title()
    assert axes.yaxis.get_major_formatter()(0.5, 0) == "$0.50"
    assert axes.yaxis.get_major_formatter()(0.0125, 0) == "$0.0125"
    assert axes.yaxis.get_major_formatter()(12.5, 0) == "$12.50"


def test_latency_command(fake_provider, mlflow_store, tmp_path):
    fill(fake_provider, mlflow_store)

    code, out, _ = run("latency", "--tracking-uri", mlflow_store.uri, "--format", "json",
                       "--out", str(tmp_path / "latency.png"))

    assert code == 0
    report = json.loads(out)
    library = genai_tracing.latency_report()
    assert report["correlation"] is None       # every prompt has the same length here
    assert report["requests"] == library.attrs["requests"] == 6
    assert (tmp_path / "latency.png").read_bytes()[:8] == PNG_SIGNATURE
    code, out, _ = run("latency", "--tracking-uri", mlflow_store.uri)
    lengths = out.splitlines()[3].split()[1:3]              # min and max prompt length
    assert code == 0 and lengths == ["15", "15"], out     # "Draw me a sheep": counts, no ".0"


def test_price_says_which_price_applies_and_from_where(tmp_path):
    code, out, _ = run("price", "gpt-4o-mini")
    assert code == 0
    assert "priced from LiteLLM's bundled price map" in out
    assert "input          $0.15 per million tokens" in out

    prices = tmp_path / "prices.toml"
    prices.write_text('[models."acme-7b"]\ninput_per_million = 0.9\noutput_per_million = 3.6\n')
    code, out, _ = run("price", "acme-7b", "--prices", str(prices), "--format", "json")
    assert code == 0
    answer = json.loads(out)
    assert answer["source"] == "user"
    assert answer["price"]["origin"] == str(prices)
    # 1M input at $0.9 plus 1M output at $3.6.
    assert answer["example"]["total_cost"] == "4.5"


def test_exit_codes(mlflow_store, tmp_path):
    genai_tracing.enable_tracing()
    uri = ("--tracking-uri", mlflow_store.uri)

    code, _, err = run("report", *uri)                                     # an empty store
    assert code == 1 and "no traces in experiment 'genai-tracing'" in err
    code, _, err = run("report", "--experiment", "nope", *uri)
    assert code == 2 and "experiment='nope': no experiment has that name" in err
    code, _, err = run("report", "--since", "next week", *uri)
    assert code == 2 and "is not a time" in err
    code, _, err = run("report", "--since", "today", "--until", "yesterday", *uri)
    assert code == 2 and "is not before until" in err
    code, _, err = run("report", "--tracking-uri", f"sqlite:///{tmp_path / 'typo.db'}")
    assert code == 2 and "no MLflow store at" in err
    code, _, err = run("chart", "--out", str(tmp_path / "x.png"), *uri)
    assert code == 1 and not (tmp_path / "x.png").exists()
    assert run("price", "no-such-model-anywhere")[0] == 1
    code, _, err = run("price", "gpt-4o-mini", "--prices", str(tmp_path / "missing.toml"))
    assert code == 2 and "cannot be read" in err
    assert run("report", "--format", "yaml")[0] == 2                      # argparse usage error
    assert run("--help")[0] == 0
    assert not Path(tmp_path / "typo.db").exists()


def test_ui_is_a_subcommand(capsys) -> None:
    # The UI itself is driven in tests/test_ui.py; here only that the CLI routes to it.
    from genai_tracing.cli import main

    assert main(["ui", "--help"]) == 0
    assert "--tracking-uri" in capsys.readouterr().out
