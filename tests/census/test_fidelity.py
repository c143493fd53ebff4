"""Fidelity measures: no implausible combinations; leave-one-state-out beats chained marginals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personasim.analysis import fidelity
from personasim.census import tables


def test_no_implausible_combinations_even_with_children() -> None:
    from personasim.census import sample_population

    frame = sample_population(["CA", "WV"], per_state=5000, seed=2, min_age=0)
    assert set(fidelity.implausible_counts(frame).values()) == {0}


def test_no_never_married_spouse_in_seed() -> None:
    seed = tables.load_seed()
    frame = seed.assign(age=seed["age"])
    counts = fidelity.implausible_counts(frame, relp=seed["relp"].to_numpy())
    assert counts["never-married spouse"] == 0


def test_marginal_tvd_is_at_sampling_noise_level(small_population: pd.DataFrame) -> None:
    result = fidelity.marginal_tvds(tables.load_seed(), tables.load_targets(), "NM", 5000, 0)
    ours = np.mean([v[0] for v in result.values()])
    noise = np.mean([v[1] for v in result.values()])
    assert ours < 2 * noise


def test_leave_one_state_out_beats_chained_sampler() -> None:
    result = fidelity.loso_state(tables.load_seed(), tables.load_targets(), 50, own=True)  # VT
    ours = np.mean([v[0] for v in result.values()])
    chained = np.mean([v[1] for v in result.values()])
    assert ours < chained / 3


def test_tvd_basics() -> None:
    assert fidelity.total_variation(np.array([1, 0]), np.array([0, 2])) == 1.0
    assert fidelity.total_variation(np.array([1, 1]), np.array([2, 2])) == 0.0
