"""Reading and writing the pipeline's tables: one-line errors on read, atomic writes.

Every stage reads the previous stage's table and rewrites its own output as it goes, so both
operations live here once: :func:`read_table` turns a missing, unreadable or foreign file into a
:class:`~personasim.errors.DataError` naming the file, and :func:`write_atomic` never leaves a
half-written Parquet file behind (a temporary file beside the target, then a rename).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from personasim.errors import DataError

CSV_SUFFIXES = {".csv", ".gz"}
"""File endings read as CSV; anything else is read as Parquet."""


def read_table(
    path: str | Path,
    what: str = "table",
    required: Sequence[str] = (),
    hint: str = "",
    *,
    exclude: Sequence[str] = (),
    only: tuple[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Read a Parquet (or CSV) table that must have the ``required`` columns.

    ``path`` is a file or a folder of Parquet parts (names starting with ``.`` or ``_`` are
    skipped). ``what`` names the table in the error message ("personas table"); ``hint`` says
    what to do. Parquet only reads what is needed: ``exclude`` drops columns before reading, and
    ``only=(column, values)`` keeps the rows whose ``column`` is among ``values``.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in CSV_SUFFIXES:
            frame = pd.read_csv(path)
        else:
            frame = _read_parquet(path, exclude, only)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found", hint=hint) from None
    except (OSError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read {what} ({first_line})", hint=hint) from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(f"{path}: not a {what} (no {missing[0]!r} column)", hint=hint)
    return frame


def _read_parquet(path: Path, exclude: Sequence[str],
                  only: tuple[str, Sequence[str]] | None) -> pd.DataFrame:  # fmt: skip
    """A Parquet file or folder without the ``exclude`` columns, only the ``only`` rows."""
    if not exclude and only is None:
        return pd.read_parquet(path)
    import pyarrow.dataset as ds

    if not path.exists():
        raise FileNotFoundError(path)
    data = ds.dataset(path, format="parquet")
    columns = [c for c in data.schema.names if c not in set(exclude)]
    where = None
    if only is not None and only[0] in data.schema.names:
        where = ds.field(only[0]).isin(list(only[1]))
    return data.to_table(columns=columns, filter=where).to_pandas()


def write_atomic(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as Parquet to a temporary file beside ``path``, then rename it over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
