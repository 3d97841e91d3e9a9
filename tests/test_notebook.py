"""``examples/cost.ipynb`` runs top to bottom in a real Jupyter kernel (nbclient) and shows the
cost, the report and the chart it promises. Its prices and usage are the ones computed here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "cost.ipynb"
# 1,200 input and 300 output tokens per call, at the notebook's prices per million tokens.
GPT = 1200 * 0.15 / 1e6 + 300 * 0.6 / 1e6           # 0.00018 + 0.00018
CLAUDE = 1200 * 3.0 / 1e6 + 300 * 15.0 / 1e6        # 0.0036 + 0.0045


def cell(notebook: Any, tag: str) -> Any:
    return next(c for c in notebook.cells if tag in c.metadata.get("tags", []))


def data(cell: Any, mime: str) -> str:
    return "".join(o.get("data", {}).get(mime, "") for o in cell.outputs
                   if o.output_type in ("execute_result", "display_data"))


def test_the_notebook_runs_and_shows_cost_report_and_chart(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not getattr(c, "outputs", None) for c in notebook.cells)  # committed clean

    nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    cost = data(cell(notebook, "trace-cost"), "text/plain")
    assert f"'total_cost': {GPT!r}" in cost or f"'total_cost': {round(GPT, 10)!r}" in cost
    assert "'input_tokens': 1200" in cost and "'output_tokens': 300" in cost
    spans = "".join(o.get("text", "") for o in cell(notebook, "spans").outputs)
    assert "gpt-4o-mini" in spans and "'total_cost'" in spans
    report = data(cell(notebook, "report"), "text/html")
    assert "ana@acme.example" in report and "bob@acme.example" in report
    assert "claude-sonnet-4-5" in report and "repriced_calls" in report
    assert f"<td>{CLAUDE:.5f}</td>" in report and f"<td>{GPT:.5f}</td>" in report  # as pandas
    assert data(cell(notebook, "chart"), "image/png")         # drawn inline
    assert not list(tmp_path.iterdir())                       # the store was a temporary one
