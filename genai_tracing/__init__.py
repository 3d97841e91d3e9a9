"""genai_tracing: the cost of every generative-AI call, visible in MLflow.

    import genai_tracing
    genai_tracing.enable_tracing()      # autolog every installed provider SDK, with cost

Importing this package is cheap: MLflow, the provider SDKs and LiteLLM are imported only when
``enable_tracing()`` runs.
"""

from __future__ import annotations

import os

# LiteLLM downloads its price map at import unless told to use the bundled copy; it must be
# told before anything imports it. A user's own choice (any value already set) is kept.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from ._attribution import attribute  # noqa: E402
from ._budgets import (Budget, BudgetExceeded, check_budget, clear_budgets,  # noqa: E402
                       set_budget)
from ._config import TracingConfig  # noqa: E402
from ._enable import active_config, disable_tracing, enable_tracing  # noqa: E402
from ._errors import ConfigurationError  # noqa: E402
from ._estimate import CostEstimate, estimate_cost  # noqa: E402
from ._export import dropped_traces  # noqa: E402
from ._reports import cost_chart, cost_report, latency_report  # noqa: E402
from ._reprice import RepriceResult, reprice  # noqa: E402

__version__ = "0.1.0"

# Tracebacks and reprs name the public path (genai_tracing.ConfigurationError), not the private
# module that defines it; pickling finds the class there too.
for _public in (BudgetExceeded, ConfigurationError):
    _public.__module__ = __name__
del _public

__all__ = [
    "Budget",
    "BudgetExceeded",
    "ConfigurationError",
    "CostEstimate",
    "RepriceResult",
    "TracingConfig",
    "active_config",
    "attribute",
    "check_budget",
    "clear_budgets",
    "cost_chart",
    "cost_report",
    "disable_tracing",
    "dropped_traces",
    "enable_tracing",
    "estimate_cost",
    "latency_report",
    "reprice",
    "set_budget",
]
