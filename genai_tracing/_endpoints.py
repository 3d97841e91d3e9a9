"""Where a call went: the provider that served it, read from the client that sent it.

The OpenAI SDK talks to OpenAI, Azure OpenAI, Databricks model serving and every
OpenAI-compatible server alike; the Anthropic SDK to Anthropic, Amazon Bedrock and Google
Vertex AI; google-genai to the Gemini API and Vertex AI. Each bills at its own prices. The
provider is read, in order:

1. the user's ``[endpoints]`` table in the price file (the longest URL prefix that matches);
2. the client class (``AzureOpenAI``, ``AnthropicBedrock``, ``AnthropicVertex``, a google-genai
   client with ``vertexai=True``) and the URL's path (``/openai/deployments/<name>``,
   ``/serving-endpoints``), which hold wherever the server runs;
3. the host (``*.openai.azure.com``, ``bedrock-runtime.<region>.amazonaws.com``,
   ``*aiplatform.googleapis.com``, ``api.groq.com``, ...);
4. a loopback address on Ollama's or vLLM's default port (11434, 8000);
5. otherwise the SDK's own provider (``openai``, ``anthropic``, ``gemini``): any other address
   is taken for that provider or a proxy in front of it.

Detection reads only what the client already holds (its class and base URL): no network.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

# Providers an endpoint can be served by, as LiteLLM's map prefixes their entries.
KNOWN_PROVIDERS = ("openai", "azure", "databricks", "groq", "deepseek", "together_ai",
                   "fireworks_ai", "mistral", "xai", "openrouter", "vllm", "ollama", "bedrock",
                   "vertex_ai")
# Self-hosted servers: no catalog prices what they cost; only the user's price file does.
LOCAL_PROVIDERS = frozenset({"vllm", "ollama"})

_HOSTS: tuple[tuple[str, str], ...] = (
    (".amazonaws.com", "bedrock"),  # bedrock-runtime[-fips].<region>.amazonaws.com, below
    ("aiplatform.googleapis.com", "vertex_ai"),  # <region>-aiplatform... and the global host
    (".openai.azure.com", "azure"),
    (".cognitiveservices.azure.com", "azure"),
    ("api.openai.com", "openai"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.together.xyz", "together_ai"),
    ("api.together.ai", "together_ai"),
    ("api.fireworks.ai", "fireworks_ai"),
    ("api.mistral.ai", "mistral"),
    ("api.x.ai", "xai"),
    ("openrouter.ai", "openrouter"),
)
_LOCAL_PORTS = {11434: "ollama", 8000: "vllm"}
_AZURE_CLIENTS = frozenset({"AzureOpenAI", "AsyncAzureOpenAI"})
_CLIENTS = {"AzureOpenAI": "azure", "AsyncAzureOpenAI": "azure",
            "AnthropicBedrock": "bedrock", "AsyncAnthropicBedrock": "bedrock",
            "AnthropicVertex": "vertex_ai", "AsyncAnthropicVertex": "vertex_ai",
            "AnthropicBedrockMantle": "bedrock", "AsyncAnthropicBedrockMantle": "bedrock",
            "VertexClient": "vertex_ai"}  # google-genai with vertexai=True (see providers.gemini)
_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/([^/?#]+)")

# OpenTelemetry's GenAI semantic-convention names (gen_ai.provider.name) where they differ.
_SEMCONV_NAMES = {"azure": "azure.ai.openai", "gemini": "gcp.gemini", "mistral": "mistral_ai",
                  "xai": "x_ai", "bedrock": "aws.bedrock", "vertex_ai": "gcp.vertex_ai"}


@dataclass(frozen=True)
class Endpoint:
    """A user's ``[endpoints."<url>"]`` entry: who serves there, and optionally which model."""

    url: str
    provider: str | None = None
    model: str | None = None


def clean_url(url: Any) -> str:
    """``url`` without credentials, query or fragment, and without a trailing slash."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return ""
    host = parts.hostname or ""
    if not parts.scheme or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme.lower()}://{host.lower()}{port}{parts.path.rstrip('/')}"


def deployment_of(url: str, client: str | None, model: Any) -> str | None:
    """The Azure deployment or Databricks serving endpoint a call named (not the model)."""
    if m := _AZURE_DEPLOYMENT.search(url):
        return m.group(1)
    if (client in _AZURE_CLIENTS or url.endswith("/serving-endpoints")) and \
            isinstance(model, str) and model:
        return model
    return None


def user_endpoint(url: str, endpoints: Mapping[str, Endpoint]) -> Endpoint | None:
    """The user's entry whose URL is the longest prefix of ``url`` (on a path boundary)."""
    best: Endpoint | None = None
    for key, entry in endpoints.items():
        if (url == key or url.startswith(key + "/")) and (best is None or len(key) > len(best.url)):
            best = entry
    return best


def detect(url: str, client: str | None = None,
           endpoints: Mapping[str, Endpoint] | None = None, default: str = "openai") -> str:
    """The provider that serves calls sent to ``url`` by a client of class ``client``, of an SDK
    whose own provider is ``default``.

    Example::

        detect("https://acme.openai.azure.com/openai")               # 'azure'
        detect("https://adb-1.azuredatabricks.net/serving-endpoints")  # 'databricks'
        detect("http://localhost:11434/v1")                           # 'ollama'
        detect("http://127.0.0.1:54321/v1")                           # 'openai'
        detect("https://bedrock-runtime.us-east-1.amazonaws.com", default="anthropic")
                                                                      # 'bedrock'
    """
    url = clean_url(url)
    if endpoints and (entry := user_endpoint(url, endpoints)) and entry.provider:
        return entry.provider
    if client in _CLIENTS:
        return _CLIENTS[client]
    if _AZURE_DEPLOYMENT.search(url):
        return "azure"
    if url.endswith("/serving-endpoints"):
        return "databricks"
    parts = urlsplit(url)
    host = parts.hostname or ""
    for suffix, provider in _HOSTS:
        if provider == "bedrock":
            if host.startswith("bedrock") and host.endswith(suffix):
                return provider
        elif host == suffix.lstrip(".") or host.endswith(
                suffix if suffix.startswith(".") else "." + suffix) or (
                provider == "vertex_ai" and host.endswith("-" + suffix)):
            return provider
    if _is_loopback(host) and parts.port in _LOCAL_PORTS:
        return _LOCAL_PORTS[parts.port]
    return default


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mapped_model(table: Any, url: str | None, deployment: str | None) -> str | None:
    """The model a price table's ``[deployments]`` or ``[endpoints]`` says a call went to."""
    deployments = getattr(table, "deployments", None) or {}
    if deployment and deployment in deployments:
        return deployments[deployment]
    endpoints = getattr(table, "endpoints", None) or {}
    if url and endpoints and (entry := user_endpoint(url, endpoints)) is not None:
        return entry.model
    return None


def semconv_provider(provider: str | None) -> str | None:
    """``gen_ai.provider.name`` for one of genai_tracing's provider names."""
    return _SEMCONV_NAMES.get(provider, provider) if provider else None


# ---------------------------------------------------------------------------------------------
# The price file's [endpoints] and [deployments] tables

_FIX = "see 'Where the call went' in the README"
_ENDPOINT_KEYS = ("provider", "model")


def parse_endpoints(raw: Any, where: str) -> dict[str, Endpoint]:
    """``[endpoints."<base url>"]`` tables: ``provider`` and/or ``model``; a bare string is a model.

    Example (TOML)::

        [endpoints."http://gpu-box:8000/v1"]
        provider = "vllm"
        model = "meta-llama/Llama-3.1-8B-Instruct"
    """
    from ._errors import ConfigurationError

    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}: endpoints", raw, "must be a table of base URLs", _FIX)
    out: dict[str, Endpoint] = {}
    for key, value in raw.items():
        ctx = f"{where}: endpoints.{key!r}"
        url = clean_url(key)
        if not url or urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError(ctx, key, "is not an http(s) URL",
                                     'write the base URL the client uses, e.g. '
                                     '"http://localhost:8000/v1"')
        if isinstance(value, str):
            value = {"model": value}
        if not isinstance(value, Mapping) or not value:
            raise ConfigurationError(ctx, value, "must be a table with provider and/or model",
                                     _FIX)
        for name in value:
            if name not in _ENDPOINT_KEYS:
                raise ConfigurationError(f"{ctx}.{name}", value[name], "is not a known key",
                                         _close(name, _ENDPOINT_KEYS)
                                         + "use only provider and model")
        provider, model = value.get("provider"), value.get("model")
        if provider is not None and provider not in KNOWN_PROVIDERS:
            raise ConfigurationError(f"{ctx}.provider", provider, "is not a known provider",
                                     _close(str(provider), KNOWN_PROVIDERS)
                                     + f"use one of {', '.join(KNOWN_PROVIDERS)}")
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ConfigurationError(f"{ctx}.model", model, "must be a model name",
                                     'e.g. model = "meta-llama/Llama-3.1-8B-Instruct"')
        out[url] = Endpoint(url, provider, model.strip() if model else None)
    return out


def parse_deployments(raw: Any, where: str) -> dict[str, str]:
    """``[deployments]``: an Azure deployment or Databricks serving endpoint name -> its model."""
    from ._errors import ConfigurationError

    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}: deployments", raw,
                                 "must be a table of deployment = model", _FIX)
    for name, model in raw.items():
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError(f"{where}: deployments.{name!r}", model,
                                     "must be the model the deployment serves",
                                     f'e.g. {name} = "gpt-4o"')
    return {str(k): v.strip() for k, v in raw.items()}


def _close(key: str, known: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? Otherwise " if close else ""
