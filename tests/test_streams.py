"""Streams with tracing on behave exactly as without it, and their span ends exactly once.

Differential: each streaming call runs untraced, then traced, against a fake that answers the
same bytes both times; the objects, the chunk sequence and the exceptions must be equal.
Lifecycle: early break, an exception mid-stream and a stream never iterated each end the span
once, keep the usage seen so far, and leave nothing pending in MLflow.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any, Callable

import litellm
import mlflow

import pytest

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, anthropic_client, gemini_client, llm_spans, openai_client

USAGE = FakeUsage(input_tokens=120, output_tokens=45, cached_tokens=20)


def _dump(item: Any) -> Any:
    """A comparable picture of what the user received: its type and its content."""
    if hasattr(item, "model_dump"):
        return type(item).__name__, item.model_dump(mode="json")
    if isinstance(item, (list, tuple)):
        return [_dump(i) for i in item]
    return type(item).__name__, repr(item)


# Each maker returns the stream object exactly as the SDK hands it to the user.
def openai_chat(fake: FakeProvider) -> Any:
    return openai_client(fake).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True})


def openai_responses(fake: FakeProvider) -> Any:
    return openai_client(fake).responses.create(model="gpt-4o-mini", input="hi", stream=True)


def anthropic_create(fake: FakeProvider) -> Any:
    return anthropic_client(fake).messages.create(model="claude-sonnet-4-5", max_tokens=64,
                                                  messages=MESSAGES, stream=True)


_clients: list[Any] = []  # a collected google-genai client closes its connection mid-stream


def gemini_stream(fake: FakeProvider) -> Any:
    client = gemini_client(fake)
    _clients.append(client)
    return client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")


def litellm_stream(fake: FakeProvider) -> Any:
    return litellm.completion(model="anthropic/claude-sonnet-4-5", api_base=fake.url,
                              api_key="test", messages=MESSAGES, stream=True,
                              stream_options={"include_usage": True})


SYNC_STREAMS: dict[str, Callable[[FakeProvider], Any]] = {
    "openai-chat": openai_chat, "openai-responses": openai_responses,
    "anthropic-create": anthropic_create, "gemini": gemini_stream, "litellm": litellm_stream,
}


def anthropic_helper(fake: FakeProvider) -> list[Any]:
    with anthropic_client(fake).messages.stream(model="claude-sonnet-4-5", max_tokens=64,
                                                messages=MESSAGES) as stream:
        events = list(stream)
        return [events, stream.get_final_message()]


async def openai_chat_async(fake: FakeProvider) -> list[Any]:
    stream = await openai_client(fake, asynchronous=True).chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True})
    return [chunk async for chunk in stream]


async def anthropic_async(fake: FakeProvider) -> list[Any]:
    stream = await anthropic_client(fake, asynchronous=True).messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES, stream=True)
    return [event async for event in stream]


async def gemini_async(fake: FakeProvider) -> list[Any]:
    client = gemini_client(fake)
    _clients.append(client)
    stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash",
                                                             contents="hi")
    return [chunk async for chunk in stream]


async def litellm_async(fake: FakeProvider) -> list[Any]:
    stream = await litellm.acompletion(model="openai/gpt-4o-mini",
                                       api_base=fake.openai_base_url, api_key="test",
                                       messages=MESSAGES, stream=True,
                                       stream_options={"include_usage": True})
    return [chunk async for chunk in stream]


RECEIVERS: dict[str, Callable[[FakeProvider], Any]] = {
    **{name: (lambda make: lambda fake: list(make(fake)))(make)
       for name, make in SYNC_STREAMS.items()},
    "anthropic-stream-helper": anthropic_helper,
    "openai-chat-async": lambda fake: asyncio.run(openai_chat_async(fake)),
    "anthropic-async": lambda fake: asyncio.run(anthropic_async(fake)),
    "gemini-async": lambda fake: asyncio.run(gemini_async(fake)),
    "litellm-async": lambda fake: asyncio.run(litellm_async(fake)),
}


def _receive(fake: FakeProvider, receive: Callable[[FakeProvider], Any]) -> Any:
    """Run one call from a fresh fake state; what the user got, or the exception they got."""
    fake.reset()
    fake.usage = USAGE
    try:
        return "ok", _dump(receive(fake))
    except Exception as e:  # the user's exception is part of what must not change
        return "raised", type(e).__name__


# LiteLLM puts the wall-clock time and a fresh id in each chunk it builds; they differ between
# any two runs, traced or not.
_VOLATILE = ("created", "id", "system_fingerprint", "_response_ms", "sdk_http_response")


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    return value


@pytest.mark.parametrize("name", list(RECEIVERS))
@pytest.mark.parametrize("fail_mid_stream", [False, True], ids=["whole", "broken"])
def test_traced_stream_gives_the_user_exactly_what_untraced_does(
        name: str, fail_mid_stream: bool, fake_provider: FakeProvider,
        mlflow_store: TemporaryStore) -> None:
    receive = RECEIVERS[name]
    untraced = _receive(fake_provider, lambda fake: (
        setattr(fake, "fail_mid_stream", fail_mid_stream), receive(fake))[1])

    genai_tracing.enable_tracing()
    traced = _receive(fake_provider, lambda fake: (
        setattr(fake, "fail_mid_stream", fail_mid_stream), receive(fake))[1])

    assert _stable(traced) == _stable(untraced)
    assert traced[0] == ("raised" if fail_mid_stream else "ok")
    if name == "litellm-async":
        # LiteLLM's record of an async call comes from its event loop, which asyncio.run() has
        # closed: the span ends without it, within a sweep (half a second).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                mlflow_store.last_trace()
                break
            except Exception:
                time.sleep(0.2)
    (span,) = llm_spans(mlflow_store.last_trace()) or [None]
    if fail_mid_stream:
        assert span is None or span.status.status_code == "ERROR"
    else:
        assert span.attributes["mlflow.chat.tokenUsage"]["input_tokens"] == 120


def _span_of_last_trace(store: TemporaryStore) -> Any:
    trace = store.last_trace()
    calls = [s for s in trace.data.spans if s.attributes.get("mlflow.llm.provider")
             or s.attributes.get("genai_tracing.call")]
    return trace, calls


def _no_pending_traces() -> bool:
    """The trace of this test's call is no longer held in memory waiting for a span to end."""
    from mlflow.tracing.trace_manager import InMemoryTraceManager

    trace_id = mlflow.get_last_active_trace_id()
    with InMemoryTraceManager.get_instance().get_trace(trace_id) as trace:
        return trace is None


OBJECT_STREAMS = ["anthropic-create", "gemini", "litellm", "openai-chat", "openai-responses"]


@pytest.mark.parametrize("name", OBJECT_STREAMS)
def test_early_break_ends_the_span_once_marked_incomplete(name: str, fake_provider: FakeProvider,
                                                           mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = USAGE
    stream = SYNC_STREAMS[name](fake_provider)
    for _ in stream:
        break  # the user has seen enough
    if hasattr(stream, "close"):
        stream.close()
    del stream
    gc.collect()

    trace, (span, *_) = _span_of_last_trace(mlflow_store)
    assert trace.info.state == "OK"
    assert span.attributes.get("genai_tracing.stream.incomplete") is True
    assert _no_pending_traces()


@pytest.mark.parametrize("name", OBJECT_STREAMS)
def test_never_iterated_stream_still_ends_its_span(name: str, fake_provider: FakeProvider,
                                                   mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = USAGE
    stream = SYNC_STREAMS[name](fake_provider)
    del stream
    gc.collect()

    _, (span, *_) = _span_of_last_trace(mlflow_store)
    assert span.attributes.get("genai_tracing.stream.incomplete") is True
    assert _no_pending_traces()


@pytest.mark.parametrize("name", OBJECT_STREAMS)
def test_exception_mid_stream_ends_the_span_once_with_the_error(
        name: str, fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = USAGE
    fake_provider.fail_mid_stream = True
    stream = SYNC_STREAMS[name](fake_provider)
    with pytest.raises(Exception):
        for _ in stream:
            pass
    del stream
    gc.collect()

    trace, (span, *_) = _span_of_last_trace(mlflow_store)
    assert span.status.status_code == "ERROR"
    assert _no_pending_traces()


def test_usage_seen_before_an_early_stop_is_kept(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore) -> None:
    # Anthropic reports input usage in its first event: stopping after it keeps those tokens.
    genai_tracing.enable_tracing(prices={"models": {"claude-sonnet-4-5": {
        "input_per_million": 3, "output_per_million": 15, "cached_input_per_million": 0.3}}})
    fake_provider.usage = USAGE
    stream = anthropic_create(fake_provider)
    first = next(iter(stream))
    stream.close()

    assert first.type == "message_start"
    (span,) = llm_spans(mlflow_store.last_trace())
    assert span.attributes["genai_tracing.stream.incomplete"] is True
    assert span.attributes["mlflow.chat.tokenUsage"]["input_tokens"] == 120


async def _loop_async(make: Callable[[], Any]) -> int:
    count = 0
    async for _ in await make():
        count += 1
    return count


LOOPS: dict[str, Callable[[FakeProvider], Any]] = {
    # The most common way to write a stream loop: nothing but the loop holds the stream.
    **{name: (lambda make: lambda fake: sum(1 for _ in make(fake)))(make)
       for name, make in SYNC_STREAMS.items()},
    "openai-chat-async": lambda fake: asyncio.run(_loop_async(
        lambda: openai_client(fake, asynchronous=True).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True,
            stream_options={"include_usage": True}))),
    "anthropic-async": lambda fake: asyncio.run(_loop_async(
        lambda: anthropic_client(fake, asynchronous=True).messages.create(
            model="claude-sonnet-4-5", max_tokens=64, messages=MESSAGES, stream=True))),
}


@pytest.mark.parametrize("name", list(LOOPS))
def test_stream_held_only_by_its_loop_is_complete(name: str, fake_provider: FakeProvider,
                                                  mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = USAGE
    assert LOOPS[name](fake_provider) > 0
    gc.collect()

    (span,) = llm_spans(mlflow_store.last_trace())
    assert "genai_tracing.stream.incomplete" not in span.attributes
    assert span.attributes["mlflow.chat.tokenUsage"]["input_tokens"] == 120
    assert span.attributes["mlflow.llm.cost"]["total_cost"] > 0


@pytest.mark.parametrize("name", ["openai-chat", "anthropic-create"])
def test_calling_mlflow_autolog_again_keeps_stream_handling(
        name: str, fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    import importlib

    genai_tracing.enable_tracing()
    # Old code that still turns MLflow's autolog on after enable_tracing().
    importlib.import_module(f"mlflow.{name.split('-')[0]}").autolog()
    fake_provider.usage = USAGE
    stream = SYNC_STREAMS[name](fake_provider)
    for _ in stream:
        break
    stream.close()

    (span,) = llm_spans(mlflow_store.last_trace())
    assert span.attributes.get("genai_tracing.stream.incomplete") is True
    assert _no_pending_traces()

    list(SYNC_STREAMS[name](fake_provider))  # read to the end: usage and cost
    (span,) = llm_spans(mlflow_store.last_trace())
    assert span.attributes["mlflow.llm.cost"]["total_cost"] > 0
