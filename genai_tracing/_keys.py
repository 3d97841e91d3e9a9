"""Every attribute and metadata key genai_tracing reads or writes, in one leaf module.

The write side (the span processor, our own spans) and the read side (reports, budgets, runs,
the CLI) both import from here, and this module imports nothing of the library's.
"""

from __future__ import annotations

# MLflow's own keys (mlflow/tracing/constant.py): the UI, trace.info and the Overview read them.
SPAN_INPUTS = "mlflow.spanInputs"
SPAN_OUTPUTS = "mlflow.spanOutputs"
START_TIME_NS = "mlflow.spanStartTimeNs"
CHAT_USAGE = "mlflow.chat.tokenUsage"
LLM_COST = "mlflow.llm.cost"
MODEL = "mlflow.llm.model"
MODEL_PROVIDER = "mlflow.llm.provider"
MESSAGE_FORMAT = "mlflow.message.format"
TRACE_COST = "mlflow.trace.cost"
TRACE_TOKEN_USAGE = "mlflow.trace.tokenUsage"
TRACE_USER = "mlflow.trace.user"
TRACE_SESSION = "mlflow.trace.session"

# Ours, on a provider call's span.
CALL = "genai_tracing.call"                    # on spans genai_tracing itself makes: the provider
USAGE = "genai_tracing.usage"                  # the normalized usage breakdown
USAGE_FLAGS = "genai_tracing.usage.flags"
COST_SOURCE = "genai_tracing.cost.source"
COST_PRICE = "genai_tracing.cost.price"
COST_FALLBACKS = "genai_tracing.cost.fallbacks"
COST_TOOLS = "genai_tracing.cost.tools"          # USD of each built-in tool's fees
COST_PARTIAL = "genai_tracing.cost.partial"      # the cost leaves out a fee it could not price
UNPRICED = "genai_tracing.cost.unpriced"
UNPRICED_REASON = "genai_tracing.cost.unpriced_reason"
COUNTED_ON = "genai_tracing.counted_on"        # an inner span of a call counted on another span
FAILED_WITH = "genai_tracing.failed_with"
STREAM_INCOMPLETE = "genai_tracing.stream.incomplete"
SPAN_ATTRIBUTION = "genai_tracing.attribution"
REQUESTED_MODEL = "genai_tracing.requested_model"   # the model a call asked for, as written
PROVIDER = "genai_tracing.provider"            # the provider that served the call (see _endpoints)
ENDPOINT = "genai_tracing.endpoint"            # {"url", "client", "deployment"}: where it went

# OpenTelemetry GenAI semantic conventions, added beside MLflow's keys for other backends.
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"

# Ours, in trace metadata.
TRACE_LLM_CALLS = "genai_tracing.llm_calls"
TRACE_UNPRICED_CALLS = "genai_tracing.unpriced_calls"
# How many per-(model, provider) entries follow under "<this key>.<i>" (see _breakdown).
TRACE_BY_MODEL = "genai_tracing.by_model"
TRACE_COST_COMPLETE = "genai_tracing.cost.complete"
LATENCY_MS = "genai_tracing.latency_ms"
PROMPT_CHARS = "genai_tracing.prompt_chars"

# Ours, in trace tags (the mutable part of a stored trace): what reprice() recorded.
TRACE_REPRICED_COST = "genai_tracing.repriced.cost"        # {"total_cost": "0.00021"}
TRACE_REPRICED_CALLS = "genai_tracing.repriced.calls"      # {span_id: "total cost"}
TRACE_REPRICED_UNPRICED = "genai_tracing.repriced.unpriced_calls"
TRACE_REPRICED_SOURCE = "genai_tracing.repriced.source"
TRACE_REPRICED_AT = "genai_tracing.repriced.at"
