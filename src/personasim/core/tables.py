"""Reading and writing the pipeline's tables: one-line errors on read, atomic writes.

Every stage reads the previous stage's table and rewrites its own output as it goes, so both
operations live here once: :func:`read_table` turns a missing, unreadable or foreign file into a
:class:`~personasim.core.errors.DataError` naming the file, and :func:`write_atomic` never leaves a
half-written Parquet file behind (a temporary file beside the target, then a rename; every
atomic write goes through :func:`atomic_path`). :func:`write_concat_atomic` streams many Parquet
files (a stage's parts) into one without holding their rows.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
    csv_text: bool = False,
) -> pd.DataFrame:
    """Read a Parquet (or CSV) table that must have the ``required`` columns.

    ``path`` is a file or a folder of Parquet parts (names starting with ``.`` or ``_`` are
    skipped). ``what`` names the table in the error message ("personas table"); ``hint`` says
    what to do. Parquet only reads what is needed: ``exclude`` drops columns before reading, and
    ``only=(column, values)`` keeps the rows whose ``column`` is among ``values``;
    ``columns`` reads only those of them the table has. A file is read as CSV when its ending
    says so (:data:`CSV_SUFFIXES`) or ``as_csv`` is true; ``csv_text`` reads every CSV cell as
    text as written (``None``, ``NA`` and an empty cell are values, not missing).
    """
    path = Path(path)
    try:
        if as_csv or path.suffix.lower() in CSV_SUFFIXES:
            frame = (
                pd.read_csv(path, dtype=str, keep_default_na=False)
                if csv_text
                else pd.read_csv(path)
            )
        else:
            frame = _read_parquet(path, exclude, only, columns, what, hint)
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
    path: str | Path,
    inputs: Sequence[tuple[str, str | Path | None]] = (),
    flag: str = "--out",
    *,
    parquet: bool = False,
) -> Path:
    """Refuse an output location before any work is done, with one line naming it.

    Refused: an existing directory where a file is to be written, a parent that is a file or
    cannot be created or written, and an output that is one of the ``inputs`` (``(flag,
    path)`` pairs, e.g. ``("--responses", responses_path)``), which writing would destroy;
    with ``parquet``, a name whose ending says CSV (the command writes Parquet).
    Creates nothing. Returns ``path`` as a :class:`~pathlib.Path`.
    """
    from personasim.core.errors import ConfigError

    path = Path(path)
    hint = f"give another {flag}"
    if parquet and path.suffix.lower() in CSV_SUFFIXES:
        raise ConfigError(
            f"{flag} {path}: this command writes Parquet, not CSV",
            hint=f"give a {flag} ending in .parquet",
        )
    for name, source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise ConfigError(
                f"{flag} {path} is the {name} file: writing it would destroy the input", hint=hint
            )
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory, not a file", hint=hint)
    _check_folder(path.parent, flag, hint)
    return path


def check_output_dir(
    path: str | Path,
    flag: str = "--out",
    why: str = "",
    inputs: Sequence[tuple[str, str | Path | None]] = (),
    *,
    fresh: bool = False,
) -> Path:
    """Refuse an output folder that is an existing file or cannot be created or written;
    ``why`` says what the folder holds (e.g. that a table is now a folder of parts). Also
    refused: a folder that is one of the ``inputs`` (``(flag, path)`` pairs) or holds one
    (replacing it would destroy the input), and with ``fresh`` an existing folder that is not
    empty (its files would be replaced)."""
    from personasim.core.errors import ConfigError

    path = Path(path)
    for name, source in inputs:
        if source is not None and _inside(Path(source), path):
            raise ConfigError(
                f"{flag} {path} holds the {name} input {source}: writing there would destroy it",
                hint=f"give another {flag}",
            )
    if fresh and path.is_dir() and any(path.iterdir()):
        raise ConfigError(
            f"{flag} {path} exists and is not empty",
            hint=f"give a new or empty {flag}, or pass --overwrite",
        )
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{flag} {path} is an existing file, not a directory" + (f" ({why})" if why else ""),
            hint=f"give another {flag}, or move the file away",
        )
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
        raise ConfigError(
            f"{flag}: cannot write in {existing} ({error.strerror or error})", hint=hint
        ) from None


def _inside(source: Path, folder: Path) -> bool:
    """True when ``source`` is ``folder`` or lies under it (symbolic links resolved)."""
    source, folder = source.resolve(), folder.resolve()
    return source == folder or folder in source.parents


def _same_file(a: Path, b: Path) -> bool:
    """True when both paths name the same existing file (or the same absolute path)."""
    try:
        return a.samefile(b)
    except OSError:
        return a.absolute() == b.absolute()


def _read_parquet(
    path: Path,
    exclude: Sequence[str],
    only: tuple[str, Sequence[str]] | None,
    keep: Sequence[str] | None,
    what: str,
    hint: str,
) -> pd.DataFrame:
    """A Parquet file or folder without the ``exclude`` columns (with only the ``keep`` ones
    when given), only the ``only`` rows; parts of differing types read as one table."""
    table = ParquetTable.open(path, what, hint)
    columns = [
        c for c in table.schema.names if c not in set(exclude) and (keep is None or c in keep)
    ]
    where = None
    if only is not None and only[0] in table.schema.names:
        import pyarrow.dataset as ds

        where = ds.field(only[0]).isin(list(only[1]))
    return table.read(columns, where).to_pandas()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends
    without an error, removed otherwise (a reader never sees a half-written file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(path)
        yield tmp
        os.replace(tmp, path)
    except OSError as error:  # disk full, read-only, a folder in the way: one line
        raise DataError(
            f"cannot write {path} ({error.strerror or _first_line(error)})",
            hint="check the output location and free disk space",
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def _remove_stale(path: Path) -> None:
    """Remove the temporary files of ``path`` left by writers that died (a kill mid-write):
    ``.NAME.PID.tmp`` whose process no longer runs."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = stale.name.removeprefix(f".{path.name}.").removesuffix(".tmp")
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            stale.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine (ours to signal or not): the one
    liveness test of stale temporary files and of lock holders."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` as Parquet to a temporary file beside ``path``, then rename it over it."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_all_atomic(frames: Sequence[tuple[pd.DataFrame, str | Path]]) -> None:
    """Write several tables as one unit: every frame goes to its temporary file first, and only
    when all are written are they renamed into place (the last first), so a failure (disk
    full, a kill) part-way through replaces none of them."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        for frame, path in frames:
            frame.to_parquet(stack.enter_context(atomic_path(path)), index=False)


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it over it."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


PART = re.compile(r"^part-(\d{5,})\.parquet$")
"""A committed part of a folder: ``part-00012.parquet``."""


def part_paths(folder: str | Path) -> list[Path]:
    """The committed parts of ``folder`` in commit order (empty when there is no folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := PART.match(p.name))]
    return [p for _, p in sorted(found)]


def parquet_files(path: str | Path, hint: str = "") -> list[Path]:
    """The Parquet file ``path``, or a folder's committed parts in commit order
    (:func:`part_paths`), else its ``*.parquet`` files by name (names starting with ``.`` or
    ``_`` skipped, as pyarrow does)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found", hint=hint)
    if not path.is_dir():
        return [path]
    found = part_paths(path) or [
        p for p in sorted(path.glob("*.parquet")) if not p.name.startswith((".", "_"))
    ]
    if not found:
        raise DataError(f"{path}: no Parquet file in the folder", hint=hint)
    return found


def _first_line(error: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def unified_schema(sources: Sequence[str | Path], what: str = "table", hint: str = "") -> pa.Schema:
    """One schema for the Parquet files ``sources`` (footers only): every column of any file, in
    order of first appearance; a column that is all-null (type ``null``) in one file takes the
    other files' type, and numeric types are widened (int64 and double give double). The first
    file's metadata (pandas types) is kept. Types that cannot be unified (text in one part, a
    list in another) are one :class:`DataError` naming the part and the column."""
    schema: pa.Schema | None = None
    for source in sources:
        try:
            current = pq.read_schema(source)
        except (OSError, pa.ArrowInvalid) as error:
            raise DataError(
                f"{source}: cannot read {what} ({_first_line(error)})", hint=hint
            ) from None
        if schema is None:
            schema = current
            continue
        try:
            schema = pa.unify_schemas([schema, current], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            raise _clash(Path(source), schema, current, what) from None
    if schema is None:
        raise DataError(f"no Parquet file to read the {what} from", hint=hint)
    return schema


def _clash(source: Path, before: pa.Schema, current: pa.Schema, what: str) -> DataError:
    """The error for a part whose column types cannot join those of the parts before it."""
    for field in current:
        if field.name not in before.names:
            continue
        earlier = before.field(field.name).type
        try:
            pa.unify_schemas(
                [pa.schema([before.field(field.name)]), pa.schema([field])],
                promote_options="permissive",
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return DataError(
                f"{source}: column {field.name!r} is {field.type} in this part but "
                f"{earlier} in the parts before it: cannot read them as one {what}",
                hint="rewrite that part with the same column types, or move it out of the folder",
            )
    return DataError(
        f"{source}: its columns cannot join those of the parts before it",
        hint="move that part out of the folder",
    )


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly the columns of ``schema``, in its order and types (a column the
    table lacks is all-null)."""
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


@dataclass(frozen=True)
class ParquetTable:
    """A Parquet file or a folder of Parquet parts read as one table: the one reader of every
    stage table, part folder and export input.

    Parts may differ in their column types (a part whose ``error`` column is all-null beside
    one with text, ``int64`` beside ``double``): every part is read in the :func:`unified_schema`
    of all of them, so a reader never sees two types for one column."""

    path: Path
    """The file or folder."""
    files: tuple[Path, ...]
    """The Parquet files read, in order (:func:`parquet_files`)."""
    schema: pa.Schema
    """The unified schema of all of them."""
    what: str = "table"
    """What error messages call the table ("personas table")."""

    @classmethod
    def open(cls, path: str | Path, what: str = "table", hint: str = "") -> ParquetTable:
        """The table at ``path`` (footers only); one-line errors when it is missing, not
        Parquet or its parts' types clash."""
        files = parquet_files(path, hint)
        return cls(Path(path), tuple(files), unified_schema(files, what, hint), what)

    def _schema_of(self, columns: Sequence[str] | None) -> pa.Schema:
        """The unified schema restricted to those of ``columns`` it has (all when None), in
        their order."""
        if columns is None:
            return self.schema
        return pa.schema(
            [self.schema.field(c) for c in columns if c in self.schema.names],
            metadata=self.schema.metadata,
        )

    def batches(
        self, columns: Sequence[str] | None = None, batch_rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """The rows as record batches of at most ``batch_rows`` rows in the unified schema
        (only ``columns`` of it when given): one file and one batch in memory at a time."""
        schema = self._schema_of(columns)
        for path in self.files:
            try:
                with pq.ParquetFile(path) as parquet:
                    present = [c for c in schema.names if c in parquet.schema_arrow.names]
                    for batch in parquet.iter_batches(batch_size=batch_rows, columns=present):
                        yield from conform(pa.Table.from_batches([batch]), schema).to_batches()
            except (OSError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise DataError(f"{path}: cannot read {self.what} ({_first_line(error)})") from None

    def read(self, columns: Sequence[str] | None = None, where: Any = None) -> pa.Table:
        """The whole table (only ``columns`` when given, only rows matching the pyarrow
        expression ``where``) in the unified schema."""
        schema = self._schema_of(columns)
        tables = []
        for path in self.files:
            try:
                names = pq.read_schema(path).names
                part = pq.read_table(path, columns=[c for c in schema.names if c in names])
            except (OSError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise DataError(f"{path}: cannot read {self.what} ({_first_line(error)})") from None
            part = conform(part, schema)
            tables.append(part.filter(where) if where is not None else part)
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


ROW_GROUP_ROWS = 262_144
"""Rows gathered into one row group by :func:`write_concat_atomic`: small parts compress badly
as row groups of their own (on 200 parts of 10,000 answers, ``benchmarks/publish.py``: 10,000-row
groups 24 % larger than one 2M-row frame, 65,536-row groups 16 %, 262,144-row groups 4 %)."""


def write_concat_atomic(
    sources: Sequence[str | Path], path: str | Path, keep: Sequence[Any | None] | None = None
) -> int:
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
