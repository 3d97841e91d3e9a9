"""enable_tracing()/disable_tracing(): options, precedence, idempotency, every SDK traced."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import mlflow
import pytest
from conftest import MESSAGES, anthropic_client, counts, gemini_client, llm_spans, openai_client

import genai_tracing
from genai_tracing import ConfigurationError, TracingConfig
from genai_tracing.testing import FakeProvider, FakeUsage


@pytest.fixture
def no_mlflow_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A process where the user has configured nothing in MLflow; the default store is in tmp."""
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(utils, "_tracking_uri", None)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(var, raising=False)
    yield tmp_path
    genai_tracing.disable_tracing()
    mlflow.flush_trace_async_logging()


def _processors() -> list[Any]:
    from mlflow.tracing.config import get_config

    return list(get_config().span_processors)


# --- the configuration object --------------------------------------------------------------


def test_enable_returns_a_frozen_printable_config(mlflow_store):
    config = genai_tracing.enable_tracing(experiment="checkout-dev")

    assert isinstance(config, TracingConfig)
    assert config.enabled is True
    assert config.experiment == "checkout-dev"
    assert config.tracking_uri == mlflow_store.uri
    assert set(config.providers) == {"openai", "anthropic", "gemini", "litellm"}
    assert config.experiment_id == mlflow.get_experiment_by_name("checkout-dev").experiment_id
    assert "checkout-dev" in repr(config) and "price_table" not in repr(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.experiment = "other"  # type: ignore[misc]
    assert genai_tracing.active_config() is config


def test_second_call_with_same_options_changes_nothing(mlflow_store):
    first = genai_tracing.enable_tracing(providers=["openai"])
    processors = _processors()

    second = genai_tracing.enable_tracing(providers=["openai"])

    assert second is first
    assert _processors() == processors
    assert sum(p.__name__ == "genai_tracing_span_processor" for p in processors) == 1


def test_call_with_other_options_reconfigures(mlflow_store, fake_provider):
    genai_tracing.enable_tracing(providers=["openai"], experiment="one")
    config = genai_tracing.enable_tracing(providers=["anthropic"], experiment="two")

    assert config.providers == ("anthropic",)
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    anthropic_client(fake_provider).messages.create(model="claude-sonnet-4-5", max_tokens=10,
                                                    messages=MESSAGES)
    traces = mlflow_store.traces()
    # openai autolog was turned off by the reconfiguration; only the Anthropic call is traced.
    assert [t.data.spans[0].name for t in traces] == ["Messages.create"]
    assert traces[0].info.experiment_id == config.experiment_id
    assert mlflow.get_experiment(config.experiment_id).name == "two"
    assert sum(p.__name__ == "genai_tracing_span_processor" for p in _processors()) == 1


def test_disable_undoes_everything(mlflow_store, fake_provider):
    genai_tracing.enable_tracing()
    genai_tracing.disable_tracing()

    assert genai_tracing.active_config() is None
    assert all(p.__name__ != "genai_tracing_span_processor" for p in _processors())
    import litellm

    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    litellm.completion(model="openai/gpt-4o-mini", api_base=fake_provider.openai_base_url,
                       api_key="test", messages=MESSAGES)
    assert mlflow_store.traces() == []
    assert not hasattr(litellm.completion, "__genai_tracing_original__")
    genai_tracing.disable_tracing()  # a second disable is harmless


# --- every SDK, sync and async ----------------------------------------------------------------


def _assert_llm_span(trace: Any, model: str, usage: FakeUsage) -> None:
    (span,) = llm_spans(trace)
    assert span.attributes["mlflow.llm.model"] == model
    assert counts(span.attributes["mlflow.chat.tokenUsage"]) == {
        "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens}
    assert trace.info.token_usage == span.attributes["mlflow.chat.tokenUsage"]


USAGE = FakeUsage(input_tokens=31, output_tokens=7)


def _openai(fake, asynchronous):
    client = openai_client(fake, asynchronous=asynchronous)
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES), "gpt-4o-mini"


def _anthropic(fake, asynchronous):
    client = anthropic_client(fake, asynchronous=asynchronous)
    return client.messages.create(model="claude-sonnet-4-5", max_tokens=16,
                                  messages=MESSAGES), "claude-sonnet-4-5"


def _gemini(fake, asynchronous):
    client = gemini_client(fake)
    models = client.aio.models if asynchronous else client.models
    result = models.generate_content(model="gemini-2.5-flash", contents="Say hello")
    if asynchronous:
        async def keep_client_alive():  # the client must outlive the request
            try:
                return await result
            finally:
                client  # noqa: B018
        return keep_client_alive(), "gemini-2.5-flash"
    return result, "gemini-2.5-flash"


def _litellm(fake, asynchronous):
    import litellm

    function = litellm.acompletion if asynchronous else litellm.completion
    return function(model="anthropic/claude-sonnet-4-5", api_base=fake.url, api_key="test",
                    messages=MESSAGES), "claude-sonnet-4-5"


CALLS = {"openai": _openai, "anthropic": _anthropic, "gemini": _gemini, "litellm": _litellm}


@pytest.mark.parametrize("provider", list(CALLS))
def test_each_sdk_sync_call_is_an_llm_span(provider, mlflow_store, fake_provider):
    genai_tracing.enable_tracing()
    fake_provider.usage = USAGE

    _, model = CALLS[provider](fake_provider, False)

    _assert_llm_span(mlflow_store.last_trace(), model, USAGE)


@pytest.mark.parametrize("provider", list(CALLS))
@pytest.mark.asyncio
async def test_each_sdk_async_call_is_an_llm_span(provider, mlflow_store, fake_provider):
    genai_tracing.enable_tracing()
    fake_provider.usage = USAGE

    @mlflow.trace(name="handler")
    async def handler():
        pending, model = CALLS[provider](fake_provider, True)
        await pending
        return model

    model = await handler()

    trace = mlflow_store.last_trace()
    assert trace.data.spans[0].name == "handler"  # the call is inside the caller's trace
    _assert_llm_span(trace, model, USAGE)


# --- precedence: option > environment > default ------------------------------------------------


def test_defaults(no_mlflow_settings):
    config = genai_tracing.enable_tracing()

    assert config.sources == {"enabled": "default", "tracking_uri": "default",
                              "experiment": "default", "providers": "default",
                              "prices": "default"}
    assert config.tracking_uri == mlflow.get_tracking_uri()
    assert config.experiment == "genai-tracing"
    assert mlflow.get_experiment_by_name("genai-tracing") is not None


def test_environment_beats_default(no_mlflow_settings, monkeypatch):
    uri = f"sqlite:///{no_mlflow_settings / 'env.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GENAI_TRACING_EXPERIMENT", "from-env")
    monkeypatch.setenv("GENAI_TRACING_PROVIDERS", "openai, gemini")

    config = genai_tracing.enable_tracing()

    assert (config.tracking_uri, config.experiment, config.providers) == (
        uri, "from-env", ("openai", "gemini"))
    assert config.sources["tracking_uri"] == "MLFLOW_TRACKING_URI"
    assert config.sources["experiment"] == "GENAI_TRACING_EXPERIMENT"
    assert (no_mlflow_settings / "env.db").exists()


def test_option_beats_environment(no_mlflow_settings, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{no_mlflow_settings / 'env.db'}")
    monkeypatch.setenv("GENAI_TRACING_EXPERIMENT", "from-env")
    monkeypatch.setenv("GENAI_TRACING_PROVIDERS", "gemini")
    monkeypatch.setenv("GENAI_TRACING_ENABLED", "0")
    uri = f"sqlite:///{no_mlflow_settings / 'arg.db'}"

    config = genai_tracing.enable_tracing(tracking_uri=uri, experiment="from-arg",
                                          providers=["anthropic"], enabled=True)

    assert (config.enabled, config.tracking_uri, config.experiment, config.providers) == (
        True, uri, "from-arg", ("anthropic",))
    assert mlflow.get_tracking_uri() == uri
    assert set(config.sources.values()) == {"argument", "default"}  # prices: default


def test_an_explicit_mlflow_setting_is_never_overridden(no_mlflow_settings, monkeypatch):
    mine = f"sqlite:///{no_mlflow_settings / 'mine.db'}"
    mlflow.set_tracking_uri(mine)
    mlflow.set_experiment("my-own-experiment")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{no_mlflow_settings / 'env.db'}")

    config = genai_tracing.enable_tracing()

    assert config.tracking_uri == mine and config.sources["tracking_uri"] == "mlflow"
    assert config.experiment is None and config.sources["experiment"] == "mlflow"
    assert mlflow.get_experiment(config.experiment_id).name == "my-own-experiment"


@pytest.mark.parametrize("value", ["0", "false", "No", "OFF"])
def test_disabled_by_environment_patches_and_writes_nothing(value, mlflow_store, fake_provider,
                                                            monkeypatch, caplog):
    monkeypatch.setenv("GENAI_TRACING_ENABLED", value)
    caplog.set_level("INFO", logger="genai_tracing")

    config = genai_tracing.enable_tracing()
    genai_tracing.enable_tracing()

    assert config.enabled is False and config.providers == ()
    assert genai_tracing.active_config() is None
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert mlflow_store.traces() == []
    assert all(p.__name__ != "genai_tracing_span_processor" for p in _processors())
    said = [r for r in caplog.records if "disabled" in r.getMessage()]
    assert len(said) <= 1  # logged once per process, never per call


# --- bad configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "env", "names"), [
    ({"providers": ["cohere"]}, {}, ["providers", "cohere", "openai"]),
    ({}, {"GENAI_TRACING_PROVIDERS": "openai,mistral"}, ["GENAI_TRACING_PROVIDERS", "mistral"]),
    ({"tracking_uri": "ftp://example.invalid/x"}, {}, ["tracking_uri", "ftp", "sqlite:///"]),
    ({"tracking_uri": "http://:5000"}, {}, ["tracking_uri", "host"]),
    ({}, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:port"}, ["MLFLOW_TRACKING_URI", "port"]),
    ({"enabled": "yes"}, {}, ["enabled", "True or False"]),
    ({}, {"GENAI_TRACING_ENABLED": "maybe"}, ["GENAI_TRACING_ENABLED", "maybe", "0/false"]),
    ({"experiment": "  "}, {}, ["experiment", "non-empty"]),
    ({"prices": "/nonexistent/prices.toml"}, {}, ["prices", "/nonexistent/prices.toml"]),
])
def test_bad_values_raise_one_clear_error(kwargs, env, names, no_mlflow_settings, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    with pytest.raises(ConfigurationError) as raised:
        genai_tracing.enable_tracing(**kwargs)

    message = str(raised.value)
    for name in names:
        assert name in message
    assert "Fix:" in message
    assert genai_tracing.active_config() is None


def test_asking_for_a_provider_that_is_not_installed_names_the_pip_package(tmp_path):
    # A real interpreter where google-genai cannot be imported, not a patched lookup.
    script = textwrap.dedent("""
        import importlib.abc, sys
        class Hide(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "google.genai" or name.startswith("google.genai."):
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Hide())
        import genai_tracing
        assert "gemini" not in genai_tracing._config.installed_providers()
        try:
            genai_tracing.enable_tracing(providers=["gemini"], tracking_uri="sqlite:///x.db")
        except genai_tracing.ConfigurationError as e:
            print("ERROR", e)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert "ERROR providers='gemini'" in out.stdout, out.stderr
    assert "pip install google-genai" in out.stdout


# --- offline by design -----------------------------------------------------------------------

NO_NETWORK = """
import socket, sys
attempts = []
real_connect = socket.socket.connect
real_getaddrinfo = socket.getaddrinfo
LOOPBACK = ("127.0.0.1", "::1", "localhost")
def guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family in (socket.AF_INET, socket.AF_INET6) and host not in LOOPBACK:
        attempts.append(("connect", host))
        raise OSError(f"network disabled by test: {host}")
    return real_connect(self, address)
def guarded_getaddrinfo(host, *args, **kwargs):
    if host not in LOOPBACK and host is not None:
        attempts.append(("resolve", host))
        raise socket.gaierror(f"network disabled by test: {host}")
    return real_getaddrinfo(host, *args, **kwargs)
socket.socket.connect = guarded_connect
socket.getaddrinfo = guarded_getaddrinfo
"""


def test_import_and_enable_make_no_network_call(tmp_path):
    script = NO_NETWORK + textwrap.dedent("""
        import genai_tracing
        config = genai_tracing.enable_tracing(tracking_uri="sqlite:///offline.db")
        assert set(config.providers) == {"openai", "anthropic", "gemini", "litellm"}, config
        import litellm  # already imported by enable_tracing, with the bundled price map
        assert litellm.model_cost["gpt-4o-mini"]["input_cost_per_token"] > 0
        print("ATTEMPTS", attempts)
    """)
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("LITELLM_LOCAL_MODEL_COST_MAP", "MLFLOW_TRACKING_URI")}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=180, env=env)
    assert "ATTEMPTS []" in out.stdout, out.stdout + out.stderr


def test_the_no_network_guard_itself_catches_a_connect(tmp_path):
    script = NO_NETWORK + textwrap.dedent("""
        for attempt in (lambda: socket.socket().connect(("192.0.2.1", 80)),
                        lambda: socket.create_connection(("example.invalid", 80), timeout=1)):
            try:
                attempt()
            except OSError:
                pass
        print("ATTEMPTS", attempts)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert "ATTEMPTS [('connect', '192.0.2.1'), ('resolve', 'example.invalid')]" in out.stdout, out.stdout + out.stderr


def test_import_is_cheap(tmp_path):
    script = ("import sys, genai_tracing; heavy = {'mlflow', 'openai', 'anthropic', 'litellm', "
              "'google.genai'} & set(sys.modules); print('HEAVY', sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


# --- public surface --------------------------------------------------------------------------


def test_public_api():
    assert sorted(genai_tracing.__all__) == sorted([
        "Budget", "BudgetExceeded", "ConfigurationError", "CostEstimate", "RepriceResult",
        "TracingConfig", "active_config", "attribute", "check_budget", "clear_budgets",
        "cost_chart", "cost_report", "disable_tracing", "dropped_traces", "enable_tracing",
        "estimate_cost", "latency_report", "reprice", "set_budget",
    ])
    for name in genai_tracing.__all__:
        assert getattr(genai_tracing, name) is not None
    import genai_tracing.testing as testing

    assert sorted(testing.__all__) == ["FakeProvider", "FakeUsage", "RecordedRequest",
                                       "TemporaryStore"]


def test_changing_the_tracking_uri_after_enable_keeps_costs(mlflow_store, fake_provider,
                                                            tmp_path):
    # MLflow resets its tracing configuration (span processors included) on set_tracking_uri.
    genai_tracing.enable_tracing(providers=["openai"])
    other = f"sqlite:///{tmp_path / 'other.db'}"
    mlflow.set_tracking_uri(other)
    mlflow.set_experiment("other")

    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    mlflow_store.flush()
    trace = mlflow.MlflowClient(other).get_trace(mlflow.get_last_active_trace_id())
    (span,) = llm_spans(trace)
    assert span.attributes["genai_tracing.cost.source"] == "litellm"


def test_a_module_autolog_looks_for_on_every_call_fails_the_same_way_only_faster(
        mlflow_store, fake_provider):
    """MLflow's openai autolog imports ``openai.resources.beta.chat`` on each call; openai 2+
    has none. genai_tracing records the miss so the import fails at once, with the same error,
    and the call's span type is unchanged; disable_tracing() leaves ``sys.modules`` as it was."""
    import importlib

    name = "openai.resources.beta.chat"
    if importlib.util.find_spec("openai.resources.beta") is None or \
            importlib.util.find_spec(name) is not None:
        pytest.skip("this openai version has the module, or not its parent")
    assert name not in sys.modules
    genai_tracing.enable_tracing(providers=["openai"])
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"{name}.completions")
    openai_client(fake_provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (span,) = llm_spans(mlflow_store.last_trace())
    assert span.span_type == "CHAT_MODEL"
    genai_tracing.disable_tracing()
    assert name not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"{name}.completions")


def test_the_experiment_is_set_when_another_process_creates_it_first(
        no_mlflow_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started together race to create the experiment. MLflow's set_experiment() returns
    the one another process created between its lookup and its create without making it active,
    so without a second set every trace of the losing worker went to the default experiment."""
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    uri = f"sqlite:///{no_mlflow_settings / 'mlflow.db'}"
    create = TrackingServiceClient.create_experiment

    def another_process_won(self: Any, name: str, *args: Any, **kwargs: Any) -> str:
        monkeypatch.setattr(TrackingServiceClient, "create_experiment", create)
        create(TrackingServiceClient(uri), name)  # the other worker's create lands first
        return create(self, name, *args, **kwargs)  # this one: RESOURCE_ALREADY_EXISTS

    monkeypatch.setattr(TrackingServiceClient, "create_experiment", another_process_won)
    config = genai_tracing.enable_tracing(tracking_uri=uri, experiment="raced")
    experiment = mlflow.MlflowClient(uri).get_experiment_by_name("raced")
    assert config.experiment_id == experiment.experiment_id
    with FakeProvider() as fake:
        openai_client(fake).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    mlflow.flush_trace_async_logging()
    trace = mlflow.get_trace(mlflow.get_last_active_trace_id())
    assert trace.info.experiment_id == experiment.experiment_id
