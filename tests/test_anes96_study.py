"""The built-in ``anes96`` study at tiny scale through ``personasim run``: simulated vote and
party ID of census persons scored against the ANES 1996 respondents by age group, education and
income band, on the real embedded model."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from personasim.cli.main import main

pytestmark = pytest.mark.slow


def _tiny_anes96(folder: Path) -> Path:
    """The shipped anes96.toml cut to 2 states x 3 persons, the meta tier and 20 replicates."""
    text = (resources.files("personasim") / "studies" / "anes96.toml").read_text("utf-8")
    shipped = tomllib.loads(text)
    assert shipped["surveys"][0]["truth"] == "microdata:anes96"
    small = text.replace('states = ["CA", "TX", "FL", "PA", "WI"]', 'states = ["VT", "TX"]')
    small = small.replace('tiers = ["meta", "objective", "descriptive"]', 'tiers = ["meta"]')
    small = small.replace("n_boot = 200", "n_boot = 20")
    assert small != text and tomllib.loads(small)["population"]["states"] == ["VT", "TX"]
    path = folder / "anes96.toml"
    path.write_text(small, encoding="utf-8")
    return path


def test_anes96_run_scores_groups_against_anes_respondents(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["run", str(_tiny_anes96(tmp_path)), "--out", str(out)]) == 0
    scores = pd.read_parquet(out / "scores_anes96.parquet")
    alignment = scores[scores["metric"] == "alignment"]
    assert set(alignment["question_id"]) == {"vote_1996", "party_id"}
    # the persons' groups met ANES groups on every mapped attribute
    assert {"overall", "AGE", "education", "INCOME_BAND"} <= set(alignment["attribute"])
    assert alignment["value"].between(0, 1).all()
    crosstab = pd.read_parquet(out / "crosstab_anes96.parquet")
    overall = crosstab[
        (crosstab["question_id"] == "vote_1996") & (crosstab["attribute"] == "overall")
    ]
    clinton = overall.loc[overall["option"] == "Bill Clinton (Democrat)", "truth_share"]
    assert clinton.to_numpy() == pytest.approx(551 / 944)  # the real share beside the simulated
    grouped = crosstab[crosstab["attribute"].isin(["AGE", "education", "INCOME_BAND"])]
    assert len(grouped) and grouped["truth_share"].notna().all()
