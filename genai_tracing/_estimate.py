"""``estimate_cost()``: the span pricing engine, callable from a notebook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Mapping

from ._money import normalized
from ._usage import Usage


@dataclass(frozen=True)
class CostEstimate:
    """What a call would cost, and which price says so.

    Money is ``Decimal`` (USD). When no price is known the costs are ``None`` and
    ``unpriced_reason`` says why: an unknown price is never reported as 0.
    """

    model: str
    input_cost: Decimal | None
    output_cost: Decimal | None
    source: str | None
    price: Mapping[str, Any] | None = None
    fallbacks: tuple[str, ...] = ()
    unpriced_reason: str | None = None

    @property
    def total_cost(self) -> Decimal | None:
        if self.input_cost is None or self.output_cost is None:
            return None
        return self.input_cost + self.output_cost


def estimate_cost(
    model: str,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
    image_input_tokens: int = 0,
    image_output_tokens: int = 0,
    images: int = 0,
    audio_input_tokens: int = 0,
    cached_audio_input_tokens: int = 0,
    audio_output_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    service_tier: str | None = None,
    tool_calls: Mapping[str, int] | None = None,
    provider: str | None = None,
    prices: str | Mapping[str, Any] | None = None,
    when: datetime | None = None,
) -> CostEstimate:
    """Price a call the way a traced span is priced: same precedence, same billing rules.

    Token counts follow the span's usage model: ``input_tokens`` includes cached, cache-written,
    image and audio input; ``output_tokens`` includes reasoning, image and audio output.
    ``cached_audio_input_tokens`` is the audio part of ``cached_input_tokens``,
    ``cache_write_1h_tokens`` the part of ``cache_write_tokens`` written for an hour.
    ``service_tier`` is the tier that bills the call (``"flex"``, ``"priority"``...; ``None`` or
    ``"default"`` is the standard one) and ``tool_calls`` counts built-in tool calls billed per
    call (``{"web_search": 2}``). ``provider`` is who serves the call (``"azure"``,
    ``"bedrock"``, ``"vertex_ai"``...: their own prices apply). Prices come from ``prices`` (a
    file path or mapping) if given, else from the prices ``enable_tracing()`` loaded, else from
    ``GENAI_TRACING_PRICES``, then the catalogs::

        >>> est = genai_tracing.estimate_cost("gpt-4o-mini", input_tokens=1000, output_tokens=200)
        >>> est.total_cost, est.source
        (Decimal('0.00027'), 'litellm')

    Raises:
        ConfigurationError: ``prices`` (or ``GENAI_TRACING_PRICES``) cannot be read.
        ValueError: a token or tool count is negative, or ``tool_calls`` is not a mapping of
            tool names to counts.
    """
    from ._config import active_config
    from ._pricing import PriceResolver, Unpriced, active_resolver, load_price_table, price_call
    from .providers import Call

    if prices is not None or active_config() is None:
        resolver = PriceResolver(load_price_table(prices)[0])
    else:
        resolver = active_resolver()
    from ._usage import billed_tier

    counts = dict(input_tokens=input_tokens, output_tokens=output_tokens,
                  cached_input_tokens=cached_input_tokens, cache_write_tokens=cache_write_tokens,
                  reasoning_tokens=reasoning_tokens, image_input_tokens=image_input_tokens,
                  image_output_tokens=image_output_tokens, images=images,
                  audio_input_tokens=audio_input_tokens,
                  cached_audio_input_tokens=cached_audio_input_tokens,
                  audio_output_tokens=audio_output_tokens,
                  cache_write_1h_tokens=cache_write_1h_tokens)
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"estimate_cost: {name}={value!r} must be a count (an int >= 0)")
    tools = dict(tool_calls) if isinstance(tool_calls, Mapping) else tool_calls or {}
    if not isinstance(tools, dict) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
               for k, v in tools.items()):
        raise ValueError(f"estimate_cost: tool_calls={tool_calls!r} must map tool names to "
                         'counts, e.g. {"web_search": 2}')
    usage = Usage(**counts, service_tier=billed_tier(service_tier), tool_calls=tools)
    try:
        cost, source, price = price_call(Call(provider, model, usage), resolver, when)
    except Unpriced as e:
        return CostEstimate(model, None, None, None, unpriced_reason=str(e))
    return CostEstimate(model, normalized(cost.input_cost), normalized(cost.output_cost), source,
                        price.describe(full=True) if price else None, cost.fallbacks)
