"""An in-process fake of the OpenAI, Anthropic and Gemini HTTP APIs for tests.

The real SDK clients talk to it over real HTTP, so tests exercise the SDKs' own response
parsing (and any instrumentation wrapped around them) without network access. Every response
is deterministic and carries exactly the token usage the test configured.

Example::

    with FakeProvider(usage=FakeUsage(input_tokens=12, output_tokens=5)) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test")
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert reply.usage.prompt_tokens == 12
        assert fake.requests[-1].path == "/v1/chat/completions"

The OpenAI routes answer under any prefix, so the same fake stands for an Azure OpenAI resource
(``AzureOpenAI(azure_endpoint=fake.url, ...)`` sends ``/openai/deployments/<name>/...``), a
Databricks workspace (``base_url=fake.databricks_base_url``) or an OpenAI-compatible server
(OpenRouter's ``/api/v1``, Groq's ``/openai/v1``).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import json
import re
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["FakeProvider", "FakeUsage", "RecordedRequest"]

# A valid 1x1 transparent PNG: small, but real enough for code that decodes the image.
TINY_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA"
    "60e6kgAAAABJRU5ErkJggg=="
)
DEFAULT_TEXT = "Hello from the fake"
# Fixed so identical calls produce byte-identical responses.
_CREATED = 1_700_000_000
_EMBEDDING_DIMS = 8

_ERROR_NAMES: dict[int, tuple[str, str]] = {
    # status: (OpenAI/Anthropic error type, Google RPC status)
    400: ("invalid_request_error", "INVALID_ARGUMENT"),
    401: ("authentication_error", "UNAUTHENTICATED"),
    403: ("permission_error", "PERMISSION_DENIED"),
    404: ("not_found_error", "NOT_FOUND"),
    429: ("rate_limit_error", "RESOURCE_EXHAUSTED"),
    500: ("api_error", "INTERNAL"),
    503: ("overloaded_error", "UNAVAILABLE"),
    529: ("overloaded_error", "UNAVAILABLE"),
}


@dataclass(frozen=True)
class FakeUsage:
    """Provider-neutral token counts; each endpoint translates them to its own wire spelling.

    ``input_tokens`` is *all* input (cached, cache-written and image input included) and
    ``output_tokens`` is *all* output (reasoning and image output included); the other fields
    are parts of those totals. So Anthropic's ``input_tokens`` on the wire becomes
    ``input_tokens - cached_tokens - cache_write_tokens`` and Gemini's ``candidatesTokenCount``
    becomes ``output_tokens - reasoning_tokens``.

    Example::

        FakeUsage(input_tokens=100, cached_tokens=60, output_tokens=30, reasoning_tokens=10)

    Audio tokens are parts too (OpenAI chat ``*_tokens_details.audio_tokens``, Gemini's AUDIO
    modality); ``cached_audio_tokens`` is the audio part of ``cached_tokens`` (and of
    ``audio_input_tokens``: Gemini's per-modality prompt counts include cached tokens);
    ``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` Anthropic reports
    as ``cache_creation.ephemeral_1h_input_tokens``. The tool counts become each provider's own
    report: OpenAI Responses ``web_search_call`` / ``file_search_call`` output items (and one
    ``code_interpreter_call`` per container), Anthropic
    ``usage.server_tool_use``, Gemini ``groundingMetadata.webSearchQueries``. Grounding with
    Google Maps (``maps_grounding_queries``) answers Gemini with ``maps`` grounding chunks and
    the Maps queries it ran; ``code_execution_containers`` gives an Anthropic message the
    ``container`` its code-execution tool ran in.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cached_audio_tokens: int = 0
    web_search_calls: int = 0
    file_search_calls: int = 0
    web_fetch_calls: int = 0
    code_interpreter_containers: int = 0
    maps_grounding_queries: int = 0
    code_execution_containers: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received.

    ``json`` is the parsed body (``None`` if it was not JSON); ``form`` holds the text fields
    of a multipart body (image edits); ``headers`` keys are lower-case.

    Example::

        req = fake.requests[-1]
        assert req.path == "/v1/messages" and req.json["model"] == "claude-sonnet-4-5"
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    raw: bytes
    form: dict[str, str] = field(default_factory=dict)


class FakeProvider:
    """A local HTTP server that answers like OpenAI, Anthropic and Gemini at once.

    All attributes may be changed between calls; each request reads them when it arrives.

    - ``usage`` / ``raw_usage``: the usage to report; ``raw_usage`` (any JSON value other than
      ``None``) replaces the translated usage object verbatim, for malformed-usage tests.
    - ``text`` / ``thinking_text``: the answer, and optional reasoning (Anthropic thinking
      block, Gemini ``thought`` part).
    - ``image_b64``: image returned by image endpoints and Gemini image models.
    - ``response_model``: model name to report instead of echoing the requested one.
    - ``stream_usage``: OpenAI chat streams send a usage chunk if the request asked for it
      (``None``), always (``True``) or never (``False``).
    - ``error``: ``(status, body)``; every request gets that status. A ``dict`` body is sent
      verbatim, a ``str`` body is wrapped in the called provider's error shape.
    - ``delay``: seconds to wait before answering.
    - ``fail_mid_stream``: streams send about half their events, then drop the connection.
    - ``usage_cost``: a cost in USD to put in OpenAI chat usage as ``usage.cost``, as OpenRouter
      reports it (``None``: no cost field).
    - ``service_tier``: the tier OpenAI and Anthropic answers report, and Gemini's
      ``usageMetadata.trafficType`` (as Vertex reports it, e.g. ``ON_DEMAND_FLEX``). ``None``
      echoes OpenAI's request (``fast`` as ``priority``, none as ``default``), reports
      ``standard`` for Anthropic and no traffic type for Gemini (as the Gemini API does).

    Example::

        with FakeProvider(text="Hi", usage=FakeUsage(input_tokens=3, output_tokens=1)) as fake:
            client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test")
            msg = client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[...])
            fake.error = (429, "slow down")   # next call raises anthropic.RateLimitError
    """

    # Settings, (re)set from the constructor's arguments by reset().
    usage: FakeUsage
    text: str
    thinking_text: str | None
    image_b64: str
    response_model: str | None
    stream_usage: bool | None
    raw_usage: Any
    error: tuple[int, dict[str, Any] | str] | None
    delay: float
    fail_mid_stream: bool
    usage_cost: float | None
    service_tier: str | None

    def __init__(
        self,
        *,
        usage: FakeUsage | None = None,
        text: str = DEFAULT_TEXT,
        thinking_text: str | None = None,
        image_b64: str = TINY_PNG_B64,
        response_model: str | None = None,
        stream_usage: bool | None = None,
        raw_usage: Any = None,
        error: tuple[int, dict[str, Any] | str] | None = None,
        delay: float = 0.0,
        fail_mid_stream: bool = False,
        usage_cost: float | None = None,
        service_tier: str | None = None,
    ) -> None:
        self._defaults: dict[str, Any] = dict(
            usage=usage if usage is not None else FakeUsage(input_tokens=10, output_tokens=5),
            text=text, thinking_text=thinking_text, image_b64=image_b64,
            response_model=response_model, stream_usage=stream_usage, raw_usage=raw_usage,
            error=error, delay=delay, fail_mid_stream=fail_mid_stream, usage_cost=usage_cost,
            service_tier=service_tier,
        )
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        """Start serving on a free 127.0.0.1 port; returns ``self``."""
        if self._server is None:
            self._server = _Server(self)
            # A short poll interval keeps stop() (which waits for one poll) fast.
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                name="FakeProvider", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open (keep-alive) connection."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_all_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget recorded requests and restore every setting given to the constructor."""
        for name, value in self._defaults.items():
            setattr(self, name, value)
        with self._lock:
            self._requests.clear()
            self._counter = 0

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:54321`` (the server must be started)."""
        if self._server is None:
            raise RuntimeError("FakeProvider is not running; use start() or a with-block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI`` (and litellm's ``api_base`` for ``openai/...``)."""
        return self.url + "/v1"

    @property
    def databricks_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI`` as a Databricks workspace's model serving."""
        return self.url + "/serving-endpoints"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for ``anthropic.Anthropic`` (and litellm's ``api_base``)."""
        return self.url

    @property
    def gemini_base_url(self) -> str:
        """``HttpOptions(base_url=...)`` for ``google.genai.Client``; also litellm's ``api_base``."""
        return self.url

    # -- recording -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> int:
        with self._lock:
            self._requests.append(request)
            self._counter += 1
            return self._counter

    @staticmethod
    def error_response(status: int, message: str = "fake error",
                       provider: str = "openai") -> tuple[int, dict[str, Any]]:
        """An ``(status, body)`` pair for :attr:`error` in ``provider``'s error shape.

        Example::

            fake.error = FakeProvider.error_response(429, "slow down", provider="anthropic")
        """
        return status, _error_body(provider, status, message)


def _error_body(provider: str, status: int, message: str) -> dict[str, Any]:
    kind, rpc_status = _ERROR_NAMES.get(status, ("api_error", "UNKNOWN"))
    if provider == "anthropic":
        return {"type": "error", "error": {"type": kind, "message": message}}
    if provider == "gemini":
        return {"error": {"code": status, "message": message, "status": rpc_status}}
    code = "rate_limit_exceeded" if status == 429 else None
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _split(text: str, parts: int = 3) -> list[str]:
    """Cut ``text`` into up to ``parts`` non-empty pieces (one empty piece for empty text)."""
    if not text:
        return [""]
    step = -(-len(text) // parts)
    return [text[i:i + step] for i in range(0, len(text), step)]


def _embedding(text: str, dims: int) -> list[float]:
    # Multiples of 1/128 survive the float32 round trip of base64 encoding exactly.
    digest = hashlib.sha256(text.encode()).digest()
    while len(digest) < dims:
        digest += hashlib.sha256(digest).digest()
    return [(b - 128) / 128 for b in digest[:dims]]


def _sse(data: Any, event: str | None = None, sep: str = "\n\n") -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}{sep}".encode()


# -- usage translation ---------------------------------------------------------------------

def _aws_event(payload: Any) -> bytes:
    """One message of AWS's event-stream framing, as Bedrock streams Claude's events: a prelude
    (lengths and their CRC32), string headers, the JSON payload ``{"bytes": <base64 event>}``,
    and the message's CRC32."""
    body = json.dumps({"bytes": base64.b64encode(json.dumps(payload).encode()).decode()}).encode()
    headers = b""
    for name, value in ((":event-type", "chunk"), (":content-type", "application/json"),
                        (":message-type", "event")):
        n, v = name.encode(), value.encode()
        headers += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    prelude = struct.pack(">II", 12 + len(headers) + len(body) + 4, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + body
    return message + struct.pack(">I", zlib.crc32(message))


def _openai_chat_usage(u: FakeUsage) -> dict[str, Any]:
    prompt_details: dict[str, int] = {"cached_tokens": u.cached_tokens,
                                      "audio_tokens": u.audio_input_tokens}
    if u.cache_write_tokens:
        prompt_details["cache_write_tokens"] = u.cache_write_tokens
    if u.image_input_tokens:
        prompt_details["image_tokens"] = u.image_input_tokens
    return {
        "prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens, "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens,
                                      "audio_tokens": u.audio_output_tokens,
                                      "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def _openai_responses_usage(u: FakeUsage) -> dict[str, Any]:
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens,
                                 "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def _openai_image_usage(u: FakeUsage) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "input_tokens_details": {"text_tokens": u.input_tokens - u.image_input_tokens,
                                 "image_tokens": u.image_input_tokens},
    }
    if u.image_output_tokens:  # newer gpt-image models split output too
        usage["output_tokens_details"] = {"image_tokens": u.image_output_tokens,
                                          "text_tokens": u.output_tokens - u.image_output_tokens}
    return usage


def _anthropic_usage(u: FakeUsage, output_tokens: int | None = None,
                     service_tier: str | None = None) -> dict[str, Any]:
    return {
        # Anthropic's input_tokens excludes what was read from or written to the cache.
        "input_tokens": u.input_tokens - u.cached_tokens - u.cache_write_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": u.cache_write_tokens - u.cache_write_1h_tokens,
            "ephemeral_1h_input_tokens": u.cache_write_1h_tokens},
        "output_tokens": u.output_tokens if output_tokens is None else output_tokens,
        "service_tier": service_tier or "standard",
        **_anthropic_server_tools(u),
    }


def _anthropic_server_tools(u: FakeUsage) -> dict[str, Any]:
    if not (u.web_search_calls or u.web_fetch_calls):
        return {}
    return {"server_tool_use": {"web_search_requests": u.web_search_calls,
                                "web_fetch_requests": u.web_fetch_calls}}


def _gemini_usage(u: FakeUsage, done: float = 1.0) -> dict[str, Any]:
    """Gemini's usageMetadata; ``done`` < 1 gives the partial counts of a mid-stream chunk."""
    # Gemini leaves thoughts out of candidatesTokenCount and omits zero counts.
    candidates = u.output_tokens - u.reasoning_tokens
    if done < 1.0:
        candidates = int(candidates * done)
    meta: dict[str, Any] = {"promptTokenCount": u.input_tokens,
                            "candidatesTokenCount": candidates,
                            "totalTokenCount": u.input_tokens + candidates + u.reasoning_tokens}
    prompt_details = [{"modality": "TEXT", "tokenCount": u.input_tokens - u.image_input_tokens
                       - u.audio_input_tokens}]
    if u.image_input_tokens:
        prompt_details.append({"modality": "IMAGE", "tokenCount": u.image_input_tokens})
    if u.audio_input_tokens:
        prompt_details.append({"modality": "AUDIO", "tokenCount": u.audio_input_tokens})
    meta["promptTokensDetails"] = prompt_details
    if u.reasoning_tokens:
        meta["thoughtsTokenCount"] = u.reasoning_tokens
    if u.cached_tokens:
        meta["cachedContentTokenCount"] = u.cached_tokens
        meta["cacheTokensDetails"] = [{"modality": "TEXT",
                                       "tokenCount": u.cached_tokens - u.cached_audio_tokens}]
        if u.cached_audio_tokens:
            meta["cacheTokensDetails"].append({"modality": "AUDIO",
                                               "tokenCount": u.cached_audio_tokens})
    if done >= 1.0:
        text_out = u.output_tokens - u.reasoning_tokens - u.image_output_tokens \
            - u.audio_output_tokens
        details = [{"modality": "TEXT", "tokenCount": text_out}]
        if u.image_output_tokens:
            details.append({"modality": "IMAGE", "tokenCount": u.image_output_tokens})
        if u.audio_output_tokens:
            details.append({"modality": "AUDIO", "tokenCount": u.audio_output_tokens})
        meta["candidatesTokensDetails"] = details
    return meta


# -- HTTP plumbing -------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    # Bursts of concurrent clients (each SDK client opens its own connections) must queue, not
    # be refused: the stdlib default backlog is 5.
    request_queue_size = 128
    daemon_threads = True

    def __init__(self, fake: FakeProvider) -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conn_lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    def close_all_connections(self) -> None:
        # SDK clients pool keep-alive connections; their handler threads would otherwise
        # sit in readline() after the server stopped.
        with self._conn_lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up (timeouts, fail_mid_stream) are expected, not noteworthy


@dataclass
class _Call:
    """What a route handler needs about the current request."""

    provider: str  # whose error shape to use: "openai", "anthropic" or "gemini"
    body: dict[str, Any]
    form: dict[str, str]
    query: dict[str, str]
    number: int  # 1-based request number, used for deterministic ids
    model: str = ""  # Gemini carries model and action in the path
    action: str = ""


# path -> (provider, name of the _Handler method answering it)
_ROUTES = {
    "/v1/chat/completions": ("openai", "_openai_chat"),
    "/v1/responses": ("openai", "_openai_responses"),
    "/v1/embeddings": ("openai", "_openai_embeddings"),
    "/v1/images/generations": ("openai", "_openai_images"),
    "/v1/images/edits": ("openai", "_openai_images"),
    "/v1/messages": ("anthropic", "_anthropic_messages"),
}
# OpenAI's routes under any other prefix: Azure's /openai/deployments/<name>/..., Databricks'
# /serving-endpoints/..., OpenAI-compatible servers' own prefixes.
_OPENAI_SUFFIXES = ("/chat/completions", "/responses", "/embeddings", "/images/generations",
                    "/images/edits")


def _route_path(path: str) -> str:
    if path in _ROUTES:
        return path
    for suffix in _OPENAI_SUFFIXES:
        if path.endswith(suffix):
            return "/v1" + suffix
    return path


# Claude on Amazon Bedrock (AnthropicBedrock): the model in the path, the stream in AWS's
# binary event-stream framing.
_BEDROCK_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<action>invoke|invoke-with-response-stream)$")

# google-genai uses /v1/models/..., Vertex /v1beta1/publishers/google/models/..., litellm's
# api_base may add no version at all: accept any prefix before "models/<model>:<action>".
_GEMINI_PATH = re.compile(r"^/(?:[^?]*/)?models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)$")


class _Handler(BaseHTTPRequestHandler):
    # Headers and body go out in separate writes; without this each reply waits ~40 ms for
    # the client's delayed ACK.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # bounds idle keep-alive connections nobody closed

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self) -> None:
        try:
            super().handle()
        except (OSError, ValueError):
            pass  # the peer went away mid-request

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

    # -- request side --------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _parse_form(self, raw: bytes) -> dict[str, str]:
        # The stdlib email parser understands multipart bodies; only text fields are kept.
        head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        form: dict[str, str] = {}
        for part in message.iter_parts() if message.is_multipart() else []:
            name = part.get_param("name", header="content-disposition")
            if name and not part.get_filename():
                form[str(name)] = part.get_payload(decode=True).decode(errors="replace")
        return form

    def _dispatch(self) -> None:
        fake = self.server.fake
        split = urlsplit(self.path)
        raw = self._read_body()
        content_type = self.headers.get("Content-Type", "")
        form = self._parse_form(raw) if content_type.startswith("multipart/") else {}
        try:
            body = json.loads(raw) if raw and not form else None
        except ValueError:
            body = None
        query = dict(parse_qsl(split.query))
        number = fake._record(RecordedRequest(
            method=self.command, path=split.path, query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            json=body, raw=raw, form=form))

        provider, route, model, action = "openai", "", "", ""
        gemini = _GEMINI_PATH.match(split.path)
        bedrock = _BEDROCK_PATH.match(unquote(split.path))
        if self.command == "POST" and _route_path(split.path) in _ROUTES:
            provider, route = _ROUTES[_route_path(split.path)]
        elif self.command == "POST" and bedrock:
            # Claude on Bedrock: Anthropic's Messages API, the model and streaming in the path.
            provider, route, model, action = ("anthropic", "_anthropic_messages",
                                              bedrock["model"], bedrock["action"])
        elif self.command == "POST" and gemini and "/publishers/anthropic/" in split.path:
            # Claude on Vertex AI: :rawPredict and :streamRawPredict, the model in the path.
            provider, route, model, action = ("anthropic", "_anthropic_messages",
                                              gemini["model"], gemini["action"])
        elif self.command == "POST" and gemini:
            provider, route, model, action = "gemini", "_gemini", gemini["model"], gemini["action"]
        call = _Call(provider, body if isinstance(body, dict) else {}, form, query, number,
                     model, action)
        if fake.delay:
            time.sleep(fake.delay)
        error = fake.error  # read once: a test may change it from another thread
        if error is not None:
            status, err = error
            payload = _error_body(provider, status, err) if isinstance(err, str) else err
            return self._send_json(payload, status)
        if not route:
            return self._send_json(_error_body(provider, 404, f"No fake for {split.path}"), 404)
        getattr(self, route)(call)

    # -- response side -------------------------------------------------------------------

    def _send_json(self, payload: Any, status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, events: list[bytes], content_type: str = "text/event-stream") -> None:
        """Send SSE events as HTTP/1.1 chunks so the connection stays reusable."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        fail = self.server.fake.fail_mid_stream
        for event in events[: max(1, len(events) // 2)] if fail else events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        if fail:
            # No terminating zero-size chunk: the client sees a truncated body, as when a
            # provider's connection drops mid-answer.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")

    def _model(self, requested: str) -> str:
        return self.server.fake.response_model or requested

    def _openai_tier(self, req: dict[str, Any]) -> str:
        """As OpenAI reports it: the tier that served the call (here: the one asked for)."""
        if self.server.fake.service_tier is not None:
            return self.server.fake.service_tier
        asked = str(req.get("service_tier") or "default")
        return {"fast": "priority", "auto": "default"}.get(asked, asked)

    def _usage(self, translate: Callable[[FakeUsage], Any]) -> Any:
        fake = self.server.fake
        return fake.raw_usage if fake.raw_usage is not None else translate(fake.usage)

    # -- OpenAI --------------------------------------------------------------------------

    def _chat_usage(self) -> Any:
        usage, cost = self._usage(_openai_chat_usage), self.server.fake.usage_cost
        return {**usage, "cost": cost} if cost is not None and isinstance(usage, dict) else usage

    def _openai_chat(self, call: _Call) -> None:
        fake, req = self.server.fake, call.body
        base = {"id": f"chatcmpl-fake{call.number:04d}", "created": _CREATED,
                "model": self._model(req.get("model", "")), "system_fingerprint": "fp_fake",
                "service_tier": self._openai_tier(req)}
        if not req.get("stream"):
            message = {"role": "assistant", "content": fake.text, "refusal": None,
                       "annotations": []}
            return self._send_json({
                **base, "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": "stop"}],
                "usage": self._chat_usage()})

        want_usage = fake.stream_usage
        if want_usage is None:
            want_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        chunk = {**base, "object": "chat.completion.chunk"}
        if want_usage:
            chunk["usage"] = None  # like the real API: null on every chunk but the last

        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

        deltas = [choice({"role": "assistant", "content": "", "refusal": None})]
        deltas += [choice({"content": piece}) for piece in _split(fake.text)]
        deltas.append(choice({}, "stop"))
        events = [_sse({**chunk, "choices": [d]}) for d in deltas]
        if want_usage:
            events.append(_sse({**chunk, "choices": [], "usage": self._chat_usage()}))
        events.append(_sse("[DONE]"))
        self._send_stream(events)

    def _openai_responses(self, call: _Call) -> None:
        fake, req = self.server.fake, call.body
        rid, item_id = f"resp_fake{call.number:04d}", f"msg_fake{call.number:04d}"
        part = {"type": "output_text", "text": fake.text, "annotations": [], "logprobs": []}
        item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant",
                "content": [part]}
        # Built-in tool calls come before the answer, one output item each.
        usage = fake.usage
        tools: list[dict[str, Any]] = [
            {"id": f"ws_fake{call.number:04d}_{i}", "type": "web_search_call",
             "status": "completed", "action": {"type": "search", "query": f"query {i}"}}
            for i in range(usage.web_search_calls if fake.raw_usage is None else 0)]
        tools += [{"id": f"fs_fake{call.number:04d}_{i}", "type": "file_search_call",
                   "status": "completed", "queries": [f"query {i}"], "results": None}
                  for i in range(usage.file_search_calls if fake.raw_usage is None else 0)]
        tools += [{"id": f"ci_fake{call.number:04d}_{i}", "type": "code_interpreter_call",
                   "status": "completed", "code": "print(1)", "container_id": f"cntr_fake{i}",
                   "outputs": None}
                  for i in range(usage.code_interpreter_containers
                                 if fake.raw_usage is None else 0)]
        response: dict[str, Any] = {
            "id": rid, "object": "response", "created_at": _CREATED, "status": "completed",
            "completed_at": _CREATED, "error": None, "incomplete_details": None,
            "instructions": req.get("instructions"), "max_output_tokens": None,
            "model": self._model(req.get("model", "")), "output": [*tools, item],
            "service_tier": self._openai_tier(req),
            "parallel_tool_calls": True, "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None}, "store": True,
            "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
            "usage": self._usage(_openai_responses_usage), "user": None, "metadata": {},
        }
        if not req.get("stream"):
            return self._send_json(response)

        pending = {**response, "status": "in_progress", "completed_at": None, "output": [],
                   "usage": None}
        empty_item = {**item, "status": "in_progress", "content": []}
        empty_part = {**part, "text": ""}
        at = len(tools)
        where = {"item_id": item_id, "output_index": at, "content_index": 0}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": pending},
            {"type": "response.in_progress", "response": pending},
            *({"type": kind, "output_index": i, "item": tool}
              for i, tool in enumerate(tools)
              for kind in ("response.output_item.added", "response.output_item.done")),
            {"type": "response.output_item.added", "output_index": at, "item": empty_item},
            {"type": "response.content_part.added", **where, "part": empty_part},
            *({"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
              for piece in _split(fake.text)),
            {"type": "response.output_text.done", **where, "text": fake.text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": part},
            {"type": "response.output_item.done", "output_index": at, "item": item},
            {"type": "response.completed", "response": response},
        ]
        self._send_stream([_sse({**e, "sequence_number": n}, e["type"])
                           for n, e in enumerate(events)])

    def _openai_embeddings(self, call: _Call) -> None:
        req = call.body
        inputs = req.get("input", "")
        # A list of ints is one pre-tokenized input, not many.
        if isinstance(inputs, str) or (inputs and all(isinstance(i, int) for i in inputs)):
            inputs = [inputs]
        dims = int(req.get("dimensions") or _EMBEDDING_DIMS)
        data = []
        for index, item in enumerate(inputs):
            vector: Any = _embedding(json.dumps(item), dims)
            if req.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        self._send_json({
            "object": "list", "data": data, "model": self._model(req.get("model", "")),
            "usage": self._usage(lambda u: {"prompt_tokens": u.input_tokens,
                                            "total_tokens": u.input_tokens})})

    def _openai_images(self, call: _Call) -> None:
        fake = self.server.fake
        req = call.body or call.form  # edits arrive as multipart form fields
        model = str(req.get("model") or ("gpt-image-1" if call.form else "dall-e-2"))
        count = int(req.get("n") or 1)
        token_billed = model.startswith("gpt-image")
        meta = {"background": "opaque", "output_format": "png", "quality": "medium",
                "size": req.get("size") if req.get("size") not in (None, "auto") else "1024x1024"}
        if str(req.get("stream")).lower() == "true":
            edit = urlsplit(self.path).path.endswith("/images/edits")
            kind = "image_edit" if edit else "image_generation"
            events = []
            for i in range(int(req.get("partial_images") or 0)):
                events.append({"type": f"{kind}.partial_image", "b64_json": fake.image_b64,
                               "created_at": _CREATED, "partial_image_index": i, **meta})
            events += [{"type": f"{kind}.completed", "b64_json": fake.image_b64,
                        "created_at": _CREATED, **meta, "usage": self._usage(_openai_image_usage)}
                       for _ in range(count)]
            return self._send_stream([_sse(e, e["type"]) for e in events])
        image: dict[str, Any] = {"b64_json": fake.image_b64}
        if model == "dall-e-3":
            image["revised_prompt"] = req.get("prompt", "")
        payload: dict[str, Any] = {"created": _CREATED, "data": [dict(image) for _ in range(count)]}
        if token_billed:  # DALL-E is billed per image and reports no usage
            payload.update(meta, usage=self._usage(_openai_image_usage))
        self._send_json(payload)

    # -- Anthropic -----------------------------------------------------------------------

    def _anthropic_messages(self, call: _Call) -> None:
        fake, req = self.server.fake, call.body
        if call.model:  # Bedrock and Vertex name the model in the path, streaming too
            req = {**req, "model": call.model}
            if call.action in ("invoke-with-response-stream", "streamRawPredict"):
                req["stream"] = True
        blocks: list[dict[str, Any]] = []
        if fake.thinking_text is not None:
            blocks.append({"type": "thinking", "thinking": fake.thinking_text,
                           "signature": "fake-signature"})
        blocks.append({"type": "text", "text": fake.text})
        message = {"id": f"msg_fake{call.number:04d}", "type": "message", "role": "assistant",
                   "model": self._model(req.get("model", "")), "content": blocks,
                   "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": self._usage(lambda u: _anthropic_usage(
                       u, service_tier=fake.service_tier))}
        if fake.raw_usage is None and fake.usage.code_execution_containers:
            # The container the code-execution tool ran in (one per request).
            message["container"] = {"id": f"container_fake{call.number:04d}",
                                    "expires_at": "2026-01-01T00:00:00Z"}
        if not req.get("stream"):
            return self._send_json(message)

        start = {**message, "content": [], "stop_reason": None,
                 "usage": self._usage(lambda u: _anthropic_usage(
                     u, output_tokens=1, service_tier=fake.service_tier))}
        events: list[dict[str, Any]] = [{"type": "message_start", "message": start},
                                        {"type": "ping"}]
        for index, block in enumerate(blocks):
            if block["type"] == "thinking":
                empty = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [{"type": "thinking_delta", "thinking": p}
                          for p in _split(block["thinking"])]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            else:
                empty = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in _split(block["text"])]
            events.append({"type": "content_block_start", "index": index, "content_block": empty})
            events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
            events.append({"type": "content_block_stop", "index": index})
        # Like the real API, message_delta carries the final cumulative counts.
        events.append({"type": "message_delta",
                       "delta": {"stop_reason": "end_turn", "stop_sequence": None,
                                 **({"container": message["container"]}
                                    if "container" in message else {})},
                       "usage": self._usage(lambda u: {
                           k: v for k, v in _anthropic_usage(u).items()
                           if k in ("input_tokens", "cache_creation_input_tokens",
                                    "cache_read_input_tokens", "output_tokens",
                                    "server_tool_use")})})
        events.append({"type": "message_stop"})
        if call.action == "invoke-with-response-stream":
            return self._send_stream([_aws_event(e) for e in events],
                                     "application/vnd.amazon.eventstream")
        self._send_stream([_sse(e, e["type"]) for e in events])

    # -- Gemini --------------------------------------------------------------------------

    def _gemini(self, call: _Call) -> None:
        action = call.action
        if action in ("generateContent", "streamGenerateContent"):
            return self._gemini_generate(call)
        if action in ("embedContent", "batchEmbedContents"):
            return self._gemini_embed(call)
        if action == "predict":
            return self._gemini_predict(call)
        self._send_json(_error_body("gemini", 404, f"No fake for :{action}"), 404)

    def _gemini_generate(self, call: _Call) -> None:
        fake, req = self.server.fake, call.body
        modalities = (req.get("generationConfig") or {}).get("responseModalities") or []
        # Image models (and callers asking for IMAGE) get an inline image part.
        wants_image = "IMAGE" in [str(m).upper() for m in modalities] or "image" in call.model
        thought = [{"text": fake.thinking_text, "thought": True}] if fake.thinking_text else []
        image = ([{"inlineData": {"mimeType": "image/png", "data": fake.image_b64}}]
                 if wants_image else [])
        base = {"modelVersion": self._model(call.model), "responseId": f"fake{call.number:04d}"}

        searches = fake.usage.web_search_calls if fake.raw_usage is None else 0
        maps = fake.usage.maps_grounding_queries if fake.raw_usage is None else 0

        def chunk(parts: list[dict[str, Any]], usage: Any, last: bool) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if last:
                candidate["finishReason"] = "STOP"
                if searches:  # grounding with Google Search: the queries it ran
                    candidate["groundingMetadata"] = {
                        "webSearchQueries": [f"query {i}" for i in range(searches)],
                        "searchEntryPoint": {"renderedContent": "<div></div>"}}
                elif maps:  # grounding with Google Maps: places, and the Maps queries it ran
                    candidate["groundingMetadata"] = {
                        "webSearchQueries": [f"places {i}" for i in range(maps)],
                        "groundingChunks": [{"maps": {"uri": f"https://maps.example/{i}",
                                                      "title": f"Place {i}",
                                                      "placeId": f"places/{i}"}}
                                            for i in range(maps)]}
            return {"candidates": [candidate], "usageMetadata": usage, **base}

        if call.action == "generateContent":
            parts = thought + [{"text": fake.text}] + image
            return self._send_json(chunk(parts, self._gemini_usage(_gemini_usage), True))

        pieces = [[p] for p in thought + [{"text": t} for t in _split(fake.text)] + image]
        chunks = [chunk(parts, self._gemini_usage(
            lambda u, i=i: _gemini_usage(u, 1.0 if i == len(pieces) - 1 else i / len(pieces))),
            i == len(pieces) - 1) for i, parts in enumerate(pieces)]
        if call.query.get("alt") != "sse":  # without alt=sse Gemini streams one JSON array
            return self._send_json(chunks)
        self._send_stream([_sse(c, sep="\r\n\r\n") for c in chunks])

    def _gemini_usage(self, translate: Callable[[FakeUsage], Any]) -> Any:
        usage = self._usage(translate)
        tier = self.server.fake.service_tier
        return {**usage, "trafficType": tier} if tier and isinstance(usage, dict) else usage

    def _gemini_embed(self, call: _Call) -> None:
        req = call.body
        dims = int(req.get("outputDimensionality") or _EMBEDDING_DIMS)
        usage = self._usage(lambda u: {"promptTokenCount": u.input_tokens,
                                       "totalTokenCount": u.input_tokens})
        if call.action == "embedContent":
            vector = _embedding(json.dumps(req.get("content")), dims)
            return self._send_json({"embedding": {"values": vector}, "usageMetadata": usage})
        embeddings = [{"values": _embedding(json.dumps(r.get("content")),
                                            int(r.get("outputDimensionality") or dims))}
                      for r in req.get("requests", [])]
        self._send_json({"embeddings": embeddings, "usageMetadata": usage})

    def _gemini_predict(self, call: _Call) -> None:
        # Vertex-style :predict serves both Imagen (instances with "prompt") and the
        # text-embedding models (instances with "content").
        fake, req = self.server.fake, call.body
        instances = req.get("instances") or [{}]
        if "content" in instances[0]:
            predictions = [{"embeddings": {
                "values": _embedding(json.dumps(i.get("content")), _EMBEDDING_DIMS),
                "statistics": {"token_count": fake.usage.input_tokens, "truncated": False}}}
                for i in instances]
            return self._send_json({"predictions": predictions,
                                    "metadata": {"billableCharacterCount": 0}})
        count = int((req.get("parameters") or {}).get("sampleCount") or 1)
        self._send_json({"predictions": [{"bytesBase64Encoded": fake.image_b64,
                                          "mimeType": "image/png"} for _ in range(count)]})
