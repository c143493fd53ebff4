"""``personasim run``: run (or resume) a whole study and print where the report is."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("run")
@click.argument("study", required=False, default="default", metavar="[STUDY.toml]")
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(path_type=Path),
    help="Run directory [default: the spec's out_dir, else runs/<name>].",
)
def run_command(study: str, out_dir: Path | None) -> None:
    """Run a study: population -> personas -> simulation -> scores -> diagnostics -> report.

    STUDY is a TOML file or a built-in study (default, tiny); rerunning a finished study makes
    no model calls.
    """
    from personasim.spec import BUILTIN_STUDIES, load_study
    from personasim.study import run_study

    source = f"builtin:{study}" if study in BUILTIN_STUDIES else study
    result = run_study(load_study(study), out_dir, source=source)
    click.echo(result.format_timings())
    click.echo(f"model calls {result.model_calls}, cache hits {result.cache_hits}")
    click.echo(f"report: {result.report_path}")
