"""Where the call went decides the price: Azure OpenAI, Databricks, OpenAI-compatible servers.

Real OpenAI SDK clients (``AzureOpenAI`` among them) talk to the loopback fake; the fake answers
OpenAI's routes under Azure's, Databricks' and any server's prefix. Expected costs are computed
here by hand from the rates written here, each cited to its key in LiteLLM's bundled price map.
Rates are USD per token as LiteLLM files them, so a cost is ``tokens * rate``.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
import openai
import pytest

import genai_tracing
from genai_tracing.testing import FakeProvider, FakeUsage, TemporaryStore

from conftest import MESSAGES, llm_spans, openai_client

API_VERSION = "2024-10-21"


def azure_client(fake: FakeProvider, **kwargs: Any) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(azure_endpoint=fake.url, api_key="test", api_version=API_VERSION,
                              max_retries=0, **kwargs)


def only_call(trace: Any) -> Any:
    (span,) = llm_spans(trace)
    return span


def assert_cost(trace: Any, input_cost: float, output_cost: float) -> Any:
    span = only_call(trace)
    expected = pytest.approx({"input_cost": input_cost, "output_cost": output_cost,
                              "total_cost": input_cost + output_cost}, rel=1e-9)
    assert span.attributes["mlflow.llm.cost"] == expected
    assert "genai_tracing.cost.unpriced" not in span.attributes
    assert trace.info.cost == expected
    return span


def unpriced_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "genai_tracing"
            and r.levelno == logging.WARNING and "no cost" in r.getMessage()]


# -- Azure OpenAI ----------------------------------------------------------------------------

# LiteLLM "azure/gpt-4o-2024-08-06": input_cost_per_token 2.5e-06, output_cost_per_token 1e-05.
AZURE_GPT4O_IN, AZURE_GPT4O_OUT = 2.5e-06, 1e-05


def test_azure_chat_is_priced_by_the_reported_model_under_azure(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    # The deployment is named after one model and serves another: the response's model counts.
    fake_provider.response_model = "gpt-4o-2024-08-06"
    fake_provider.usage = FakeUsage(input_tokens=1200, output_tokens=300)
    azure_client(fake_provider).chat.completions.create(model="gpt-4o-mini-prod",
                                                        messages=MESSAGES)

    assert fake_provider.requests[-1].path == "/openai/deployments/gpt-4o-mini-prod/chat/completions"
    trace = mlflow_store.last_trace()
    span = assert_cost(trace, 1200 * AZURE_GPT4O_IN, 300 * AZURE_GPT4O_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"] == "azure/gpt-4o-2024-08-06"
    assert span.attributes["genai_tracing.provider"] == "azure"
    assert span.attributes["genai_tracing.endpoint"]["deployment"] == "gpt-4o-mini-prod"
    # MLflow's openai autolog writes no provider: genai_tracing writes the one that served it.
    assert span.attributes["mlflow.llm.provider"] == "azure"
    assert span.attributes["gen_ai.provider.name"] == "azure.ai.openai"
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    report = genai_tracing.cost_report(by="provider")
    assert list(report["provider"]) == ["azure"]


# LiteLLM "azure/standard/1024-x-1024/dall-e-3": input_cost_per_pixel 4.19617e-08, per image
# 1024 * 1024 pixels (about $0.044; OpenAI's own price is $0.040).
AZURE_DALLE3_PER_PIXEL = 4.19617e-08


def test_azure_image_deployment_without_a_mapping_is_unpriced_with_the_fix(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="genai_tracing")
    genai_tracing.enable_tracing()
    azure_client(fake_provider).images.generate(model="images-east", prompt="a cat")

    span = only_call(mlflow_store.last_trace())
    assert span.attributes["genai_tracing.cost.unpriced"] is True
    assert span.attributes["genai_tracing.usage"]["images"] == 1
    (warning,) = unpriced_warnings(caplog)
    assert '[deployments]\n  "images-east" = "<model>"' in warning.getMessage()


def test_azure_image_is_priced_at_azure_per_image_price(fake_provider: FakeProvider,
                                                        mlflow_store: TemporaryStore) -> None:
    # Image answers name no model: the price file says which model the deployment serves.
    genai_tracing.enable_tracing(prices={"deployments": {"images-east": "dall-e-3"}})
    azure_client(fake_provider).images.generate(model="images-east", prompt="a cat", n=2,
                                                size="1024x1024")

    trace = mlflow_store.last_trace()
    span = assert_cost(trace, 0.0, 2 * 1024 * 1024 * AZURE_DALLE3_PER_PIXEL)
    assert span.attributes["genai_tracing.cost.price"]["key"] == \
        "azure/standard/1024-x-1024/dall-e-3"
    assert span.attributes["genai_tracing.provider"] == "azure"


# -- Databricks model serving ------------------------------------------------------------------

# LiteLLM "databricks/databricks-meta-llama-3-3-70b-instruct": input_cost_per_token 5.0001e-07,
# output_cost_per_token 1.50003e-06.
DBX_IN, DBX_OUT = 5.0001e-07, 1.50003e-06


def test_databricks_serving_endpoint_is_priced_under_databricks(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=2000, output_tokens=500)
    client = openai.OpenAI(base_url=fake_provider.databricks_base_url, api_key="dapi-test",
                           max_retries=0)
    client.chat.completions.create(model="databricks-meta-llama-3-3-70b-instruct",
                                   messages=MESSAGES)

    assert fake_provider.requests[-1].path == "/serving-endpoints/chat/completions"
    span = assert_cost(mlflow_store.last_trace(), 2000 * DBX_IN, 500 * DBX_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"] == \
        "databricks/databricks-meta-llama-3-3-70b-instruct"
    assert span.attributes["genai_tracing.provider"] == "databricks"


# -- OpenAI-compatible providers ---------------------------------------------------------------

# LiteLLM "groq/llama-3.1-8b-instant": input_cost_per_token 5e-08, output_cost_per_token 8e-08.
GROQ_IN, GROQ_OUT = 5e-08, 8e-08


def test_compatible_provider_by_its_host_priced_under_its_own_entry(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    # The fake runs on loopback, so its host cannot say "Groq": the price file maps the address.
    genai_tracing.enable_tracing(prices={
        "endpoints": {fake_provider.openai_base_url: {"provider": "groq"}}})
    fake_provider.usage = FakeUsage(input_tokens=4000, output_tokens=1000)
    openai_client(fake_provider).chat.completions.create(model="llama-3.1-8b-instant",
                                                         messages=MESSAGES)

    span = assert_cost(mlflow_store.last_trace(), 4000 * GROQ_IN, 1000 * GROQ_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"] == "groq/llama-3.1-8b-instant"
    assert span.attributes["genai_tracing.provider"] == "groq"
    assert span.attributes["gen_ai.provider.name"] == "groq"


def test_openrouter_reported_cost_wins_over_catalogs(fake_provider: FakeProvider,
                                                     mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={
        "endpoints": {fake_provider.url + "/api/v1": {"provider": "openrouter"}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    fake_provider.usage_cost = 0.00123  # what OpenRouter says it billed, in usage.cost
    client = openai.OpenAI(base_url=fake_provider.url + "/api/v1", api_key="test", max_retries=0)
    client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)

    assert fake_provider.requests[-1].path == "/api/v1/chat/completions"
    # A reported cost is one total: it is filed as output cost, so the total is exact.
    span = assert_cost(mlflow_store.last_trace(), 0.0, 0.00123)
    assert span.attributes["genai_tracing.cost.source"] == "provider"
    assert span.attributes["genai_tracing.provider"] == "openrouter"


def test_a_user_price_still_wins_over_a_reported_cost(fake_provider: FakeProvider,
                                                      mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={
        "endpoints": {fake_provider.url + "/api/v1": {"provider": "openrouter"}},
        "models": {"openai/gpt-4o": {"input_per_million": 2, "output_per_million": 8}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    fake_provider.usage_cost = 0.00123
    client = openai.OpenAI(base_url=fake_provider.url + "/api/v1", api_key="test", max_retries=0)
    client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)

    span = assert_cost(mlflow_store.last_trace(), 1000 * 2 / 1e6, 200 * 8 / 1e6)
    assert span.attributes["genai_tracing.cost.source"] == "user"


# -- Local servers -----------------------------------------------------------------------------

def test_local_server_is_unpriced_until_the_price_file_prices_it(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="genai_tracing")
    local = {fake_provider.openai_base_url: {"provider": "vllm"}}
    genai_tracing.enable_tracing(prices={"endpoints": local})
    fake_provider.usage = FakeUsage(input_tokens=700, output_tokens=300)
    # A name OpenAI prices: a local server serving it costs nothing OpenAI charges.
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    trace = mlflow_store.last_trace()
    span = only_call(trace)
    assert span.attributes["genai_tracing.cost.unpriced"] is True
    assert "vllm" in span.attributes["genai_tracing.cost.unpriced_reason"]
    assert not span.attributes.get("mlflow.llm.cost")  # neither ours nor MLflow's own guess
    assert trace.info.cost is None or not trace.info.cost.get("total_cost")
    assert span.attributes["mlflow.chat.tokenUsage"]["input_tokens"] == 700
    assert trace.info.request_metadata["genai_tracing.cost.complete"] == "false"
    (warning,) = unpriced_warnings(caplog)
    assert "gpt-4o-mini" in warning.getMessage()

    # The price file prices the server's calls ("vllm/<model>" or the bare model name).
    genai_tracing.enable_tracing(prices={"endpoints": local, "models": {
        "vllm/gpt-4o-mini": {"input_per_million": 0.02, "output_per_million": 0.05}}})
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = assert_cost(mlflow_store.last_trace(), 700 * 0.02 / 1e6, 300 * 0.05 / 1e6)
    assert span.attributes["genai_tracing.cost.source"] == "user"


def test_endpoint_mapped_to_a_model_is_priced_as_that_model(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    # vLLM serves whatever name it was started with; the price file says which model that is.
    genai_tracing.enable_tracing(prices={
        "endpoints": {fake_provider.url: {"provider": "vllm",
                                          "model": "meta-llama/Llama-3.1-8B-Instruct"}},
        "models": {"meta-llama/Llama-3.1-8B-Instruct": {"input_per_million": 0.03,
                                                        "output_per_million": 0.06}}})
    fake_provider.usage = FakeUsage(input_tokens=5000, output_tokens=800)
    openai_client(fake_provider).chat.completions.create(model="/models/llama-8b",
                                                         messages=MESSAGES)

    span = assert_cost(mlflow_store.last_trace(), 5000 * 0.03 / 1e6, 800 * 0.06 / 1e6)
    assert span.attributes["genai_tracing.cost.price"]["key"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert span.attributes["genai_tracing.provider"] == "vllm"


def test_azure_deployment_mapping_prices_a_call_whose_answer_names_no_model(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing(prices={"deployments": {"chat-east": "gpt-4o-2024-08-06"}})
    fake_provider.response_model = ""  # a gateway that strips the model from the answer
    fake_provider.usage = FakeUsage(input_tokens=100, output_tokens=40)
    azure_client(fake_provider, azure_deployment="chat-east").chat.completions.create(
        model="ignored-by-azure", messages=MESSAGES)

    assert fake_provider.requests[-1].path == "/openai/deployments/chat-east/chat/completions"
    span = assert_cost(mlflow_store.last_trace(), 100 * AZURE_GPT4O_IN, 40 * AZURE_GPT4O_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"] == "azure/gpt-4o-2024-08-06"


# -- Detection and the price file --------------------------------------------------------------

@pytest.mark.parametrize(("url", "client", "provider"), [
    ("https://acme.openai.azure.com/openai", None, "azure"),
    ("https://acme.cognitiveservices.azure.com/openai/deployments/gpt4o", None, "azure"),
    ("http://127.0.0.1:5555", "AzureOpenAI", "azure"),
    ("https://adb-1.azuredatabricks.net/serving-endpoints", None, "databricks"),
    ("https://api.groq.com/openai/v1", None, "groq"),
    ("https://api.deepseek.com/v1", None, "deepseek"),
    ("https://api.together.xyz/v1", None, "together_ai"),
    ("https://api.fireworks.ai/inference/v1", None, "fireworks_ai"),
    ("https://api.mistral.ai/v1", None, "mistral"),
    ("https://api.x.ai/v1", None, "xai"),
    ("https://openrouter.ai/api/v1", None, "openrouter"),
    ("http://localhost:11434/v1", None, "ollama"),
    ("http://127.0.0.1:8000/v1", None, "vllm"),
    ("http://127.0.0.1:54321/v1", None, "openai"),  # any other loopback port: the test fakes
    ("https://api.openai.com/v1", None, "openai"),
    ("https://llm-gateway.example.com/v1", None, "openai"),
    ("https://bedrock-runtime.us-east-1.amazonaws.com", None, "bedrock"),
    ("https://bedrock-runtime-fips.us-gov-west-1.amazonaws.com", None, "bedrock"),
    ("http://127.0.0.1:5555", "AnthropicBedrock", "bedrock"),
    ("https://us-east5-aiplatform.googleapis.com/v1", None, "vertex_ai"),
    ("https://aiplatform.googleapis.com/v1", None, "vertex_ai"),
    ("http://127.0.0.1:5555", "AsyncAnthropicVertex", "vertex_ai"),
    ("https://s3.amazonaws.com/v1", None, "openai"),  # not Bedrock's host
])
def test_detection(url: str, client: str | None, provider: str) -> None:
    from genai_tracing._endpoints import detect

    assert detect(url, client) == provider


@pytest.mark.parametrize(("url", "client", "default", "provider"), [
    ("https://api.anthropic.com", "Anthropic", "anthropic", "anthropic"),
    ("http://127.0.0.1:54321", "Anthropic", "anthropic", "anthropic"),
    ("https://api.deepseek.com/anthropic", "Anthropic", "anthropic", "deepseek"),
    ("https://generativelanguage.googleapis.com", "Client", "gemini", "gemini"),
    ("http://127.0.0.1:54321", "VertexClient", "gemini", "vertex_ai"),
])
def test_detection_for_each_sdk(url: str, client: str, default: str, provider: str) -> None:
    """Another SDK's own provider is the default: an address nothing names is that provider."""
    from genai_tracing._endpoints import detect

    assert detect(url, client, default=default) == provider


@pytest.mark.parametrize(("table", "message"), [
    ({"endpoints": {"not a url": {"provider": "vllm"}}}, r"is not an http\(s\) URL"),
    ({"endpoints": {"http://h:8000/v1": {"provider": "vlm"}}}, "did you mean 'vllm'"),
    ({"endpoints": {"http://h:8000/v1": {"modle": "x"}}}, "did you mean 'model'"),
    ({"deployments": {"east": 4}}, "must be the model the deployment serves"),
    ({"deployment": {"east": "gpt-4o"}}, "did you mean 'deployments'"),
])
def test_price_file_endpoint_keys_are_validated(table: dict[str, Any], message: str) -> None:
    with pytest.raises(genai_tracing.ConfigurationError, match=message):
        genai_tracing.enable_tracing(prices=table)


# -- OpenTelemetry GenAI attributes, exported over OTLP ----------------------------------------

class _OtlpReceiver:
    """A loopback OTLP/HTTP traces endpoint: keeps each exported span's attributes by name."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        spans: dict[str, dict[str, Any]] = {}
        self.spans = spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            spans[span.name] = {a.key: _otlp_value(a.value)
                                                for a in span.attributes}
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _otlp_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture
def otlp_receiver(monkeypatch: pytest.MonkeyPatch) -> Any:
    """MLflow exporting every span to a loopback OTLP endpoint as well as to the store."""
    import mlflow

    receiver = _OtlpReceiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT", "true")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    mlflow.tracing.reset()  # MLflow reads the OTLP settings when it sets up its tracer
    yield receiver
    monkeypatch.undo()
    mlflow.tracing.reset()
    receiver.close()


def test_gen_ai_attributes_reach_an_otlp_backend(fake_provider: FakeProvider,
                                                 mlflow_store: TemporaryStore,
                                                 otlp_receiver: Any) -> None:
    import time

    genai_tracing.enable_tracing()
    fake_provider.response_model = "gpt-4o-mini-2024-07-18"
    fake_provider.usage = FakeUsage(input_tokens=12, output_tokens=5)
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    deadline = time.monotonic() + 30
    while "Completions" not in otlp_receiver.spans and time.monotonic() < deadline:
        time.sleep(0.05)
    exported = otlp_receiver.spans["Completions"]
    assert exported["gen_ai.provider.name"] == "openai"
    assert exported["gen_ai.request.model"] == "gpt-4o-mini"
    assert exported["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert exported["gen_ai.usage.input_tokens"] == 12
    assert exported["gen_ai.usage.output_tokens"] == 5
    # MLflow's own keys travel too, and the store still gets the trace.
    assert "mlflow.llm.cost" in exported
    stored = only_call(mlflow_store.last_trace())
    assert stored.attributes["gen_ai.usage.input_tokens"] == 12


# -- Async clients and LiteLLM -----------------------------------------------------------------

@pytest.mark.asyncio
async def test_async_azure_stream_is_priced_under_azure(fake_provider: FakeProvider,
                                                        mlflow_store: TemporaryStore) -> None:
    genai_tracing.enable_tracing()
    fake_provider.response_model = "gpt-4o-2024-08-06"
    fake_provider.usage = FakeUsage(input_tokens=900, output_tokens=120)
    client = openai.AsyncAzureOpenAI(azure_endpoint=fake_provider.url, api_key="test",
                                     api_version=API_VERSION, max_retries=0)
    stream = await client.chat.completions.create(
        model="prod-chat", messages=MESSAGES, stream=True,
        stream_options={"include_usage": True})
    async for _ in stream:
        pass

    span = assert_cost(mlflow_store.last_trace(), 900 * AZURE_GPT4O_IN, 120 * AZURE_GPT4O_OUT)
    assert span.attributes["genai_tracing.provider"] == "azure"


def test_litellm_azure_call_is_priced_under_azure(fake_provider: FakeProvider,
                                                  mlflow_store: TemporaryStore) -> None:
    import litellm

    genai_tracing.enable_tracing()
    fake_provider.response_model = "gpt-4o-2024-08-06"
    fake_provider.usage = FakeUsage(input_tokens=300, output_tokens=60)
    litellm.completion(model="azure/prod-chat", messages=MESSAGES, api_base=fake_provider.url,
                       api_version=API_VERSION, api_key="test")

    span = assert_cost(mlflow_store.last_trace(), 300 * AZURE_GPT4O_IN, 60 * AZURE_GPT4O_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"] == "azure/gpt-4o-2024-08-06"
    assert span.attributes["genai_tracing.provider"] == "azure"


def test_litellm_call_to_an_openai_model_is_filed_under_openai(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    import litellm

    genai_tracing.enable_tracing()
    litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES,
                       api_base=fake_provider.openai_base_url, api_key="test")

    span = only_call(mlflow_store.last_trace())
    assert span.attributes["genai_tracing.provider"] == "openai"
    assert span.attributes["mlflow.llm.provider"] == "openai"
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert list(genai_tracing.cost_report(by="provider")["provider"]) == ["openai"]


def test_reprice_prices_a_local_servers_calls_by_its_endpoint_mapping(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    from decimal import Decimal

    local = {fake_provider.openai_base_url: {"provider": "ollama"}}
    genai_tracing.enable_tracing(prices={"endpoints": local})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=1000)
    openai_client(fake_provider).chat.completions.create(model="llama3.2", messages=MESSAGES)
    assert only_call(mlflow_store.last_trace()).attributes["genai_tracing.cost.unpriced"]

    # The price arrives later, for the model the endpoint is mapped to.
    result = genai_tracing.reprice(dry_run=False, prices={
        "endpoints": {fake_provider.openai_base_url: {"provider": "ollama",
                                                       "model": "llama-3.2-3b"}},
        "models": {"llama-3.2-3b": {"input_per_million": 0.1, "output_per_million": 0.3}}})
    (call,) = result.calls
    assert call.new_cost == Decimal("0.0004")  # 1000 * 0.1 / 1e6 + 1000 * 0.3 / 1e6


# -- Claude on Amazon Bedrock and Google Vertex AI; Gemini on Vertex AI -----------------------

BEDROCK_MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
# LiteLLM "us.anthropic.claude-sonnet-4-5-20250929-v1:0" (litellm_provider bedrock_converse):
# input 3.3e-06, output 1.65e-05 per token: the US cross-region profile costs 10% over the list.
BEDROCK_US_IN, BEDROCK_US_OUT = 3.3e-06, 1.65e-05
# LiteLLM "vertex_ai/claude-sonnet-4-5@20250929": input 3e-06, output 1.5e-05.
VERTEX_CLAUDE_IN, VERTEX_CLAUDE_OUT = 3e-06, 1.5e-05
# LiteLLM "gemma-4-26b-a4b-it" (litellm_provider vertex_ai-language-models): input 1.5e-07,
# output 6e-07; the Gemini API's "gemini/gemma-4-26b-a4b-it" is free (0 and 0).
VERTEX_GEMMA_IN, VERTEX_GEMMA_OUT = 1.5e-07, 6e-07
CLAUDE_MESSAGE = dict(max_tokens=10, messages=MESSAGES)


def bedrock_client(fake: FakeProvider, *, asynchronous: bool = False) -> Any:
    import anthropic

    cls = anthropic.AsyncAnthropicBedrock if asynchronous else anthropic.AnthropicBedrock
    # Real SigV4 signing with made-up keys; the fake does not check signatures.
    return cls(aws_access_key="AKIDEXAMPLE", aws_secret_key="secret", aws_region="us-east-1",
               base_url=fake.url, max_retries=0)


def vertex_claude_client(fake: FakeProvider, *, asynchronous: bool = False) -> Any:
    import anthropic

    cls = anthropic.AsyncAnthropicVertex if asynchronous else anthropic.AnthropicVertex
    return cls(region="us-east5", project_id="acme", access_token="token",
               base_url=fake.url + "/v1", max_retries=0)


def read_claude(client: Any, model: str, how: str, asynchronous: bool) -> None:
    """One call, as ``how`` says: plain, ``stream=True``, or ``messages.stream()``."""
    async def run_async() -> None:
        if how == "plain":
            await client.messages.create(model=model, **CLAUDE_MESSAGE)
        elif how == "stream":
            async for _ in await client.messages.create(model=model, stream=True,
                                                        **CLAUDE_MESSAGE):
                pass
        else:
            async with client.messages.stream(model=model, **CLAUDE_MESSAGE) as stream:
                await stream.until_done()

    if asynchronous:
        import asyncio

        asyncio.run(run_async())
    elif how == "plain":
        client.messages.create(model=model, **CLAUDE_MESSAGE)
    elif how == "stream":
        for _ in client.messages.create(model=model, stream=True, **CLAUDE_MESSAGE):
            pass
    else:
        with client.messages.stream(model=model, **CLAUDE_MESSAGE) as stream:
            stream.until_done()


SHAPES = [("plain", False), ("stream", False), ("manager", False), ("plain", True),
          ("stream", True), ("manager", True)]
SHAPE_IDS = [f"{how}-{'async' if a else 'sync'}" for how, a in SHAPES]


@pytest.mark.parametrize(("how", "asynchronous"), SHAPES, ids=SHAPE_IDS)
def test_claude_on_bedrock_is_priced_at_bedrock_prices(
        how: str, asynchronous: bool, fake_provider: FakeProvider,
        mlflow_store: TemporaryStore) -> None:
    """AnthropicBedrock: the model id in the path, streams in AWS's binary event-stream framing;
    priced under Bedrock's entry for the model id (the US profile's 10% premium included)."""
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    read_claude(bedrock_client(fake_provider, asynchronous=asynchronous), BEDROCK_MODEL, how,
                asynchronous)
    assert fake_provider.requests[-1].path.startswith(f"/model/{BEDROCK_MODEL}/invoke")
    span = assert_cost(mlflow_store.last_trace(), 1000 * BEDROCK_US_IN, 200 * BEDROCK_US_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"] == BEDROCK_MODEL
    assert span.attributes["genai_tracing.provider"] == "bedrock"
    assert span.attributes["genai_tracing.endpoint"]["region"] == "us-east-1"
    assert span.attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert list(genai_tracing.cost_report(by="provider")["provider"]) == ["bedrock"]


@pytest.mark.parametrize(("how", "asynchronous"), SHAPES, ids=SHAPE_IDS)
def test_claude_on_vertex_is_priced_at_vertex_prices(
        how: str, asynchronous: bool, fake_provider: FakeProvider,
        mlflow_store: TemporaryStore) -> None:
    """AnthropicVertex: :rawPredict and :streamRawPredict under the project and region."""
    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    read_claude(vertex_claude_client(fake_provider, asynchronous=asynchronous),
                "claude-sonnet-4-5@20250929", how, asynchronous)
    assert "/projects/acme/locations/us-east5/publishers/anthropic/models/" in \
        fake_provider.requests[-1].path
    span = assert_cost(mlflow_store.last_trace(), 1000 * VERTEX_CLAUDE_IN,
                       200 * VERTEX_CLAUDE_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"].startswith(
        "vertex_ai/claude-sonnet-4-5")
    assert span.attributes["genai_tracing.provider"] == "vertex_ai"


def test_a_bedrock_model_no_catalog_prices_is_unpriced_not_anthropic_priced(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore,
        caplog: pytest.LogCaptureFixture) -> None:
    """Bedrock's price is Bedrock's own: a model id its entries lack is unpriced and flagged,
    never priced at Anthropic's list price for a name that looks alike."""
    genai_tracing.enable_tracing()
    fake_provider.response_model = "claude-sonnet-4-5"
    read_claude(bedrock_client(fake_provider), "acme.custom-claude-v1:0", "plain", False)
    span = only_call(mlflow_store.last_trace())
    assert "mlflow.llm.cost" not in span.attributes or not span.attributes["mlflow.llm.cost"]
    assert span.attributes["genai_tracing.cost.unpriced"] is True
    assert "no bedrock price" in span.attributes["genai_tracing.cost.unpriced_reason"]
    assert unpriced_warnings(caplog)


# LiteLLM "bedrock/us-gov-west-1/anthropic.claude-sonnet-4-5-20250929-v1:0": input 3.6e-06, output
# 1.8e-05 per token (GovCloud's own price, 20% over the list).
GOV_IN, GOV_OUT = 3.6e-06, 1.8e-05


def test_bedrock_region_with_its_own_price_is_priced_there(fake_provider: FakeProvider,
                                                            mlflow_store: TemporaryStore) -> None:
    import anthropic

    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    model = "anthropic.claude-sonnet-4-5-20250929-v1:0"
    client = anthropic.AnthropicBedrock(aws_access_key="AKIDEXAMPLE", aws_secret_key="secret",
                                        aws_region="us-gov-west-1", base_url=fake_provider.url,
                                        max_retries=0)
    client.messages.create(model=model, **CLAUDE_MESSAGE)
    span = assert_cost(mlflow_store.last_trace(), 1000 * GOV_IN, 200 * GOV_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"] == f"bedrock/us-gov-west-1/{model}"


def test_price_file_prices_bedrock_calls(fake_provider: FakeProvider,
                                         mlflow_store: TemporaryStore) -> None:
    """A negotiated Bedrock rate in the price file wins, filed under "bedrock/<model id>"."""
    genai_tracing.enable_tracing(prices={"models": {f"bedrock/{BEDROCK_MODEL}": {
        "input_per_million": 2, "output_per_million": 10}}})
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    read_claude(bedrock_client(fake_provider), BEDROCK_MODEL, "plain", False)
    assert_cost(mlflow_store.last_trace(), 1000 * 2 / 1e6, 200 * 10 / 1e6)


@pytest.mark.parametrize("how", ["plain", "stream", "async", "async-stream"])
def test_gemini_on_vertex_is_priced_at_vertex_prices(how: str, fake_provider: FakeProvider,
                                                     mlflow_store: TemporaryStore) -> None:
    """google-genai with vertexai=True: Vertex AI's entry, not the Gemini API's (where this
    model is free)."""
    import asyncio

    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    client = genai.Client(vertexai=True, project="acme", location="us-central1",
                          credentials=Credentials(token="token"),
                          http_options=types.HttpOptions(base_url=fake_provider.url))
    model, contents = "gemma-4-26b-a4b-it", "Say hello"

    async def run_async(stream: bool) -> None:
        if stream:
            async for _ in await client.aio.models.generate_content_stream(
                    model=model, contents=contents):
                pass
        else:
            await client.aio.models.generate_content(model=model, contents=contents)

    if how == "plain":
        client.models.generate_content(model=model, contents=contents)
    elif how == "stream":
        for _ in client.models.generate_content_stream(model=model, contents=contents):
            pass
    else:
        asyncio.run(run_async(how == "async-stream"))
    assert "/projects/acme/locations/us-central1/publishers/google/models/" in \
        fake_provider.requests[-1].path
    span = assert_cost(mlflow_store.last_trace(), 1000 * VERTEX_GEMMA_IN, 200 * VERTEX_GEMMA_OUT)
    assert span.attributes["genai_tracing.provider"] == "vertex_ai"
    assert span.attributes["genai_tracing.endpoint"]["region"] == "us-central1"
    assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"


def test_litellm_bedrock_call_is_priced_under_bedrock(fake_provider: FakeProvider,
                                                      mlflow_store: TemporaryStore) -> None:
    """LiteLLM's "bedrock/invoke/<model id>" route: Bedrock's entry, the route not in the name."""
    import litellm

    genai_tracing.enable_tracing()
    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    litellm.completion(model=f"bedrock/invoke/{BEDROCK_MODEL}", messages=MESSAGES,
                       api_base=fake_provider.url, aws_access_key_id="AKIDEXAMPLE",
                       aws_secret_access_key="secret", aws_region_name="us-east-1",
                       max_tokens=10)
    assert fake_provider.requests[-1].path == f"/model/{BEDROCK_MODEL}/invoke"
    span = assert_cost(mlflow_store.last_trace(), 1000 * BEDROCK_US_IN, 200 * BEDROCK_US_OUT)
    assert span.attributes["genai_tracing.cost.price"]["key"] == BEDROCK_MODEL
    assert span.attributes["genai_tracing.provider"] == "bedrock"


def test_vertex_provisioned_throughput_is_unpriced_until_the_price_file_prices_it(
        fake_provider: FakeProvider, mlflow_store: TemporaryStore) -> None:
    """Vertex reports a call served by provisioned throughput (prepaid): no catalog has a per-token
    rate for it, so it is unpriced and flagged; ``service_tiers.provisioned`` in the price file
    prices it (here 0: the capacity is paid for up front)."""
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    def call() -> Any:
        client = genai.Client(vertexai=True, project="acme", location="us-central1",
                              credentials=Credentials(token="token"),
                              http_options=types.HttpOptions(base_url=fake_provider.url))
        client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")
        return only_call(mlflow_store.last_trace())

    fake_provider.usage = FakeUsage(input_tokens=1000, output_tokens=200)
    fake_provider.service_tier = "PROVISIONED_THROUGHPUT"
    genai_tracing.enable_tracing()
    span = call()
    assert span.attributes["genai_tracing.cost.unpriced"] is True
    assert "service_tiers.provisioned" in span.attributes["genai_tracing.cost.unpriced_reason"]
    genai_tracing.disable_tracing()

    genai_tracing.enable_tracing(prices={"models": {"gemini-2.5-flash": {
        "input_per_million": 0.3, "output_per_million": 2.5,
        "service_tiers": {"provisioned": {"input_per_million": 0, "output_per_million": 0}}}}})
    span = call()
    assert span.attributes["mlflow.llm.cost"] == {"input_cost": 0.0, "output_cost": 0.0,
                                                  "total_cost": 0.0}
    assert span.attributes["genai_tracing.cost.source"] == "user"


# -- Every endpoint kind, sync and async, streamed and not ---------------------------------------

ENDPOINT_KINDS = {
    # kind: (client factory, model, expected rates per token, catalog key, provider)
    "azure": (lambda fake, aio: (openai.AsyncAzureOpenAI if aio else openai.AzureOpenAI)(
        azure_endpoint=fake.url, api_key="test", api_version=API_VERSION, max_retries=0),
        "gpt-4o-2024-08-06", (AZURE_GPT4O_IN, AZURE_GPT4O_OUT), "azure/gpt-4o-2024-08-06",
        "azure"),
    "databricks": (lambda fake, aio: (openai.AsyncOpenAI if aio else openai.OpenAI)(
        base_url=fake.databricks_base_url, api_key="dapi-test", max_retries=0),
        "databricks-meta-llama-3-3-70b-instruct", (DBX_IN, DBX_OUT),
        "databricks/databricks-meta-llama-3-3-70b-instruct", "databricks"),
    "groq": (lambda fake, aio: openai_client(fake, asynchronous=aio), "llama-3.1-8b-instant",
             (GROQ_IN, GROQ_OUT), "groq/llama-3.1-8b-instant", "groq"),
}
MODES = ["sync", "sync-stream", "async", "async-stream"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(ENDPOINT_KINDS))
def test_each_endpoint_kind_in_each_mode(kind: str, mode: str, fake_provider: FakeProvider,
                                         mlflow_store: TemporaryStore) -> None:
    import asyncio

    make, model, (rate_in, rate_out), key, provider = ENDPOINT_KINDS[kind]
    # The fake is on loopback, where no host says "Groq": the price file maps its address.
    genai_tracing.enable_tracing(prices={"endpoints": {
        fake_provider.openai_base_url: {"provider": "groq"}}} if kind == "groq" else None)
    fake_provider.usage = FakeUsage(input_tokens=3000, output_tokens=700)
    fake_provider.response_model = model
    streamed = mode.endswith("stream")
    args = dict(model=model, messages=MESSAGES)
    if streamed:
        args.update(stream=True, stream_options={"include_usage": True})

    async def run_async() -> None:
        reply = await make(fake_provider, True).chat.completions.create(**args)
        if streamed:
            async for _ in reply:
                pass

    if mode.startswith("async"):
        asyncio.run(run_async())
    else:
        reply = make(fake_provider, False).chat.completions.create(**args)
        if streamed:
            for _ in reply:
                pass
    trace = mlflow.get_trace(mlflow_store.last_trace().info.trace_id)
    span = assert_cost(trace, 3000 * rate_in, 700 * rate_out)
    assert span.attributes["genai_tracing.cost.price"]["key"] == key
    assert span.attributes["genai_tracing.provider"] == provider
