"""Write a Hugging Face dataset folder from streams of Arrow record batches, in bounded memory.

The one home of the Hugging Face layout for every export (personas and responses here; the
testbed's preference pairs can call the same function)::

    OUT/README.md                                  dataset card (YAML front matter + markdown)
    OUT/data/<split>-00000-of-00003.parquet        shards of at most ``max_shard_bytes``
    OUT/data/<split>-00001-of-00003.parquet
    ...

Each split is one table (its own features); the card's front matter declares one config per
split, so ``datasets.load_dataset(OUT, "<split>")`` loads it and pyarrow reads ``OUT/data/``
directly. Batches are written as they arrive (one row group per batch), so memory holds one batch
and one open shard writer, never a table. The folder is built beside ``OUT`` under a temporary
name and renamed into place at the end: a crash leaves no half-written dataset at ``OUT``.

Python API::

    from personasim.export.hf import write_hf_folder
    infos = write_hf_folder({"pairs": batches}, "out/pairs", lambda infos: render_card(...))
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from personasim.core.errors import ConfigError, DataError

DEFAULT_SHARD_BYTES = 256 * 2**20
"""Shard size bound (uncompressed Arrow bytes; the Parquet files are smaller)."""


@dataclass
class SplitInfo:
    """What was written for one split."""

    name: str
    """Split name (also the file prefix under ``data/``)."""
    rows: int = 0
    """Rows written."""
    shards: list[Path] = field(default_factory=list)
    """Shard paths relative to the dataset folder, in order."""
    num_bytes: int = 0
    """Bytes of the split's Parquet shards on disk (the card's ``num_bytes``)."""
    schema: pa.Schema | None = None
    """Arrow schema of the shards (None when the split had no batch)."""


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with dictionary columns decoded to their value type and no pandas metadata
    (the Hugging Face viewer and ``datasets`` read plain Arrow types best)."""
    fields = [
        pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
        for f in schema
    ]
    return pa.schema(fields)


def plain_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` cast to :func:`plain_schema` (decodes dictionaries)."""
    return pa.Table.from_batches([batch]).cast(schema, safe=False).combine_chunks().to_batches()[0]


def _shard_name(split: str, index: int, total: int) -> str:
    """``<split>-00003-of-00010.parquet``."""
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


def _slices(batches: Iterable[pa.RecordBatch], max_rows: int | None) -> Iterator[pa.RecordBatch]:
    """``batches`` cut into pieces of at most ``max_rows`` rows (unchanged when None)."""
    for batch in batches:
        if max_rows is None or batch.num_rows <= max_rows:
            yield batch
            continue
        for start in range(0, batch.num_rows, max_rows):
            yield batch.slice(start, max_rows)


def write_shards(
    batches: Iterable[pa.RecordBatch],
    data_dir: Path,
    split: str,
    max_shard_bytes: int,
    max_shard_rows: int | None = None,
) -> SplitInfo:
    """Stream ``batches`` into Parquet shards of at most ``max_shard_bytes`` (a batch is never
    split by size, so one batch larger than the bound gets a shard of its own) and at most
    ``max_shard_rows`` rows each."""
    info, writer, size, rows, written = SplitInfo(split), None, 0, 0, []
    try:
        for batch in _slices(batches, max_shard_rows):
            if info.schema is None:
                info.schema = plain_schema(batch.schema)
            if batch.num_rows == 0:
                continue
            batch = plain_batch(batch, info.schema)
            full = size + batch.nbytes > max_shard_bytes or (
                max_shard_rows is not None and rows + batch.num_rows > max_shard_rows
            )
            if writer is not None and full:
                writer.close()
                writer = None
            if writer is None:
                written.append(data_dir / f".{split}-{len(written):05d}.partial")
                writer, size, rows = pq.ParquetWriter(written[-1], info.schema), 0, 0
            writer.write_batch(batch)
            size, rows = size + batch.nbytes, rows + batch.num_rows
            info.rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    if not written and info.schema is not None:  # an empty split still gets one (empty) shard
        written.append(data_dir / f".{split}-00000.partial")
        pq.write_table(info.schema.empty_table(), written[-1])
    for index, path in enumerate(written):
        final = data_dir / _shard_name(split, index, len(written))
        os.replace(path, final)
        info.num_bytes += final.stat().st_size
        info.shards.append(final.relative_to(data_dir.parent))
    return info


def write_hf_folder(
    splits: Mapping[str, Iterable[pa.RecordBatch]],
    out: str | Path,
    card: Callable[[Mapping[str, SplitInfo]], str],
    *,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    max_shard_rows: int | None = None,
    overwrite: bool = False,
) -> dict[str, SplitInfo]:
    """Write every split's batches as ``data/<split>-*.parquet`` shards under ``out`` and the
    dataset card ``card(infos)`` as ``README.md``; returns what was written per split.

    ``out`` must not exist (or be an empty folder) unless ``overwrite``; the folder appears
    complete or not at all."""
    out = Path(out)
    _check_target(out, overwrite)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "data").mkdir(parents=True)
        infos = {
            name: write_shards(batches, tmp / "data", name, max_shard_bytes, max_shard_rows)
            for name, batches in splits.items()
        }
        (tmp / "README.md").write_text(card(infos), encoding="utf-8")
        _swap_into_place(tmp, out)
    except OSError as error:
        raise DataError(
            f"cannot write {out}: {error.strerror or error}",
            hint="check the output folder and free disk space",
        ) from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return infos


def _check_target(out: Path, overwrite: bool) -> None:
    """Refuse to write over a non-empty folder or a file unless ``overwrite``."""
    if out.is_file():
        raise ConfigError(f"{out} is a file", hint="give a folder path to --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"{out} exists and is not empty", hint="pass --overwrite or another --out"
        )


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder ``tmp`` to ``out``, replacing an old ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    with contextlib.suppress(OSError):
        shutil.rmtree(old)


def feature_lines(schema: pa.Schema | None) -> list[str]:
    """Markdown table rows ``| column | arrow type |`` of a split's features."""
    if schema is None:
        return ["(no rows)"]
    return ["| feature | type |", "|---|---|"] + [f"| `{f.name}` | `{f.type}` |" for f in schema]


def front_matter(
    infos: Mapping[str, SplitInfo],
    pretty_name: str,
    tags: Sequence[str] = ("synthetic",),
    license_id: str = "other",
) -> str:
    """The card's YAML header: one config per split (``data/<split>-*.parquet``), tags."""
    lines = ["---", f"pretty_name: {pretty_name}", f"license: {license_id}", "tags:"]
    lines += [f"- {tag}" for tag in tags]
    lines.append("configs:")
    for name in infos:
        lines += [
            f"- config_name: {name}",
            "  data_files:",
            "  - split: train",
            f"    path: data/{name}-*.parquet",
        ]
    return "\n".join([*lines, "---", ""])


def iter_with(
    batches: Iterable[pa.RecordBatch], observe: Callable[[pa.RecordBatch], None]
) -> Iterator[pa.RecordBatch]:
    """Pass ``batches`` through, calling ``observe`` on each (tallies for the card)."""
    for batch in batches:
        observe(batch)
        yield batch
