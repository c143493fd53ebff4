"""Errors are data: each carries a one-line message and a hint for the user.

The CLI turns any :class:`PersonasimError` into one line (``error: ... (hint: ...)``) and exits
with status 2; set ``PERSONASIM_TRACEBACK=1`` to see the full traceback instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


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

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with its hint (it travels back from a Ray actor)."""
        return (type(self), (self.message, self.hint))

    def one_line(self) -> str:
        """Render the error as the single line the CLI prints."""
        from personasim.core.secrets import redact_urls

        text = " ".join(self.message.split())
        return redact_urls(f"{text} (hint: {self.hint})" if self.hint else text)


class ConfigError(PersonasimError):
    """A spec, option or input file is invalid."""


class DataError(PersonasimError):
    """An input data file is missing, unreadable or malformed."""


class LockedError(PersonasimError):
    """A run directory or parts folder is being written by another process (see
    :mod:`personasim.core.lock`); the message names that process."""


class BackendError(PersonasimError):
    """A model backend failed: model file missing, endpoint unreachable, bad reply."""


class EndpointUnreachable(BackendError):
    """An OpenAI-compatible endpoint could not be reached at all."""


class OutputTruncated(BackendError):
    """Generation stopped at ``max_tokens`` before a constrained output was complete."""


class ValidationFailed(BackendError):
    """A model reply does not satisfy the JSON schema or choice list it was constrained to."""


def fails_batch(error: BaseException) -> bool:
    """Whether ``error``, raised by a stage on one batch, fails only that batch (retried, then
    recorded for a rerun to try again): a backend or data error, except an endpoint that cannot
    be reached at all (every batch would fail alike). Any other personasim error fails the run
    as itself; any other exception is a bug and fails the run (:class:`InternalError`)."""
    batch_error = isinstance(error, BackendError | DataError)
    return batch_error and not isinstance(error, EndpointUnreachable)


class InternalError(PersonasimError):
    """A bug: an exception personasim does not raise on purpose (``TypeError``, ``KeyError``...)
    in a stage. It fails the run with one line; ``PERSONASIM_TRACEBACK=1`` shows its traceback
    (as the :class:`RemoteTraceback` it was raised from)."""


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised where the batch ran (an actor, or this
    process), shown as the cause of an :class:`InternalError`."""

    def __str__(self) -> str:
        return "\n" + str(self.args[0]) if self.args else ""


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal (Ctrl-C's SIGINT, or SIGTERM): not an error.

    A ``KeyboardInterrupt``, so every cleanup written for Ctrl-C runs for SIGTERM too. A
    command that kept its finished work re-raises it with a ``note`` saying where that work is
    and how to resume; the CLI prints ``stopped by SIGTERM: NOTE`` and exits 128 + the signal
    number (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int, note: str = "") -> None:
        super().__init__(signum)
        self.signum = signum
        self.note = note


def did_you_mean(name: str, known: Iterable[str], n: int = 2, otherwise: str | None = None) -> str:
    """A hint naming the known names closest to ``name``, or ``otherwise`` (default: listing
    them all) when none is close.

    The one home of "did you mean" for every registry, spec field and file format.
    """
    import difflib

    names = sorted({str(k) for k in known})
    close = difflib.get_close_matches(str(name), names, n=n, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    if otherwise is not None:
        return otherwise
    return "known: " + ", ".join(names) if names else ""


def _dotted(loc: Sequence[object]) -> str:
    """A pydantic error location as ``surveys[1].source``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pick(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error most useful to a user: an unknown key beats the "field required" it causes."""
    for error in errors:
        if error["type"] == "extra_forbidden":
            return error
    return errors[0]


def validation_error(
    error: ValidationError,
    source: str,
    *,
    known_fields: Callable[[tuple[object, ...]], Iterable[str]] | None = None,
    hint: str = "",
    cls: type[PersonasimError] = ConfigError,
    locate: Callable[[tuple[object, ...]], str] | None = None,
) -> PersonasimError:
    """One pydantic ``ValidationError`` as one line: ``SOURCE: FIELD: message (hint: ...)``.

    The one home of ValidationError-to-one-line. An unknown key is reported as such (with "did
    you mean" from ``known_fields(loc)``, the valid names at that place) even when pydantic also
    reports the required field it was meant to be; a YAML/TOML value read as a boolean or number
    where text was expected says so and suggests quoting it. ``locate(loc)`` renders the field
    (default ``surveys[1].source``), e.g. with question ids instead of list indices.
    """
    first = _pick(error.errors())
    loc = tuple(first["loc"])
    where = (locate or _dotted)(loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        known = known_fields(loc[:-1]) if known_fields else ()
        return cls(
            f"{source}: unknown field {where!r}", hint=did_you_mean(str(loc[-1]), known) or hint
        )
    message = str(first["msg"]).removeprefix("Value error, ")
    value = first.get("input")
    if isinstance(value, bool) or (
        isinstance(value, int | float) and first["type"].startswith(("string", "model", "dict"))
    ):
        return cls(
            f"{source}: {where}: {message}; the value was read as {value!r}",
            hint='quote it to keep it as text, e.g. "Yes"',
        )
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, PersonasimError):
        return cause
    return cls(f"{source}: {where}: {message}", hint=hint)
