"""``personasim score``: score simulated responses against ground truth (thin wrapper)."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from personasim.errors import DataError


def _read_table(path: Path) -> pd.DataFrame:
    """Read a Parquet or CSV table, one-line error naming the file on failure."""
    try:
        if path.suffix.lower() in {".csv", ".gz"}:
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read table ({str(error).splitlines()[0]})") from None


@click.command("score")
@click.option(
    "--responses",
    "responses_path",
    required=True,
    type=click.Path(path_type=Path),
    help="responses.parquet from `personasim simulate`.",
)
@click.option(
    "--truth",
    required=True,
    help="Ground truth: elections, opinionqa:PATH (human_resp folder) or csv:PATH.",
)
@click.option(
    "--survey",
    default=None,
    help="Survey the questions come from (needed with csv:PATH): elections, PATH, NAME:PATH.",
)
@click.option(
    "--persons",
    "persons_path",
    default=None,
    type=click.Path(path_type=Path),
    help="Table with person_id, weight and group columns (e.g. state); Parquet or CSV.",
)
@click.option(
    "--out",
    "out_path",
    default=Path("scores.parquet"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Where to write the scores table.",
)
@click.option(
    "--n-boot",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="Bootstrap replicates for confidence intervals (0 = none).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
def score_command(
    responses_path: Path,
    truth: str,
    survey: str | None,
    persons_path: Path | None,
    out_path: Path,
    n_boot: int,
    seed: int,
) -> None:
    """Score simulated answers against real ground truth and print a summary."""
    from personasim.scoring import format_summary, load_truth, score

    responses = _read_table(responses_path)
    persons = _read_table(persons_path) if persons_path else None
    result = score(responses, load_truth(truth, survey), persons, n_boot=n_boot, seed=seed)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result.scores.to_parquet(out_path, index=False)
    click.echo(format_summary(result))
    click.echo(f"wrote {len(result.scores)} score rows to {out_path}")
