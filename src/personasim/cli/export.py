"""``personasim export``: personas (and responses) as a Hugging Face dataset, Parquet or JSONL
(thin wrapper around :func:`personasim.export.tables.export`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.option(
    "--personas",
    "personas_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Personas table (a Parquet file or a folder of Parquet parts).",
)
@click.option(
    "--responses",
    "responses_path",
    default=None,
    type=click.Path(path_type=Path),
    help="Responses table to export beside the personas (file or folder of parts).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["hf", "parquet", "jsonl"]),
    default="hf",
    show_default=True,
    help="hf: data/<table>-0000k-of-0000N.parquet shards + README.md dataset card; "
    "parquet / jsonl: one file per table.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (must be empty or absent unless --overwrite).",
)
@click.option(
    "--max-shard-mb",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="hf: largest shard, in MB of uncompressed Arrow data.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing export.")
def export_command(
    personas_path: Path,
    responses_path: Path | None,
    fmt: str,
    out: Path,
    max_shard_mb: int,
    overwrite: bool,
) -> None:
    """Export personas (and simulated responses) for sharing, streamed in bounded memory.

    The hf format writes a folder that `datasets.load_dataset(OUT, "personas")` loads, with a
    dataset card: features, counts per tier, generator and state, models, seeds, prompt hashes,
    census sources, and the note that the personas are synthetic.
    """
    from personasim.export.tables import export

    report = export(
        personas_path,
        out,
        fmt,
        responses_path,
        max_shard_bytes=max_shard_mb * 2**20,
        overwrite=overwrite,
    )
    click.echo(report.summary())
