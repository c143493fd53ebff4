"""The body of ``personasim testbed agreement`` and the item source shared with ``testbed
annotate``: ``pairs:PATH`` (items sampled from a pairs table), ``items:PATH`` (an items table
written before), or a prompt set (builtin, a PRISM CSV, prompts.parquet ...), curated the way
the paper curated PRISM (question mark, five words) and turned into pairs by the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd

from personasim.cli.llm import open_backend
from personasim.core.errors import ConfigError
from personasim.core.tables import check_output_dir, write_atomic
from personasim.testbed import common as C
from personasim.testbed import roleplay as R

ITEMS_HELP = (
    "pairs:PAIRS.parquet, items:ITEMS.parquet, or a prompt set (builtin, a PRISM CSV, "
    "prompts.parquet) turned into pairs by --model."
)


def source_paths(source: str) -> list[tuple[str, Path]]:
    """The input files an item source names (for the output checks)."""
    for prefix in ("pairs:", "items:"):
        if source.startswith(prefix):
            return [("--items", Path(source.removeprefix(prefix)))]
    return [] if source == "builtin" else [("--items", Path(source))]


def fixed_items(source: str, per_persona: int, seed: int) -> pd.DataFrame | None:
    """The items of a ``pairs:`` or ``items:`` source; None for a prompt set."""
    from personasim.testbed.pairs import read_pairs

    if source.startswith("items:"):
        return R.read_items(source.removeprefix("items:"))
    if source.startswith("pairs:"):
        return R.items_from_pairs(read_pairs(source.removeprefix("pairs:")), per_persona, seed)
    return None


def generated_items(
    source: str, personas: pd.DataFrame, backend: Any, per_persona: int, seed: int
) -> pd.DataFrame:
    """Items from a prompt set: curated, then one critique-and-revision pair per prompt."""
    from personasim.testbed.pairs import make_pairs, pairs_options
    from personasim.testbed.prompts import curate, read_prompt_table

    prompts, _report = curate(read_prompt_table(source))
    prompts["split"] = "train"
    options = pairs_options(per_persona=per_persona, test_share=0.0, held_out=0, seed=seed)
    pairs = make_pairs(personas, prompts, backend, options, progress=True).pairs
    return R.items_from_pairs(pairs, per_persona, seed)


def _rater_specs(model: str, raters: tuple[str, ...]) -> list[tuple[str | None, str]]:
    """(name, spec) of --model and every --rater NAME=SPEC."""
    return [(None, model)] + [
        (r.split("=", 1)[0], r.split("=", 1)[1]) if "=" in r else (None, r) for r in raters
    ]


def _labels(
    items: pd.DataFrame,
    personas: pd.DataFrame,
    source: str,
    seed: int,
    per_persona: int,
    specs: list[tuple[str | None, str]],
    cache: tuple,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, labels of every model rater); the first model makes the items when needed."""
    cache_path, no_cache, extra = cache
    frames = []
    for i, (name, spec) in enumerate(specs):
        backend = open_backend(spec, cache_path, no_cache, extra if i == 0 else ())
        try:
            if items is None:
                items = generated_items(source, personas, backend, per_persona, seed)
            frames.append(R.model_item_labels(backend, items, name, progress=True))
        finally:
            backend.close()
    return items, pd.concat(frames, ignore_index=True)


def run_agreement(
    personas_path: Path,
    source: str,
    humans: Path | None,
    out_dir: Path,
    model: str,
    raters: tuple[str, ...],
    per_persona: int,
    seed: int,
    cache: tuple,
) -> None:
    """Check, label, compute and write everything ``testbed agreement`` promises."""
    from personasim.report.testbed import kappa_heatmap, kappa_histograms, png_bytes

    check_output_dir(out_dir)
    personas = C.persona_tier(personas_path)
    if humans is None and not raters:
        raise ConfigError(
            "agreement needs at least two raters", hint="add --rater NAME=SPEC or --humans LABELS"
        )
    items = fixed_items(source, per_persona, seed)
    if humans is not None and items is None:
        raise ConfigError(
            "--humans needs the items the humans saw",
            hint="give --items pairs:PAIRS.parquet or items:ITEMS.parquet",
        )
    annotations = R.read_annotations(humans, items) if humans is not None else None
    items, labels = _labels(
        items, personas, source, seed, per_persona, _rater_specs(model, raters), cache
    )
    result = R.roleplay_agreement(labels, items, annotations)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(items, out_dir / "items.parquet")
    write_atomic(result.agreement.labels, out_dir / "labels.parquet")
    write_atomic(
        result.agreement.matrix.reset_index(names="rater"), out_dir / "kappa_matrix.parquet"
    )
    write_atomic(result.agreement.per_persona, out_dir / "per_persona.parquet")
    figures = {
        "kappa_heatmap": kappa_heatmap(result.agreement.matrix),
        "kappa_histograms": kappa_histograms(result.agreement.per_persona),
    }
    if len(result.human_matrix):
        write_atomic(annotations, out_dir / "annotations.parquet")
        write_atomic(
            result.human_matrix.reset_index(names="rater"), out_dir / "human_kappa_matrix.parquet"
        )
        write_atomic(result.human_per_persona, out_dir / "human_per_persona.parquet")
        figures["human_kappa_heatmap"] = kappa_heatmap(
            result.human_matrix, "Human baseline: annotator slots"
        )
        figures["human_kappa_histograms"] = kappa_histograms(result.human_per_persona)
    for name, uri in figures.items():
        (out_dir / f"{name}.png").write_bytes(png_bytes(uri))
    click.echo(result.text())
    click.echo(f"wrote items, labels, kappa tables and figures to {out_dir}")
