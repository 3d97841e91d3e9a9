"""Stream from every provider SDK and print each trace's cost: no network, no API keys.

    python examples/streaming.py

Each stream is consumed as an app would consume it; genai_tracing reads the usage off the stream
as it passes (keeping running totals, never the chunks) and prices the call when it ends.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import mlflow

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage

STORE = Path(__file__).resolve().parent / "streaming.db"
MESSAGES = [{"role": "user", "content": "Tell me a short story."}]


def main() -> None:
    with FakeProvider(text="Once upon a time, a fox priced every token.") as fake:
        genai_tracing.enable_tracing(tracking_uri=f"sqlite:///{STORE}",
                                     experiment="genai-tracing-streaming")
        import anthropic
        import litellm
        import openai
        from google import genai
        from google.genai import types

        fake.usage = FakeUsage(input_tokens=900, output_tokens=350, cached_tokens=300)
        oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="not-needed")
        claude = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="not-needed")
        gemini = genai.Client(api_key="not-needed",
                              http_options=types.HttpOptions(base_url=fake.gemini_base_url))

        def openai_chat() -> None:
            stream = oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                 stream=True,
                                                 stream_options={"include_usage": True})
            print("".join(c.choices[0].delta.content or "" for c in stream if c.choices))

        def openai_responses() -> None:
            with oai.responses.stream(model="gpt-4o-mini", input="Tell me a story.") as stream:
                print(stream.get_final_response().output_text)

        def anthropic_stream() -> None:
            with claude.messages.stream(model="claude-sonnet-4-5", max_tokens=512,
                                        messages=MESSAGES) as stream:
                print("".join(stream.text_stream))

        def gemini_stream() -> None:
            chunks = gemini.models.generate_content_stream(model="gemini-2.5-flash",
                                                           contents="Tell me a story.")
            print("".join(chunk.text or "" for chunk in chunks))

        async def litellm_async_stream() -> None:
            stream = await litellm.acompletion(
                model="anthropic/claude-haiku-4-5", api_base=fake.url, api_key="not-needed",
                messages=MESSAGES, stream=True, stream_options={"include_usage": True})
            print("".join([c.choices[0].delta.content or "" async for c in stream
                           if c.choices]))

        calls = {"openai chat.completions stream": openai_chat,
                 "openai responses.stream()": openai_responses,
                 "anthropic messages.stream()": anthropic_stream,
                 "gemini generate_content_stream": gemini_stream,
                 "litellm acompletion stream": lambda: asyncio.run(litellm_async_stream())}
        trace_ids = {}
        for name, call in calls.items():
            print(f"--- {name}")
            call()
            trace_ids[name] = mlflow.get_last_active_trace_id()

    mlflow.flush_trace_async_logging()
    print(f"\n{'call':34} {'model':20} {'in':>5} {'out':>5} {'cost (USD)':>11}")
    for name, trace_id in trace_ids.items():
        trace = mlflow.get_trace(trace_id)
        usage = trace.info.token_usage or {}
        cost = (trace.info.cost or {}).get("total_cost")
        model = next((s.attributes.get("mlflow.llm.model") for s in trace.data.spans
                      if s.attributes.get("mlflow.llm.cost")), "?")
        print(f"{name:34} {model:20} {usage.get('input_tokens', 0):>5} "
              f"{usage.get('output_tokens', 0):>5} "
              f"{'unpriced' if cost is None else f'{cost:.6f}':>11}")


if __name__ == "__main__":
    main()
