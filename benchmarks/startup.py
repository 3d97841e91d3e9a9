"""Wall time of ``import genai_tracing; enable_tracing()`` against plain ``import mlflow``.

    python benchmarks/startup.py [--repeat 5]

Each measurement runs in a fresh interpreter (imports are cached per process), alternating the
configurations so machine noise hits both alike. Prints the medians and their ratio.

A warm-up pass runs every configuration once first, with bytecode writing allowed, so the figures
are the steady state a user sees on the second start of a process (not Python compiling every
module from source, which dominates when ``PYTHONDONTWRITEBYTECODE`` is set and nothing is cached).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPTS = {
    "import mlflow": "import mlflow",
    "import genai_tracing": "import genai_tracing",
    "import genai_tracing; enable_tracing() [all 4 providers]":
        "import genai_tracing; genai_tracing.enable_tracing(tracking_uri='sqlite:///b.db')",
    "... enable_tracing(providers=['openai'])":
        "import genai_tracing; genai_tracing.enable_tracing(tracking_uri='sqlite:///b.db', "
        "providers=['openai'])",
    "plain MLflow autolog, 4 providers (for comparison)":
        "import os; os.environ['LITELLM_LOCAL_MODEL_COST_MAP']='True'; import mlflow; "
        "mlflow.set_tracking_uri('sqlite:///b.db'); mlflow.openai.autolog(); "
        "mlflow.anthropic.autolog(); mlflow.gemini.autolog(); mlflow.litellm.autolog()",
    # enable_tracing() opens the store and creates its experiment up front; plain MLflow opens the
    # store later, on the export thread. This row pays that at start-up too: like for like.
    "plain MLflow autolog + set_experiment() (like for like)":
        "import os; os.environ['LITELLM_LOCAL_MODEL_COST_MAP']='True'; import mlflow; "
        "mlflow.set_tracking_uri('sqlite:///b.db'); mlflow.set_experiment('plain'); "
        "mlflow.openai.autolog(); mlflow.anthropic.autolog(); mlflow.gemini.autolog(); "
        "mlflow.litellm.autolog()",
}


def run(code: str, cwd: str) -> float:
    # Time measured inside the child so interpreter start-up is left out of every figure.
    timed = f"import time; t0 = time.perf_counter()\n{code}\nprint(time.perf_counter() - t0)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run([sys.executable, "-c", timed], cwd=cwd, capture_output=True, text=True,
                         check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        for code in SCRIPTS.values():  # warm the OS file cache and create the store once
            run(code, cwd)
        times: dict[str, list[float]] = {name: [] for name in SCRIPTS}
        started = time.perf_counter()
        for _ in range(args.repeat):
            for name, code in SCRIPTS.items():
                times[name].append(run(code, cwd))
    base = statistics.median(times["import mlflow"])
    print(f"{'configuration':58} {'median s':>9} {'min s':>7} {'x mlflow':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:58} {median:9.2f} {min(values):7.2f} {median / base:9.2f}")
    ours = statistics.median(times["import genai_tracing; enable_tracing() [all 4 providers]"])
    for name in ("plain MLflow autolog, 4 providers (for comparison)",
                 "plain MLflow autolog + set_experiment() (like for like)"):
        extra = ours - statistics.median(times[name])
        print(f"enable_tracing() minus {name.split(' (')[0]}: {extra:+.2f} s (target +0.30 s)")
    print(f"({args.repeat} fresh interpreters each, {time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
