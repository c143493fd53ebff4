"""The ``personasim`` command line: thin wrappers that parse options, call the Python API and turn
errors into one line.

Set ``PERSONASIM_TRACEBACK=1`` to see the full traceback of an error instead of one line.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from typing import Any

import click

from personasim import __version__
from personasim.core.errors import Interrupted, PersonasimError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="personasim")
def cli() -> None:
    """personasim: census-grounded silicon samples, LLM personas, simulated surveys, scores."""


#: Each stage's commands as (module, attribute); imported only when the CLI runs, so that
#: importing :mod:`personasim.cli.main` stays cheap.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("personasim.cli.llm", "smoke_command"),
    ("personasim.cli.llm", "llm_group"),
    ("personasim.cli.census", "population_group"),
    ("personasim.cli.personas", "personas_command"),
    ("personasim.cli.survey", "score_command"),
    ("personasim.cli.survey", "simulate_command"),
    ("personasim.cli.study", "run_command"),
    ("personasim.cli.export", "export_command"),
    ("personasim.cli.testbed", "testbed_group"),
    ("personasim.cli.calibrate", "calibrate_command"),
    ("personasim.cli.calibrate", "crosstab_command"),
)


def split_list(*values: str | None) -> list[str]:
    """Comma-separated option values as one list: ``("a, b", "c", None)`` -> ``["a", "b", "c"]``.

    The one parser of ``--tiers a,b``-style options (repeatable ones included) for every command.
    """
    return [part.strip() for value in values if value for part in value.split(",")
            if part.strip()]  # fmt: skip


def _register_subcommands() -> None:
    """Attach each stage's commands to the group."""
    for module_name, attribute in SUBCOMMANDS:
        command = getattr(importlib.import_module(module_name), attribute)
        if command.name not in cli.commands:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a :class:`PersonasimError` or a usage error becomes one line on stderr
    (``error: ...``) and exit status 2. SIGINT and SIGTERM stop the command cleanly (it keeps
    what it finished) with one line ``stopped by SIG...`` and exit status 130 / 143."""
    _register_subcommands()
    previous = _stop_on_sigterm()
    try:
        cli.main(args=argv, prog_name="personasim", standalone_mode=False)
    except PersonasimError as error:
        if os.environ.get("PERSONASIM_TRACEBACK"):
            raise
        click.echo(f"error: {error.one_line()}", err=True)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt) as error:
        return _stopped(error)
    except click.ClickException as error:
        click.echo(f"error: {_click_line(error)}", err=True)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _raise_interrupted(signum: int, frame: Any) -> None:
    """Signal handler: SIGTERM unwinds like Ctrl-C, through every ``finally`` on the way."""
    raise Interrupted(signum)


def _stop_on_sigterm() -> Any:
    """Turn SIGTERM into :class:`Interrupted`; returns the handler to restore (None when
    signals cannot be set here, i.e. outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupted)


def _stopped(error: BaseException) -> int:
    """Print the one ``stopped by ...`` line of an interrupted command; its exit status."""
    found: BaseException | None = error
    while found is not None and not isinstance(found, Interrupted):
        found = found.__cause__ or found.__context__
    signum = found.signum if found is not None else signal.SIGINT
    note = found.note if found is not None else ""
    name = signal.Signals(signum).name
    click.echo(f"stopped by {name}" + (f": {note}" if note else ""), err=True)
    return 128 + int(signum)


def _click_line(error: click.ClickException) -> str:
    """A usage error of click's (unknown option, missing argument...) as our one line."""
    text = " ".join(error.format_message().split())
    context = getattr(error, "ctx", None)
    if context is not None:
        return f"{text} (hint: see `{context.command_path} --help`)"
    return text


if __name__ == "__main__":
    sys.exit(main())
