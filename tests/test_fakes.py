"""The fake provider must satisfy the real SDK clients, with exactly the usage a test sets."""

from __future__ import annotations

import base64
import os
import time
import warnings
from collections.abc import Iterator

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import anthropic
import httpx
import litellm
import openai
import pydantic
import pytest
from google import genai
from google.genai import types as gtypes

from genai_tracing.testing import FakeProvider, FakeUsage, RecordedRequest

USAGE = FakeUsage(input_tokens=120, output_tokens=40, cached_tokens=30, cache_write_tokens=20,
                  reasoning_tokens=15)
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeProvider) -> Iterator[FakeProvider]:
    server.reset()
    server.usage = USAGE
    yield server
    server.reset()


def oai(fake: FakeProvider, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0, **kw)


def aoai(fake: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)


def claude(fake: FakeProvider, **kw: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0,
                               **kw)


def gem(fake: FakeProvider, **kw: object) -> genai.Client:
    return genai.Client(api_key="test", http_options=gtypes.HttpOptions(
        base_url=fake.gemini_base_url, retry_options=gtypes.HttpRetryOptions(attempts=1)), **kw)


def assert_chat_usage(usage: object) -> None:
    assert usage.prompt_tokens == 120 and usage.completion_tokens == 40
    assert usage.total_tokens == 160
    assert usage.prompt_tokens_details.cached_tokens == 30
    assert usage.completion_tokens_details.reasoning_tokens == 15


# -- OpenAI chat ---------------------------------------------------------------------------

def test_chat_create(fake: FakeProvider) -> None:
    reply = oai(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(reply, openai.types.chat.ChatCompletion)
    assert reply.choices[0].message.content == "Hello from the fake"
    assert reply.choices[0].finish_reason == "stop" and reply.model == "gpt-4o-mini"
    assert_chat_usage(reply.usage)
    req = fake.requests[-1]
    assert isinstance(req, RecordedRequest)
    assert (req.method, req.path, req.json["model"]) == ("POST", "/v1/chat/completions",
                                                          "gpt-4o-mini")
    assert req.headers["authorization"] == "Bearer test"


def test_chat_response_model_and_determinism(fake: FakeProvider) -> None:
    fake.response_model = "gpt-4o-mini-2024-07-18"
    client = oai(fake)
    first = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert first.model == "gpt-4o-mini-2024-07-18"
    fake.reset()
    again = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    fake.reset()
    once_more = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert again.model_dump() == once_more.model_dump()


def test_chat_stream_include_usage(fake: FakeProvider) -> None:
    chunks = list(oai(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True}))
    assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Hello from the fake"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 3
    assert [c.usage is None for c in chunks] == [True] * (len(chunks) - 1) + [False]
    assert chunks[-1].choices == []
    assert_chat_usage(chunks[-1].usage)


def test_chat_stream_usage_follows_request_or_is_forced(fake: FakeProvider) -> None:
    client = oai(fake)
    plain = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"
    fake.stream_usage = True
    forced = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert forced[-1].usage.prompt_tokens == 120
    fake.stream_usage = False
    off = list(client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert all(c.usage is None for c in off)


def test_chat_stream_helper(fake: FakeProvider) -> None:
    with oai(fake).chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES,
            stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello from the fake"
    assert_chat_usage(final.usage)


def test_chat_parse_json_schema(fake: FakeProvider) -> None:
    class Answer(pydantic.BaseModel):
        city: str

    fake.text = '{"city": "Paris"}'
    reply = oai(fake).chat.completions.parse(model="gpt-4o", messages=MESSAGES,
                                             response_format=Answer)
    assert reply.choices[0].message.parsed == Answer(city="Paris")
    assert fake.requests[-1].json["response_format"]["type"] == "json_schema"


@pytest.mark.asyncio
async def test_chat_async(fake: FakeProvider) -> None:
    client = aoai(fake)
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert_chat_usage(reply.usage)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert_chat_usage(chunks[-1].usage)
    await client.close()


# -- OpenAI responses ----------------------------------------------------------------------

def assert_responses_usage(usage: object) -> None:
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (120, 40, 160)
    assert usage.input_tokens_details.cached_tokens == 30
    assert usage.output_tokens_details.reasoning_tokens == 15


def test_responses_create(fake: FakeProvider) -> None:
    response = oai(fake).responses.create(model="gpt-5", input="hi")
    assert isinstance(response, openai.types.responses.Response)
    assert response.output_text == "Hello from the fake" and response.status == "completed"
    assert_responses_usage(response.usage)


def test_responses_stream(fake: FakeProvider) -> None:
    events = list(oai(fake).responses.create(model="gpt-5", input="hi", stream=True))
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert types[-1] == "response.completed" and types.count("response.output_text.delta") == 3
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert_responses_usage(events[-1].response.usage)
    with oai(fake).responses.stream(model="gpt-5", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from the fake"
    assert_responses_usage(final.usage)


@pytest.mark.asyncio
async def test_responses_async(fake: FakeProvider) -> None:
    client = aoai(fake)
    assert_responses_usage((await client.responses.create(model="gpt-5", input="hi")).usage)
    events = [e async for e in await client.responses.create(model="gpt-5", input="x",
                                                             stream=True)]
    assert_responses_usage(events[-1].response.usage)
    await client.close()


# -- OpenAI embeddings and images ----------------------------------------------------------

def test_embeddings_base64_default_and_float(fake: FakeProvider) -> None:
    fake.usage = FakeUsage(input_tokens=7)
    client = oai(fake)
    default = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert fake.requests[-1].json["encoding_format"] == "base64"
    floats = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"],
                                      encoding_format="float")
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert len(default.data) == 2 and len(default.data[0].embedding) == 8
    assert default.data[0].embedding != default.data[1].embedding
    assert (default.usage.prompt_tokens, default.usage.total_tokens) == (7, 7)
    one = client.embeddings.create(model="text-embedding-3-large", input="a", dimensions=4)
    assert len(one.data) == 1 and len(one.data[0].embedding) == 4


def test_images_generate_gpt_image_and_dalle(fake: FakeProvider) -> None:
    fake.usage = FakeUsage(input_tokens=50, image_input_tokens=20, output_tokens=4160)
    client = oai(fake)
    result = client.images.generate(model="gpt-image-1", prompt="a cat", n=2)
    assert len(result.data) == 2
    assert base64.b64decode(result.data[0].b64_json).startswith(b"\x89PNG")
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (50, 4160, 4210)
    assert (usage.input_tokens_details.text_tokens, usage.input_tokens_details.image_tokens) \
        == (30, 20)
    dalle = client.images.generate(model="dall-e-3", prompt="a cat", response_format="b64_json")
    assert dalle.usage is None and dalle.data[0].revised_prompt == "a cat"


def test_images_edit_multipart(fake: FakeProvider) -> None:
    fake.usage = FakeUsage(input_tokens=300, image_input_tokens=250, output_tokens=1000,
                           image_output_tokens=1000)
    png = base64.b64decode(fake.image_b64)
    result = oai(fake).images.edit(model="gpt-image-1", image=("in.png", png, "image/png"),
                                   prompt="make it blue", n=3)
    assert len(result.data) == 3 and result.usage.input_tokens_details.image_tokens == 250
    assert result.usage.output_tokens_details.image_tokens == 1000
    req = fake.requests[-1]
    assert req.path == "/v1/images/edits" and req.json is None
    assert req.form["model"] == "gpt-image-1" and req.form["n"] == "3"


def test_images_generate_stream(fake: FakeProvider) -> None:
    events = list(oai(fake).images.generate(model="gpt-image-1", prompt="a cat", stream=True,
                                            partial_images=2))
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + \
        ["image_generation.completed"]
    assert events[-1].usage.input_tokens == 120


@pytest.mark.asyncio
async def test_embeddings_and_images_async(fake: FakeProvider) -> None:
    client = aoai(fake)
    emb = await client.embeddings.create(model="text-embedding-3-small", input="a")
    assert emb.usage.prompt_tokens == 120 and len(emb.data[0].embedding) == 8
    img = await client.images.generate(model="gpt-image-1", prompt="a cat")
    assert img.usage.output_tokens == 40
    await client.close()


# -- Anthropic -----------------------------------------------------------------------------

def assert_claude_usage(usage: object) -> None:
    # Anthropic's input_tokens excludes the cache reads and writes.
    assert (usage.input_tokens, usage.output_tokens) == (70, 40)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (30, 20)


def test_anthropic_create(fake: FakeProvider) -> None:
    msg = claude(fake).messages.create(model="claude-sonnet-4-5", max_tokens=100,
                                       messages=MESSAGES)
    assert isinstance(msg, anthropic.types.Message)
    assert msg.content[0].text == "Hello from the fake" and msg.stop_reason == "end_turn"
    assert msg.model == "claude-sonnet-4-5"
    assert_claude_usage(msg.usage)
    assert "anthropic-version" in fake.requests[-1].headers


def test_anthropic_raw_stream(fake: FakeProvider) -> None:
    events = list(claude(fake).messages.create(model="claude-sonnet-4-5", max_tokens=100,
                                               messages=MESSAGES, stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert events[0].message.usage.output_tokens == 1
    assert events[0].message.usage.cache_read_input_tokens == 30
    assert events[-2].usage.output_tokens == 40


def test_anthropic_stream_helper_with_thinking(fake: FakeProvider) -> None:
    fake.thinking_text = "Let me think about it."
    with claude(fake).messages.stream(model="claude-sonnet-4-5", max_tokens=100,
                                      messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Let me think about it."
    assert final.content[0].signature == "fake-signature"
    assert_claude_usage(final.usage)
    msg = claude(fake).messages.create(model="claude-sonnet-4-5", max_tokens=100,
                                       messages=MESSAGES)
    assert msg.content[0].type == "thinking" and msg.content[1].text == "Hello from the fake"


@pytest.mark.asyncio
async def test_anthropic_async(fake: FakeProvider) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="test",
                                      max_retries=0)
    msg = await client.messages.create(model="claude-haiku-4-5", max_tokens=10,
                                       messages=MESSAGES)
    assert_claude_usage(msg.usage)
    async with client.messages.stream(model="claude-haiku-4-5", max_tokens=10,
                                      messages=MESSAGES) as stream:
        final = await stream.get_final_message()
    assert_claude_usage(final.usage)
    await client.close()


# -- Gemini --------------------------------------------------------------------------------

GEMINI_USAGE = FakeUsage(input_tokens=100, output_tokens=60, reasoning_tokens=25,
                         cached_tokens=40)


def assert_gemini_usage(meta: object) -> None:
    assert meta.prompt_token_count == 100
    assert meta.candidates_token_count == 35  # Gemini leaves thoughts out of candidates
    assert meta.thoughts_token_count == 25 and meta.cached_content_token_count == 40
    assert meta.total_token_count == 160


def test_gemini_generate_content(fake: FakeProvider) -> None:
    fake.usage, fake.thinking_text = GEMINI_USAGE, "Pondering."
    client = gem(fake)  # keep a reference: a collected Client closes its HTTP client
    reply = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert isinstance(reply, gtypes.GenerateContentResponse)
    assert reply.text == "Hello from the fake" and reply.model_version == "gemini-2.5-flash"
    assert reply.candidates[0].content.parts[0].thought is True
    assert_gemini_usage(reply.usage_metadata)
    assert reply.usage_metadata.prompt_tokens_details[0].token_count == 100
    assert fake.requests[-1].path == "/v1/models/gemini-2.5-flash:generateContent"


def test_gemini_stream(fake: FakeProvider) -> None:
    fake.usage = GEMINI_USAGE
    client = gem(fake)
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    assert "".join(c.text for c in chunks) == "Hello from the fake" and len(chunks) == 3
    assert all(c.usage_metadata.prompt_token_count == 100 for c in chunks)
    assert chunks[0].usage_metadata.candidates_token_count < 35
    assert_gemini_usage(chunks[-1].usage_metadata)
    assert chunks[-1].candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert fake.requests[-1].query == {"alt": "sse"}


def test_gemini_image_output(fake: FakeProvider) -> None:
    fake.usage = FakeUsage(input_tokens=10, image_input_tokens=4, output_tokens=1300,
                           image_output_tokens=1290)
    client = gem(fake)
    reply = client.models.generate_content(
        model="gemini-2.5-flash-image", contents="draw a cat",
        config=gtypes.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"]))
    image = reply.candidates[0].content.parts[-1].inline_data
    assert image.mime_type == "image/png" and image.data.startswith(b"\x89PNG")
    details = {d.modality.name: d.token_count
               for d in reply.usage_metadata.candidates_tokens_details}
    assert details == {"TEXT": 10, "IMAGE": 1290}
    prompt = {d.modality.name: d.token_count for d in reply.usage_metadata.prompt_tokens_details}
    assert prompt == {"TEXT": 6, "IMAGE": 4}


def test_gemini_embed_and_imagen(fake: FakeProvider) -> None:
    client = gem(fake)
    result = client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0].values) == 8
    assert fake.requests[-1].path.endswith("gemini-embedding-001:batchEmbedContents")
    # Imagen's generate_images only works in Vertex mode; an API key avoids needing ADC.
    vertex = genai.Client(vertexai=True, api_key="test",
                          http_options=gtypes.HttpOptions(base_url=fake.gemini_base_url))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = vertex.models.generate_images(
            model="imagen-4.0-generate-001", prompt="a cat",
            config=gtypes.GenerateImagesConfig(number_of_images=2))
    assert len(images.generated_images) == 2
    assert images.generated_images[0].image.image_bytes.startswith(b"\x89PNG")
    assert fake.requests[-1].path == \
        "/v1beta1/publishers/google/models/imagen-4.0-generate-001:predict"


@pytest.mark.asyncio
async def test_gemini_async(fake: FakeProvider) -> None:
    fake.usage, fake.thinking_text = GEMINI_USAGE, "Pondering."
    client = gem(fake)
    reply = await client.aio.models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert_gemini_usage(reply.usage_metadata)
    chunks = [c async for c in await client.aio.models.generate_content_stream(
        model="gemini-2.5-pro", contents="hi")]
    assert chunks[0].candidates[0].content.parts[0].thought is True
    assert_gemini_usage(chunks[-1].usage_metadata)
    emb = await client.aio.models.embed_content(model="gemini-embedding-001", contents="a")
    assert len(emb.embeddings) == 1


# -- litellm -------------------------------------------------------------------------------

def test_litellm_openai(fake: FakeProvider) -> None:
    reply = litellm.completion(model="openai/gpt-4o-mini", api_base=fake.openai_base_url,
                               api_key="test", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the fake"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (120, 40)
    chunks = list(litellm.completion(model="openai/gpt-4o-mini", api_base=fake.openai_base_url,
                                     api_key="test", messages=MESSAGES, stream=True,
                                     stream_options={"include_usage": True}))
    usage = [c.usage for c in chunks if getattr(c, "usage", None)][-1]
    assert (usage.prompt_tokens, usage.completion_tokens) == (120, 40)


def test_litellm_anthropic(fake: FakeProvider) -> None:
    reply = litellm.completion(model="anthropic/claude-sonnet-4-5", api_base=fake.url,
                               api_key="test", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the fake"
    assert reply.usage.completion_tokens == 40
    assert reply.usage.prompt_tokens == 120  # litellm adds the cache back into prompt_tokens
    assert fake.requests[-1].path == "/v1/messages"
    chunks = list(litellm.completion(model="anthropic/claude-sonnet-4-5", api_base=fake.url,
                                     api_key="test", messages=MESSAGES, stream=True,
                                     stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        "Hello from the fake"
    usage = [c.usage for c in chunks if getattr(c, "usage", None)][-1]
    assert usage.completion_tokens == 40


def test_litellm_gemini(fake: FakeProvider) -> None:
    fake.usage = GEMINI_USAGE
    reply = litellm.completion(model="gemini/gemini-2.5-flash", api_base=fake.gemini_base_url,
                               api_key="test", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the fake"
    assert reply.usage.prompt_tokens == 100 and reply.usage.completion_tokens == 60
    # litellm appends "/models/<model>:<action>" to api_base without an API version.
    assert fake.requests[-1].path == "/models/gemini-2.5-flash:generateContent"
    chunks = list(litellm.completion(model="gemini/gemini-2.5-flash",
                                     api_base=fake.gemini_base_url, api_key="test",
                                     messages=MESSAGES, stream=True,
                                     stream_options={"include_usage": True}))
    assert fake.requests[-1].path == "/models/gemini-2.5-flash:streamGenerateContent"
    usage = [c.usage for c in chunks if getattr(c, "usage", None)][-1]
    assert usage.prompt_tokens == 100 and usage.completion_tokens == 60


# -- failure modes -------------------------------------------------------------------------

def test_error_in_each_provider_shape(fake: FakeProvider) -> None:
    fake.error = (429, "slow down")
    with pytest.raises(openai.RateLimitError) as oerr:
        oai(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert oerr.value.body["message"] == "slow down"
    with pytest.raises(anthropic.RateLimitError) as aerr:
        claude(fake).messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=MESSAGES)
    assert aerr.value.body["error"] == {"type": "rate_limit_error", "message": "slow down"}
    client = gem(fake)
    with pytest.raises(genai.errors.ClientError) as gerr:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert gerr.value.code == 429 and gerr.value.status == "RESOURCE_EXHAUSTED"
    fake.error = FakeProvider.error_response(500, "boom")
    with pytest.raises(openai.InternalServerError):
        oai(fake).embeddings.create(model="text-embedding-3-small", input="a")


def test_unknown_path_is_404(fake: FakeProvider) -> None:
    response = httpx.post(fake.url + "/v1/nothing", json={})
    assert response.status_code == 404 and "error" in response.json()


def test_delay(fake: FakeProvider) -> None:
    fake.delay = 0.3
    started = time.monotonic()
    oai(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert time.monotonic() - started >= 0.3
    with pytest.raises(openai.APITimeoutError):
        oai(fake, timeout=0.1).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_fail_mid_stream(fake: FakeProvider) -> None:
    fake.fail_mid_stream = True
    with pytest.raises(openai.APIConnectionError):
        list(oai(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                               stream=True))
    with pytest.raises(Exception):
        with claude(fake).messages.stream(model="claude-sonnet-4-5", max_tokens=5,
                                          messages=MESSAGES) as stream:
            stream.get_final_message()
    client = gem(fake)
    with pytest.raises(Exception):
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    fake.fail_mid_stream = False  # the server keeps serving afterwards
    assert oai(fake).chat.completions.create(model="m", messages=MESSAGES).usage


def test_raw_usage_is_sent_verbatim(fake: FakeProvider) -> None:
    fake.raw_usage = {"prompt_tokens": "12", "completion_tokens": None, "total_tokens": -1}
    reply = oai(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert reply.usage.completion_tokens is None and reply.usage.total_tokens == -1
    fake.raw_usage = {"output_tokens": 3}  # input_tokens missing altogether
    msg = claude(fake).messages.create(model="claude-sonnet-4-5", max_tokens=5,
                                       messages=MESSAGES)
    assert msg.usage.output_tokens == 3 and "input_tokens" not in msg.usage.model_fields_set
    fake.raw_usage = {"promptTokenCount": -5}
    client = gem(fake)
    reply = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert reply.usage_metadata.prompt_token_count == -5
    assert reply.usage_metadata.candidates_token_count is None


def test_reset_and_concurrency(fake: FakeProvider) -> None:
    from concurrent.futures import ThreadPoolExecutor

    fake.text = "changed"
    client = oai(fake)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES), range(16)))
    assert {r.choices[0].message.content for r in replies} == {"changed"}
    assert len(fake.requests) == 16
    fake.reset()
    assert fake.requests == [] and fake.text == "Hello from the fake"
    assert fake.usage == FakeUsage(input_tokens=10, output_tokens=5)


def test_start_stop_without_context_manager() -> None:
    fake = FakeProvider(text="standalone").start()
    try:
        assert fake.url.startswith("http://127.0.0.1:")
        reply = oai(fake).chat.completions.create(model="m", messages=MESSAGES)
        assert reply.choices[0].message.content == "standalone"
    finally:
        fake.stop()
    with pytest.raises(RuntimeError):
        fake.url
