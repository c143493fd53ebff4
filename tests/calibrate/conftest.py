"""Fixtures for the calibration tests: a real census population and personas built on it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from personasim.census import sample_population


@pytest.fixture(scope="session")
def population() -> pd.DataFrame:
    """1,000 adults in each of VT and NM, drawn from the shipped census tables (seed 11)."""
    return sample_population(["VT", "NM"], per_state=1000, seed=11)


def fake_personas(population: pd.DataFrame) -> pd.DataFrame:
    """A two-tier personas table on ``population``: the meta tier (no political views) and a
    subjective tier whose ``political_views`` lean Democratic by construction (seeded)."""
    rng = np.random.default_rng(5)
    p = np.array([0.6, 0.2, 0.15, 0.05])  # far more Democrats than Pew finds anywhere
    views = rng.choice(["Democrat", "Republican", "Independent", "Other"], len(population), p=p)
    meta = population.assign(tier="meta", generator="census", fields="{}")
    subjective = population.assign(
        tier="subjective",
        generator="test-model",
        fields=[json.dumps({"political_views": v}) for v in views],
    )
    return pd.concat([meta, subjective], ignore_index=True)
