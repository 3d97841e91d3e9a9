"""The frameworks users reach the SDKs through, each with its own MLflow autolog on as well.

LangChain (``ChatOpenAI``, ``ChatAnthropic``, ``ChatGoogleGenerativeAI``), DSPy 3.4 (its own HTTP
engine, and LiteLLM), pydantic-ai (OpenAI, Anthropic and Google models; the Anthropic one calls
``beta.messages``), LlamaIndex's OpenAI LLM and the OpenAI Agents SDK drive the real SDK clients against the loopback fakes. Each
row reads its traces back from the real store and checks: exactly one span per provider request
carries a cost, that cost is the one computed by hand below from the prices written here (not
MLflow's LiteLLM price, which a framework span would otherwise carry too), and the trace total
and ``genai_tracing.llm_calls`` agree with the spans.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import mlflow
import pytest

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage


def _offline_nltk() -> str:
    """llama-index 0.10 downloads NLTK data when imported unless it finds it: an empty stand-in
    keeps these tests off the network (nothing here tokenizes text)."""
    folder = tempfile.mkdtemp(prefix="nltk-")
    for part in ("corpora/stopwords", "tokenizers/punkt"):
        os.makedirs(os.path.join(folder, part))
    return folder


os.environ.setdefault("NLTK_DATA", _offline_nltk())

M = 1_000_000
# Made-up rates, unlike any catalog's: a cost that matches them was computed by genai_tracing.
PRICES = {"models": {
    "gpt-4o-mini": {"input_per_million": 0.5, "output_per_million": 2},
    "claude-sonnet-4-5": {"input_per_million": 4, "output_per_million": 20},
    "gemini-2.5-flash": {"input_per_million": 0.7, "output_per_million": 3},
}}
USAGE = FakeUsage(input_tokens=1000, output_tokens=200)
GPT = (1000 * 0.5 + 200 * 2) / M         # $0.0009 per OpenAI call
CLAUDE = (1000 * 4 + 200 * 20) / M       # $0.008 per Anthropic call
GEMINI = (1000 * 0.7 + 200 * 3) / M      # $0.0013 per Gemini call
DSPY_TEXT = "[[ ## answer ## ]]\nhello\n\n[[ ## completed ## ]]"
PROVIDER_PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")


def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _needs(module: str, package: str) -> Any:
    return pytest.mark.skipif(not _have(module), reason=f"{package} is not installed "
                              f"(pip install -e '.[frameworks]')")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(usage=USAGE) as provider:
        yield provider


@pytest.fixture(scope="module", autouse=True)
def _framework_autologs_off() -> Iterator[None]:
    """Each test turns on its framework's autolog; none stays on after this file."""
    yield
    for flavor in ("langchain", "dspy", "pydantic_ai", "llama_index"):
        try:
            getattr(mlflow, flavor).autolog(disable=True, silent=True)
        except Exception:
            pass


@pytest.fixture
def traced(fake: FakeProvider, mlflow_store: Any) -> Iterator[Any]:
    fake.reset()
    genai_tracing.enable_tracing(prices=PRICES)
    yield mlflow_store


def provider_requests(fake: FakeProvider) -> int:
    return sum(r.path in PROVIDER_PATHS or r.path.endswith(GEMINI_ACTIONS)
               for r in fake.requests)


GEMINI_ACTIONS = (":generateContent", ":streamGenerateContent")


def cost_spans(trace: Any) -> list[Any]:
    """Spans whose ``mlflow.llm.cost`` has an amount (an empty cost carries none)."""
    return [s for s in trace.data.spans
            if (s.attributes.get("mlflow.llm.cost") or {}).get("total_cost") is not None]


def check(store: Any, fake: FakeProvider, per_call: float) -> list[Any]:
    """Every provider request is priced once, on one span, at ``per_call``; trace totals agree."""
    traces = store.traces()
    assert traces, "no trace was recorded"
    requests = provider_requests(fake)
    priced = [s for t in traces for s in cost_spans(t)]
    all_ids = {s.span_id for t in traces for s in t.data.spans}
    assert len(priced) == requests, [(s.name, s.attributes.get("mlflow.llm.cost")) for s in priced]
    for trace in traces:
        spans = cost_spans(trace)
        for span in spans:
            assert span.attributes["mlflow.llm.cost"]["total_cost"] == pytest.approx(per_call)
            assert not span.attributes.get("genai_tracing.counted_on")
        # A framework span over a priced call carries an empty cost and names the call.
        for span in trace.data.spans:
            if span.attributes.get("mlflow.llm.cost") == {} and (
                    on := span.attributes.get("genai_tracing.counted_on")):
                assert set(on if isinstance(on, list) else [on]) <= all_ids
        metadata = trace.info.trace_metadata
        if not spans:
            # A framework span in a trace apart from its call's (LangChain's async tracer runs
            # in a thread pool unless run_tracer_inline=True): no cost here, none missing.
            assert metadata.get("genai_tracing.llm_calls") is None
            assert not (trace.info.cost or {}).get("total_cost")
            continue
        assert int(metadata["genai_tracing.llm_calls"]) == len(spans)
        assert metadata["genai_tracing.unpriced_calls"] == "0"
        assert metadata["genai_tracing.cost.complete"] == "true"
        assert trace.info.cost["total_cost"] == pytest.approx(per_call * len(spans))
    return traces


_loop: asyncio.AbstractEventLoop | None = None


def run_async(make: Callable[[], Any]) -> Any:
    """One event loop for the whole file: frameworks keep async HTTP clients (LangChain caches
    one per process) that belong to the loop they first ran in."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(make())


@dataclass(frozen=True)
class Row:
    id: str
    module: str      # what must be importable
    package: str     # what to install
    run: Callable[[FakeProvider], Any]
    per_call: float

    def param(self) -> Any:
        return pytest.param(self, id=self.id, marks=_needs(self.module, self.package))


# --- LangChain --------------------------------------------------------------------------------

def _chat_openai(fake: FakeProvider, inline: bool = False, **kwargs: Any) -> Any:
    mlflow.langchain.autolog(run_tracer_inline=inline)
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-4o-mini", base_url=fake.openai_base_url, api_key="test",
                      max_retries=0, **kwargs)


def _chat_anthropic(fake: FakeProvider, inline: bool = False) -> Any:
    mlflow.langchain.autolog(run_tracer_inline=inline)
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(model="claude-sonnet-4-5", base_url=fake.anthropic_base_url,
                         api_key="test", max_retries=0)


def _chat_gemini(fake: FakeProvider, inline: bool = False) -> Any:
    mlflow.langchain.autolog(run_tracer_inline=inline)
    from langchain_google_genai import ChatGoogleGenerativeAI

    return ChatGoogleGenerativeAI(model="gemini-2.5-flash", google_api_key="test",
                                  base_url=fake.gemini_base_url, max_retries=0)


def _weather_tool() -> Any:
    from langchain_core.tools import tool

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    return weather


def _chain(llm: Any) -> Any:
    from langchain_core.prompts import ChatPromptTemplate

    return ChatPromptTemplate.from_messages([("user", "{q}")]) | llm


async def _adrain(stream: Any) -> list[Any]:
    return [item async for item in stream]


LANGCHAIN = [
    Row("langchain-openai-invoke", "langchain_openai", "langchain-openai",
        lambda f: _chat_openai(f).invoke("hi"), GPT),
    Row("langchain-openai-stream", "langchain_openai", "langchain-openai",
        lambda f: list(_chat_openai(f, stream_usage=True).stream("hi")), GPT),
    Row("langchain-openai-tools", "langchain_openai", "langchain-openai",
        lambda f: _chat_openai(f).bind_tools([_weather_tool()]).invoke("weather in Paris?"), GPT),
    Row("langchain-openai-batch", "langchain_openai", "langchain-openai",
        lambda f: _chat_openai(f).batch(["hi", "hello"]), GPT),
    Row("langchain-openai-ainvoke", "langchain_openai", "langchain-openai",
        lambda f: run_async(lambda: _chat_openai(f).ainvoke("hi")), GPT),
    Row("langchain-openai-astream", "langchain_openai", "langchain-openai",
        lambda f: run_async(lambda: _adrain(_chat_openai(f, stream_usage=True).astream("hi"))),
        GPT),
    Row("langchain-openai-chain-ainvoke", "langchain_openai", "langchain-openai",
        lambda f: run_async(lambda: _chain(_chat_openai(f)).ainvoke({"q": "hi"})), GPT),
    # With MLflow's tracer inline, the async call's span nests under ChatOpenAI's.
    Row("langchain-openai-ainvoke-inline", "langchain_openai", "langchain-openai",
        lambda f: run_async(lambda: _chat_openai(f, inline=True).ainvoke("hi")), GPT),
    Row("langchain-anthropic-invoke", "langchain_anthropic", "langchain-anthropic",
        lambda f: _chat_anthropic(f).invoke("hi"), CLAUDE),
    Row("langchain-anthropic-stream", "langchain_anthropic", "langchain-anthropic",
        lambda f: list(_chat_anthropic(f).stream("hi")), CLAUDE),
    Row("langchain-anthropic-tools", "langchain_anthropic", "langchain-anthropic",
        lambda f: _chat_anthropic(f).bind_tools([_weather_tool()]).invoke("weather?"), CLAUDE),
    Row("langchain-anthropic-batch", "langchain_anthropic", "langchain-anthropic",
        lambda f: _chat_anthropic(f).batch(["hi", "hello"]), CLAUDE),
    Row("langchain-anthropic-ainvoke", "langchain_anthropic", "langchain-anthropic",
        lambda f: run_async(lambda: _chat_anthropic(f).ainvoke("hi")), CLAUDE),
    Row("langchain-anthropic-astream", "langchain_anthropic", "langchain-anthropic",
        lambda f: run_async(lambda: _adrain(_chat_anthropic(f).astream("hi"))), CLAUDE),
    Row("langchain-anthropic-astream-inline", "langchain_anthropic", "langchain-anthropic",
        lambda f: run_async(lambda: _adrain(_chat_anthropic(f, inline=True).astream("hi"))),
        CLAUDE),
    # langchain-google-genai calls google-genai's generate_content(_stream).
    Row("langchain-gemini-invoke", "langchain_google_genai", "langchain-google-genai",
        lambda f: _chat_gemini(f).invoke("hi"), GEMINI),
    Row("langchain-gemini-stream", "langchain_google_genai", "langchain-google-genai",
        lambda f: list(_chat_gemini(f).stream("hi")), GEMINI),
    Row("langchain-gemini-tools", "langchain_google_genai", "langchain-google-genai",
        lambda f: _chat_gemini(f).bind_tools([_weather_tool()]).invoke("weather?"), GEMINI),
    Row("langchain-gemini-batch", "langchain_google_genai", "langchain-google-genai",
        lambda f: _chat_gemini(f).batch(["hi", "hello"]), GEMINI),
    Row("langchain-gemini-ainvoke", "langchain_google_genai", "langchain-google-genai",
        lambda f: run_async(lambda: _chat_gemini(f).ainvoke("hi")), GEMINI),
    Row("langchain-gemini-astream", "langchain_google_genai", "langchain-google-genai",
        lambda f: run_async(lambda: _adrain(_chat_gemini(f).astream("hi"))), GEMINI),
    # Concurrent calls (abatch), and the event stream LangGraph and LangServe read.
    Row("langchain-openai-abatch", "langchain_openai", "langchain-openai",
        lambda f: run_async(lambda: _chat_openai(f).abatch(["hi", "hello", "hey"])), GPT),
    Row("langchain-anthropic-abatch", "langchain_anthropic", "langchain-anthropic",
        lambda f: run_async(lambda: _chat_anthropic(f).abatch(["hi", "hello", "hey"])), CLAUDE),
    Row("langchain-gemini-abatch", "langchain_google_genai", "langchain-google-genai",
        lambda f: run_async(lambda: _chat_gemini(f).abatch(["hi", "hello", "hey"])), GEMINI),
    Row("langchain-openai-astream-events", "langchain_openai", "langchain-openai",
        lambda f: run_async(lambda: _adrain(_chat_openai(f, stream_usage=True).astream_events(
            "hi", version="v2"))), GPT),
    Row("langchain-gemini-astream-events", "langchain_google_genai", "langchain-google-genai",
        lambda f: run_async(lambda: _adrain(_chat_gemini(f).astream_events(
            "hi", version="v2"))), GEMINI),
]


# --- DSPy -------------------------------------------------------------------------------------

def _dspy_predict(fake: FakeProvider, model: str, engine: str) -> Any:
    mlflow.dspy.autolog()
    import dspy

    fake.text = DSPY_TEXT
    base = {"anthropic": fake.anthropic_base_url + "/v1",
            "gemini": fake.gemini_base_url}.get(model.split("/", 1)[0], fake.openai_base_url)
    lm = dspy.LM(model, api_base=base, api_key="test", cache=False, engine=engine,
                 num_retries=0)
    return dspy, lm, dspy.Predict("question -> answer")


def _dspy_call(fake: FakeProvider, model: str, engine: str = "lm15") -> Any:
    dspy, lm, predict = _dspy_predict(fake, model, engine)
    with dspy.context(lm=lm):
        return predict(question="hi")


def _dspy_acall(fake: FakeProvider, model: str) -> Any:
    dspy, lm, predict = _dspy_predict(fake, model, "lm15")

    async def call() -> Any:
        with dspy.context(lm=lm):
            return await predict.acall(question="hi")
    return run_async(call)


def _dspy_stream(fake: FakeProvider, model: str) -> Any:
    dspy, lm, predict = _dspy_predict(fake, model, "lm15")
    listener = dspy.streaming.StreamListener(signature_field_name="answer")
    program = dspy.streamify(predict, stream_listeners=[listener])

    async def call() -> Any:
        with dspy.context(lm=lm):
            return [item async for item in program(question="hi")]
    return run_async(call)


DSPY = [
    Row("dspy-openai", "dspy", "dspy", lambda f: _dspy_call(f, "openai/gpt-4o-mini"), GPT),
    Row("dspy-openai-async", "dspy", "dspy", lambda f: _dspy_acall(f, "openai/gpt-4o-mini"), GPT),
    Row("dspy-openai-stream", "dspy", "dspy", lambda f: _dspy_stream(f, "openai/gpt-4o-mini"),
        GPT),
    Row("dspy-anthropic", "dspy", "dspy",
        lambda f: _dspy_call(f, "anthropic/claude-sonnet-4-5"), CLAUDE),
    Row("dspy-anthropic-async", "dspy", "dspy",
        lambda f: _dspy_acall(f, "anthropic/claude-sonnet-4-5"), CLAUDE),
    Row("dspy-gemini", "dspy", "dspy", lambda f: _dspy_call(f, "gemini/gemini-2.5-flash"),
        GEMINI),
    Row("dspy-gemini-async", "dspy", "dspy",
        lambda f: _dspy_acall(f, "gemini/gemini-2.5-flash"), GEMINI),
    # DSPy's LiteLLM engine (what DSPy before 3.4 always used): the LiteLLM provider prices it.
    Row("dspy-litellm", "dspy", "dspy",
        lambda f: _dspy_call(f, "openai/gpt-4o-mini", engine="litellm"), GPT),
]


# --- pydantic-ai ------------------------------------------------------------------------------

def _pai_agent(fake: FakeProvider, kind: str) -> Any:
    mlflow.pydantic_ai.autolog()
    from pydantic_ai import Agent

    if kind == "openai":
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        return Agent(OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(
            base_url=fake.openai_base_url, api_key="test")))
    if kind == "gemini":
        from pydantic_ai.models.google import GoogleModel
        from pydantic_ai.providers.google import GoogleProvider

        return Agent(GoogleModel("gemini-2.5-flash", provider=GoogleProvider(
            base_url=fake.gemini_base_url, api_key="test")))
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    return Agent(AnthropicModel("claude-sonnet-4-5", provider=AnthropicProvider(
        base_url=fake.anthropic_base_url, api_key="test")))


def _pai_with_tool(fake: FakeProvider, kind: str) -> Any:
    agent = _pai_agent(fake, kind)

    @agent.tool_plain
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    return agent.run_sync("weather in Paris?")


def _pai_stream(fake: FakeProvider, kind: str) -> Any:
    async def call() -> Any:
        async with _pai_agent(fake, kind).run_stream("hi") as result:
            return await result.get_output()
    return run_async(call)


PYDANTIC_AI = [
    Row("pydantic-ai-openai", "pydantic_ai", "pydantic-ai-slim",
        lambda f: _pai_agent(f, "openai").run_sync("hi"), GPT),
    Row("pydantic-ai-openai-async", "pydantic_ai", "pydantic-ai-slim",
        lambda f: run_async(lambda: _pai_agent(f, "openai").run("hi")), GPT),
    Row("pydantic-ai-openai-stream", "pydantic_ai", "pydantic-ai-slim",
        lambda f: _pai_stream(f, "openai"), GPT),
    Row("pydantic-ai-anthropic", "pydantic_ai", "pydantic-ai-slim",
        lambda f: _pai_agent(f, "anthropic").run_sync("hi"), CLAUDE),
    Row("pydantic-ai-anthropic-async", "pydantic_ai", "pydantic-ai-slim",
        lambda f: run_async(lambda: _pai_agent(f, "anthropic").run("hi")), CLAUDE),
    Row("pydantic-ai-anthropic-stream", "pydantic_ai", "pydantic-ai-slim",
        lambda f: _pai_stream(f, "anthropic"), CLAUDE),
    # GoogleModel calls google-genai's client.aio.models.generate_content(_stream).
    Row("pydantic-ai-gemini", "pydantic_ai.models.google", "pydantic-ai-slim google-genai",
        lambda f: _pai_agent(f, "gemini").run_sync("hi"), GEMINI),
    Row("pydantic-ai-gemini-async", "pydantic_ai.models.google", "pydantic-ai-slim google-genai",
        lambda f: run_async(lambda: _pai_agent(f, "gemini").run("hi")), GEMINI),
    Row("pydantic-ai-gemini-stream", "pydantic_ai.models.google", "pydantic-ai-slim google-genai",
        lambda f: _pai_stream(f, "gemini"), GEMINI),
    Row("pydantic-ai-openai-with-tool", "pydantic_ai", "pydantic-ai-slim",
        lambda f: _pai_with_tool(f, "openai"), GPT),
    Row("pydantic-ai-anthropic-with-tool", "pydantic_ai", "pydantic-ai-slim",
        lambda f: _pai_with_tool(f, "anthropic"), CLAUDE),
    Row("pydantic-ai-gemini-with-tool", "pydantic_ai.models.google",
        "pydantic-ai-slim google-genai", lambda f: _pai_with_tool(f, "gemini"), GEMINI),
]


# --- LlamaIndex -------------------------------------------------------------------------------

def _llama(fake: FakeProvider, **kwargs: Any) -> tuple[Any, Any]:
    mlflow.llama_index.autolog()
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI

    llm = OpenAI(model="gpt-4o-mini", api_base=fake.openai_base_url, api_key="test",
                 max_retries=0, **kwargs)
    return llm, [ChatMessage(role="user", content="hi")]


# LlamaIndex's OpenAI LLM streams without asking for usage unless told to.
_STREAM_USAGE = {"additional_kwargs": {"stream_options": {"include_usage": True}}}


def _llama_astream(fake: FakeProvider) -> Any:
    llm, messages = _llama(fake, **_STREAM_USAGE)

    async def call() -> Any:
        return [item async for item in await llm.astream_chat(messages)]
    return run_async(call)


LLAMA_INDEX = [
    Row("llama-index-chat", "llama_index.llms.openai", "llama-index-llms-openai",
        lambda f: (lambda llm, m: llm.chat(m))(*_llama(f)), GPT),
    Row("llama-index-stream", "llama_index.llms.openai", "llama-index-llms-openai",
        lambda f: (lambda llm, m: list(llm.stream_chat(m)))(*_llama(f, **_STREAM_USAGE)), GPT),
    Row("llama-index-achat", "llama_index.llms.openai", "llama-index-llms-openai",
        lambda f: run_async(lambda: (lambda llm, m: llm.achat(m))(*_llama(f))), GPT),
    Row("llama-index-astream", "llama_index.llms.openai", "llama-index-llms-openai",
        _llama_astream, GPT),
]


# --- OpenAI Agents SDK ------------------------------------------------------------------------

def _agent(fake: FakeProvider, api: str, **settings: Any) -> Any:
    import openai
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, OpenAIResponsesModel

    # One client per run: an async client belongs to the event loop it first ran in.
    client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    model = (OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel)(
        model="gpt-4o-mini", openai_client=client)
    return Agent(name="helper", instructions="Be brief.", model=model,
                 model_settings=ModelSettings(**settings))


def _agent_stream(fake: FakeProvider, api: str, **settings: Any) -> Any:
    from agents import Runner

    async def call() -> Any:
        result = Runner.run_streamed(_agent(fake, api, **settings), "hi")
        async for _ in result.stream_events():
            pass
        return result.final_output
    return run_async(call)


def _agent_run(fake: FakeProvider, api: str) -> Any:
    from agents import Runner

    return run_async(lambda: Runner.run(_agent(fake, api), "hi"))


AGENTS = [
    Row("agents-responses", "agents", "openai-agents", lambda f: _agent_run(f, "responses"), GPT),
    Row("agents-responses-sync", "agents", "openai-agents",
        lambda f: __import__("agents").Runner.run_sync(_agent(f, "responses"), "hi"), GPT),
    Row("agents-responses-stream", "agents", "openai-agents",
        lambda f: _agent_stream(f, "responses"), GPT),
    Row("agents-chat", "agents", "openai-agents", lambda f: _agent_run(f, "chat"), GPT),
    Row("agents-chat-stream", "agents", "openai-agents",
        lambda f: _agent_stream(f, "chat", include_usage=True), GPT),
]

ROWS = LANGCHAIN + DSPY + PYDANTIC_AI + LLAMA_INDEX + AGENTS


@pytest.mark.parametrize("row", [row.param() for row in ROWS])
def test_each_provider_call_priced_once(row: Row, fake: FakeProvider, traced: Any) -> None:
    row.run(fake)
    assert provider_requests(fake) >= 1
    check(traced, fake, row.per_call)


@_needs("langchain_openai", "langchain-openai")
def test_framework_span_carries_the_call_cost(fake: FakeProvider, traced: Any) -> None:
    """LangChain's ChatOpenAI span has usage and a model, which MLflow would price with its own
    (LiteLLM) rates over the SDK span's cost. The outermost span of the call carries
    genai_tracing's cost, the SDK span below it an empty one naming it: MLflow's trace total (the
    topmost cost on each branch) and its Overview (every span's cost summed) both count it once."""
    _chat_openai(fake).invoke("hi")
    trace = check(traced, fake, GPT)[0]
    chat = next(s for s in trace.data.spans if s.name == "ChatOpenAI")
    sdk = next(s for s in trace.data.spans if s.name == "Completions")
    assert chat.attributes["mlflow.llm.cost"]["total_cost"] == pytest.approx(GPT)
    assert chat.attributes["genai_tracing.cost.source"] == "user"
    assert sdk.attributes["mlflow.llm.cost"] == {}
    assert sdk.attributes["genai_tracing.counted_on"] == chat.span_id
    assert sdk.attributes["genai_tracing.usage"]["input_tokens"] == 1000
    assert sdk.parent_id == chat.span_id
    assert trace.info.token_usage["input_tokens"] == 1000
    ((model, provider, calls, *_),) = json.loads(trace.info.trace_metadata[
        "genai_tracing.by_model"])
    assert (model, provider, calls) == ("gpt-4o-mini", "openai", 1)


@_needs("langchain_anthropic", "langchain-anthropic")
def test_raw_response_usage_is_read(fake: FakeProvider, traced: Any) -> None:
    """langchain-anthropic calls messages.with_raw_response.create: MLflow's span output is the
    raw response; its usage comes from the body the SDK read."""
    _chat_anthropic(fake).invoke("hi")
    trace = check(traced, fake, CLAUDE)[0]
    span = next(s for s in trace.data.spans if s.name == "Messages.create")
    assert "APIResponse" in str(span.outputs)  # what MLflow wrote stays
    assert span.attributes["genai_tracing.usage"]["input_tokens"] == 1000


@_needs("pydantic_ai", "pydantic-ai-slim")
def test_beta_messages_span_follows_mlflow(fake: FakeProvider, traced: Any) -> None:
    """pydantic-ai's Anthropic model calls beta.messages.create, which MLflow does not trace: it
    gets a span as MLflow's autolog makes for messages.create."""
    _pai_agent(fake, "anthropic").run_sync("hi")
    trace = check(traced, fake, CLAUDE)[0]
    (request,) = cost_spans(trace)  # pydantic-ai's span of the call carries its cost
    assert request.name == "AnthropicModel.request"
    (span,) = [s for s in trace.data.spans
               if s.attributes.get("genai_tracing.counted_on") == request.span_id]
    assert span.name == "AsyncMessages.create" and span.span_type == "CHAT_MODEL"
    assert span.attributes["mlflow.message.format"] == "anthropic"
    assert span.inputs["model"] == "claude-sonnet-4-5"
    # pydantic-ai first asks for a non-streaming message, which the SDK refuses before sending
    # (its default max_tokens could run over ten minutes), then streams: the refused attempt is
    # a failed call, not an unpriced one.
    refused = [s for s in trace.data.spans if s.name == "AsyncMessages.create" and s is not span]
    assert all(s.attributes["genai_tracing.usage.flags"] == ["failed"] for s in refused)


@_needs("dspy", "dspy")
def test_dspy_engine_call_is_a_span_under_lm_call(fake: FakeProvider, traced: Any) -> None:
    _dspy_call(fake, "openai/gpt-4o-mini")
    trace = check(traced, fake, GPT)[0]
    (lm_call,) = cost_spans(trace)
    assert lm_call.name == "LM.__call__"  # MLflow's dspy span of the call carries its cost
    (span,) = [s for s in trace.data.spans if s.parent_id == lm_call.span_id]
    assert span.name == "LM15Engine.complete"
    assert span.attributes["mlflow.llm.model"] == "gpt-4o-mini"
    assert span.attributes["genai_tracing.counted_on"] == lm_call.span_id
    assert span.attributes["genai_tracing.usage"]["output_tokens"] == 200


@_needs("langchain_openai", "langchain-openai")
def test_unpriceable_call_is_flagged(fake: FakeProvider, traced: Any) -> None:
    """A ChatOpenAI stream that does not ask for usage reports none: flagged, never $0, and the
    ChatOpenAI span above it shows no cost of its own either."""
    list(_chat_openai(fake).stream("hi"))
    (trace,) = traced.traces()
    assert cost_spans(trace) == []
    flagged = [s for s in trace.data.spans if s.attributes.get("genai_tracing.cost.unpriced")]
    assert len(flagged) == 1
    assert trace.info.trace_metadata["genai_tracing.cost.complete"] == "false"
    assert trace.info.trace_metadata["genai_tracing.unpriced_calls"] == "1"


def test_raw_stream_dropped_unread_ends_its_span(fake: FakeProvider, traced: Any) -> None:
    """A raw streamed response dropped before its stream is opened: MLflow's held span still
    ends (marked incomplete), so its trace is written."""
    import gc

    import anthropic

    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=10, stream=True,
        messages=[{"role": "user", "content": "hi"}])
    raw.http_response.close()
    del raw
    gc.collect()
    (trace,) = traced.traces()
    (span,) = [s for s in trace.data.spans if s.name == "Messages.create"]
    assert span.attributes["genai_tracing.stream.incomplete"] is True


def test_raw_streams_read_their_usage(fake: FakeProvider, traced: Any) -> None:
    """The SDKs' own raw streams, no framework: Anthropic with_raw_response and OpenAI
    with_streaming_response (Responses), each priced from its stream's events."""
    import anthropic
    import openai

    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=10, stream=True,
        messages=[{"role": "user", "content": "hi"}])
    list(raw.parse())
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    with oai.responses.with_streaming_response.create(model="gpt-4o-mini", input="hi",
                                                      stream=True) as response:
        list(response.parse())
    claude, gpt = traced.traces()
    assert [s.attributes["mlflow.llm.cost"]["total_cost"] for s in cost_spans(claude)] == \
        pytest.approx([CLAUDE])
    assert [s.attributes["mlflow.llm.cost"]["total_cost"] for s in cost_spans(gpt)] == \
        pytest.approx([GPT])


@pytest.mark.parametrize("framework", [
    pytest.param("langchain", marks=_needs("langchain_openai", "langchain-openai")),
    pytest.param("dspy", marks=_needs("dspy", "dspy"))])
def test_framework_calls_reprice(framework: str, fake: FakeProvider, traced: Any) -> None:
    """The framework span that carries a call's cost also carries what reprice() reads (the
    call's usage breakdown), so a stored trace reprices by new prices."""
    if framework == "langchain":
        _chat_openai(fake).invoke("hi")
    else:
        _dspy_call(fake, "openai/gpt-4o-mini")
    traced.flush()
    new = {"models": {"gpt-4o-mini": {"input_per_million": 1, "output_per_million": 4}}}
    result = genai_tracing.reprice(prices=new, only_unpriced=False)
    (call,) = result.calls
    assert float(call.old_cost) == pytest.approx(GPT)
    assert float(call.new_cost) == pytest.approx((1000 * 1 + 200 * 4) / M)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_streaming_response_bodies_read_their_usage(asynchronous: bool, fake: FakeProvider,
                                                    traced: Any) -> None:
    """``with_streaming_response`` without ``stream=True``: the SDK returns before the body is
    read, and the caller reads it later (``parse()``, ``json()``, ``read()``); the call's span
    waits for that read and is priced from the body, once."""
    import anthropic
    import openai

    oai_cls, claude_cls = ((openai.AsyncOpenAI, anthropic.AsyncAnthropic) if asynchronous
                           else (openai.OpenAI, anthropic.Anthropic))
    oai = oai_cls(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    claude = claude_cls(base_url=fake.anthropic_base_url, api_key="test", max_retries=0)
    chat = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    message = dict(model="claude-sonnet-4-5", max_tokens=10,
                   messages=[{"role": "user", "content": "hi"}])

    async def run_async() -> None:
        async with oai.chat.completions.with_streaming_response.create(**chat) as r:
            await r.parse()
        async with oai.responses.with_streaming_response.create(
                model="gpt-4o-mini", input="hi") as r:
            await r.json()
        async with claude.messages.with_streaming_response.create(**message) as r:
            await r.parse()

    if asynchronous:
        asyncio.run(run_async())
    else:
        with oai.chat.completions.with_streaming_response.create(**chat) as r:
            r.parse()
        with oai.responses.with_streaming_response.create(model="gpt-4o-mini", input="hi") as r:
            r.json()
        with claude.messages.with_streaming_response.create(**message) as r:
            r.read()
    traces = traced.traces()
    assert len(traces) == 3
    costs = sorted(s.attributes["mlflow.llm.cost"]["total_cost"]
                   for t in traces for s in cost_spans(t))
    assert costs == pytest.approx(sorted([GPT, GPT, CLAUDE]))
    for trace in traces:
        assert trace.info.trace_metadata["genai_tracing.cost.complete"] == "true"


def test_streaming_response_left_unread_is_flagged(fake: FakeProvider, traced: Any) -> None:
    """A body the caller never reads: the call was billed, its usage is unknown: flagged, and
    the span still ends when the response is closed."""
    import openai

    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    with oai.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]):
        pass
    (trace,) = traced.traces()
    assert cost_spans(trace) == []
    assert trace.info.trace_metadata["genai_tracing.cost.complete"] == "false"
    assert trace.info.trace_metadata["genai_tracing.unpriced_calls"] == "1"


@_needs("dspy", "dspy")
@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"])
def test_dspy_engine_call_the_provider_refuses_is_failed_not_unpriced(
        model: str, fake: FakeProvider, traced: Any) -> None:
    """A 429 answered to DSPy's own engine: nothing was billed. The call's span is an error
    with no cost, and the trace is not marked as missing a price."""
    fake.error = FakeProvider.error_response(
        429, "slow down", provider="anthropic" if model.startswith("anthropic") else "openai")
    try:
        with pytest.raises(Exception):
            _dspy_call(fake, model)
    finally:
        fake.error = None
    traces = traced.traces()
    engine = [s for t in traces for s in t.data.spans if s.name.endswith("Engine.complete")]
    assert engine and all(s.status.status_code == "ERROR" for s in engine)
    for trace in traces:
        assert trace.info.trace_metadata.get("genai_tracing.cost.complete") != "false"
        assert not [s for s in trace.data.spans
                    if s.attributes.get("genai_tracing.cost.unpriced")]
        assert cost_spans(trace) == []


@_needs("dspy", "dspy")
def test_dspy_engine_call_is_priced_under_the_provider_that_serves_it(
        fake: FakeProvider, traced: Any) -> None:
    """DSPy's engine speaks OpenAI's wire format to Groq: the call is Groq's, priced under
    LiteLLM's "groq/llama-3.1-8b-instant" (input 5e-08, output 8e-08 per token)."""
    _dspy_call(fake, "groq/llama-3.1-8b-instant")
    (trace,) = traced.traces()
    (span,) = cost_spans(trace)
    assert span.attributes["mlflow.llm.cost"]["total_cost"] == pytest.approx(
        1000 * 5e-08 + 200 * 8e-08)
    assert span.attributes["genai_tracing.cost.price"]["key"] == "groq/llama-3.1-8b-instant"
    (engine,) = [s for s in trace.data.spans if s.name.endswith("Engine.complete")]
    assert engine.attributes["genai_tracing.provider"] == "groq"
