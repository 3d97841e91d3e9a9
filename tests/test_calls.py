"""Every call type of every SDK: one LLM span with its usage breakdown and a hand-computed cost.

The matrix is one table of (SDK, call, sync/async, stream or not). Each row drives the real SDK
against the loopback fakes, which report the usage the row sets, and prices from the table below;
the expected cost of each row is written out by hand from those prices.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any, Callable

import litellm
import mlflow
import pytest
from google import genai
from google.genai import types as gtypes

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, anthropic_client, gemini_client, llm_spans, openai_client

M = 1_000_000

PRICES = {"models": {
    "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6,
                    "cached_input_per_million": 0.075},
    "text-embedding-3-small": {"input_per_million": 0.02, "output_per_million": 0},
    "gpt-image-1": {"input_per_million": 5, "output_per_million": 10,
                    "image_input_per_million": 10, "image_output_per_million": 40},
    "dall-e-3/hd/1024x1792": {"input_per_million": 0, "output_per_million": 0,
                              "per_image": 0.12},
    "claude-sonnet-4-5": {"input_per_million": 3, "output_per_million": 15,
                          "cached_input_per_million": 0.3, "cache_write_per_million": 3.75},
    "gemini-2.5-flash": {"input_per_million": 0.3, "output_per_million": 2.5,
                         "cached_input_per_million": 0.03},
    "gemini-2.5-flash-image": {"input_per_million": 0.3, "output_per_million": 2.5,
                               "image_output_per_million": 30},
    "gemini-embedding-001": {"input_per_million": 0.15, "output_per_million": 0},
    "imagen-4.0-generate-001": {"input_per_million": 0, "output_per_million": 0,
                                "per_image": 0.04},
}}

# Usage each family of rows reports, and its cost under PRICES, by hand.
CHAT = FakeUsage(input_tokens=1000, cached_tokens=400, output_tokens=300, reasoning_tokens=100)
CHAT_COST = ((600 * 0.15 + 400 * 0.075) / M, 300 * 0.6 / M)
CHAT_PARTS = {"input_tokens": 1000, "output_tokens": 300, "cached_input_tokens": 400,
              "reasoning_tokens": 100}

CLAUDE = FakeUsage(input_tokens=2000, cached_tokens=1500, cache_write_tokens=300,
                   output_tokens=400)
CLAUDE_COST = ((200 * 3 + 1500 * 0.3 + 300 * 3.75) / M, 400 * 15 / M)
CLAUDE_PARTS = {"input_tokens": 2000, "output_tokens": 400, "cached_input_tokens": 1500,
                "cache_write_tokens": 300}

GEMINI = FakeUsage(input_tokens=800, cached_tokens=200, output_tokens=900, reasoning_tokens=600)
GEMINI_COST = ((600 * 0.3 + 200 * 0.03) / M, 900 * 2.5 / M)  # thinking billed as output
GEMINI_PARTS = {"input_tokens": 800, "output_tokens": 900, "cached_input_tokens": 200,
                "reasoning_tokens": 600}

EMBED = FakeUsage(input_tokens=64)

IMAGE_TOKENS = FakeUsage(input_tokens=50, image_input_tokens=0, output_tokens=4160,
                         image_output_tokens=4160)
IMAGE_TOKENS_COST = (50 * 5 / M, 4160 * 40 / M)

GEMINI_IMAGE = FakeUsage(input_tokens=20, output_tokens=1300, image_output_tokens=1290)
GEMINI_IMAGE_COST = (20 * 0.3 / M, (10 * 2.5 + 1290 * 30) / M)


@dataclass(frozen=True)
class Row:
    sdk: str
    call: str
    mode: str  # "sync" | "async"
    stream: bool
    usage: FakeUsage
    run: Callable[[FakeProvider], Any]  # makes the call, consuming any stream
    model: str
    cost: tuple[float, float]
    parts: dict[str, int]

    @property
    def id(self) -> str:
        return f"{self.sdk}-{self.call}-{self.mode}{'-stream' if self.stream else ''}"


def _drain(iterable: Any) -> list[Any]:
    return list(iterable)


async def _adrain(iterable: Any) -> list[Any]:
    return [item async for item in iterable]


def _async(make: Callable[[FakeProvider], Any]) -> Callable[[FakeProvider], Any]:
    return lambda fake: asyncio.run(make(fake))


# --- OpenAI ---------------------------------------------------------------------------------

def oai_chat(fake):
    return openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


async def oai_chat_async(fake):
    return await openai_client(fake, asynchronous=True).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES)


def oai_chat_stream(fake):
    return _drain(openai_client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True}))


async def oai_chat_stream_async(fake):
    stream = await openai_client(fake, asynchronous=True).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True})
    return await _adrain(stream)


def oai_chat_stream_helper(fake):
    with openai_client(fake).chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES,
            stream_options={"include_usage": True}) as stream:
        return stream.get_final_completion()


def oai_parse(fake):
    fake.text = '{"answer": "hello"}'
    return openai_client(fake).chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": {
            "type": "object", "properties": {"answer": {"type": "string"}}}}})


def oai_responses(fake):
    return openai_client(fake).responses.create(model="gpt-4o-mini", input="Say hello")


async def oai_responses_async(fake):
    return await openai_client(fake, asynchronous=True).responses.create(
        model="gpt-4o-mini", input="Say hello")


def oai_responses_stream(fake):
    return _drain(openai_client(fake).responses.create(model="gpt-4o-mini", input="Say hello",
                                                       stream=True))


def oai_responses_stream_helper(fake):
    with openai_client(fake).responses.stream(model="gpt-4o-mini", input="Say hello") as stream:
        return stream.get_final_response()


def oai_embeddings(fake):
    return openai_client(fake).embeddings.create(model="text-embedding-3-small", input="hello")


async def oai_embeddings_async(fake):
    return await openai_client(fake, asynchronous=True).embeddings.create(
        model="text-embedding-3-small", input="hello")


def oai_image(fake):
    return openai_client(fake).images.generate(model="gpt-image-1", prompt="a red fox")


async def oai_image_async(fake):
    return await openai_client(fake, asynchronous=True).images.generate(
        model="gpt-image-1", prompt="a red fox")


def oai_image_edit(fake):
    png = base64.b64decode(fake.image_b64)
    return openai_client(fake).images.edit(model="gpt-image-1", prompt="add a hat",
                                           image=("fox.png", png, "image/png"))


def oai_dalle(fake):
    return openai_client(fake).images.generate(model="dall-e-3", prompt="a red fox", n=1,
                                               quality="hd", size="1024x1792")


# --- Anthropic ------------------------------------------------------------------------------

CLAUDE_ARGS = {"model": "claude-sonnet-4-5", "max_tokens": 512, "messages": MESSAGES}


def claude_create(fake):
    return anthropic_client(fake).messages.create(**CLAUDE_ARGS)


async def claude_create_async(fake):
    return await anthropic_client(fake, asynchronous=True).messages.create(**CLAUDE_ARGS)


def claude_create_stream(fake):
    return _drain(anthropic_client(fake).messages.create(**CLAUDE_ARGS, stream=True))


async def claude_create_stream_async(fake):
    stream = await anthropic_client(fake, asynchronous=True).messages.create(**CLAUDE_ARGS,
                                                                          stream=True)
    return await _adrain(stream)


def claude_stream_helper(fake):
    with anthropic_client(fake).messages.stream(**CLAUDE_ARGS) as stream:
        return stream.get_final_message()


async def claude_stream_helper_async(fake):
    async with anthropic_client(fake, asynchronous=True).messages.stream(**CLAUDE_ARGS) as s:
        return await s.get_final_message()


def claude_thinking_stream(fake):
    fake.thinking_text = "Let me think."
    with anthropic_client(fake).messages.stream(
            **CLAUDE_ARGS, thinking={"type": "enabled", "budget_tokens": 256}) as stream:
        return _drain(stream)


# --- Gemini ---------------------------------------------------------------------------------

def gem_generate(fake):
    client = gemini_client(fake)
    return client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")


async def gem_generate_async(fake):
    client = gemini_client(fake)
    return await client.aio.models.generate_content(model="gemini-2.5-flash",
                                                    contents="Say hello")


def gem_stream(fake):
    client = gemini_client(fake)
    return _drain(client.models.generate_content_stream(model="gemini-2.5-flash",
                                                        contents="Say hello"))


async def gem_stream_async(fake):
    client = gemini_client(fake)
    stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash",
                                                             contents="Say hello")
    return await _adrain(stream)


def gem_image(fake):
    client = gemini_client(fake)
    return client.models.generate_content(
        model="gemini-2.5-flash-image", contents="Draw a fox",
        config=gtypes.GenerateContentConfig(response_modalities=["IMAGE"]))


def gem_image_stream(fake):
    client = gemini_client(fake)
    return _drain(client.models.generate_content_stream(
        model="gemini-2.5-flash-image", contents="Draw a fox",
        config=gtypes.GenerateContentConfig(response_modalities=["IMAGE"])))


def gem_embed(fake):
    client = gemini_client(fake)
    return client.models.embed_content(model="gemini-embedding-001", contents="hello")


def _vertex(fake):
    return genai.Client(vertexai=True, api_key="test", http_options=gtypes.HttpOptions(
        base_url=fake.url, retry_options=gtypes.HttpRetryOptions(attempts=1)))


def gem_imagen(fake):
    client = _vertex(fake)
    return client.models.generate_images(model="imagen-4.0-generate-001", prompt="a red fox",
                                         config=gtypes.GenerateImagesConfig(number_of_images=2))


async def gem_imagen_async(fake):
    client = _vertex(fake)
    return await client.aio.models.generate_images(
        model="imagen-4.0-generate-001", prompt="a red fox",
        config=gtypes.GenerateImagesConfig(number_of_images=2))


# --- LiteLLM --------------------------------------------------------------------------------

def _lite_args(fake, model: str) -> dict[str, Any]:
    base = {"openai": fake.openai_base_url, "anthropic": fake.url, "gemini": fake.url}
    return {"model": model, "api_base": base[model.split("/")[0]], "api_key": "test"}


def lite(model: str, *, stream: bool = False, asynchronous: bool = False):
    def run(fake):
        args = {**_lite_args(fake, model), "messages": MESSAGES}
        if stream:
            args.update(stream=True, stream_options={"include_usage": True})
        if not asynchronous:
            result = litellm.completion(**args)
            return _drain(result) if stream else result

        async def go():
            result = await litellm.acompletion(**args)
            return await _adrain(result) if stream else result
        return asyncio.run(go())
    return run


def lite_embedding(fake):
    return litellm.embedding(**_lite_args(fake, "openai/text-embedding-3-small"), input=["hi"])


def lite_image(fake):
    return litellm.image_generation(**_lite_args(fake, "openai/gpt-image-1"),
                                    prompt="a red fox")


EMBED_PARTS = {"input_tokens": 64, "output_tokens": 0}
IMAGE_PARTS = {"input_tokens": 50, "output_tokens": 4160, "image_output_tokens": 4160,
               "images": 1}

ROWS = [
    Row("openai", "chat", "sync", False, CHAT, oai_chat, "gpt-4o-mini", CHAT_COST, CHAT_PARTS),
    Row("openai", "chat", "async", False, CHAT, _async(oai_chat_async), "gpt-4o-mini",
        CHAT_COST, CHAT_PARTS),
    Row("openai", "chat", "sync", True, CHAT, oai_chat_stream, "gpt-4o-mini", CHAT_COST,
        CHAT_PARTS),
    Row("openai", "chat", "async", True, CHAT, _async(oai_chat_stream_async), "gpt-4o-mini",
        CHAT_COST, CHAT_PARTS),
    Row("openai", "chat.stream()", "sync", True, CHAT, oai_chat_stream_helper, "gpt-4o-mini",
        CHAT_COST, CHAT_PARTS),
    Row("openai", "parse", "sync", False, CHAT, oai_parse, "gpt-4o-mini", CHAT_COST,
        CHAT_PARTS),
    Row("openai", "responses", "sync", False, CHAT, oai_responses, "gpt-4o-mini", CHAT_COST,
        CHAT_PARTS),
    Row("openai", "responses", "async", False, CHAT, _async(oai_responses_async),
        "gpt-4o-mini", CHAT_COST, CHAT_PARTS),
    Row("openai", "responses", "sync", True, CHAT, oai_responses_stream, "gpt-4o-mini",
        CHAT_COST, CHAT_PARTS),
    Row("openai", "responses.stream()", "sync", True, CHAT, oai_responses_stream_helper,
        "gpt-4o-mini", CHAT_COST, CHAT_PARTS),
    Row("openai", "embeddings", "sync", False, EMBED, oai_embeddings, "text-embedding-3-small",
        (64 * 0.02 / M, 0.0), EMBED_PARTS),
    Row("openai", "embeddings", "async", False, EMBED, _async(oai_embeddings_async),
        "text-embedding-3-small", (64 * 0.02 / M, 0.0), EMBED_PARTS),
    Row("openai", "images.generate", "sync", False, IMAGE_TOKENS, oai_image, "gpt-image-1",
        IMAGE_TOKENS_COST, IMAGE_PARTS),
    Row("openai", "images.generate", "async", False, IMAGE_TOKENS, _async(oai_image_async),
        "gpt-image-1", IMAGE_TOKENS_COST, IMAGE_PARTS),
    Row("openai", "images.edit", "sync", False, IMAGE_TOKENS, oai_image_edit, "gpt-image-1",
        IMAGE_TOKENS_COST, IMAGE_PARTS),
    Row("openai", "images.generate dall-e-3", "sync", False, FakeUsage(), oai_dalle,
        "dall-e-3", (0.0, 0.12), {"input_tokens": 0, "output_tokens": 0, "images": 1}),
    Row("anthropic", "messages.create", "sync", False, CLAUDE, claude_create,
        "claude-sonnet-4-5", CLAUDE_COST, CLAUDE_PARTS),
    Row("anthropic", "messages.create", "async", False, CLAUDE, _async(claude_create_async),
        "claude-sonnet-4-5", CLAUDE_COST, CLAUDE_PARTS),
    Row("anthropic", "messages.create", "sync", True, CLAUDE, claude_create_stream,
        "claude-sonnet-4-5", CLAUDE_COST, CLAUDE_PARTS),
    Row("anthropic", "messages.create", "async", True, CLAUDE,
        _async(claude_create_stream_async), "claude-sonnet-4-5", CLAUDE_COST, CLAUDE_PARTS),
    Row("anthropic", "messages.stream()", "sync", True, CLAUDE, claude_stream_helper,
        "claude-sonnet-4-5", CLAUDE_COST, CLAUDE_PARTS),
    Row("anthropic", "messages.stream()", "async", True, CLAUDE,
        _async(claude_stream_helper_async), "claude-sonnet-4-5", CLAUDE_COST, CLAUDE_PARTS),
    Row("anthropic", "messages.stream() thinking", "sync", True, CLAUDE, claude_thinking_stream,
        "claude-sonnet-4-5", CLAUDE_COST, CLAUDE_PARTS),
    Row("gemini", "generate_content", "sync", False, GEMINI, gem_generate, "gemini-2.5-flash",
        GEMINI_COST, GEMINI_PARTS),
    Row("gemini", "generate_content", "async", False, GEMINI, _async(gem_generate_async),
        "gemini-2.5-flash", GEMINI_COST, GEMINI_PARTS),
    Row("gemini", "generate_content_stream", "sync", True, GEMINI, gem_stream,
        "gemini-2.5-flash", GEMINI_COST, GEMINI_PARTS),
    Row("gemini", "generate_content_stream", "async", True, GEMINI, _async(gem_stream_async),
        "gemini-2.5-flash", GEMINI_COST, GEMINI_PARTS),
    Row("gemini", "generate_content image", "sync", False, GEMINI_IMAGE, gem_image,
        "gemini-2.5-flash-image", GEMINI_IMAGE_COST,
        {"input_tokens": 20, "output_tokens": 1300, "image_output_tokens": 1290, "images": 1}),
    Row("gemini", "generate_content_stream image", "sync", True, GEMINI_IMAGE, gem_image_stream,
        "gemini-2.5-flash-image", GEMINI_IMAGE_COST,
        {"input_tokens": 20, "output_tokens": 1300, "image_output_tokens": 1290, "images": 1}),
    Row("gemini", "embed_content", "sync", False, EMBED, gem_embed, "gemini-embedding-001",
        (64 * 0.15 / M, 0.0), EMBED_PARTS),
    Row("gemini", "generate_images", "sync", False, FakeUsage(), gem_imagen,
        "imagen-4.0-generate-001", (0.0, 2 * 0.04),
        {"input_tokens": 0, "output_tokens": 0, "images": 2}),
    Row("gemini", "generate_images", "async", False, FakeUsage(), _async(gem_imagen_async),
        "imagen-4.0-generate-001", (0.0, 2 * 0.04),
        {"input_tokens": 0, "output_tokens": 0, "images": 2}),
    *[Row("litellm", f"{fn} {model.split('/')[0]}", mode, stream, usage,
          lite(model, stream=stream, asynchronous=mode == "async"), model.split("/")[1],
          row_cost, parts)
      for model, usage, row_cost, parts in [
          ("openai/gpt-4o-mini", CHAT, CHAT_COST, CHAT_PARTS),
          ("anthropic/claude-sonnet-4-5", CLAUDE, CLAUDE_COST, CLAUDE_PARTS),
          ("gemini/gemini-2.5-flash", GEMINI, GEMINI_COST, GEMINI_PARTS)]
      for fn, mode in [("completion", "sync"), ("acompletion", "async")]
      for stream in (False, True)],
    Row("litellm", "embedding openai", "sync", False, EMBED, lite_embedding,
        "text-embedding-3-small", (64 * 0.02 / M, 0.0), EMBED_PARTS),
    Row("litellm", "image_generation openai", "sync", False, IMAGE_TOKENS, lite_image,
        "gpt-image-1", IMAGE_TOKENS_COST, IMAGE_PARTS),
]


def _breakdown(span: Any) -> dict[str, int]:
    usage = dict(span.attributes["genai_tracing.usage"])
    usage.pop("total_tokens", None)
    usage.pop("flags", None)
    return usage


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
def test_each_call_is_one_priced_llm_span(row: Row, fake_provider: FakeProvider,
                                          mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices=PRICES)
    fake_provider.usage = row.usage

    @mlflow.trace(name="request")
    def request() -> None:
        row.run(fake_provider)

    request()

    trace = mlflow_store.last_trace()
    assert trace.data.spans[0].name == "request"  # the call is inside the caller's trace
    spans = llm_spans(trace)
    assert len(spans) == 1, [s.name for s in spans]
    (span,) = spans
    assert span.attributes["mlflow.llm.model"] == row.model
    assert _breakdown(span) == {k: v for k, v in row.parts.items() if v}  # zeros left out
    input_cost, output_cost = row.cost
    expected = pytest.approx({"input_cost": input_cost, "output_cost": output_cost,
                              "total_cost": input_cost + output_cost}, rel=1e-9, abs=1e-15)
    assert span.attributes["mlflow.llm.cost"] == expected
    assert span.attributes["genai_tracing.cost.source"] == "user"
    assert trace.info.cost == expected
    assert trace.info.token_usage["input_tokens"] == row.parts["input_tokens"]
    assert trace.info.token_usage["output_tokens"] == row.parts["output_tokens"]


def test_openai_stream_without_usage_is_flagged_missing_not_zero(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices=PRICES)
    fake_provider.usage = CHAT
    chunks = _drain(openai_client(fake_provider).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True))

    request = fake_provider.requests[-1].json
    assert "stream_options" not in request  # the user's request is not changed
    assert all(chunk.usage is None for chunk in chunks)
    trace = mlflow_store.last_trace()
    (span,) = llm_spans(trace)
    assert span.attributes["genai_tracing.usage.flags"] == ["missing"]
    assert span.attributes["genai_tracing.cost.unpriced"] is True
    assert not span.attributes.get("mlflow.llm.cost")
    assert trace.info.request_metadata["genai_tracing.cost.complete"] == "false"
