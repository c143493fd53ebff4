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

#: Every subcommand: name -> (module, attribute, the first sentence of its help). Its module is
#: imported only when the command runs or its own help is asked for; ``personasim --help`` lists
#: the commands from this table (tests/test_cli.py checks it against the commands themselves).
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "calibrate": (
        "personasim.cli.calibrate",
        "calibrate_command",
        "Weight a persona pool to census, Pew party or your own marginals; print diagnostics.",
    ),
    "crosstab": (
        "personasim.cli.calibrate",
        "crosstab_command",
        "Weighted answer shares per question by attribute, with bootstrap CIs and cell counts.",
    ),
    "export": (
        "personasim.cli.export",
        "export_command",
        "Export personas (and simulated responses) for sharing, streamed in bounded memory.",
    ),
    "llm": ("personasim.cli.llm", "llm_group", "Talk to a model directly (chat, choice scoring)."),
    "personas": (
        "personasim.cli.personas",
        "personas_command",
        "Generate persona tiers (meta, objective, subjective, descriptive, persona) and "
        "print the validity rate per tier.",
    ),
    "population": (
        "personasim.cli.census",
        "population_group",
        "Draw people per state from ACS PUMS persons raked to ACS 2023 state marginals.",
    ),
    "run": (
        "personasim.cli.study",
        "run_command",
        "Run a study: population -> personas -> simulation -> scores -> diagnostics -> report.",
    ),
    "score": (
        "personasim.cli.survey",
        "score_command",
        "Score simulated answers against real ground truth and print a summary.",
    ),
    "simulate": (
        "personasim.cli.survey",
        "simulate_command",
        "Simulate survey answers of personas with an LLM; resumes an existing --out.",
    ),
    "smoke": (
        "personasim.cli.llm",
        "smoke_command",
        "End-to-end check of the LLM layer: chat, JSON-schema object, choice distribution.",
    ),
    "testbed": (
        "personasim.cli.testbed",
        "testbed_group",
        "The PERSONA testbed: prompt sets, preference pairs, evaluation, leave-one-out, agreement.",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, from :data:`SUBCOMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand's name, without importing any of them."""
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the module of ``cmd_name`` and return its command (None when unknown)."""
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, attribute, _ = SUBCOMMANDS[cmd_name]
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The ``Commands:`` section of the help, from the table (imports nothing)."""
        limit = formatter.width - 6 - max(map(len, SUBCOMMANDS))
        rows = [
            (name, click.utils.make_default_short_help(SUBCOMMANDS[name][2], limit))
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="personasim")
def cli() -> None:
    """personasim: census-grounded silicon samples, LLM personas, simulated surveys, scores."""


def split_list(*values: str | None) -> list[str]:
    """Comma-separated option values as one list: ``("a, b", "c", None)`` -> ``["a", "b", "c"]``.

    The one parser of ``--tiers a,b``-style options (repeatable ones included) for every command.
    """
    return [part.strip() for value in values if value for part in value.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a :class:`PersonasimError` or a usage error becomes one line on stderr
    (``error: ...``) and exit status 2. SIGINT and SIGTERM stop the command cleanly (it keeps
    what it finished) with one line ``stopped by SIG...`` and exit status 130 / 143."""
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
