"""The experiment ``MLFLOW_EXPERIMENT_NAME`` / ``MLFLOW_EXPERIMENT_ID`` name, looked up once.

With no experiment set in the process, MLflow looks the environment's experiment up in the
tracking store at every trace start, in the caller's thread: 2 to 3.4 s per call while a server
is down (its retries, each call). While tracing is enabled that lookup is wrapped: an id found
is kept (per tracking URI and the two variables); after a lookup fails because the store did not
answer, the next ones return at once (MLflow then files traces under its default experiment, as
it does for genai_tracing's own experiment setting) while one background thread retries, with
backoff up to a minute, and pins the experiment once the store answers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from ._guard import logger

# MLflow's errors about the variables themselves (a name and an id that disagree, an id that
# does not exist): raised as MLflow raises them, never taken for a store that is down.
_RAISED = ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0

_lock = threading.Lock()
_original: Callable[[], str | None] | None = None
_found: dict[tuple[str, str | None, str | None], str | None] = {}
_failing: set[tuple[str, str | None, str | None]] = set()
_generation = 0


def install() -> None:
    """Wrap MLflow's lookup (once); ``uninstall()`` puts it back."""
    global _original
    from . import _mlflow

    with _lock:
        if _original is not None:
            return
        lookup = _mlflow.env_experiment_lookup()
        if lookup is None:
            return
        _original = lookup
    _mlflow.replace_env_experiment_lookup(_lookup)


def uninstall() -> None:
    global _original, _generation
    from . import _mlflow

    with _lock:
        original, _original = _original, None
        _found.clear()
        _failing.clear()
        _generation += 1
    if original is not None:
        _mlflow.replace_env_experiment_lookup(original)


def failing() -> bool:
    """Whether the environment names an experiment the store has not answered for yet."""
    with _lock:
        return _key() in _failing


def unreachable() -> None:
    """The store did not answer (at enable): skip the lookup from now on, retry it behind."""
    key = _key()
    if key[1] is None and key[2] is None:
        return
    with _lock:
        if _original is None or key in _found or key in _failing:
            return
        _failing.add(key)
    _retry_later(key)


def _key() -> tuple[str, str | None, str | None]:
    import mlflow

    return (mlflow.get_tracking_uri(), os.environ.get("MLFLOW_EXPERIMENT_NAME") or None,
            os.environ.get("MLFLOW_EXPERIMENT_ID") or None)


def _lookup() -> str | None:
    original = _original
    key = _key()
    if original is None or (key[1] is None and key[2] is None):
        return original() if original is not None else None
    with _lock:
        if key in _found:
            return _found[key]
        if key in _failing:
            return None  # the store is down: MLflow's default experiment, at once
    try:
        found = original()
    except Exception as e:
        if getattr(e, "error_code", None) in _RAISED:
            raise
        logger.warning("genai_tracing: the tracking store did not answer for the experiment "
                       "named by MLFLOW_EXPERIMENT_NAME/MLFLOW_EXPERIMENT_ID (%s); traces go to "
                       "MLflow's default experiment until it does, retried in the background, "
                       "and calls no longer wait for it.", e,
                       exc_info=logger.isEnabledFor(logging.DEBUG))
        with _lock:
            if key in _failing:
                return None
            _failing.add(key)
        _retry_later(key)
        return None
    with _lock:
        _found[key] = found
    return found


def _retry_later(key: tuple[str, str | None, str | None]) -> None:
    generation = _generation

    def retry() -> None:
        wait = RETRY_FIRST_SECONDS
        while True:
            time.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_SECONDS)
            original = _original
            if generation != _generation or original is None or _key() != key:
                return
            try:
                found = original()
            except Exception as e:
                if getattr(e, "error_code", None) in _RAISED:
                    _settle(key, generation, None, e)
                    return
                logger.debug("genai_tracing: the environment's experiment is still not found",
                             exc_info=True)
                continue
            _settle(key, generation, found, None)
            return

    threading.Thread(target=retry, name="genai-tracing-env-experiment", daemon=True).start()


def _settle(key: tuple[str, str | None, str | None], generation: int, found: str | None,
            error: Any) -> None:
    with _lock:
        if generation != _generation:
            return
        _failing.discard(key)
        if error is None:
            _found[key] = found
    if error is None:
        logger.warning("genai_tracing: the tracking store answers again; traces go to the "
                       "experiment named by MLFLOW_EXPERIMENT_NAME/MLFLOW_EXPERIMENT_ID (%s) "
                       "from now on.", found)
    else:
        logger.warning("genai_tracing: MLflow refuses the experiment named by "
                       "MLFLOW_EXPERIMENT_NAME/MLFLOW_EXPERIMENT_ID: %s", error)
