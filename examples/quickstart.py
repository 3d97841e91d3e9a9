"""genai_tracing quickstart: four provider SDKs, one trace, exact cost, no network, no API keys.

    python examples/quickstart.py

The real OpenAI, Anthropic, google-genai and LiteLLM clients talk over HTTP to a fake provider on
127.0.0.1 (``genai_tracing.testing.FakeProvider``) that answers in each provider's wire format
and reports the token usage set below. Traces go to ``quickstart.db`` (sqlite) in this folder.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage

STORE = Path(__file__).resolve().parent / "quickstart.db"


def main() -> None:
    with FakeProvider(text="Hello from the fake provider") as fake:
        config = genai_tracing.enable_tracing(tracking_uri=f"sqlite:///{STORE}",
                                              experiment="genai-tracing-quickstart")
        print(config, end="\n\n")

        import anthropic
        import litellm
        import openai
        from google import genai
        from google.genai import types

        openai_client = openai.OpenAI(base_url=fake.openai_base_url, api_key="not-needed")
        anthropic_client = anthropic.Anthropic(base_url=fake.anthropic_base_url,
                                               api_key="not-needed")
        gemini_client = genai.Client(api_key="not-needed",
                                     http_options=types.HttpOptions(base_url=fake.gemini_base_url))
        messages = [{"role": "user", "content": "Write a haiku about invoices."}]

        @mlflow.trace(name="answer_question")
        def answer_question() -> str:
            fake.usage = FakeUsage(input_tokens=1200, output_tokens=300, cached_tokens=1000)
            openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages)

            fake.usage = FakeUsage(input_tokens=2000, output_tokens=400, cached_tokens=1500,
                                   cache_write_tokens=300)
            anthropic_client.messages.create(model="claude-sonnet-4-5", max_tokens=512,
                                             messages=messages)

            fake.usage = FakeUsage(input_tokens=800, output_tokens=900, reasoning_tokens=600)
            gemini_client.models.generate_content(model="gemini-2.5-flash",
                                                  contents="Write a haiku about invoices.")

            fake.usage = FakeUsage(input_tokens=500, output_tokens=120)
            reply = litellm.completion(model="anthropic/claude-haiku-4-5", api_base=fake.url,
                                       api_key="not-needed", messages=messages)
            return reply.choices[0].message.content

        answer_question()

    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    trace = mlflow.get_trace(trace_id)

    print(f"trace {trace_id}")
    print(f"{'span':28} {'model':22} {'in':>6} {'out':>6} {'cost (USD)':>12}  price from")
    for span in trace.data.spans:
        usage = span.attributes.get("mlflow.chat.tokenUsage")
        if not usage:
            continue
        cost = span.attributes.get("mlflow.llm.cost")
        shown = f"{cost['total_cost']:.6f}" if cost else "unpriced"
        print(f"{span.name:28} {span.attributes.get('mlflow.llm.model', ''):22} "
              f"{usage['input_tokens']:>6} {usage['output_tokens']:>6} {shown:>12}  "
              f"{span.attributes.get('genai_tracing.cost.source', '-')}")
    print()
    print("trace.info.token_usage =", trace.info.token_usage)
    print("trace.info.cost        =", trace.info.cost)
    print()
    print("Open it in the MLflow UI (it prints the link to this experiment's traces):")
    print(f"  genai-tracing ui --tracking-uri sqlite:///{STORE} "
          "--experiment genai-tracing-quickstart")
    print("or with MLflow alone (then Experiments > genai-tracing-quickstart > Traces):")
    print(f"  mlflow server --backend-store-uri sqlite:///{STORE} --port 5000")


if __name__ == "__main__":
    main()
