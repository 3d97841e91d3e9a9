"""The span processor: usage and cost on each provider call's span, exact totals on each trace.

MLflow runs it inside ``LiveSpan.end()``, before the span is exported, so whatever it writes is
what every store, the UI and ``trace.info`` see.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import _breakdown, _mlflow
from . import providers as _providers
from ._accounting import counted, is_call, span_cost
from ._gaps import mark_cost_gap
from ._guard import internal_error, logger
from ._pricing import PriceResolver, Unpriced, price_call, use_resolver
from ._text import storable_text

if TYPE_CHECKING:
    from mlflow.entities import LiveSpan

    from ._config import TracingConfig

from ._keys import (CHAT_USAGE, COST_FALLBACKS, COST_PARTIAL, COST_PRICE, COST_SOURCE,
                    COST_TOOLS, COUNTED_ON, FAILED_WITH, GEN_AI_INPUT_TOKENS,
                    GEN_AI_OUTPUT_TOKENS, GEN_AI_PROVIDER, GEN_AI_REQUEST_MODEL,
                    GEN_AI_RESPONSE_MODEL, LLM_COST, MODEL, MODEL_PROVIDER, PROVIDER,
                    REQUESTED_MODEL, SPAN_INPUTS, SPAN_OUTPUTS,
                    STREAM_INCOMPLETE, TRACE_COST, TRACE_COST_COMPLETE, TRACE_LLM_CALLS,
                    TRACE_TOKEN_USAGE, TRACE_UNPRICED_CALLS, UNPRICED, UNPRICED_REASON, USAGE,
                    USAGE_FLAGS)

# Set on MLflow's in-memory trace (never stored) once its root has ended and totals are written.
_FINISHED = "_genai_tracing_finished"


@dataclass
class _State:
    config: TracingConfig
    resolver: PriceResolver
    modules: tuple[ModuleType, ...]


_state: _State | None = None
_lock = threading.Lock()
_warned_unpriced: set[tuple[str | None, str | None, bool | str]] = set()


def preload(config: TracingConfig) -> None:
    """Import now, in the caller's thread, what span processing and export would import later."""
    _mlflow.preload()
    _providers.load(config.providers)
    if "litellm" in config.providers or _installed("litellm"):
        import litellm  # noqa: F401  - MLflow's exporter imports it lazily otherwise
    if _installed("genai_prices"):
        from genai_prices import data_snapshot

        data_snapshot.get_snapshot()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def install(config: TracingConfig) -> None:
    global _state
    _state = _State(config, PriceResolver(config.price_table), _providers.load(config.providers))
    use_resolver(_state.resolver)
    _mlflow.add_span_processor(genai_tracing_span_processor)


def uninstall() -> None:
    global _state
    _state = None
    with _lock:
        _handed.clear()
        _orphans.clear()
    use_resolver(None)
    _mlflow.remove_span_processor(genai_tracing_span_processor)


def genai_tracing_span_processor(span: LiveSpan) -> None:
    """Price each provider call span and total each trace; never raises."""
    state = _state
    if state is None:
        return
    try:
        if _storable_text(span) and span.parent_id is None:
            _storable_previews(span)
    except Exception:
        internal_error("span text")
    span = _ReadOnce(span)  # type: ignore[assignment]
    try:
        _process(span, state)
    except Exception:
        internal_error("span processing")
    try:  # the span has its final cost (and a root its trace totals): budgets, per-request runs
        from . import _budgets, _runs

        _budgets.observe(span)
        _runs.observe(span)
    except Exception:
        internal_error("budgets and runs")


def _storable_text(span: Any) -> bool:
    """Escape lone surrogates in a span's attributes (see ``storable_text``); whether any was."""
    return _mlflow.escape_attributes(span, storable_text)


def _storable_previews(root: Any) -> None:
    """The trace's request and response previews, which MLflow cuts from the root's inputs and
    outputs at export, escaped the same way (MLflow keeps previews that are already set)."""
    with _mlflow.open_trace(root.trace_id) as trace:
        if trace is None:
            return
        info = trace.info
        for field, key, role in (("request_preview", SPAN_INPUTS, "user"),
                                 ("response_preview", SPAN_OUTPUTS, "assistant")):
            raw = root.get_attribute(key)
            if getattr(info, field) is None and raw is not None:
                preview = _mlflow.truncated_preview(raw if isinstance(raw, (str, dict)) else
                                                    json.dumps(raw), role)
                if preview is not None:
                    setattr(info, field, storable_text(preview))


class _ReadOnce:
    """A span whose attributes, inputs and outputs are decoded at most once while it is processed.

    MLflow keeps every attribute as JSON and decodes it on each read; claiming, extracting,
    pricing, totalling and attributing a call read the same few several times.
    """

    __slots__ = ("_live", "_decoded")
    _MISSING = object()

    def __init__(self, span: LiveSpan) -> None:
        self._live = span
        self._decoded: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._live, name)

    def get_attribute(self, key: str) -> Any:
        value = self._decoded.get(key, self._MISSING)
        if value is self._MISSING:
            value = self._decoded[key] = self._live.get_attribute(key)
        return value

    def set_attribute(self, key: str, value: Any) -> None:
        self._decoded.pop(key, None)
        self._live.set_attribute(key, value)

    def forget(self, key: str) -> None:
        self._decoded.pop(key, None)

    @property
    def inputs(self) -> Any:
        return self.get_attribute(SPAN_INPUTS)

    @property
    def outputs(self) -> Any:
        return self.get_attribute(SPAN_OUTPUTS)


def _process(span: LiveSpan, state: _State) -> None:
    module = _owner(span, state.modules)
    if module is not None:
        outer = _enclosing_call(span, state.modules)
        if outer is not None:
            # The same call, traced twice (Gemini's generate_content around _generate_content,
            # LiteLLM around the OpenAI SDK): the outermost span carries its cost. This one keeps
            # what MLflow wrote (usage included) and gets an empty cost, so that no view that
            # sums span costs (MLflow's Overview, the store's own pricing) counts the call twice.
            span.set_attribute(COUNTED_ON, outer.span_id)
            span.set_attribute(LLM_COST, {})
        else:
            _price_span(span, module.extract(span), state)
            if not _hand_to_framework_span(span, state.modules):
                _remember_orphan(span)
    elif not _take_handed_calls(span):
        _defer_to_calls_below(span, state)
    if span.parent_id is None:
        _finish_trace(span.trace_id, root=span)
    elif module is not None:
        _refresh_finished_trace(span.trace_id)


def _owner(span: Any, modules: tuple[ModuleType, ...]) -> ModuleType | None:
    for module in modules:
        if module.claims(span):
            return module
    return None


def _enclosing_call(span: LiveSpan, modules: tuple[ModuleType, ...]) -> Any | None:
    """The outermost enclosing span of the same provider call, if this span is nested in one."""
    outer = None
    parent_id = span.parent_id
    while parent_id:
        parent = _mlflow.span_by_id(span.trace_id, parent_id)
        if parent is None:
            break
        if _owner(parent, modules) is not None:
            outer = parent
        parent_id = parent.parent_id
    return outer


# Costs of provider calls handed to the framework span of the call that encloses them, until
# that span ends: {framework span id: [(call span id, cost, source, provider)]}.
_handed: dict[str, list[tuple[str, dict[str, Any], Any, Any]]] = {}
_FRAMEWORK_CALL_TYPES = ("LLM", "CHAT_MODEL")


def _hand_to_framework_span(span: Any, modules: tuple[ModuleType, ...]) -> bool:
    """A priced call inside a framework's span of that call (LangChain's ``ChatOpenAI``,
    pydantic-ai's ``...Model.request``, DSPy's ``LM.__call__``, the Agents SDK's ``Generation``):
    the framework span, still open, will carry the cost, and this span an empty one.

    MLflow totals a trace by the topmost span with a cost on each branch, and sums every span's
    cost in its Overview charts: with the cost on the outermost span of the call and an empty
    one below, both read each call once (as for a call traced twice, Gemini's
    ``generate_content`` around ``_generate_content``). The framework span keeps what MLflow
    wrote; only the cost, the one attribute genai_tracing owns on a call, is ours."""
    cost = span_cost(span)
    if cost is None:
        return False  # unpriced or failed: the flag stays on the call's own span
    parent_id = span.parent_id
    while parent_id:
        parent = _mlflow.span_by_id(span.trace_id, parent_id)
        if parent is None or parent.end_time_ns is not None:
            return False
        if _owner(parent, modules) is not None:
            return False
        if parent.span_type in _FRAMEWORK_CALL_TYPES and parent.get_attribute(MODEL):
            # A model call's span (a user's own LLM-type span with no model is left alone)
            # What reprice() reads off a call span goes with the cost.
            details = {key: value for key in (USAGE, COST_SOURCE, COST_PRICE, COST_FALLBACKS,
                                              MODEL_PROVIDER, MODEL)
                       if (value := span.get_attribute(key)) is not None}
            with _lock:
                _handed.setdefault(parent.span_id, []).append((span.span_id, cost, details))
            span.set_attribute(COUNTED_ON, parent.span_id)
            span.set_attribute(LLM_COST, {})
            return True
        parent_id = parent.parent_id
    return False


def _take_handed_calls(span: Any) -> bool:
    """End of a framework span that calls inside it handed their cost to: it carries their sum."""
    with _lock:
        calls = _handed.pop(span.span_id, None)
    if not calls:
        return False
    total = {k: sum((c[1][k] for c in calls), Decimal(0))
             for k in ("input_cost", "output_cost", "total_cost")}
    span.set_attribute(LLM_COST, {k: float(v) for k, v in total.items()})
    details = calls[0][2]
    if len(calls) == 1:
        for key in (USAGE, COST_SOURCE, COST_PRICE, COST_FALLBACKS):
            if key in details:
                span.set_attribute(key, details[key])
        if details.get(MODEL) and details[MODEL] != span.get_attribute(MODEL):
            # The model the call was priced under (the framework may spell it "openai/..."):
            # prices filed under either name apply when the call is repriced.
            span.set_attribute(REQUESTED_MODEL, details[MODEL])
    if not span.get_attribute(MODEL_PROVIDER) and details.get(MODEL_PROVIDER):
        span.set_attribute(MODEL_PROVIDER, details[MODEL_PROVIDER])
    return True


def _defer_to_calls_below(span: Any, state: _State) -> None:
    """A framework's span of a model call (LangChain's ``ChatOpenAI``, pydantic-ai's
    ``OpenAIChatModel.request``) over the provider call's own span: the call carries the cost,
    once.

    MLflow puts its own (LiteLLM) price on any span with usage and a model, so the framework's
    span would carry a second cost for the same call: two numbers for one call in the span tree,
    and a double count in every view that sums span costs (the Overview's cost charts do). An
    empty cost stops that price, as on the inner span of a call traced twice; the span keeps
    everything else MLflow wrote (its usage included) and names the call(s) that counted it."""
    cost = span.get_attribute(LLM_COST)
    if cost is None and not isinstance(span.get_attribute(CHAT_USAGE), dict):
        return  # nothing MLflow would price: most framework spans (chains, tools, agents)
    if cost is not None and span_cost(span) is None:
        return  # already empty
    if cost is None and not _store_would_price(span):
        return
    calls = _calls_of(span, state.modules)
    if calls:
        span.set_attribute(COUNTED_ON, calls[0] if len(calls) == 1 else calls)
        span.set_attribute(LLM_COST, {})


def _calls_of(span: Any, modules: tuple[ModuleType, ...]) -> list[str]:
    """The provider call spans that made the framework call ``span`` stands for: those under it;
    else (a framework that runs the call in another task, outside its span's context: pydantic-ai
    streams) those of the same model in its trace that began while it was open and no other span
    claimed; else such a call that is a trace of its own (see ``_orphans``)."""
    with _mlflow.open_trace(span.trace_id) as trace:
        if trace is None:
            return []
        spans = _mlflow.trace_spans(trace)
    children: dict[Any, list[Any]] = {}
    for s in spans:
        children.setdefault(s.parent_id, []).append(s)

    def is_provider_call(s: Any) -> bool:
        if s.span_id == span.span_id or s.get_attribute(COUNTED_ON):
            return False
        # A call still open (a stream being read) will be priced or flagged when it ends.
        return is_call(s) or (s.end_time_ns is None and _owner(s, modules) is not None)

    below, inside, stack = [], set(), list(children.get(span.span_id, ()))
    while stack:
        s = stack.pop()
        inside.add(s.span_id)
        if is_provider_call(s):
            below.append(s.span_id)
        else:
            stack.extend(children.get(s.span_id, ()))
    if below:
        return below
    model = _bare_model(span.get_attribute(MODEL))
    if not model:
        return []
    claimed: set[str] = set()
    for s in spans:
        if s.span_id != span.span_id and (on := s.get_attribute(COUNTED_ON)):
            claimed.update(on if isinstance(on, list) else [on])
    beside = [s.span_id for s in spans
              if s.span_id not in inside and s.span_id not in claimed and is_provider_call(s)
              and (s.start_time_ns or 0) >= (span.start_time_ns or 0)
              and _bare_model(s.get_attribute(MODEL)) == model]
    if beside:
        return beside
    orphan = _claim_orphan(model, span.start_time_ns or 0)
    return [orphan] if orphan else []


# Provider calls that are a whole trace of their own, kept briefly: a framework whose tracer runs
# in another thread (LangChain's async calls, unless ``mlflow.langchain.autolog(
# run_tracer_inline=True)``) puts its span of the call in a trace apart from the call's own.
_orphans: deque[tuple[str, str | None, int]] = deque(maxlen=256)


def _remember_orphan(span: Any) -> None:
    if span.parent_id is None and is_call(span):
        with _lock:
            _orphans.append((span.span_id, _bare_model(span.get_attribute(MODEL)),
                             span.start_time_ns or 0))


def _claim_orphan(model: str, since_ns: int) -> str | None:
    """A call of ``model``, alone in its trace, that began after ``since_ns``; claimed once."""
    with _lock:
        for item in _orphans:
            if item[1] == model and item[2] >= since_ns:
                _orphans.remove(item)
                return item[0]
    return None


def _bare_model(model: Any) -> str | None:
    """``openai/gpt-4o-mini`` and ``gpt-4o-mini`` name one model."""
    return model.rsplit("/", 1)[-1].lower() if isinstance(model, str) and model else None


def _price_span(span: LiveSpan, call: _providers.Call, state: _State) -> None:
    usage = call.usage
    if call.model and not span.get_attribute(MODEL):
        span.set_attribute(MODEL, call.model)
    if not span.get_attribute(MODEL_PROVIDER):
        span.set_attribute(MODEL_PROVIDER, call.provider)
    span.set_attribute(PROVIDER, call.provider)  # who served it, whatever MLflow wrote above
    try:
        _add_semconv(span, call)
    except Exception:
        internal_error("gen_ai attributes")
    if usage is None or usage.is_empty:
        refused = _refused_by_provider(span) or _never_sent(span, call.provider)
        if refused:
            # The provider answered with an error status (a 429, a 400, a 500): nothing was
            # generated and nothing is billed. No cost, and no "unpriced" flag either, which
            # would mark the trace's total incomplete when it is not.
            span.set_attribute(USAGE_FLAGS, ["failed"])
            span.set_attribute(FAILED_WITH, refused)
            return
        span.set_attribute(USAGE_FLAGS, ["missing"] + list(usage.flags if usage else ()))
        _mark_unpriced(span, call, "the provider reported no usage for this call",
                       price_missing=False)
        return
    # Tokens and cost fail independently: the counts are written before any price is sought.
    if usage.input_tokens is not None or usage.output_tokens is not None:
        # MLflow's own keys stay (a reported 0 included); the totals are the normalized ones.
        mlflow_usage = span.get_attribute(CHAT_USAGE)
        span.set_attribute(CHAT_USAGE, {**(mlflow_usage if isinstance(mlflow_usage, dict)
                                           else {}), **usage.token_usage_attribute()})
    span.set_attribute(USAGE, usage.breakdown_attribute())
    if usage.flags:
        span.set_attribute(USAGE_FLAGS, list(usage.flags))
    if "malformed" in usage.flags or usage.input_tokens is None or usage.output_tokens is None:
        _mark_unpriced(span, call, "the reported usage is incomplete or malformed",
                       price_missing=False)
        return
    try:
        cost, source, price = price_call(call, state.resolver, _start_time(span))
    except Unpriced as e:
        _mark_unpriced(span, call, str(e))
        return
    span.set_attribute(LLM_COST, cost.as_attribute())
    span.set_attribute(COST_SOURCE, source)
    if price is not None:
        span.set_attribute(COST_PRICE, price.describe())
    if cost.fallbacks:
        span.set_attribute(COST_FALLBACKS, list(cost.fallbacks))
    if cost.tool_costs:
        span.set_attribute(COST_TOOLS, {tool: float(amount) for tool, amount in cost.tool_costs})
    if cost.missing:
        _mark_partial(span, call, "; ".join(cost.missing))


def _mark_partial(span: LiveSpan, call: _providers.Call, reason: str) -> None:
    """The cost covers what could be priced; a fee that could not is flagged, never taken as 0.

    Flagged unpriced as well, so the trace total says it is incomplete and ``reprice()`` picks
    the call up once the fee is in the price file."""
    span.set_attribute(COST_PARTIAL, True)
    span.set_attribute(UNPRICED, True)
    span.set_attribute(UNPRICED_REASON, reason)
    key = (call.provider, call.model, "partial")
    with _lock:
        if key in _warned_unpriced:
            return
        _warned_unpriced.add(key)
    logger.warning("genai_tracing: %s call to model %r is billed in part: %s. The span is "
                   "flagged %s and its trace total is marked incomplete.", call.provider,
                   call.model, reason, COST_PARTIAL)


def _add_semconv(span: Any, call: _providers.Call) -> None:
    """OpenTelemetry's GenAI attributes for what the span records, where MLflow set none."""
    from ._endpoints import semconv_provider

    usage = call.usage
    for key, value in ((GEN_AI_PROVIDER, semconv_provider(call.provider)),
                       (GEN_AI_REQUEST_MODEL, call.requested_model or call.model),
                       (GEN_AI_RESPONSE_MODEL, call.model),
                       (GEN_AI_INPUT_TOKENS, usage.input_tokens if usage else None),
                       (GEN_AI_OUTPUT_TOKENS, usage.output_tokens if usage else None)):
        _mlflow.add_otel_attribute(span, key, value)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _start_time(span: LiveSpan) -> datetime:
    try:
        return datetime.fromtimestamp(span.start_time_ns / 1e9, tz=timezone.utc)
    except Exception:
        return _now()


def _store_would_price(span: Any) -> bool:
    """Whether MLflow would put its own price on this span (it asks LiteLLM, as the store does)."""
    usage, model = span.get_attribute(CHAT_USAGE), span.get_attribute(MODEL)
    if not isinstance(usage, dict) or not model:
        return False
    return _mlflow.mlflow_would_price(model, usage, span.get_attribute(MODEL_PROVIDER))


def _errored(span: Any) -> bool:
    status = getattr(getattr(span, "status", None), "status_code", None)
    return str(getattr(status, "value", status)) == "ERROR"


def _refused_by_provider(span: Any) -> str | None:
    """The exception type, when the call failed because the provider answered with an error.

    Timeouts and broken connections are not refusals: the provider may have done, and billed,
    the work, so such a call stays "unpriced"."""
    if not _errored(span):
        return None
    if span.get_attribute(STREAM_INCOMPLETE):
        return None  # a stream that broke after output began: the tokens so far are billed
    for event in getattr(span, "events", None) or ():
        if getattr(event, "name", None) == "exception":
            kind = str((getattr(event, "attributes", None) or {}).get("exception.type", ""))
            if any(kind.rsplit(".", 1)[-1] in m.REFUSALS for m in _providers.all_modules()):
                return kind
    return None


def _never_sent(span: Any, provider: str | None) -> str | None:
    """The exception type, when the SDK refused the call itself, before any request was sent
    (Anthropic's ``ValueError`` for a long non-streaming request, which pydantic-ai meets on
    every call and answers by streaming): nothing reached the provider, nothing is billed."""
    module = _providers.module_named(provider)
    local = getattr(module, "NOT_SENT", ())
    if not local or not _errored(span) or span.get_attribute(STREAM_INCOMPLETE):
        return None
    for event in getattr(span, "events", None) or ():
        if getattr(event, "name", None) == "exception":
            kind = str((getattr(event, "attributes", None) or {}).get("exception.type", ""))
            if kind.rsplit(".", 1)[-1] in local:
                return kind
    return None


def _mark_unpriced(span: LiveSpan, call: _providers.Call, reason: str, *,
                   price_missing: bool = True) -> None:
    if _store_would_price(span) or span.get_attribute(LLM_COST) is not None:
        # MLflow prices a span that has usage and a model but no cost attribute, with LiteLLM's
        # text rates (its store does; on Databricks its client already did, at span end):
        # exactly the wrong number this span refuses to show (image tokens as text, malformed
        # counts). Cost is the one attribute genai_tracing owns on a call span: an empty cost
        # carries no amount and stops the guess.
        span.set_attribute(LLM_COST, {})
    span.set_attribute(UNPRICED, True)
    span.set_attribute(UNPRICED_REASON, reason)
    key = (call.provider, call.model, price_missing)
    with _lock:
        if key in _warned_unpriced:
            return
        _warned_unpriced.add(key)
    if price_missing:
        logger.warning(
            "genai_tracing: %s call to model %r has no cost: %s. Its tokens are recorded and "
            "the span is flagged %s. To price it, add the model to your price file "
            "(GENAI_TRACING_PRICES or enable_tracing(prices=...)), e.g.\n"
            "  [models.%s]\n  input_per_million = ...\n  output_per_million = ...%s",
            call.provider, call.model, reason, UNPRICED, json.dumps(call.model or "<model>"),
            _deployment_hint(call))
    else:
        logger.warning(
            "genai_tracing: %s call to model %r has no cost: %s. The span is flagged %s and "
            "its trace total is marked incomplete.%s", call.provider, call.model, reason,
            UNPRICED, "" if _errored(span) else _usage_hint(call.provider))


def _deployment_hint(call: _providers.Call) -> str:
    """For a call to a named deployment: the price file can say which model it serves."""
    if not call.deployment:
        return ""
    return ("\nor, if the deployment serves a model with a known price, map it:\n"
            f"  [deployments]\n  {json.dumps(call.deployment)} = \"<model>\"")


def _usage_hint(provider: str | None) -> str:
    """What makes the provider report usage where it does not by default."""
    module = _providers.module_named(provider)
    return f" {module.USAGE_HINT}" if module is not None and module.USAGE_HINT else ""


# ---------------------------------------------------------------------------------------------
# Trace totals


def _finish_trace(trace_id: str, root: Any) -> None:
    state = _state
    for module in state.modules if state else ():
        # A provider whose spans may still wait for their call's record (LiteLLM's async calls)
        # ends them now, inside the trace, before the totals are summed.
        if (ending := getattr(module, "before_trace_end", None)) is not None:
            try:
                ending(trace_id)
            except Exception:
                internal_error(f"{module.NAME} spans at trace end")
    with _mlflow.open_trace(trace_id) as trace:
        if trace is None:
            return
        try:
            from ._attribution import annotate_trace

            annotate_trace(trace, root)
        except Exception:
            internal_error("trace attribution")
        # After attribution: a user's own tag "cost" is set by then, and the totals keep it.
        _write_totals(trace)
        setattr(trace, _FINISHED, True)


def _refresh_finished_trace(trace_id: str) -> None:
    """A call span that ends after its trace's root (a background thread) still counts."""
    with _mlflow.open_trace(trace_id) as trace:
        if trace is not None and getattr(trace, _FINISHED, False):
            _write_totals(trace)


def _write_totals(trace: Any) -> None:
    """Sum the trace's call spans on the client, so the stored total is exact and authoritative.

    The tracking store keeps trace-level cost and usage given at trace creation and does not
    re-aggregate them from span batches racing in from export threads.
    """
    totals = {"input_cost": Decimal(0), "output_cost": Decimal(0), "total_cost": Decimal(0)}
    tokens = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    cache_tokens: dict[str, int] = {}
    priced = calls = unpriced = in_part = 0
    for item in counted(_mlflow.trace_spans(trace)):
        if item.cost is not None:
            priced += 1
            for key in totals:
                totals[key] += item.cost[key]
        if item.usage is not None:
            for key in tokens:
                tokens[key] += item.usage.get(key, 0)
            for key in ("cache_read_input_tokens", "cache_creation_input_tokens"):
                if key in item.usage:
                    cache_tokens[key] = cache_tokens.get(key, 0) + item.usage[key]
        if item.is_call:
            calls += 1
            unpriced += item.unpriced
            in_part += item.unpriced and item.cost is not None
    metadata = _mlflow.trace_metadata(trace)
    if priced:
        metadata[TRACE_COST] = json.dumps({k: float(v) for k, v in totals.items()})
    if any(tokens.values()):
        metadata[TRACE_TOKEN_USAGE] = json.dumps({**tokens, **cache_tokens})
    if calls:
        metadata[TRACE_LLM_CALLS] = str(calls)
        metadata[TRACE_UNPRICED_CALLS] = str(unpriced)
        metadata[TRACE_COST_COMPLETE] = "false" if unpriced else "true"
    mark_cost_gap(trace.info.tags, calls, unpriced, in_part)
    _breakdown.write(trace)  # per (model, provider): reports by model read no spans
