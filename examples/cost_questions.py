"""The questions teams track LLM cost for, answered in a line each, on three days of traffic.

    python examples/cost_questions.py [--out DIR]

Runs offline. The real OpenAI, Anthropic and google-genai clients talk to a fake provider on
127.0.0.1 (``genai_tracing.testing.FakeProvider``), and the traces go to a temporary sqlite store.
The days are simulated: each request runs now, with the clock MLflow's spans read set back to a
moment of the day before yesterday, yesterday or today (UTC), and its root span ends at a latency
that grows with the prompt. Every trace is therefore stored at the time it stands for, the calls'
spans inside their request's span as in live traffic, and budgets count it toward that day.

Prints the answers, then writes three charts (PNG) to ``--out`` (default: the store's folder).
"""

from __future__ import annotations

import argparse
import random
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import mlflow
from mlflow.tracing.provider import safe_set_span_in_context

import genai_tracing
from genai_tracing._money import format_money
from genai_tracing.testing import FakeProvider, FakeUsage


@dataclass(frozen=True)
class Profile:
    """How one user uses the app: which feature, how long the prompts, how many a day."""

    user: str
    feature: str
    prompt_chars: tuple[int, int]
    requests_per_day: int


PROFILES = [
    Profile("ana@acme.example", "research", (2_000, 16_000), 14),     # long prompts, Claude
    Profile("bob@acme.example", "images", (40, 300), 12),             # pictures, Gemini
    Profile("chen@acme.example", "chat", (50, 1_500), 30),            # short chats, GPT-4o mini
    Profile("dee@acme.example", "chat", (200, 4_000), 10),
    Profile("eve@acme.example", "research", (1_000, 6_000), 5),
]
# The model behind each feature.
MODELS = {"research": ("anthropic", "claude-sonnet-4-5"),
          "images": ("gemini", "gemini-2.5-flash-image"),
          "chat": ("openai", "gpt-4o-mini")}
DAILY_LIMIT_PER_USER = 0.50  # USD


def clients(fake: FakeProvider) -> dict[str, Callable[[str, str], Any]]:
    import anthropic
    import openai
    from google import genai
    from google.genai import types

    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="not-needed")
    claude = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="not-needed")
    gemini = genai.Client(api_key="not-needed",
                          http_options=types.HttpOptions(base_url=fake.gemini_base_url))
    image_config = types.GenerateContentConfig(response_modalities=["IMAGE"])
    return {
        "openai": lambda model, prompt: oai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}]),
        "anthropic": lambda model, prompt: claude.messages.create(
            model=model, max_tokens=1024, messages=[{"role": "user", "content": prompt}]),
        "gemini": lambda model, prompt: gemini.models.generate_content(
            model=model, contents=prompt, config=image_config),
    }


def simulate(fake: FakeProvider, rng: random.Random) -> int:
    """Three days of requests, each stored at its simulated time; returns how many."""
    call = clients(fake)
    now = datetime.now(timezone.utc)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    count = 0
    for day in (today - timedelta(days=2), today - timedelta(days=1), today):
        seconds_in_day = min(86_400, max(60, int((now - day).total_seconds()) - 60))
        for profile in PROFILES:
            # Ana has a heavy day yesterday: that is the first question below.
            heavy = 3 if profile.user.startswith("ana") and day == today - timedelta(days=1) else 1
            for _ in range(profile.requests_per_day * heavy):
                at = day + timedelta(seconds=rng.randrange(seconds_in_day))
                chars = rng.randint(*profile.prompt_chars)
                request(fake, call, profile, at, "Tell me about invoices. " * (chars // 24), rng)
                count += 1
    return count


def request(fake: FakeProvider, call: dict[str, Callable[[str, str], Any]], profile: Profile,
            at: datetime, prompt: str, rng: random.Random) -> None:
    provider, model = MODELS[profile.feature]
    input_tokens = len(prompt) // 4 + 10
    if provider == "gemini":  # one picture: 1290 image tokens out
        fake.usage = FakeUsage(input_tokens=input_tokens, output_tokens=1290,
                               image_output_tokens=1290)
    else:
        fake.usage = FakeUsage(input_tokens=input_tokens, output_tokens=rng.randint(80, 900))
    # Latency grows with the prompt, plus noise: what "are long prompts slower?" should find.
    latency_ms = 400 + len(prompt) * 0.12 + rng.gauss(0, 250)
    start_ns = int(at.timestamp() * 1e9)
    with span_clock_at(start_ns), genai_tracing.attribute(
            user=profile.user, session=f"{profile.user}/{at:%Y-%m-%d}", feature=profile.feature):
        root = mlflow.start_span_no_context(profile.feature, inputs={"prompt": prompt},
                                            start_time_ns=start_ns)
        with safe_set_span_in_context(root):
            call[provider](model, prompt)
        root.end(outputs="ok", end_time_ns=start_ns + int(max(latency_ms, 300) * 1e6))


@contextmanager
def span_clock_at(when_ns: int) -> Iterator[None]:
    """For the simulation only: spans started inside read a clock set back to ``when_ns``.

    MLflow's spans take their times from OpenTelemetry's SDK clock. A root span dated yesterday
    around calls whose own spans say "now" would make a trace a day long: MLflow's store takes a
    trace's duration from the range of its spans.
    """
    import opentelemetry.sdk.trace as sdk

    real = sdk.time_ns
    offset = real() - when_ns
    sdk.time_ns = lambda: real() - offset
    try:
        yield
    finally:
        sdk.time_ns = real


def money(frame: Any) -> str:
    shown = frame.copy()
    shown["total_cost"] = [format_money(v) for v in frame["total_cost"]]
    return shown.drop(columns=["p50_latency_ms", "p95_latency_ms"]).to_string(index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the charts (default: the store's)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="genai-tracing-cost-questions-"))
    out = args.out or folder
    out.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{folder / 'mlflow.db'}"
    warnings: list[genai_tracing.BudgetExceeded] = []

    with FakeProvider() as fake:
        genai_tracing.enable_tracing(
            tracking_uri=store, experiment="cost-questions",
            budgets=[{"limit_usd": DAILY_LIMIT_PER_USER, "per": "day", "user": "*",
                      "on_exceeded": warnings.append}])
        requests = simulate(fake, random.Random(42))
        mlflow.flush_trace_async_logging()
    print(f"{requests} requests over 3 days traced into {store}\n")

    print("1. Which user incurred the highest cost yesterday?")
    print("   genai_tracing.cost_report(by='user', since='yesterday', until='today')\n")
    users = genai_tracing.cost_report(by="user", since="yesterday", until="today")
    print(_indent(money(users)))
    top = users.iloc[0]
    print(f"\n   -> {top['user']}, {format_money(top['total_cost'])} over {top['requests']} "
          "requests\n")

    print("2. Which model, and which feature, drives the bill?")
    print("   genai_tracing.cost_report(by='model', since='7d')\n")
    models = genai_tracing.cost_report(by="model", since="7d")
    print(_indent(money(models)))
    share = models["total_cost"] / models["total_cost"].sum()
    print(f"\n   -> {models.iloc[0]['model']}: {share.iloc[0]:.0%} of the cost")
    features = genai_tracing.cost_report(by="tag:feature", since="7d")
    print("   -> by feature: " + ", ".join(
        f"{r['tag:feature']} {format_money(r['total_cost'])}" for _, r in features.iterrows())
          + "\n")

    print("3. Are long prompts causing higher latency?")
    print("   genai_tracing.latency_report(since='7d', buckets=4)\n")
    latency = genai_tracing.latency_report(since="7d", buckets=4)
    print(_indent(latency.to_string(index=False, float_format=lambda v: f"{v:,.0f}")))
    r = latency.attrs["correlation"]
    print(f"\n   -> Pearson r = {r:.2f}: "
          f"{'yes, latency grows with the prompt' if r > 0.4 else 'no clear link'}\n")

    print(f"4. Who went over the ${DAILY_LIMIT_PER_USER:.2f} daily budget per user?")
    print("   genai_tracing.set_budget(0.50, per='day', user='*', on_exceeded=warnings.append)\n")
    for event in sorted(warnings, key=lambda e: (e.period, e.user or "")):
        print(f"   {event.period}  {event.user}  crossed at ${event.spent:.4f}")
    if not warnings:
        print("   nobody")

    genai_tracing.cost_chart(by="day", stack="model", since="7d", out=out / "cost_by_day.png")
    genai_tracing.cost_chart(by="user", stack="tag:feature", since="yesterday", until="today",
                             out=out / "cost_by_user_yesterday.png")
    from genai_tracing._reports import draw_latency_chart

    draw_latency_chart(latency).savefig(out / "latency_by_prompt_length.png", dpi=110,
                                        bbox_inches="tight")
    print(f"\nCharts: {out / 'cost_by_day.png'}, {out / 'cost_by_user_yesterday.png'}, "
          f"{out / 'latency_by_prompt_length.png'}")
    print(f"Same answers from a terminal:\n"
          f"  genai-tracing report --by user --since yesterday --until today "
          f"--tracking-uri {store} --experiment cost-questions")
    genai_tracing.disable_tracing()


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


if __name__ == "__main__":
    main()
