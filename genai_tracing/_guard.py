"""One guard for the library's own failures: logged, counted, never raised into user code."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

logger = logging.getLogger("genai_tracing")

_lock = threading.Lock()
# Kept so tests (and curious users) can see that something went wrong even though nothing raised.
_errors: list[str] = []
_MAX_KEPT = 100


def internal_error(where: str) -> None:
    """Record the exception being handled as a genai_tracing bug; call from an ``except`` block."""
    logger.warning("genai_tracing: internal error in %s (the traced call is unaffected)", where,
                   exc_info=True)
    with _lock:
        if len(_errors) < _MAX_KEPT:
            _errors.append(where)


@contextmanager
def guarded(where: str) -> Iterator[None]:
    """Run a block of the library's own work; an exception in it is logged, not raised."""
    try:
        yield
    except Exception:
        internal_error(where)


def internal_errors() -> list[str]:
    """Where internal errors happened since the last ``clear_internal_errors()``."""
    with _lock:
        return list(_errors)


def clear_internal_errors() -> None:
    with _lock:
        _errors.clear()
