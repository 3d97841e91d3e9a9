"""Text MLflow can store."""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` with any lone surrogate as a backslash escape; anything else unchanged.

    A lone surrogate (``"\\udcff"``, from bytes decoded with ``surrogateescape``) is not valid
    Unicode: MLflow's exporter fails to encode it as UTF-8 and drops the whole trace, its cost
    with it. In an attribute, which holds JSON, ``\\udcff`` is a valid escape that reads back as
    the very same string. The search allocates nothing, so it is cheap on large non-ASCII text.
    """
    if text.isascii() or _LONE_SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
