"""Reading and writing the pipeline's tables: one-line errors on read, atomic writes.

Every stage reads the previous stage's table and rewrites its own output as it goes, so both
operations live here once: :func:`read_table` turns a missing, unreadable or foreign file into a
:class:`~personasim.core.errors.DataError` naming the file, and :func:`write_atomic` never leaves a
half-written Parquet file behind (a temporary file beside the target, then a rename; every
atomic write goes through :func:`atomic_path`). :func:`write_concat_atomic` streams many Parquet
files (a stage's parts) into one without holding their rows.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from personasim.core.errors import DataError

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
    as_csv: bool = False,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a Parquet (or CSV) table that must have the ``required`` columns.

    ``path`` is a file or a folder of Parquet parts (names starting with ``.`` or ``_`` are
    skipped). ``what`` names the table in the error message ("personas table"); ``hint`` says
    what to do. Parquet only reads what is needed: ``exclude`` drops columns before reading, and
    ``only=(column, values)`` keeps the rows whose ``column`` is among ``values``;
    ``columns`` reads only those of them the table has. A file is read as CSV when its ending
    says so (:data:`CSV_SUFFIXES`) or ``as_csv`` is true.
    """
    path = Path(path)
    try:
        if as_csv or path.suffix.lower() in CSV_SUFFIXES:
            frame = pd.read_csv(path)
        else:
            frame = _read_parquet(path, exclude, only, columns)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found", hint=hint) from None
    except (OSError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read {what} ({first_line})", hint=hint) from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(f"{path}: not a {what} (no {missing[0]!r} column)", hint=hint)
    return frame


def check_columns(path: str | Path, what: str, required: Sequence[str], hint: str = "") -> None:
    """Check that the Parquet table at ``path`` has the ``required`` columns, reading only its
    schema (the same one-line errors as :func:`read_table`)."""
    import pyarrow.dataset as ds

    path = Path(path)
    try:
        names = ds.dataset(path, format="parquet").schema.names
    except FileNotFoundError:
        raise DataError(f"{path}: file not found", hint=hint) from None
    except (OSError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read {what} ({first_line})", hint=hint) from None
    missing = [column for column in required if column not in names]
    if missing:
        raise DataError(f"{path}: not a {what} (no {missing[0]!r} column)", hint=hint)


def check_output(
    path: str | Path, inputs: Sequence[tuple[str, str | Path | None]] = (), flag: str = "--out"
) -> Path:
    """Refuse an output location before any work is done, with one line naming it.

    Refused: an existing directory where a file is to be written, a parent that is a file or
    cannot be created or written, and an output that is one of the ``inputs`` (``(flag,
    path)`` pairs, e.g. ``("--responses", responses_path)``), which writing would destroy.
    Creates nothing. Returns ``path`` as a :class:`~pathlib.Path`.
    """
    from personasim.core.errors import ConfigError

    path = Path(path)
    hint = f"give another {flag}"
    for name, source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise ConfigError(f"{flag} {path} is the {name} file: writing it would destroy the "
                              "input", hint=hint)  # fmt: skip
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory, not a file", hint=hint)
    _check_folder(path.parent, flag, hint)
    return path


def check_output_dir(path: str | Path, flag: str = "--out", why: str = "") -> Path:
    """Refuse an output folder that is an existing file or cannot be created or written;
    ``why`` says what the folder holds (e.g. that a table is now a folder of parts)."""
    from personasim.core.errors import ConfigError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is an existing file, not a directory"
                          + (f" ({why})" if why else ""),
                          hint=f"give another {flag}, or move the file away")  # fmt: skip
    _check_folder(path, flag, f"give another {flag}")
    return path


def _check_folder(folder: Path, flag: str, hint: str) -> None:
    """The folder, or the nearest ancestor that exists, must be a writable directory."""
    from personasim.core.errors import ConfigError

    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{flag}: {existing} is a file, not a directory", hint=hint)
    try:  # a real probe: permissions, read-only mounts and root's exceptions all show here
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigError(f"{flag}: cannot write in {existing} ({error.strerror or error})",
                          hint=hint) from None  # fmt: skip


def _same_file(a: Path, b: Path) -> bool:
    """True when both paths name the same existing file (or the same absolute path)."""
    try:
        return a.samefile(b)
    except OSError:
        return a.absolute() == b.absolute()


def _read_parquet(path: Path, exclude: Sequence[str], only: tuple[str, Sequence[str]] | None,
                  keep: Sequence[str] | None) -> pd.DataFrame:  # fmt: skip
    """A Parquet file or folder without the ``exclude`` columns (with only the ``keep`` ones
    when given), only the ``only`` rows."""
    if not exclude and only is None and keep is None:
        return pd.read_parquet(path)
    import pyarrow.dataset as ds

    if not path.exists():
        raise FileNotFoundError(path)
    data = ds.dataset(path, format="parquet")
    columns = [c for c in data.schema.names
               if c not in set(exclude) and (keep is None or c in keep)]  # fmt: skip
    where = None
    if only is not None and only[0] in data.schema.names:
        where = ds.field(only[0]).isin(list(only[1]))
    return data.to_table(columns=columns, filter=where).to_pandas()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends
    without an error, removed otherwise (a reader never sees a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as Parquet to a temporary file beside ``path``, then rename it over it."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it over it."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def unified_schema(sources: Sequence[str | Path]) -> pa.Schema:
    """One schema for the Parquet files ``sources`` (footers only): every column of any file, in
    order of first appearance; a column that is all-null (type ``null``) in one file takes the
    other files' type, and numeric types are widened (int64 and double give double). The first
    file's metadata (pandas types) is kept."""
    schemas = [pq.read_schema(source) for source in sources]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        first = str(error).splitlines()[0]
        raise DataError(f"{Path(sources[0]).parent}: its parts have clashing column types "
                        f"({first})", hint="move the folder away to start over") from None


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly the columns of ``schema``, in its order and types (a column the
    table lacks is all-null)."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names
               else pa.nulls(len(table), f.type) for f in schema]  # fmt: skip
    return pa.Table.from_arrays(columns, schema=schema)


ROW_GROUP_ROWS = 262_144
"""Rows gathered into one row group by :func:`write_concat_atomic`: small parts compress badly
as row groups of their own (on 200 parts of 10,000 answers, ``benchmarks/publish.py``: 10,000-row
groups 24 % larger than one 2M-row frame, 65,536-row groups 16 %, 262,144-row groups 4 %)."""


def write_concat_atomic(sources: Sequence[str | Path], path: str | Path,
                        keep: Sequence[Any | None] | None = None) -> int:  # fmt: skip
    """Write the rows of the Parquet files ``sources``, in order, as one Parquet file at
    ``path`` (atomically); returns the rows written. ``keep``: per source, a boolean mask of the
    rows to write (None: all of them).

    Streamed: sources are read one at a time and written in row groups of about
    :data:`ROW_GROUP_ROWS` rows, so memory holds one row group and one source, never the whole
    output. Schemas are unified first (:func:`unified_schema`). The same sources always give the
    same bytes."""
    schema, rows = unified_schema(sources), 0
    masks = list(keep) if keep is not None else [None] * len(sources)
    pending: list[pa.Table] = []
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for source, mask in zip(sources, masks, strict=True):
            table = conform(pq.read_table(source), schema)
            if mask is not None:
                table = table.filter(pa.array(mask, type=pa.bool_()))
            pending.append(table)
            rows += len(table)
            if sum(len(t) for t in pending) >= ROW_GROUP_ROWS:
                _write_group(writer, pending)
                pending = []
        if pending:
            _write_group(writer, pending)
    return rows


def _write_group(writer: pq.ParquetWriter, tables: list[pa.Table]) -> None:
    """Write ``tables`` as one row group."""
    group = pa.concat_tables(tables)
    writer.write_table(group, row_group_size=max(1, len(group)))


@lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file's bytes (memoized by the caller's key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content, memoized per (path, size, modification time): the stage
    ledger hashes each table before and after every stage that reads it, and a model file is
    hashed once per process."""
    stat = path.stat()
    return _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
