"""Packaged election truth: known facts, and the build script reproduces the shipped table."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from personasim.core.errors import ConfigError, DataError
from personasim.core.states import state_code
from personasim.truth import elections as E

REPO = Path(__file__).resolve().parents[2]
SHARED_ELECTIONS = REPO.parent / "shared" / "data" / "elections"
SHIPPED = REPO / "src" / "personasim" / "truth" / "data" / "elections.csv"


def test_national_shares_match_the_data() -> None:
    # national sums in SOURCES.md: 2020 D 81,268,908, R 74,216,146
    assert E.national_share(2020) == pytest.approx(81_268_908 / (81_268_908 + 74_216_146), abs=1e-8)
    assert E.national_share(2016) > 0.5 and E.national_share(2024) < 0.5


def test_state_winners_2016() -> None:
    winners = E.state_truth(2016).set_index("state")["winner"]
    assert winners["CA"] == "dem" and winners["NY"] == "dem"
    assert winners["TX"] == "rep" and winners["PA"] == "rep" and winners["WI"] == "rep"


@pytest.mark.parametrize("year", E.YEARS)
def test_electoral_votes_sum_to_538(year: int) -> None:
    states = E.state_truth(year)
    assert len(states) == 51 and states["electoral_votes"].sum() == 538


def test_two_party_share_definition() -> None:
    row = E.state_truth(2016).set_index("state").loc["AK"]
    assert row["dem_share"] == pytest.approx(116454 / (116454 + 163387), abs=1e-8)


def test_state_codes_and_bad_years() -> None:
    assert state_code("california") == state_code("6") == state_code("ca") == "CA"
    with pytest.raises(DataError):
        state_code("Atlantis")
    with pytest.raises(ConfigError, match="2012"):
        E.state_truth(2012)


@pytest.mark.shared_data
def test_build_script_reproduces_the_shipped_table(tmp_path: Path) -> None:
    if not SHARED_ELECTIONS.is_dir():
        pytest.skip(f"{SHARED_ELECTIONS} is absent (a user's clone); CI runs this test")
    script = REPO / "scripts" / "build_election_truth.py"
    subprocess.run(
        [sys.executable, str(script), "--data", str(SHARED_ELECTIONS), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    assert filecmp.cmp(tmp_path / "elections.csv", SHIPPED, shallow=False)
