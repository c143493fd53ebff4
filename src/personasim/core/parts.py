"""A stage's dataset as a folder of Parquet part files, written atomically and committed in order.

Layout of a stage folder (e.g. ``responses/<survey>/``)::

    part-00000.parquet      committed parts, numbered in commit order
    part-00001.parquet
    _failed.parquet         keys of the rows whose batch failed after its retries (if any)
    _published.json         which parts the stage table was last written from (see publish)
    _made_with.json         the options the rows were computed with (see check_made_with)
    .lock                   one writer at a time (see folder_lock and personasim.core.lock)
    .part-00002.parquet.<pid>.tmp   a part being written (never read)

A part is written to a hidden temporary file and renamed into place, so a reader (and a rerun
after ``kill -9``) sees whole parts only; names starting with ``.`` or ``_`` are skipped by
pyarrow's dataset scanner too. The set of done keys is read from the key columns of the parts
alone, never from the whole table. Temporary files of writers that no longer run are removed
when the next writer opens the folder.

One writer at a time: a writer holds the folder's lock (:func:`folder_lock`) for its life, part
numbers are taken under it, and :func:`publish` lists the parts once, under it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from personasim.core.errors import ConfigError, DataError
from personasim.core.lock import directory_lock
from personasim.core.tables import (
    PART,
    ParquetTable,
    atomic_path,
    part_paths,
    pid_alive,
    write_atomic,
    write_concat_atomic,
    write_text_atomic,
)

TEMP = re.compile(r"^\..*\.(\d+)\.tmp$")
FAILED = "_failed.parquet"
"""Keys and error of rows whose batch failed after its retries (retried by a rerun)."""
PUBLISHED = "_published.json"
"""The parts (name, size, mtime) and the table (size, mtime) of the last :func:`publish`."""
MADE_WITH = "_made_with.json"
"""The options the folder's rows were computed with (see :func:`check_made_with`)."""
BRIEF_WAIT_SECONDS = 60.0
"""How long a single commit or publish waits for the folder's lock held by another process
(a writer holding it for its whole life is refused at once instead, see :func:`folder_lock`)."""


def folder_lock(folder: str | Path, wait: float = 0.0) -> AbstractContextManager[Path]:
    """Hold ``folder``'s lock (one writer at a time; re-entrant in one process) inside a
    ``with``; another process holding it: wait up to ``wait`` seconds, then
    :class:`~personasim.core.errors.LockedError` naming it. See :mod:`personasim.core.lock`."""
    return directory_lock(folder, wait=wait, what="parts folder")


def next_part_number(folder: str | Path) -> int:
    """The number the next committed part gets."""
    parts = part_paths(folder)
    return int(PART.match(parts[-1].name).group(1)) + 1 if parts else 0  # type: ignore[union-attr]


def part_name(number: int) -> str:
    """``part-00012.parquet``."""
    return f"part-{number:05d}.parquet"


def remove_stale_temps(folder: str | Path) -> int:
    """Delete temporary files left by writers that died (e.g. ``kill -9``); how many."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        match = TEMP.match(path.name)
        if match and (int(match.group(1)) == os.getpid() or not pid_alive(int(match.group(1)))):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def commit_part(frame: pd.DataFrame, folder: str | Path, number: int | None = None) -> Path:
    """Write ``frame`` as the next part of ``folder`` atomically; returns its path. The number
    is taken and the part written under the folder's lock (waiting up to
    :data:`BRIEF_WAIT_SECONDS` for another process's), so two writers never share a number."""
    folder = Path(folder)
    with folder_lock(folder, BRIEF_WAIT_SECONDS):
        number = next_part_number(folder) if number is None else number
        path = folder / part_name(number)
        write_atomic(frame, path)
    return path


def committed_rows(folder: str | Path) -> int:
    """How many rows the committed parts of ``folder`` hold (their footers only)."""
    return sum(pq.read_metadata(p).num_rows for p in part_paths(folder))


def read_parts(folder: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Every committed row of ``folder`` (only ``columns`` when given); empty without parts.

    Read with the one folder reader (:class:`~personasim.core.tables.ParquetTable`): parts
    whose column types differ (an all-null column beside text) come back as one table."""
    if not part_paths(folder):
        return pd.DataFrame(columns=list(columns or []))
    hint = "move the folder away to start over"
    return ParquetTable.open(folder, "parts", hint).read(columns).to_pandas()


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted, sorting ``values`` in place (``np.unique`` took about five
    times the array's size in extra memory on 10 million keys)."""
    values = np.asarray(values, dtype=np.uint64)
    if not values.flags.writeable:
        values = values.copy()
    values.sort()
    if len(values) < 2:
        return values
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


class KeyIndex:
    """The keys of committed rows as sorted 64-bit hashes: 8 bytes a row (80 MB for 10 million
    rows, where a set of string tuples would take gigabytes). Keys are compared as strings, so
    ``person_id`` 7 and ``"7"`` are the same key. Two different keys share a hash with a
    probability of about n^2 / 2^65 (3e-6 for 10 million rows)."""

    def __init__(self, key: Sequence[str], hashes: np.ndarray | None = None) -> None:
        self.key = list(key)
        self.hashes = _sorted_unique(hashes) if hashes is not None else np.empty(0, np.uint64)

    def hash(self, frame: pd.DataFrame) -> np.ndarray:
        """The hash of each row's key."""
        if frame.empty:
            return np.empty(0, dtype=np.uint64)
        strings = frame[self.key].astype(str)
        return pd.util.hash_pandas_object(strings, index=False).to_numpy(dtype=np.uint64)

    def contains(self, frame: pd.DataFrame) -> np.ndarray:
        """For each row of ``frame``: is its key among the committed ones?"""
        hashes = self.hash(frame)
        if not len(self.hashes) or not len(hashes):
            return np.zeros(len(hashes), dtype=bool)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        return self.hashes[at] == hashes

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def from_parts(cls, folder: str | Path, key: Sequence[str]) -> KeyIndex:
        """The index of every committed row of ``folder``, reading only the key columns, part
        by part."""
        index, found = cls(key), []
        for path in part_paths(folder):
            found.append(index.hash(_keys_of(path, key)))
        return cls(key, np.concatenate(found)) if found else index


def done_keys(folder: str | Path, key: Sequence[str]) -> KeyIndex:
    """The keys of every committed row of ``folder`` (see :class:`KeyIndex`)."""
    return KeyIndex.from_parts(folder, key)


def write_failed(folder: str | Path, failed: pd.DataFrame) -> Path | None:
    """Record the failed rows (replacing the previous record); remove it when none failed."""
    path = Path(folder) / FAILED
    if failed.empty and not path.exists():
        return None
    with folder_lock(folder, BRIEF_WAIT_SECONDS):
        if failed.empty:
            path.unlink(missing_ok=True)
            return None
        write_atomic(failed, path)
    return path


def _stamp(path: Path) -> list[int]:
    """Size and modification time (ns) of a file."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _publication(paths: Sequence[Path], table: Path) -> dict[str, Any]:
    """What a table published from ``paths`` looks like on disk (see :data:`PUBLISHED`)."""
    return {"parts": [[p.name, *_stamp(p)] for p in paths], "table": _stamp(table)}


def _recorded(folder: Path) -> object:
    """The folder's :data:`PUBLISHED` record (None when absent or unreadable)."""
    try:
        return json.loads((folder / PUBLISHED).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def mark_published(
    folder: str | Path, table: str | Path, paths: Sequence[Path] | None = None
) -> None:
    """Record that ``table`` holds exactly the rows of ``paths`` (default: the folder's parts
    as they are now), never naming a part the table was not written from."""
    folder = Path(folder)
    with folder_lock(folder, BRIEF_WAIT_SECONDS):
        record = _publication(part_paths(folder) if paths is None else paths, Path(table))
        write_text_atomic(json.dumps(record) + "\n", folder / PUBLISHED)


def latest_rows(paths: Sequence[Path], key: Sequence[str]) -> list[np.ndarray | None]:
    """Per part, which rows are the last of their key (a row committed again later, e.g. a
    retried failure, supersedes the earlier one); None for a part whose rows all are. Reads only
    the key columns (8 bytes a row while it runs)."""
    index = KeyIndex(key)
    hashes = [index.hash(_keys_of(path, key)) for path in paths]
    every = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
    ordered = np.sort(every)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeated):
        return [None] * len(paths)
    seen: set[int] = set()
    masks: list[np.ndarray | None] = [None] * len(paths)
    for at in range(len(paths) - 1, -1, -1):  # newest first: the first row seen of a key wins
        keep = np.ones(len(hashes[at]), dtype=bool)
        for row in np.flatnonzero(np.isin(hashes[at], repeated))[::-1]:
            value = int(hashes[at][row])
            keep[row] = value not in seen
            seen.add(value)
        masks[at] = None if keep.all() else keep
    return masks


def drop_superseded(folder: str | Path, key: Sequence[str]) -> int:
    """Rewrite (atomically) each part holding a row whose key a later part commits again (a
    retried failure), without that row; returns the rows dropped. A folder read as one table
    then holds each key once; a rerun after a crash midway finishes the job."""
    paths, dropped = part_paths(folder), 0
    for path, mask in zip(paths, latest_rows(paths, key), strict=True):
        if mask is not None:
            with atomic_path(path) as tmp:
                pq.write_table(pq.read_table(path).filter(pa.array(mask)), tmp)
            dropped += int((~mask).sum())
    return dropped


def _keys_of(path: Path, key: Sequence[str]) -> pd.DataFrame:
    """The key columns of one part."""
    try:
        return pq.read_table(path, columns=list(key)).to_pandas()
    except (OSError, pa.ArrowInvalid) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"{path}: cannot read its key columns ({first})",
            hint="move the folder away to start over",
        ) from None


def publish(folder: str | Path, table: str | Path, key: Sequence[str] | None = None) -> bool:
    """Write ``table`` from the committed parts of ``folder`` (streamed part by part, atomic;
    see :func:`personasim.core.tables.write_concat_atomic`) unless it is already their publication.
    With ``key``, a key committed more than once is published once, as its last row
    (:func:`latest_rows`).

    Skipped when the :data:`PUBLISHED` record matches the parts and the table as they are now,
    or, without a record, when the table is newer than every part. Republishing the same parts
    gives the same bytes, so the stage contract sees the same input hashes. Returns whether the
    table was written.

    The parts are listed once, under the folder's lock (waiting up to
    :data:`BRIEF_WAIT_SECONDS` for another process's), and the record names exactly those."""
    folder, table = Path(folder), Path(table)
    if not folder.is_dir():
        return False
    with folder_lock(folder, BRIEF_WAIT_SECONDS):
        paths = part_paths(folder)
        if not paths:
            return False
        if table.exists():
            record = _recorded(folder)
            current = _publication(paths, table)
            newer = record is None and current["table"][1] > max(s[2] for s in current["parts"])
            if record == current or newer:
                if newer:
                    mark_published(folder, table, paths)
                return False
        write_concat_atomic(paths, table, latest_rows(paths, key) if key else None)
        mark_published(folder, table, paths)
    return True


def check_made_with(
    folder: str | Path, record: dict[str, Any], hint: str, *, write: bool = True
) -> None:
    """Refuse to add rows to ``folder`` computed with other options than its rows were.

    ``record`` maps an option's name to its value (plain JSON data). A value that is a mapping
    (e.g. question id -> digest of its text) may gain keys from one run to the next; its
    existing keys, and every other value, must be equal to the folder's :data:`MADE_WITH`
    record, else :class:`~personasim.core.errors.ConfigError` names the first option that
    differs (``hint`` says what to do). A folder without committed parts takes the record as
    it is; one with parts but no record (written before records were kept) adopts it. With
    ``write``, the merged record is written atomically under the folder's lock (a caller that
    checks before its model loads passes False: a run that fails before its work changes
    nothing)."""
    folder = Path(folder)
    record = json.loads(json.dumps(record, default=str))
    with folder_lock(folder, BRIEF_WAIT_SECONDS):
        old = _made_with(folder) if part_paths(folder) else {}
        merged = dict(old)
        for name, value in record.items():
            before = old.get(name, value)
            if isinstance(value, dict) and isinstance(before, dict):
                _same_entries(folder, name, before, value, hint)
                merged[name] = {**before, **value}
            elif before != value:
                raise ConfigError(
                    f"{folder} holds rows made with {name}={_shown(before)}, this run has "
                    f"{name}={_shown(value)}: they would be kept beside rows of other options",
                    hint=hint,
                )
            else:
                merged[name] = value
        if write and merged != old:
            write_text_atomic(json.dumps(merged, sort_keys=True) + "\n", folder / MADE_WITH)


def _same_entries(
    folder: Path, name: str, before: dict[str, Any], value: dict[str, Any], hint: str
) -> None:
    """Refuse when an entry of ``name`` present in both records differs."""
    for key in sorted(set(before) & set(value)):
        if before[key] != value[key]:
            raise ConfigError(
                f"{folder} holds rows made with another {name} {key!r} (same id, changed "
                "since): its old rows would be kept as answers to the new one",
                hint=hint,
            )


def _shown(value: Any) -> str:
    """A recorded value as a short text for an error line."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _made_with(folder: Path) -> dict[str, Any]:
    """The folder's :data:`MADE_WITH` record (empty when absent)."""
    path = folder / MADE_WITH
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(
            f"{path}: cannot read the options record ({type(error).__name__})",
            hint=f"move {folder} away to start over",
        ) from None
    return record if isinstance(record, dict) else {}
