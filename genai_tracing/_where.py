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


def _note_request(client: Any, options: Any) -> None:
    headers = getattr(options, "headers", None)
    traceparent = headers.get("traceparent") if isinstance(headers, Mapping) else None
    span = _mlflow.span_from_traceparent(traceparent) if traceparent else None
    if span is None:
        return
    body = getattr(options, "json_data", None)
    note(span, client, body.get("model") if isinstance(body, dict) else None)


def recording(original: Callable[..., Any]) -> Callable[..., Any]:
    """``patch_method`` maker for an SDK base client's ``request(cast_to, options, ...)``."""
    if inspect.iscoroutinefunction(original):
        async def request_async(self: Any, cast_to: Any, options: Any, *args: Any,
                                **kwargs: Any) -> Any:
            try:
                _note_request(self, options)
            except Exception:
                internal_error("endpoint")
            return await original(self, cast_to, options, *args, **kwargs)

        return request_async

    def request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            _note_request(self, options)
        except Exception:
            internal_error("endpoint")
        return original(self, cast_to, options, *args, **kwargs)

    return request
