"""pytest plugin: ``mlflow.<flavor>.autolog()`` becomes ``enable_tracing(providers=[flavor])``.

Loaded by run.py (``-p genai_tracing_swap``) for the second run of MLflow's autolog tests. A call
that turns tracing on goes to genai_tracing, which calls MLflow's own autolog itself; a call that
turns it off (``disable=True`` or ``log_traces=False``) turns genai_tracing off, then goes to
MLflow's autolog as written. The call genai_tracing makes from inside ``enable_tracing()`` or
``disable_tracing()`` reaches the original function, so nothing recurses.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any, Callable, Iterator

import pytest

FLAVORS = ("openai", "anthropic", "gemini", "litellm")
_inside_genai_tracing = False
# The price MLflow's ``mock_litellm_cost`` fixture gives LiteLLM (1.0 per input token, 2.0 per
# output token, any model), given to genai_tracing too in the tests that use that fixture, so
# their cost assertions compare two computations from one price, not two price lists.
MOCK_LITELLM_PRICES = {"models": {"any model (mock_litellm_cost)": {
    "match": ".*", "input_per_million": 1_000_000, "output_per_million": 2_000_000}}}
_prices: dict | None = None


def _swapped(flavor: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)  # keeps __module__ and __name__, which MLflow's telemetry reads
    def autolog(*args: Any, **kwargs: Any) -> Any:
        global _inside_genai_tracing
        if _inside_genai_tracing:
            return original(*args, **kwargs)
        import genai_tracing

        turns_off = bool(args) or kwargs.get("disable") is True or \
            kwargs.get("log_traces") is False
        _inside_genai_tracing = True
        try:
            if turns_off:
                genai_tracing.disable_tracing()
            else:
                genai_tracing.enable_tracing(providers=[flavor], prices=_prices)
        finally:
            _inside_genai_tracing = False
        if turns_off:
            return original(*args, **kwargs)
        return None

    return autolog


def pytest_configure(config: pytest.Config) -> None:
    import mlflow

    for flavor in FLAVORS:
        module = importlib.import_module(f"mlflow.{flavor}")
        swapped = _swapped(flavor, module.autolog)
        module.autolog = swapped
        # mlflow.<flavor> may be a lazy loader holding its own copy of the module's names.
        holder = getattr(mlflow, flavor, None)
        if holder is not None and holder is not module:
            holder.autolog = swapped


@pytest.fixture(autouse=True)
def same_price_as_mock_litellm_cost(request: pytest.FixtureRequest) -> Iterator[None]:
    global _prices
    own = os.environ.get("GENAI_TRACING_SWAP_OWN_PRICES") == "1"  # run.py --own-prices
    _prices = MOCK_LITELLM_PRICES if "mock_litellm_cost" in request.fixturenames and not own \
        else None
    yield
    _prices = None


@pytest.fixture(autouse=True)
def genai_tracing_internal_errors() -> Iterator[None]:
    """genai_tracing logs its own failures instead of raising; here each one fails the test."""
    from genai_tracing._guard import clear_internal_errors, internal_errors

    clear_internal_errors()
    yield
    errors = internal_errors()
    clear_internal_errors()
    assert not errors, f"genai_tracing internal errors: {errors}"
