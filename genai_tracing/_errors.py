"""The one exception type the library raises into user code: bad configuration."""

from __future__ import annotations


class ConfigurationError(ValueError):
    """A configuration value that genai_tracing cannot use.

    Raised only by ``enable_tracing()`` and the other explicit set-up calls, never from a traced
    call. The message names the option, the value and the fix::

        try:
            genai_tracing.enable_tracing(providers=["cohere"])
        except genai_tracing.ConfigurationError as e:
            print(e.option, e.value)   # providers cohere
    """

    def __init__(self, option: str, value: object, problem: str, fix: str) -> None:
        self.option = option
        self.value = value
        self.problem = problem
        self.fix = fix
        super().__init__(f"{option}={value!r}: {problem}. Fix: {fix}")
