"""Where a traced call is sent, noted on its span as the SDK sends it.

Every SDK client sends through one method of its base class (``request``); MLflow's autolog puts
a ``traceparent`` header on each request it traces, which finds the call's span. The span gets
``genai_tracing.endpoint``: the base URL without credentials, the client class, the deployment
or serving endpoint a call named (Azure, Databricks), and the cloud region where the client holds
one (Bedrock, Vertex). ``_endpoints.detect`` reads the provider from it when the span is priced.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from . import _endpoints, _mlflow
from ._guard import internal_error
from ._keys import ENDPOINT


def note(span: Any, client: Any, model: Any = None) -> None:
    """Record on ``span`` where ``client`` sends the call for ``model``."""
    url = _endpoints.clean_url(getattr(client, "base_url", ""))
    if not url:
        return
    client_class = type(client).__name__
    region = getattr(client, "aws_region", None) or getattr(client, "region", None)
    note_record(span, url, client_class, _endpoints.deployment_of(url, client_class, model),
                region)


def note_record(span: Any, url: str, client: str, deployment: str | None = None,
                region: Any = None) -> None:
    """Record on ``span`` that its call went to ``url`` through a client of class ``client``."""
    record = {"url": url, "client": client}
    if deployment:
        record["deployment"] = deployment
    if isinstance(region, str) and region:
        record["region"] = region
    span.set_attribute(ENDPOINT, record)


def noting(note: Callable[..., None], what: str) -> Callable[[Callable[..., Any]], Any]:
    """``patch_method`` maker for a client method that sends a request: ``note(self, *args,
    **kwargs)`` runs first (its failure is logged as ``what``, never raised), then the request."""
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(original):
            async def request_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    note(self, *args, **kwargs)
                except Exception:
                    internal_error(what)
                return await original(self, *args, **kwargs)

            return request_async

        def request(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                note(self, *args, **kwargs)
            except Exception:
                internal_error(what)
            return original(self, *args, **kwargs)

        return request

    return make


def _note_request(client: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> None:
    headers = getattr(options, "headers", None)
    traceparent = headers.get("traceparent") if isinstance(headers, Mapping) else None
    span = _mlflow.span_from_traceparent(traceparent) if traceparent else None
    if span is None:
        return
    body = getattr(options, "json_data", None)
    note(span, client, body.get("model") if isinstance(body, dict) else None)


# For an SDK base client's ``request(cast_to, options, ...)`` (OpenAI's and Anthropic's).
recording = noting(_note_request, "endpoint")
