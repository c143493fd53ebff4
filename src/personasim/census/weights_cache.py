"""A disk cache of raked state weights, so that drawing a population does not re-rake every call.

Raking the pooled seed to one state's controls takes ~0.15 s; all 51 states take ~8 s, which is
most of ``personasim population --states all`` when only the draw (well under a second) depends
on the seed and the size. Each state's raked weights and its :class:`RakeReport` are kept in one
``.npz`` file whose name is the SHA-256 of everything the weights depend on:

* the seed table's content (``pandas`` row hashes of every column), so a ``--pums`` seed gets its
  own entries;
* the state's target figures (the ACS 2023 numbers, or the national sums for DC) and its note;
* the raking options;
* the source of :mod:`personasim.census.rake` and :mod:`personasim.census.controls`, so a change
  of the method never serves stale weights; and a format version.

Location: ``$PERSONASIM_WEIGHTS_CACHE`` when set (``off`` disables the cache), else
``.personasim/census-weights/`` in the current folder, beside the LLM cache. Entries are written
to a temporary file and renamed into place (atomic: readers never see half a file, concurrent
writers of one key write the same bytes). An entry that cannot be read, or does not fit the seed,
is recomputed and rewritten; it never stops a run. Deleting the folder is always safe.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.census import controls, rake
from personasim.census.rake import RakeOptions, RakeReport
from personasim.core.tables import atomic_path

FORMAT_VERSION = 1
"""Bump when the layout of an entry changes."""
ENV = "PERSONASIM_WEIGHTS_CACHE"
"""Environment variable naming the cache folder (``off``: no cache)."""
DEFAULT_DIR = Path(".personasim") / "census-weights"
"""The cache folder when ``$PERSONASIM_WEIGHTS_CACHE`` is not set (relative to the cwd)."""

Raked = tuple[np.ndarray, RakeReport]


def default_cache_dir() -> Path | None:
    """``$PERSONASIM_WEIGHTS_CACHE``, else ``.personasim/census-weights``; None when ``off``."""
    env = os.environ.get(ENV, "").strip()
    if env.lower() == "off":
        return None
    return Path(env) if env else DEFAULT_DIR


def seed_digest(seed: pd.DataFrame) -> str:
    """SHA-256 of a seed table's content (column names, dtypes and every value)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(t)] for c, t in seed.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(seed, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@functools.cache
def _method_digest() -> str:
    """SHA-256 of the raking code (rake.py and controls.py), so a new method gets new entries
    (read once per process, not once per state)."""
    digest = hashlib.sha256(str(FORMAT_VERSION).encode())
    for module in (rake, controls):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()


def entry_key(
    state: str, seed_hash: str, figures: Mapping[str, float], note: str, options: RakeOptions
) -> str:
    """The cache key of one state's raked weights (hex SHA-256)."""
    parts = {
        "state": state,
        "seed": seed_hash,
        "figures": dict(sorted(figures.items())),
        "note": note,
        "options": options.model_dump(mode="json"),
        "method": _method_digest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class WeightsCache:
    """Raked weights per state on disk (see the module docstring); ``None`` folder: no caching."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.hits = 0
        self.misses = 0

    def get_or_rake(self, key: str, n_seed: int, compute: Callable[[], Raked]) -> Raked:
        """The cached entry of ``key`` if it is readable and has ``n_seed`` weights, else
        ``compute()`` (stored for next time when a folder is set)."""
        path = self.directory / f"{key}.npz" if self.directory is not None else None
        found = self._read(path, n_seed) if path is not None else None
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        weights, report = compute()
        if path is not None:
            self._write(path, weights, report)
        return weights, report

    @staticmethod
    def _read(path: Path, n_seed: int) -> Raked | None:
        """An entry, or None when it is absent, unreadable or of the wrong size."""
        try:
            with np.load(path, allow_pickle=False) as data:
                weights = np.asarray(data["weights"], dtype=np.float64)
                report = RakeReport.model_validate_json(str(data["report"]))
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 - any damage to a cache entry means "recompute"
            return None
        if weights.shape != (n_seed,) or not np.isfinite(weights).all():
            return None
        return weights, report

    @staticmethod
    def _write(path: Path, weights: np.ndarray, report: RakeReport) -> None:
        """Write an entry atomically (temporary file in the same folder, then rename).

        A cache that cannot be written (read-only folder, full disk) only costs the next run the
        raking time, so the error is dropped rather than stopping the population."""
        with contextlib.suppress(OSError), atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, weights=weights, report=np.array(report.model_dump_json()))
            handle.flush()
            os.fsync(handle.fileno())
