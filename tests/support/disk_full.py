"""``DiskFullStandIn``: a test double of a full disk, named as such.

A real full disk cannot be made on demand on every CI machine (a small tmpfs needs root), so
this stand-in makes the ``n``-th Parquet write of a process fail the way a full disk does:
it writes some bytes of the file, then raises ``OSError(ENOSPC)``. Every table the package
writes goes through :func:`pyarrow.parquet.write_table` (pandas' ``to_parquet`` too), so
counting those calls picks "the first write", "the second write", ... of a command.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest


@contextmanager
def disk_full_at_write(
    monkeypatch: pytest.MonkeyPatch, n: int, match: str = ""
) -> Iterator[list[Any]]:
    """Within the block, the ``n``-th (1-based) Parquet write whose target's name contains
    ``match`` raises ENOSPC after writing a partial file; yields the targets (paths or open
    files) of those writes."""
    real, real_frame = pq.write_table, pd.DataFrame.to_parquet
    seen: list[Any] = []
    target = [""]  # the path pandas writes to (it hands write_table an unnamed open file)

    def to_parquet(frame: pd.DataFrame, path: Any = None, *args: Any, **kwargs: Any) -> Any:
        target[0] = str(path)
        try:
            return real_frame(frame, path, *args, **kwargs)
        finally:
            target[0] = ""

    def write_table(table: Any, where: Any, *args: Any, **kwargs: Any) -> None:
        if match in (target[0] or str(where)):
            seen.append(where)
        if len(seen) == n and seen[-1] is where:
            if hasattr(where, "write"):  # pandas hands over an open file
                where.write(b"PAR1 partial")
            else:
                Path(where).write_bytes(b"PAR1 partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_table)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    yield seen


@contextmanager
def read_only_folder(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Iterator[list[str]]:
    """``ReadOnlyFolderStandIn``: within the block, opening a file for writing under ``folder``
    fails with EROFS, as on a read-only mount (a test run as root ignores permission bits, so
    ``chmod`` cannot make a read-only folder there). Every writer of a parts folder opens its
    lock file first, so that is where a real read-only folder stops it too; yields the paths
    refused."""
    real = os.open
    refused: list[str] = []
    inside = folder.resolve()

    def open_for(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if writes and Path(path).resolve().is_relative_to(inside):
            refused.append(str(path))
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_for)
    yield refused
