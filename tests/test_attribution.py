"""attribute(): the user, session and tags land on every trace started inside it, and only there."""

from __future__ import annotations

import asyncio
import threading

import mlflow

import genai_tracing
from genai_tracing.testing import FakeProvider, TemporaryStore

from conftest import MESSAGES, anthropic_client, openai_client


def _by_user(store: TemporaryStore) -> dict[str, list[object]]:
    traces: dict[str, list[object]] = {}
    for trace in store.traces():
        traces.setdefault(trace.info.request_metadata.get("mlflow.trace.user"), []).append(trace)
    return traces


def test_context_manager_on_an_autologged_root_and_on_a_traced_function(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    client = openai_client(fake_provider)

    with genai_tracing.attribute(user="ana@example.com", session="s-1", feature="search"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # SDK span root

        @mlflow.trace(name="handler")
        def handler() -> None:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

        handler()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # outside: nobody

    first, second, third = mlflow_store.traces()
    for trace in (first, second):
        assert trace.info.request_metadata["mlflow.trace.user"] == "ana@example.com"
        assert trace.info.request_metadata["mlflow.trace.session"] == "s-1"
        assert trace.info.tags["feature"] == "search"
        assert float(trace.info.request_metadata["genai_tracing.latency_ms"]) > 0
    # The prompt length is the text in the request's inputs: the messages of an SDK call at the
    # root; the arguments of a traced function (none here).
    assert int(first.info.request_metadata["genai_tracing.prompt_chars"]) == len("Say hello")
    assert second.info.request_metadata["genai_tracing.prompt_chars"] == "0"
    assert second.data.spans[0].name == "handler"
    assert "mlflow.trace.user" not in third.info.request_metadata
    assert "feature" not in third.info.tags


def test_nested_blocks_merge_tags_and_override_the_user(fake_provider: FakeProvider,
                                                         mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    client = openai_client(fake_provider)
    with genai_tracing.attribute(user="team-bot", feature="search", tier="free"):
        with genai_tracing.attribute(user="ana", tier="pro"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    (trace,) = mlflow_store.traces()
    assert trace.info.request_metadata["mlflow.trace.user"] == "ana"
    assert trace.info.tags["feature"] == "search"
    assert trace.info.tags["tier"] == "pro"


def test_decorator_on_sync_and_async_functions_under_concurrency(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()

    def sync_request(user: str) -> None:
        @genai_tracing.attribute(user=user, kind="thread")
        def handle() -> None:
            openai_client(fake_provider).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": user}])
        handle()

    @genai_tracing.attribute(kind="task")
    async def async_request(user: str) -> None:
        with genai_tracing.attribute(user=user):
            await openai_client(fake_provider, asynchronous=True).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": user}])

    threads = [threading.Thread(target=sync_request, args=(f"t{i % 4}",)) for i in range(16)]
    for thread in threads:
        thread.start()

    async def tasks() -> None:
        await asyncio.gather(*[async_request(f"a{i % 4}") for i in range(16)])

    asyncio.run(tasks())
    for thread in threads:
        thread.join()

    traces = _by_user(mlflow_store)
    assert sorted(traces) == ["a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3"]
    for user, found in traces.items():
        assert len(found) == 4
        for trace in found:
            # Each trace carries exactly its own request's user: the prompt is the user's name.
            assert trace.data.spans[0].inputs["messages"][0]["content"] == user
            assert trace.info.tags["kind"] == ("task" if user.startswith("a") else "thread")


def test_a_stream_finished_outside_the_block_keeps_its_attribution(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    with genai_tracing.attribute(user="ana", session="s-9"):
        stream = anthropic_client(fake_provider).messages.create(
            model="claude-sonnet-4-5", max_tokens=32, messages=MESSAGES, stream=True)
    events = list(stream)  # read after the block: the trace still belongs to ana

    assert events
    (trace,) = mlflow_store.traces()
    assert trace.info.request_metadata["mlflow.trace.user"] == "ana"
    assert trace.info.request_metadata["mlflow.trace.session"] == "s-9"


def test_a_user_name_that_is_not_valid_unicode_does_not_lose_the_trace(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(providers=["openai"])
    with genai_tracing.attribute(user="ana\udcff", session="s\ud800", team="t\udcff"):
        openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini",
                                                             messages=MESSAGES)
    trace = mlflow_store.last_trace()  # stored, where MLflow alone drops it (not UTF-8)
    assert trace.info.request_metadata["mlflow.trace.user"] == "ana\\udcff"
    assert trace.info.request_metadata["mlflow.trace.session"] == "s\\ud800"
    assert trace.info.tags["team"] == "t\\udcff"
    assert trace.info.cost["total_cost"] > 0
