"""An image-generation backend whose every request is traced, priced and attributed to its user.

    pip install -e . fastapi uvicorn
    uvicorn app:app --app-dir examples/image_service            # a local fake Gemini, no key
    GEMINI_API_KEY=... uvicorn app:app --app-dir examples/image_service   # the real Gemini API

    curl -s localhost:8000/images -H 'content-type: application/json' \\
         -d '{"email": "ana@example.com", "prompt": "a lighthouse at dawn", "aspect_ratio": "16:9"}'

``POST /images`` takes the user's email, a prompt and an aspect ratio, asks a Gemini image model
for one picture and returns it base64-encoded. A dependency wraps each request in
``genai_tracing.attribute(user=email)``, so the request's trace carries the user, and
``cost_report(by="user")`` or ``genai-tracing report --by user`` show who spends what. MLflow
writes the trace in the background, so the response never waits for the tracking store.
"""

from __future__ import annotations

import base64
import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Literal

import mlflow
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

import genai_tracing

MODEL = os.environ.get("IMAGE_MODEL", "gemini-2.5-flash-image")
AspectRatio = Literal["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]


class ImageRequest(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    prompt: str = Field(min_length=1, max_length=4000)
    aspect_ratio: AspectRatio = "1:1"


class ImageResponse(BaseModel):
    image_base64: str
    mime_type: str
    model: str
    trace_id: str | None  # look the request up in MLflow: mlflow.get_trace(trace_id)


async def attributed(request: ImageRequest) -> AsyncIterator[ImageRequest]:
    """Every trace started while serving this request belongs to the requesting user."""
    async with genai_tracing.attribute(user=request.email, feature="images",
                                       aspect_ratio=request.aspect_ratio):
        yield request


def gemini_client(base_url: str | None = None) -> Any:
    """The real API with GEMINI_API_KEY; otherwise a client for the fake at ``base_url``."""
    from google import genai
    from google.genai import types

    if base_url is None:
        return genai.Client(api_key=os.environ["GEMINI_API_KEY"])
    return genai.Client(api_key="not-needed", http_options=types.HttpOptions(
        base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1)))


def create_app(*, client: Any = None, prices: Any = None, experiment: str | None = None
               ) -> FastAPI:
    """The app; ``client`` is a ``google.genai.Client`` (default: real API or a local fake)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        genai_tracing.enable_tracing(prices=prices, experiment=experiment)
        fake = None
        gemini = client
        if gemini is None and os.environ.get("GEMINI_API_KEY"):
            gemini = gemini_client()
        elif gemini is None:
            from genai_tracing.testing import FakeProvider, FakeUsage

            # What Gemini reports for one 1024x1024 picture: 1290 image tokens out.
            fake = FakeProvider(usage=FakeUsage(input_tokens=12, output_tokens=1290,
                                                image_output_tokens=1290)).start()
            gemini = gemini_client(fake.gemini_base_url)
        app.state.gemini = gemini
        try:
            yield
        finally:
            if fake is not None:
                fake.stop()

    app = FastAPI(title="Image service", lifespan=lifespan)

    @mlflow.trace(name="generate_image", span_type="CHAIN")
    async def generate_image(prompt: str, aspect_ratio: str) -> dict[str, Any]:
        from google.genai import types

        response = await app.state.gemini.aio.models.generate_content(
            model=MODEL, contents=prompt, config=types.GenerateContentConfig(
                response_modalities=["IMAGE"],
                image_config=types.ImageConfig(aspect_ratio=aspect_ratio)))
        for candidate in response.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.inline_data is not None and part.inline_data.data:
                    return {"data": part.inline_data.data,
                            "mime_type": part.inline_data.mime_type or "image/png",
                            "trace_id": mlflow.get_active_trace_id()}
        raise HTTPException(502, "the model returned no image; try another prompt")

    @app.post("/images", response_model=ImageResponse)
    async def create_image(request: ImageRequest = Depends(attributed)) -> ImageResponse:
        image = await generate_image(request.prompt, request.aspect_ratio)
        return ImageResponse(image_base64=base64.b64encode(image["data"]).decode(),
                             mime_type=image["mime_type"], model=MODEL,
                             trace_id=image["trace_id"])

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


app = create_app()
