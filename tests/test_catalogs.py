"""Fresh catalogs without network at run time: ``genai-tracing prices`` lists the catalogs in use;
``genai-tracing prices update`` fetches a price map (here from a loopback HTTP server, never the
internet) into a cache that later runs price from ahead of LiteLLM's bundled map; an old map gets
one warning naming the update command."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

import genai_tracing
from genai_tracing import _catalogs
from genai_tracing.cli import main

M = Decimal(1_000_000)
# A map in LiteLLM's format: one model no bundled map knows, and gpt-4o-mini at a changed price.
SERVED = {
    "acme-fresh-model": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06,
                         "litellm_provider": "openai", "mode": "chat"},
    "gpt-4o-mini": {"input_cost_per_token": 1e-07, "output_cost_per_token": 4e-07,
                    "litellm_provider": "openai", "mode": "chat"},
}


class _Handler(BaseHTTPRequestHandler):
    body = json.dumps(SERVED).encode()
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Handler.requests.append(self.path)
        if self.path == "/prices.json":
            status, body = 200, self.body
        elif self.path == "/not-json":
            status, body = 200, b"<html>rate limited</html>"
        else:
            status, body = 404, b"not found"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def price_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.requests = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_TRACING_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_catalogs, "_warned_stale", False)
    return tmp_path / "cache" / "litellm_model_prices.json"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def test_prices_update_fetches_the_map_that_later_lookups_use(price_server, cache, monkeypatch):
    before = genai_tracing.estimate_cost("acme-fresh-model", input_tokens=1000, output_tokens=100)
    assert before.total_cost is None                                 # no catalog knows it yet
    monkeypatch.setenv("GENAI_TRACING_PRICES_URL", f"{price_server}/prices.json")

    code, out, err = cli("prices", "update")

    assert (code, err) == (0, "") and _Handler.requests == ["/prices.json"]
    assert f"fetched 2 entries of LiteLLM's price map into {cache}" in out
    stored = json.loads(cache.read_text())
    assert stored["models"] == SERVED and stored["url"] == f"{price_server}/prices.json"
    fresh = genai_tracing.estimate_cost("acme-fresh-model", input_tokens=1000, output_tokens=100)
    # 1000 * 2e-6 + 100 * 8e-6 = 0.002 + 0.0008
    assert (fresh.total_cost, fresh.source) == (1000 * 2 * Decimal("1e-6")
                                                + 100 * 8 * Decimal("1e-6"), "litellm")
    assert fresh.price["origin"] == str(cache)
    # Ahead of the bundled map: gpt-4o-mini at the fetched price, 1000 * 0.1 + 100 * 0.4 per 1M.
    mini = genai_tracing.estimate_cost("gpt-4o-mini", input_tokens=1000, output_tokens=100)
    assert mini.total_cost == (1000 * Decimal("0.1") + 100 * Decimal("0.4")) / M
    code, out, _ = cli("price", "gpt-4o-mini")
    assert code == 0 and f"LiteLLM's price map fetched into {cache}" in out

    code, out, _ = cli("prices")
    assert code == 0
    lines = out.splitlines()
    fetched = next(i for i, line in enumerate(lines) if "LiteLLM (fetched)" in line)
    bundled = next(i for i, line in enumerate(lines) if "LiteLLM (bundled)" in line)
    assert fetched < bundled and "2 entries, fetched " in lines[fetched]
    assert "(0 days ago)" in lines[fetched] and "genai-prices" in out


def test_prices_update_failures_keep_the_old_cache(price_server, cache, monkeypatch):
    for path, problem in (("/missing", "could not be fetched"),
                          ("/not-json", "did not return JSON")):
        code, _, err = cli("prices", "update", "--url", f"{price_server}{path}")
        assert code == 2 and problem in err
    assert not cache.exists()
    # Nothing listens on port 9 of the loopback: refused at once.
    code, _, err = cli("prices", "update", "--url", "http://127.0.0.1:9/prices.json")
    assert code == 2 and "could not be fetched" in err


def test_an_old_map_gets_one_warning_naming_the_update_command(cache, caplog, mlflow_store,
                                                               monkeypatch):
    cache.parent.mkdir(parents=True)
    old = datetime.now(timezone.utc) - timedelta(days=45)
    cache.write_text(json.dumps({"fetched_at": old.isoformat(), "url": "http://example.invalid",
                                 "models": SERVED}))
    monkeypatch.setenv("GENAI_TRACING_CATALOG_MAX_AGE_DAYS", "30")
    caplog.set_level(logging.WARNING, logger="genai_tracing")

    genai_tracing.enable_tracing()
    genai_tracing.enable_tracing(experiment="other")

    stale = [r.getMessage() for r in caplog.records if "price map in use" in r.getMessage()]
    assert len(stale) == 1
    assert "fetched 45 days ago" in stale[0] and "genai-tracing prices update" in stale[0]

    monkeypatch.setenv("GENAI_TRACING_CATALOG_MAX_AGE_DAYS", "soon")
    with pytest.raises(genai_tracing.ConfigurationError, match="is not a number of days"):
        genai_tracing.enable_tracing(experiment="third")


def test_a_fresh_map_gets_no_warning(cache, caplog, mlflow_store):
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"fetched_at": datetime.now(timezone.utc).isoformat(),
                                 "url": "http://example.invalid", "models": SERVED}))
    caplog.set_level(logging.WARNING, logger="genai_tracing")
    genai_tracing.enable_tracing()
    assert not [r for r in caplog.records if "price map in use" in r.getMessage()]
