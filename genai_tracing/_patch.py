"""Patching a class's or module's attribute once, and undoing it (no other genai_tracing import)."""

from __future__ import annotations

from typing import Any, Callable


def original_of(function: Any) -> Any:
    return getattr(function, "__genai_tracing_original__", function)


def patch_method(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` with ``make(current)``, once; ``unpatch_method`` restores it."""
    current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if current is None or original_of(current) is not current:
        return
    wrapper = make(current)
    wrapper.__genai_tracing_original__ = current
    setattr(owner, name, wrapper)


def unpatch_method(owner: Any, name: str) -> None:
    current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
    if current is not None and original_of(current) is not current:
        setattr(owner, name, original_of(current))
