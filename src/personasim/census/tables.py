"""The compact tables the package ships (written by ``scripts/build_census_tables.py``).

* ``seed.parquet``: pooled ACS 2018 PUMS persons of 14 states, mapped to persona attributes,
  with person weights (see :mod:`personasim.census.pums`).
* ``targets.csv``: ACS 2023 figures per state (``state, key, value``; keys in
  :data:`personasim.census.targets.FIGURES`).
* ``pob_labels.csv``: POBP code -> label from the 2018 PUMS data dictionary.
* ``manifest.json``: seed and target years.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pandas as pd

from personasim.core.errors import DataError

DATA_DIR = Path(__file__).parent / "data"
SEED_FILE, TARGETS_FILE, POB_FILE, MANIFEST_FILE = (
    "seed.parquet",
    "targets.csv",
    "pob_labels.csv",
    "manifest.json",
)


def _path(name: str, data_dir: Path | None) -> Path:
    """Path of a shipped table, with a clear error when it is missing."""
    path = (data_dir or DATA_DIR) / name
    if not path.is_file():
        raise DataError(
            f"census table {path} is missing",
            "reinstall personasim or run scripts/build_census_tables.py",
        )
    return path


@lru_cache(maxsize=4)
def load_seed(data_dir: Path | None = None) -> pd.DataFrame:
    """The pooled seed persons (one row per PUMS person record)."""
    path = _path(SEED_FILE, data_dir)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise DataError(f"census table {path} is unreadable: {error}", "rebuild it") from error


@lru_cache(maxsize=4)
def load_targets(data_dir: Path | None = None) -> pd.DataFrame:
    """The ACS 2023 figures per state, long form (``state, key, value``)."""
    path = _path(TARGETS_FILE, data_dir)
    frame = pd.read_csv(path, dtype={"state": str, "key": str, "value": float})
    if list(frame.columns) != ["state", "key", "value"]:
        raise DataError(f"census table {path} is malformed: wrong columns", "rebuild it")
    return frame


@lru_cache(maxsize=4)
def load_pob_labels(data_dir: Path | None = None) -> dict[int, str]:
    """POBP code -> place-of-birth label."""
    frame = pd.read_csv(_path(POB_FILE, data_dir), dtype={"code": int, "label": str})
    return dict(zip(frame["code"], frame["label"], strict=True))


@lru_cache(maxsize=4)
def load_manifest(data_dir: Path | None = None) -> dict:
    """Seed and target years of the shipped tables."""
    return json.loads(_path(MANIFEST_FILE, data_dir).read_text())


def target_states(data_dir: Path | None = None) -> list[str]:
    """USPS codes of the states that have target tables (50 states; DC has none)."""
    return sorted(load_targets(data_dir)["state"].unique())
