"""``enable_tracing()`` / ``disable_tracing()``: autolog every provider, install the span processor."""

from __future__ import annotations

import importlib
import logging
import threading
import time
from dataclasses import replace
from typing import Any, Iterable, Mapping

from . import _config
from ._config import PROVIDERS, TracingConfig, active_config
from ._guard import guarded, logger

_lock = threading.RLock()
_autologged: tuple[str, ...] = ()
_said_disabled = False
# The (tracking URI, experiment id) enable_tracing() itself set, told apart from a user's choice.
_our_experiment: tuple[str, str] | None = None


def enable_tracing(
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    providers: Iterable[str] | None = None,
    enabled: bool | None = None,
    prices: str | Mapping[str, Any] | None = None,
    budgets: Iterable[Any] | None = None,
    log_runs: bool | None = None,
) -> TracingConfig:
    """Trace every installed provider SDK into MLflow, with tokens and cost on each call.

    Each option falls back to an environment variable, then to a default; a second call with
    the same options changes nothing, a call with other options reconfigures::

        import genai_tracing
        config = genai_tracing.enable_tracing(experiment="my-app-dev")
        print(config)   # TracingConfig(enabled=True, tracking_uri='sqlite:///mlflow.db', ...)

    ``budgets`` takes ``Budget`` objects or mappings of ``set_budget()``'s options and replaces
    the budgets a previous ``enable_tracing()`` set (``None`` keeps them). ``log_runs=True`` (or
    ``GENAI_TRACING_LOG_RUNS=1``) writes one MLflow run per request, from a background thread.

    Raises:
        ConfigurationError: an option (or its environment variable) has a value that cannot work.
    """
    global _said_disabled
    with _lock:
        is_enabled, enabled_source = _config.resolve_enabled(enabled)
        if not is_enabled:
            if active_config() is not None:
                _teardown()
            if not _said_disabled:
                logger.info("genai_tracing is disabled (%s); no provider SDK is traced.",
                            enabled_source)
                _said_disabled = True
            return TracingConfig(enabled=False, tracking_uri=tracking_uri, experiment=experiment,
                                 providers=(), sources={"enabled": enabled_source})

        provider_names, providers_source = _config.resolve_providers(providers)
        uri, uri_source = _config.resolve_tracking_uri(tracking_uri)
        experiment_name, experiment_source = _config.resolve_experiment(
            experiment, uri, ours=_our_experiment[1] if _our_experiment and _our_experiment[0] == uri
            else None)
        from ._pricing import load_price_table

        table, prices_label, prices_source = load_price_table(prices)
        from . import _catalogs

        _catalogs.warn_if_stale()  # reads the fetched price map, if any, now: never the network
        from . import _budgets, _runs

        budget_list = _budgets.parse(budgets) if budgets is not None else None
        runs_on, _ = _runs.resolve(log_runs)
        wanted = TracingConfig(
            enabled=True,
            tracking_uri=uri,
            experiment=experiment_name,
            providers=provider_names,
            prices=prices_label,
            sources={"enabled": enabled_source, "tracking_uri": uri_source,
                     "experiment": experiment_source, "providers": providers_source,
                     "prices": prices_source},
            price_table=table,
            prices_fingerprint=table.fingerprint,
        )
        active = active_config()
        if active is None or not _same_request(active, wanted):
            if active is not None:
                _teardown()
            active = _setup(wanted)
            _config.set_active(active)
        _budgets.configure(budget_list)
        _runs.configure(runs_on)
        return active


def disable_tracing() -> None:
    """Undo ``enable_tracing()``: autolog off for the providers it turned on, processor removed.

    Example::

        genai_tracing.disable_tracing()
    """
    with _lock:
        if active_config() is not None:
            _teardown()


def _same_request(active: TracingConfig, wanted: TracingConfig) -> bool:
    # experiment_id is an outcome of set-up, not part of what the caller asked for.
    return replace(active, experiment_id=None) == wanted


def _setup(config: TracingConfig) -> TracingConfig:
    global _autologged, _retries
    _retries += 1
    import mlflow

    from . import _processor

    # Before the first store call: a tracking server that is down must not hold up start-up or
    # exit for minutes (MLflow retries each request with backoff for ~4 minutes by default).
    from . import _export

    _export.harden(config)
    # Everything the export thread would import lazily is imported here, in the caller's thread:
    # a half-imported module (httpx via litellm) seen from another thread breaks user calls.
    _processor.preload(config)
    if config.sources.get("tracking_uri") == "argument":
        mlflow.set_tracking_uri(config.tracking_uri)
    from . import _env_experiment

    # MLflow would otherwise look up MLFLOW_EXPERIMENT_NAME/_ID at every trace start.
    _env_experiment.install()
    experiment_id = _set_experiment(config)

    from . import providers

    autologged = []
    for name, module in zip(config.providers, providers.load(config.providers)):
        flavor = PROVIDERS[name].autolog
        with guarded(f"{name} tracing on"):
            if flavor is not None:
                importlib.import_module(f"mlflow.{flavor}").autolog(log_traces=True, silent=True)
            if hasattr(module, "patch"):
                module.patch()
            autologged.append(name)
    _autologged = tuple(autologged)
    with guarded("dspy tracing on"):
        from . import _dspy

        _dspy.enable()
    _processor.install(config)
    logger.debug("genai_tracing enabled: %s", config)
    return replace(config, experiment_id=experiment_id)


def _set_experiment(config: TracingConfig) -> str | None:
    global _our_experiment
    import mlflow

    from . import _env_experiment

    try:
        if config.experiment is None:
            from ._mlflow import current_experiment_id

            found = current_experiment_id()
            return None if _env_experiment.failing() else found
        experiment_id = mlflow.set_experiment(config.experiment).experiment_id
        from ._mlflow import chosen_experiment_id

        if chosen_experiment_id() != experiment_id:
            # MLflow returns the experiment without making it active when another process
            # created it between its lookup and its create (the RESOURCE_ALREADY_EXISTS branch
            # of set_experiment): by id it is set for sure, else traces go to the default one.
            mlflow.set_experiment(experiment_id=experiment_id)
        _our_experiment = (config.tracking_uri, experiment_id)
        return experiment_id
    except Exception as e:  # an unreachable store must not stop the app from starting
        _env_experiment.unreachable()
        logger.warning("genai_tracing: could not set experiment %s on %s (%s); tracing stays on, "
                       "traces are exported when the store answers, and the experiment is set "
                       "then.", repr(config.experiment) if config.experiment is not None
                       else "(MLflow's own choice)", config.tracking_uri, e,
                       exc_info=logger.isEnabledFor(logging.DEBUG))
        if config.experiment is not None:
            _retry_experiment_later(config)
        return None


_retries = 0  # bumped by every enable/disable: a retry thread of an older setup stops


def _retry_experiment_later(config: TracingConfig) -> None:
    """Set the experiment from a background thread once the store answers.

    Until then MLflow files traces under its default experiment; from then on they go to the
    configured one. Never overrides an experiment the user (or a later enable) set meanwhile.
    """
    generation = _retries

    def retry() -> None:
        global _our_experiment
        import mlflow

        from ._mlflow import chosen_experiment_id

        wait = 1.0
        while True:
            time.sleep(wait)
            wait = min(wait * 2, 60.0)
            with _lock:
                if generation != _retries or active_config() is None:
                    return
                if chosen_experiment_id() is not None or \
                        mlflow.get_tracking_uri() != config.tracking_uri:
                    return  # someone chose an experiment or a store meanwhile: theirs stands
            try:
                client = mlflow.MlflowClient(config.tracking_uri)
                found = client.get_experiment_by_name(config.experiment)
                experiment_id = found.experiment_id if found else \
                    client.create_experiment(config.experiment)
            except Exception:
                logger.debug("genai_tracing: experiment still not set", exc_info=True)
                continue
            with _lock:
                if generation != _retries or active_config() is None or \
                        chosen_experiment_id() is not None:
                    return
                mlflow.set_experiment(experiment_id=experiment_id)
                _our_experiment = (config.tracking_uri, experiment_id)
            logger.warning("genai_tracing: the tracking store answers again; traces go to "
                           "experiment %r (%s) from now on.", config.experiment, experiment_id)
            return

    threading.Thread(target=retry, name="genai-tracing-experiment", daemon=True).start()


def _teardown() -> None:
    global _autologged, _retries
    _retries += 1
    from . import _processor

    _processor.uninstall()
    from . import _runs, providers

    _runs.configure(False)  # writes the runs still queued

    for name, module in zip(_autologged, providers.load(_autologged)):
        flavor = PROVIDERS[name].autolog
        with guarded(f"{name} tracing off"):
            if hasattr(module, "unpatch"):
                module.unpatch()
            if flavor is not None:
                importlib.import_module(f"mlflow.{flavor}").autolog(disable=True, silent=True)
    _autologged = ()
    with guarded("dspy tracing off"):
        from . import _dspy

        _dspy.disable()
    _config.set_active(None)
    from . import _env_experiment

    _env_experiment.uninstall()
