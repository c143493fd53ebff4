"""Fixtures for the census tests: shared data location and one small sample per session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from personasim.census import sample_population

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The raw census folder under ../shared/data, or skip when it is absent."""
    if not (SHARED / "census" / "pums").is_dir():
        pytest.skip(f"raw census data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def small_population() -> pd.DataFrame:
    """2,000 adults per state for three states, seed 7 (from the shipped tables)."""
    return sample_population(["CA", "VT", "NM"], per_state=2000, seed=7)
