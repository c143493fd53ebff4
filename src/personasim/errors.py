"""Errors are data: each carries a one-line message and a hint for the user.

The CLI turns any :class:`PersonasimError` into one line (``error: ... (hint: ...)``) and exits
with status 2; set ``PERSONASIM_TRACEBACK=1`` to see the full traceback instead.
"""

from __future__ import annotations


class PersonasimError(Exception):
    """Base class of every error personasim raises on purpose.

    Attributes:
        message: what went wrong, in one sentence.
        hint: what the user can do about it (may be empty).
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """Render the error as the single line the CLI prints."""
        text = " ".join(self.message.split())
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(PersonasimError):
    """A spec, option or input file is invalid."""


class DataError(PersonasimError):
    """An input data file is missing, unreadable or malformed."""


class BackendError(PersonasimError):
    """A model backend failed: model file missing, endpoint unreachable, bad reply."""


class EndpointUnreachable(BackendError):
    """An OpenAI-compatible endpoint could not be reached at all."""


class OutputTruncated(BackendError):
    """Generation stopped at ``max_tokens`` before a constrained output was complete."""


class ValidationFailed(BackendError):
    """A model reply does not satisfy the JSON schema or choice list it was constrained to."""
