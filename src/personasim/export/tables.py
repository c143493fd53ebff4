"""Export personas (and their simulated responses) as a Hugging Face dataset, Parquet or JSONL.

``personasim export --personas P [--responses R] --format hf|parquet|jsonl --out DIR``

Inputs are read batch by batch, file by file, with the one folder reader
(:class:`personasim.core.tables.ParquetTable`: a Parquet file or a folder of Parquet part files
whose column types may differ), so a million personas export in bounded memory: one batch, one
open writer and the tallies of the dataset card.

* ``hf``: ``DIR/data/personas-00000-of-0000N.parquet`` (and ``responses-...``) shards of bounded
  size and ``DIR/README.md``, a dataset card with the features, counts per tier, generator and
  state, the models, seeds, prompt hashes, the census sources and the note that the personas are
  synthetic (written by :func:`personasim.export.hf.write_hf_folder`).
* ``parquet``: ``DIR/personas.parquet`` (and ``DIR/responses.parquet``), one file each.
* ``jsonl``: ``DIR/personas.jsonl`` (and ``DIR/responses.jsonl``), one JSON object per line.

Every file appears complete or not at all (temporary name, then rename).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from personasim.core.errors import ConfigError, DataError
from personasim.core.keys import PERSONA_KEY, RESPONSE_KEY
from personasim.core.tables import ParquetTable, atomic_path, check_output_dir
from personasim.export import hf

Format = Literal["hf", "parquet", "jsonl"]
FORMATS: tuple[str, ...] = ("hf", "parquet", "jsonl")
BATCH_ROWS = 20_000
"""Rows per scanned batch (the unit of memory)."""
SHOWN = 60
"""Most distinct values listed in the card for one column (all 51 states fit; the rest are
counted)."""
SYNTHETIC_NOTE = (
    "**The personas are synthetic.** Each row describes a made-up person: census attributes are "
    "drawn from ACS PUMS records raked to state marginals, and the persona text and attributes "
    "beyond the census are written by a language model. No row describes a real individual, "
    "and the simulated answers are model outputs, not survey responses."
)
CENSUS_SOURCES = (
    "U.S. Census Bureau, American Community Survey (ACS) 1-year Public Use Microdata Sample "
    "(PUMS) person records with their weights (the seed; years in the `source` column), raked "
    "to ACS 2023 1-year state tables DP02, DP03, DP05, S2301 and S2401 (the targets)."
)


@dataclass
class Tally:
    """Counts gathered while a table streams past (for the dataset card)."""

    columns: tuple[str, ...]
    """Columns counted value by value (those present in the table)."""
    counts: dict[str, Counter] = field(default_factory=dict)
    """Column -> value -> rows."""
    pairs: Counter = field(default_factory=Counter)
    """(tier, model) -> rows (model: generator, or simulator for responses)."""
    model_column: str = "generator"
    """The column naming the model of a row."""
    prompt_sum: int = 0
    """Sum of the first 64 bits of every ``prompt_sha`` (an order-free digest of the prompts)."""
    prompts: int = 0
    """Rows that carry a ``prompt_sha``."""

    def observe(self, batch: pa.RecordBatch) -> None:
        """Add one batch to the counts."""
        names = set(batch.schema.names)
        for column in self.columns:
            if column in names:
                self.counts.setdefault(column, Counter()).update(_value_counts(batch[column]))
        if {"tier", self.model_column} <= names:
            tiers = batch["tier"].to_pylist()
            models = batch[self.model_column].to_pylist()
            self.pairs.update(zip(tiers, models, strict=True))
        if "prompt_sha" in names:
            shas = [s for s in batch["prompt_sha"].to_pylist() if s]
            self.prompts += len(shas)
            self.prompt_sum = (self.prompt_sum + sum(int(s[:16], 16) for s in shas)) % 2**64


def _value_counts(column: pa.Array) -> Counter:
    """Value -> count of one column (nulls as ``None``)."""
    counted = pc.value_counts(
        column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
    )
    return Counter(
        {
            str(v["values"]) if v["values"] is not None else None: v["counts"]
            for v in counted.to_pylist()
        }
    )


@dataclass
class ExportReport:
    """What :func:`export` wrote."""

    out: Path
    """The output folder."""
    rows: dict[str, int]
    """Table name -> rows exported."""
    files: dict[str, list[Path]]
    """Table name -> files written (relative to ``out``)."""

    def summary(self) -> str:
        """One line per table for the CLI."""
        return "\n".join(
            f"{name}: {self.rows[name]:,} rows in {len(files)} file(s) under {self.out}"
            for name, files in self.files.items()
        )


# --------------------------------------------------------------------------- reading


def open_table(path: str | Path, what: str, key: Sequence[str]) -> ParquetTable:
    """A Parquet file or folder of Parquet parts (read as one table whatever the parts' column
    types, :class:`~personasim.core.tables.ParquetTable`) with the ``key`` columns."""
    table = ParquetTable.open(path, what, hint=f"give the {what} written by personasim")
    missing = [c for c in key if c not in table.schema.names]
    if missing:
        raise DataError(f"{path}: not a {what} (no {missing[0]!r} column)")
    return table


# --------------------------------------------------------------------------- card


def _count_table(title: str, counter: Counter) -> list[str]:
    """A markdown table of the most frequent values of one counter."""
    lines = [f"| {title} | rows |", "|---|---:|"]
    for value, rows in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[:SHOWN]:
        lines.append(f"| {value} | {rows:,} |")
    if len(counter) > SHOWN:
        lines.append(
            f"| ({len(counter) - SHOWN} more) | "
            f"{sum(sorted(counter.values(), reverse=True)[SHOWN:]):,} |"
        )
    return lines


def _split_section(name: str, info: hf.SplitInfo, tally: Tally) -> list[str]:
    """The card section of one table: features, counts, models, seeds, prompts."""
    lines = [
        f"## `{name}` ({info.rows:,} rows, {len(info.shards)} shard(s))",
        "",
        *hf.feature_lines(info.schema),
        "",
    ]
    if tally.pairs:
        pairs = Counter({f"{tier} / {model}": n for (tier, model), n in tally.pairs.items()})
        lines += _count_table(f"tier / {tally.model_column}", pairs) + [""]
    for column, counter in tally.counts.items():
        if column in ("seed", "source"):
            continue
        lines += _count_table(column, counter) + [""]
    seeds = sorted(tally.counts.get("seed", Counter()), key=str)
    if seeds:
        lines += [
            f"Seeds: {', '.join(map(str, seeds[:SHOWN]))}"
            + (f" and {len(seeds) - SHOWN} more" if len(seeds) > SHOWN else ""),
            "",
        ]
    if tally.prompts:
        lines += [
            f"Prompt hashes: {tally.prompts:,} rows carry the SHA-256 of their prompt in "
            f"`prompt_sha`; digest of all of them (sum of their first 64 bits mod 2^64): "
            f"`{tally.prompt_sum:016x}`.",
            "",
        ]
    return lines


def render_card(infos: Mapping[str, hf.SplitInfo], tallies: Mapping[str, Tally]) -> str:
    """The dataset card (README.md) of a personas export."""
    persona = tallies.get("personas")
    sources = sorted(map(str, persona.counts.get("source", Counter()))) if persona else []
    lines = [
        hf.front_matter(
            infos,
            "personasim synthetic personas",
            tags=("synthetic", "personas", "census", "survey-simulation"),
        ),
        "# Synthetic census-grounded personas (personasim)",
        "",
        SYNTHETIC_NOTE,
        "",
        "Made with personasim: census-grounded populations, LLM "
        "persona tiers and simulated survey answers. Load one table with "
        '`datasets.load_dataset(FOLDER, "personas")` or read `data/` with pyarrow.',
        "",
        "## Census sources",
        "",
        CENSUS_SOURCES,
        *([f"Seed/target labels in this export: {', '.join(sources)}."] if sources else []),
        "",
    ]
    for name, info in infos.items():
        lines += _split_section(name, info, tallies[name])
    return "\n".join(lines)


# --------------------------------------------------------------------------- writers


def write_parquet(batches: Iterator[pa.RecordBatch], path: Path) -> int:
    """Stream ``batches`` into one Parquet file atomically; returns the rows written."""
    writer, rows = None, 0
    with atomic_path(path) as tmp:
        try:
            for batch in batches:
                if writer is None:
                    schema = hf.plain_schema(batch.schema)
                    writer = pq.ParquetWriter(tmp, schema)
                writer.write_batch(hf.plain_batch(batch, schema))
                rows += batch.num_rows
            if writer is None:
                raise DataError(f"nothing to write to {path}", hint="the input table has no rows")
        finally:
            if writer is not None:
                writer.close()
    return rows


def _json_value(value: object) -> object:
    """NaN/inf become null (JSON has no NaN); everything else as is."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def write_jsonl(batches: Iterator[pa.RecordBatch], path: Path) -> int:
    """Stream ``batches`` into one JSON-lines file atomically; returns the rows written."""
    rows = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for batch in batches:
            for row in batch.to_pylist():
                clean = {k: _json_value(v) for k, v in row.items()}
                handle.write(json.dumps(clean, ensure_ascii=False, default=str) + "\n")
            rows += batch.num_rows
    return rows


# --------------------------------------------------------------------------- driver


def _sources(
    personas: str | Path, responses: str | Path | None
) -> dict[str, tuple[ParquetTable, Tally]]:
    """Open the input tables (checked before any output is written)."""
    table = open_table(personas, "personas table", PERSONA_KEY)
    if "question_id" in table.schema.names:
        raise DataError(
            f"{personas}: a responses table (it has question_id), not personas",
            hint="give it as --responses, and the personas as --personas",
        )
    out = {"personas": (table, Tally(("tier", "state", "seed", "source", "valid")))}
    if responses is not None:
        out["responses"] = (
            open_table(responses, "responses table", RESPONSE_KEY),
            Tally(("tier", "estimator", "question_id", "state"), model_column="simulator"),
        )
    return out


def export(
    personas: str | Path,
    out: str | Path,
    fmt: str = "hf",
    responses: str | Path | None = None,
    *,
    max_shard_bytes: int = hf.DEFAULT_SHARD_BYTES,
    batch_rows: int = BATCH_ROWS,
    overwrite: bool = False,
) -> ExportReport:
    """Export the personas table (and a responses table) to ``out`` in format ``fmt``."""
    if fmt not in FORMATS:
        from personasim.core.errors import did_you_mean

        raise ConfigError(f"unknown export format {fmt!r}", hint=did_you_mean(fmt, FORMATS))
    out = check_output_dir(
        Path(out).resolve(), inputs=[("--personas", personas), ("--responses", responses)]
    )
    sources = _sources(personas, responses)
    streams = {
        name: hf.iter_with(table.batches(batch_rows=batch_rows), tally.observe)
        for name, (table, tally) in sources.items()
    }
    if fmt == "hf":
        tallies = {name: tally for name, (_, tally) in sources.items()}
        infos = hf.write_hf_folder(
            streams,
            out,
            lambda i: render_card(i, tallies),
            max_shard_bytes=max_shard_bytes,
            overwrite=overwrite,
        )
        return ExportReport(
            out, {n: i.rows for n, i in infos.items()}, {n: i.shards for n, i in infos.items()}
        )
    return _export_files(streams, out, fmt, overwrite)


def _export_files(
    streams: Mapping[str, Iterator[pa.RecordBatch]], out: Path, fmt: str, overwrite: bool
) -> ExportReport:
    """The ``parquet`` and ``jsonl`` formats: one file per table in ``out``."""
    writer = write_parquet if fmt == "parquet" else write_jsonl
    targets = {name: out / f"{name}.{fmt}" for name in streams}
    existing = [p for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} exists", hint="pass --overwrite or another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        rows = {name: writer(stream, targets[name]) for name, stream in streams.items()}
    except OSError as error:
        raise DataError(
            f"cannot write {out}: {error.strerror or error}",
            hint="check the output folder and free disk space",
        ) from error
    return ExportReport(out, rows, {n: [Path(p.name)] for n, p in targets.items()})
