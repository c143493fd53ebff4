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
    path: str | Path, what: str = "table", required: Sequence[str] = (), hint: str = ""
) -> pd.DataFrame:
    """Read a Parquet (or CSV) table that must have the ``required`` columns.

    ``what`` names the table in the error message ("personas table"); ``hint`` says what to do.
    """
    path = Path(path)
    try:
        reader = pd.read_csv if path.suffix.lower() in CSV_SUFFIXES else pd.read_parquet
        frame = reader(path)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found", hint=hint) from None
    except (OSError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read {what} ({first_line})", hint=hint) from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(f"{path}: not a {what} (no {missing[0]!r} column)", hint=hint)
    return frame


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
