"""A stage's dataset as a folder of Parquet part files, written atomically and committed in order.

Layout of a stage folder (e.g. ``responses/<survey>/``)::

    part-00000.parquet      committed parts, numbered in commit order
    part-00001.parquet
    _failed.parquet         keys of the rows whose batch failed after its retries (if any)
    .part-00002.parquet.<pid>.tmp   a part being written (never read)

A part is written to a hidden temporary file and renamed into place, so a reader (and a rerun
after ``kill -9``) sees whole parts only; names starting with ``.`` or ``_`` are skipped by
pyarrow's dataset scanner too. The set of done keys is read from the key columns of the parts
alone, never from the whole table. Temporary files of writers that no longer run are removed
when the next writer opens the folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from personasim.errors import DataError
from personasim.tables import write_atomic

PART = re.compile(r"^part-(\d{5,})\.parquet$")
TEMP = re.compile(r"^\..*\.(\d+)\.tmp$")
FAILED = "_failed.parquet"
"""Keys and error of rows whose batch failed after its retries (retried by a rerun)."""


def part_paths(folder: str | Path) -> list[Path]:
    """The committed parts of ``folder`` in commit order (empty when there is no folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := PART.match(p.name))]
    return [p for _, p in sorted(found)]


def next_part_number(folder: str | Path) -> int:
    """The number the next committed part gets."""
    parts = part_paths(folder)
    return int(PART.match(parts[-1].name).group(1)) + 1 if parts else 0  # type: ignore[union-attr]


def part_name(number: int) -> str:
    """``part-00012.parquet``."""
    return f"part-{number:05d}.parquet"


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path) -> int:
    """Delete temporary files left by writers that died (e.g. ``kill -9``); how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        match = TEMP.match(path.name)
        if match and (int(match.group(1)) == os.getpid() or not _alive(int(match.group(1)))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def commit_part(frame: pd.DataFrame, folder: str | Path, number: int | None = None) -> Path:
    """Write ``frame`` as the next part of ``folder`` atomically; returns its path."""
    folder = Path(folder)
    number = next_part_number(folder) if number is None else number
    path = folder / part_name(number)
    write_atomic(frame, path)
    return path


def dataset(folder: str | Path) -> ds.Dataset | None:
    """The committed parts as one pyarrow dataset (None when there is none)."""
    parts = part_paths(folder)
    if not parts:
        return None
    try:
        return ds.dataset([str(p) for p in parts], format="parquet")
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"{folder}: cannot read its parts ({error})",
                        hint="move the folder away to start over") from None  # fmt: skip


def read_parts(folder: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every committed row of ``folder`` (only ``columns`` when given); empty without parts.

    Parts are read one by one and concatenated, so each keeps its own pandas types."""
    parts = part_paths(folder)
    if not parts:
        return pd.DataFrame(columns=list(columns or []))
    try:
        frames = [pd.read_parquet(p, columns=list(columns) if columns else None) for p in parts]
    except (OSError, ValueError, pa.ArrowInvalid) as error:
        raise DataError(f"{folder}: cannot read its parts ({error})",
                        hint="move the folder away to start over") from None  # fmt: skip
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def done_keys(folder: str | Path, key: Sequence[str]) -> set[tuple[str, ...]]:
    """The keys (as strings) of every committed row, reading only the key columns."""
    data = dataset(folder)
    if data is None:
        return set()
    missing = [c for c in key if c not in data.schema.names]
    if missing:
        raise DataError(f"{folder}: its parts lack the key column {missing[0]!r}",
                        hint="move the folder away to start over")  # fmt: skip
    keys: set[tuple[str, ...]] = set()
    for batch in data.to_batches(columns=list(key)):
        columns = [batch[c].cast(pa.string()).to_pylist() for c in key]
        keys.update(zip(*columns, strict=True))
    return keys


def write_failed(folder: str | Path, failed: pd.DataFrame) -> Path | None:
    """Record the failed rows (replacing the previous record); remove it when none failed."""
    path = Path(folder) / FAILED
    if failed.empty:
        path.unlink(missing_ok=True)
        return None
    write_atomic(failed, path)
    return path
