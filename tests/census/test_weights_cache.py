"""The raked-weights cache: same people with and without it, damaged entries recomputed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.census import tables
from personasim.census.sample import PopulationSpec, build_population, rake_state
from personasim.census.weights_cache import WeightsCache, default_cache_dir, seed_digest

SPEC = PopulationSpec(states=("VT", "NH"), per_state=300, seed=3)


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npz"))


def test_cached_draw_equals_uncached_and_second_run_only_hits(tmp_path: Path) -> None:
    plain = build_population(SPEC, cache=WeightsCache(None)).frame
    first_cache = WeightsCache(tmp_path)
    first = build_population(SPEC, cache=first_cache)
    assert (first_cache.hits, first_cache.misses) == (0, 2)
    assert len(_entries(tmp_path)) == 2
    second_cache = WeightsCache(tmp_path)
    second = build_population(SPEC, cache=second_cache)
    assert (second_cache.hits, second_cache.misses) == (2, 0)
    pd.testing.assert_frame_equal(plain, first.frame)
    pd.testing.assert_frame_equal(plain, second.frame)
    assert [r.model_dump() for r in first.reports] == [r.model_dump() for r in second.reports]
    assert not list(tmp_path.glob(".*tmp*")), "a temporary file was left behind"


@pytest.mark.parametrize("damage", [b"", b"not a numpy file", "truncate"])
def test_damaged_entry_is_recomputed_and_repaired(tmp_path: Path, damage: bytes | str) -> None:
    spec = PopulationSpec(states=("VT",), per_state=200, seed=1)
    expected = build_population(spec, cache=WeightsCache(tmp_path)).frame
    [entry] = _entries(tmp_path)
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2] if damage == "truncate" else damage)
    cache = WeightsCache(tmp_path)
    pd.testing.assert_frame_equal(build_population(spec, cache=cache).frame, expected)
    assert (cache.hits, cache.misses) == (0, 1)
    assert entry.read_bytes() == good


def test_entry_of_another_seed_size_is_not_served(tmp_path: Path) -> None:
    seed, targets = tables.load_seed(), tables.load_targets()
    spec = PopulationSpec(states=("VT",), per_state=50)
    build_population(spec, cache=WeightsCache(tmp_path))
    [entry] = _entries(tmp_path)
    np.savez(entry, weights=np.ones(10), report=np.array("{}"))  # wrong size, bad report
    weights, _ = WeightsCache(tmp_path).get_or_rake(
        entry.stem, len(seed), lambda: rake_state("VT", seed, targets, spec.rake)
    )
    assert weights.shape == (len(seed),)


def test_key_follows_the_seed_content() -> None:
    seed = tables.load_seed()
    changed = seed.copy()
    changed.loc[0, "pwgtp"] = changed.loc[0, "pwgtp"] + 1
    assert seed_digest(seed) == seed_digest(seed.copy())
    assert seed_digest(seed) != seed_digest(changed)


def test_cache_folder_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PERSONASIM_WEIGHTS_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.setenv("PERSONASIM_WEIGHTS_CACHE", "off")
    assert default_cache_dir() is None
    monkeypatch.delenv("PERSONASIM_WEIGHTS_CACHE")
    assert default_cache_dir() == Path(".personasim") / "census-weights"


def test_unwritable_folder_still_draws(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    spec = PopulationSpec(states=("VT",), per_state=20)
    frame = build_population(spec, cache=WeightsCache(blocker / "sub")).frame
    assert len(frame) == 20
