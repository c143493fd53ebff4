"""``personasim run``: run (or resume) a whole study and print where the report is."""

from __future__ import annotations

from pathlib import Path

import click

from personasim.cli.options import executor_options


@click.command("run")
@click.argument("study", required=False, default="default", metavar="[STUDY.toml]")
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(path_type=Path),
    help="Run directory [default: the spec's out_dir, else runs/<name>].",
)
@executor_options
def run_command(
    study: str,
    out_dir: Path | None,
    executor_kind: str | None,
    ray_address: str | None,
    actors: int | None,
    batch_persons: int | None,
) -> None:
    """Run a study: population -> personas -> simulation -> scores -> diagnostics -> report.

    STUDY is a TOML file or a built-in study (default, tiny); rerunning a finished study makes
    no model calls. --executor ray runs personas and simulate on Ray (the [executor] section of
    the spec; see docs/scale.md) with the same results.
    """
    from personasim.cli.options import executor_spec
    from personasim.pipeline.driver import run_study
    from personasim.spec.study import BUILTIN_STUDIES, load_study

    source = f"builtin:{study}" if study in BUILTIN_STUDIES else study
    spec = load_study(study)
    executor = executor_spec(
        spec.executor, executor_kind, ray_address, actors, batch_persons, source=source
    )
    result = run_study(spec.model_copy(update={"executor": executor}), out_dir, source=source)
    click.echo(result.format_timings())
    click.echo(f"model calls {result.model_calls}, cache hits {result.cache_hits}")
    for line in result.backend_lines:
        click.echo(f"backend: {line}")
    click.echo(f"report: {result.report_path}")
