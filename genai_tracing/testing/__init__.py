"""Test helpers: loopback fakes of the OpenAI, Anthropic and Gemini HTTP APIs, and a throwaway
MLflow store. The real SDK clients talk to the fakes over HTTP; nothing mocks SDK objects.

Also installed as a pytest plugin with the fixtures ``fake_provider`` and ``mlflow_store``.
"""

from __future__ import annotations

from ._fakes import FakeProvider, FakeUsage, RecordedRequest
from ._store import TemporaryStore

__all__ = ["FakeProvider", "FakeUsage", "RecordedRequest", "TemporaryStore"]
