"""The ``personasim`` command line: thin wrappers that parse options, call the Python API and turn
errors into one line.

Set ``PERSONASIM_TRACEBACK=1`` to see the full traceback of an error instead of one line.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from personasim import __version__
from personasim.errors import PersonasimError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="personasim")
def cli() -> None:
    """personasim: census-grounded silicon samples, LLM personas, simulated surveys, scores."""


#: Each stage's commands as (module, attribute); imported only when the CLI runs, so that
#: importing :mod:`personasim.cli` stays cheap.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("personasim.llm.cli", "smoke_command"),
    ("personasim.llm.cli", "llm_group"),
    ("personasim.census.cli", "population_group"),
    ("personasim.personas.cli", "personas_command"),
    ("personasim.survey.cli", "score_command"),
    ("personasim.survey.cli", "simulate_command"),
    ("personasim.study_cli", "run_command"),
    ("personasim.export_cli", "export_command"),
    ("personasim.testbed.cli", "testbed_group"),
    ("personasim.calibrate.cli", "calibrate_command"),
    ("personasim.calibrate.cli", "crosstab_command"),
)


def _register_subcommands() -> None:
    """Attach each stage's commands to the group."""
    for module_name, attribute in SUBCOMMANDS:
        command = getattr(importlib.import_module(module_name), attribute)
        if command.name not in cli.commands:
            cli.add_command(command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; a :class:`PersonasimError` becomes one line on stderr and exit status 2."""
    _register_subcommands()
    try:
        cli.main(args=argv, prog_name="personasim", standalone_mode=False)
    except PersonasimError as error:
        if os.environ.get("PERSONASIM_TRACEBACK"):
            raise
        click.echo(f"error: {error.one_line()}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
