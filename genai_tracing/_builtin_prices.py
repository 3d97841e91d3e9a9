"""Per-image prices that neither catalog carries, as the providers publish them.

Consulted last, after LiteLLM's map and genai-prices; a user price file overrides any of them.
A data module (``_pricing`` reads it). Keys are ``model/quality/size`` (or just the model) as the provider names them.
"""

from __future__ import annotations

SOURCE = "genai_tracing"

# USD per generated image.
PER_IMAGE: dict[str, str] = {
    # OpenAI DALL-E 3: quality/size.
    "dall-e-3/standard/1024x1024": "0.040",
    "dall-e-3/standard/1024x1792": "0.080",
    "dall-e-3/standard/1792x1024": "0.080",
    "dall-e-3/hd/1024x1024": "0.080",
    "dall-e-3/hd/1024x1792": "0.120",
    "dall-e-3/hd/1792x1024": "0.120",
    # OpenAI DALL-E 2: one quality.
    "dall-e-2/standard/1024x1024": "0.020",
    "dall-e-2/standard/512x512": "0.018",
    "dall-e-2/standard/256x256": "0.016",
    # Google Imagen 4 (Gemini API).
    "imagen-4.0-generate-001": "0.04",
    "imagen-4.0-ultra-generate-001": "0.06",
    "imagen-4.0-fast-generate-001": "0.02",
}

# USD per call of a provider's built-in tool, where neither catalog has the model's rate:
# (provider, tool) -> amount.
TOOL_FEES: dict[tuple[str, str], str] = {
    # Anthropic web search: "$10 per 1,000 searches", plus the tokens it brings in, billed as
    # input (anthropic.com/pricing, "Web search"). LiteLLM's map carries it for some Claude
    # models only (search_context_cost_per_query); this covers the rest.
    ("anthropic", "web_search"): "0.01",
}
