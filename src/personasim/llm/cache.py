"""A content-addressed SQLite cache of model results.

The key is the SHA-256 of a canonical JSON document holding the operation, the backend name, the
model identity (a local file's content hash, or endpoint + model name — never an API key), and the
whole request (messages, constraint, parameters, seed). A rerun of the same requests is answered
from the cache without a single model call.

Concurrent writers (threads or processes) are safe: SQLite in WAL mode with a busy timeout, and
``INSERT OR IGNORE`` so that two writers of the same key keep one identical row.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from personasim.core.errors import ConfigError

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
)
"""


def default_cache_path() -> Path:
    """``$PERSONASIM_CACHE`` when set, else ``.personasim/cache.sqlite`` in the current folder."""
    env = os.environ.get("PERSONASIM_CACHE")
    return Path(env) if env else Path(".personasim") / "cache.sqlite"


def cache_key(parts: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``parts`` (sorted keys, no whitespace)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Cache:
    """A key -> JSON value store in one SQLite file, shared safely by threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._local = threading.local()
            with self._connect() as connection:
                connection.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(
                f"cannot open the cache at {self.path}: {error}",
                hint="pass another --cache path, or set PERSONASIM_CACHE",
            ) from error

    def _connect(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections must not cross threads)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=60000")
            self._local.connection = connection
        return connection

    def lookup(self, keys: Iterable[str]) -> dict[str, Any]:
        """The stored values of those ``keys`` that are present."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        connection = self._connect()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT key, value FROM results WHERE key IN ({marks})", chunk
            ).fetchall()
            found.update((key, json.loads(value)) for key, value in rows)
        return found

    def store(self, items: dict[str, Any]) -> None:
        """Write ``key -> value`` pairs in one transaction; an existing key is kept as it is."""
        if not items:
            return
        rows = [(key, json.dumps(value, ensure_ascii=False)) for key, value in items.items()]
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany("INSERT OR IGNORE INTO results(key, value) VALUES (?, ?)", rows)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def get(self, key: str, compute: Callable[[], T]) -> tuple[T | Any, bool]:
        """Return ``(value, cached)``: the stored value, or ``compute()`` stored and returned.

        ``compute`` must return something JSON-serialisable.
        """
        found = self.lookup([key])
        if key in found:
            return found[key], True
        value = compute()
        self.store({key: value})
        return value, False

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        """Close this thread's connection."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
