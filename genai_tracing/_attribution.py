"""``attribute()``: who and what a request is for, on every trace started inside it."""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

from ._keys import LATENCY_MS, PROMPT_CHARS, SPAN_ATTRIBUTION, TRACE_SESSION, TRACE_USER  # noqa: F401

_MAX_METADATA = 250  # MLflow stores metadata values of up to 250 characters everywhere


@dataclass(frozen=True)
class Attribution:
    user: str | None = None
    session: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def merged(self, inner: Attribution) -> Attribution:
        return Attribution(inner.user or self.user, inner.session or self.session,
                           {**self.tags, **inner.tags})

    def as_json(self) -> str:
        return json.dumps({"user": self.user, "session": self.session, "tags": dict(self.tags)})

    @classmethod
    def from_json(cls, raw: Any) -> Attribution | None:
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
            return cls(data.get("user"), data.get("session"), dict(data.get("tags") or {}))
        except Exception:
            return None


_current: contextvars.ContextVar[Attribution | None] = contextvars.ContextVar(
    "genai_tracing_attribution", default=None)


def current() -> Attribution | None:
    """The attribution in force in this thread or task, if any."""
    return _current.get()


class attribute:  # noqa: N801 - used like a function, as contextlib's helpers are
    """Attach a user, a session and tags to every trace started inside this block or function.

    Works as a context manager and as a decorator of sync and async functions. It is built on
    contextvars, so concurrent requests in threads or asyncio tasks never see each other's
    values. Nested blocks add tags and may override the user or session::

        with genai_tracing.attribute(user="ana@example.com", session="s-42", feature="search"):
            client.chat.completions.create(...)

        @genai_tracing.attribute(feature="summaries")
        async def summarize(text): ...

    The user and session land in MLflow's own trace metadata (``mlflow.trace.user``,
    ``mlflow.trace.session``) and the tags in the trace's tags.
    """

    def __init__(self, user: str | None = None, session: str | None = None,
                 **tags: Any) -> None:
        self.value = Attribution(None if user is None else str(user),
                                 None if session is None else str(session),
                                 {str(k): str(v) for k, v in tags.items()})
        self._tokens: list[contextvars.Token[Attribution | None]] = []

    def _enter(self) -> contextvars.Token[Attribution | None]:
        outer = _current.get()
        return _current.set(outer.merged(self.value) if outer else self.value)

    def __enter__(self) -> Attribution:
        self._tokens.append(self._enter())
        return _current.get()  # type: ignore[return-value]

    def __exit__(self, *exc: Any) -> None:
        _current.reset(self._tokens.pop())

    async def __aenter__(self) -> Attribution:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)

    def __call__(self, function: F) -> F:
        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def attributed_async(*args: Any, **kwargs: Any) -> Any:
                token = self._enter()
                try:
                    return await function(*args, **kwargs)
                finally:
                    _current.reset(token)
            return attributed_async  # type: ignore[return-value]

        @functools.wraps(function)
        def attributed(*args: Any, **kwargs: Any) -> Any:
            token = self._enter()
            try:
                return function(*args, **kwargs)
            finally:
                _current.reset(token)
        return attributed  # type: ignore[return-value]


def annotate_trace(trace: Any, root: Any) -> None:
    """At the root span's end: attribution, end-to-end latency and prompt length."""
    from ._text import storable_text  # a lone surrogate would lose the whole trace

    info = trace.info
    metadata = info.request_metadata
    attribution = current() or Attribution.from_json(root.get_attribute(SPAN_ATTRIBUTION))
    if attribution is not None:
        if attribution.user and TRACE_USER not in metadata:
            metadata[TRACE_USER] = storable_text(attribution.user[:_MAX_METADATA])
        if attribution.session and TRACE_SESSION not in metadata:
            metadata[TRACE_SESSION] = storable_text(attribution.session[:_MAX_METADATA])
        for key, value in attribution.tags.items():
            info.tags.setdefault(storable_text(key), storable_text(value))
    if root.start_time_ns:
        metadata[LATENCY_MS] = str(round((time.time_ns() - root.start_time_ns) / 1e6, 3))
    metadata[PROMPT_CHARS] = str(prompt_chars(root.inputs))


def prompt_chars(inputs: Any) -> int:
    """Characters of text in a request's inputs (message contents, prompts, arguments)."""
    total = 0
    stack = [inputs]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, Mapping):
            # Message dicts: count what was said, not the keys or the roles.
            stack.extend(v for k, v in value.items() if k not in ("role", "type", "model"))
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return total
