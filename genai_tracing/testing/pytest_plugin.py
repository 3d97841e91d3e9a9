"""pytest fixtures for testing an app's tracing: a loopback fake provider and a temporary store.

Installed with genai_tracing (entry point ``pytest11``), so a test can simply ask for them::

    def test_my_app_records_cost(fake_provider, mlflow_store):
        genai_tracing.enable_tracing()
        client = openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="test")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        trace = mlflow_store.last_trace()
        assert trace.info.cost["total_cost"] > 0
"""

from __future__ import annotations

from typing import Iterator

import pytest

from ._fakes import FakeProvider
from ._store import TemporaryStore


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    """A running fake of OpenAI, Anthropic and Gemini on 127.0.0.1 (see ``FakeProvider``)."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporaryStore]:
    """A fresh sqlite MLflow store set as the tracking URI; tracing is disabled afterwards."""
    with TemporaryStore.create(tmp_path_factory.mktemp("mlflow")) as store:
        yield store
