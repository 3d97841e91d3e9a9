"""Wall time of ``import genai_tracing; enable_tracing()`` against plain ``import mlflow``.

    python benchmarks/startup.py [--repeat 5]

Each measurement runs in a fresh interpreter (imports are cached per process), alternating the
configurations so machine noise hits both alike. Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
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
}


def run(code: str, cwd: str) -> float:
    # Time measured inside the child so interpreter start-up is left out of every figure.
    timed = f"import time; t0 = time.perf_counter()\n{code}\nprint(time.perf_counter() - t0)"
    out = subprocess.run([sys.executable, "-c", timed], cwd=cwd, capture_output=True, text=True,
                         check=True)
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
    print(f"({args.repeat} fresh interpreters each, {time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
