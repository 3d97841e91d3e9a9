"""Microseconds per price lookup: a catalog model, a price-file model and a regex model.

    python benchmarks/pricing.py [--calls 20000]

Times the engine a span is priced with (``price_call``, the resolver's cache warm), against
LiteLLM's own ``cost_per_token`` for the same call. Prints a table; no assertion.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from genai_tracing._pricing import PriceResolver, parse_price_table  # noqa: E402
from genai_tracing._pricing import price_call  # noqa: E402
from genai_tracing._usage import Usage  # noqa: E402
from genai_tracing.providers import Call  # noqa: E402

TABLE = parse_price_table({"models": {
    "acme-finetune-7b": {"input_per_million": 0.9, "output_per_million": 3.6},
    "acme-ft": {"match": "^ft:gpt-4o-mini:acme:.*", "input_per_million": 0.3,
                "output_per_million": 1.2},
}}, origin="benchmark")
USAGE = Usage(input_tokens=1200, output_tokens=300, cached_input_tokens=400)
CASES = {
    "catalog model (gpt-4o-mini, LiteLLM map)": Call("openai", "gpt-4o-mini", USAGE),
    "catalog model, dated snapshot": Call("openai", "gpt-4o-mini-2024-07-18", USAGE),
    "price-file model (acme-finetune-7b)": Call("openai", "acme-finetune-7b", USAGE),
    "regex model (ft:gpt-4o-mini:acme:...)": Call("openai", "ft:gpt-4o-mini:acme:x:abc123", USAGE),
}


def per_call_us(function, calls: int, repeats: int = 5) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    resolver = PriceResolver(TABLE)
    print(f"{'lookup':44} {'us/call':>8}")
    for name, call in CASES.items():
        price_call(call, resolver)  # warm the cache, as the first span of a model does
        print(f"{name:44} {per_call_us(lambda: price_call(call, resolver), args.calls):8.2f}")
    import litellm

    def litellm_cost() -> None:
        litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=1200, completion_tokens=300,
                               cache_read_input_tokens=400)

    print(f"{'litellm.cost_per_token (for comparison)':44} "
          f"{per_call_us(litellm_cost, max(args.calls // 20, 100)):8.2f}")


if __name__ == "__main__":
    main()
