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
    small = small.replace("n_boot = 1000", "n_boot = 20")
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
    # the real share's Wilson interval from the respondents (no weights: n_eff = n = 944)
    [real] = overall.loc[overall["option"] == "Bill Clinton (Democrat)"].itertuples()
    assert real.truth_n_eff == 944 and real.truth_ci_low < 551 / 944 < real.truth_ci_high
    assert real.truth_ci_high - real.truth_ci_low == pytest.approx(2 * 1.96 * 0.01604, abs=1e-3)
    assert grouped["truth_ci_low"].notna().all()
    by_group = pd.read_parquet(out / "scores_by_group_anes96.parquet")
    assert {"AGE", "education", "INCOME_BAND"} <= set(by_group["attribute"])
    assert by_group["value"].between(0, 1).all() and by_group["truth_n_eff"].notna().all()
    report = (out / "report.html").read_text("utf-8")
    section = report.split('id="by-group"')[1].split("<h2")[0]
    assert 'alt="alignment by group, anes96" src="data:image/png;base64,' in section
    crosstabs = report.split('id="crosstabs"')[1].split("<h2")[0]
    assert "black diamond" in crosstabs and "cross-tab, anes96, vote_1996" in crosstabs
