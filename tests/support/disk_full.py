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

import pyarrow.parquet as pq
import pytest


@contextmanager
def disk_full_at_write(monkeypatch: pytest.MonkeyPatch, n: int) -> Iterator[list[Any]]:
    """Within the block, the ``n``-th (1-based) Parquet write raises ENOSPC after writing a
    partial file; yields the targets (paths or open files) of every write attempted."""
    real = pq.write_table
    seen: list[Any] = []

    def write_table(table: Any, where: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(where)
        if len(seen) == n:
            if hasattr(where, "write"):  # pandas hands over an open file
                where.write(b"PAR1 partial")
            else:
                Path(where).write_bytes(b"PAR1 partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", write_table)
    yield seen
