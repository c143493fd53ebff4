"""A study's [calibration] section: the score stage writes weights and calibrated scores, and the
report shows before/after with the design effect; the score stage's cross-tabs (weighted by the
calibrated weights, else the census weights) and the report's Cross-tabs section; no model runs
(the tables are built here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from personasim.calibrate.targets import load_party_table
from personasim.pipeline.context import StageContext, StageTiming
from personasim.pipeline.stages.score import score_stage
from personasim.report.build import build_report, calibration_section, load_run
from personasim.scoring.crosstab import CROSSTAB_COLUMNS, ELECTION_BY, MIN_N
from personasim.spec.study import CalibrationSection, builtin_study, study_from_dict
from tests.calibrate.conftest import fake_personas

VOTE = {"Democrat": 1.0, "Republican": 0.0, "Independent": 0.5, "Other": 0.5}


def _run_dir(
    tmp_path: Path, population: pd.DataFrame, calibrate: bool = True
) -> tuple[Path, object]:
    calibration = CalibrationSection(tiers=("subjective",)) if calibrate else None
    spec = builtin_study("tiny").model_copy(
        update={"calibration": calibration, "surveys": builtin_study("tiny").surveys[:1]}
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "study.toml").write_text(spec.to_toml())
    personas = fake_personas(population).assign(
        valid=True,
        first_valid=True,
        text="x",
        raw=None,
        checks=0,
        n_contradictions=0,
        rejections=0,
        attempts=1,
        error=None,
        finish_reason="stop",
    )
    population.to_parquet(run / "population.parquet")
    personas.to_parquet(run / "personas.parquet")
    rows = []
    for r in personas.itertuples(index=False):
        views = json.loads(r.fields).get("political_views")
        dem = VOTE.get(views, 0.5)
        rows.append(
            {
                "person_id": r.person_id,
                "tier": r.tier,
                "generator": r.generator,
                "simulator": "s",
                "question_id": "president_2020",
                "estimator": "logprobs",
                "probs": [dem, 1 - dem],
                "valid_mass": 1.0,
                "valid": True,
            }
        )
    pd.DataFrame(rows).to_parquet(run / "responses_elections.parquet")
    return run, spec


def test_calibrating_party_id_moves_the_subjective_vote_to_pew(tmp_path, population) -> None:
    run, spec = _run_dir(tmp_path, population)
    score_stage(StageContext(spec, run, None, StageTiming("score")))  # type: ignore[arg-type]
    for name in ("weights.parquet", "calibration.parquet", "scores_elections_calibrated.parquet"):
        assert (run / name).exists(), name
    plain = pd.read_parquet(run / "scores_elections.parquet")
    after = pd.read_parquet(run / "scores_elections_calibrated.parquet")
    pew = load_party_table().set_index("state")
    for state in ("VT", "NM"):
        row = pew.loc[state, ["rep_lean_rep", "no_lean", "dem_lean_dem"]].to_numpy(float)
        rep, no_lean, dem = row / row.sum()
        # Democrat votes 1, Republican 0, Independent/Other 0.5 -> the Pew-weighted share
        assert pick(after, "subjective", state) == pytest.approx(dem + 0.5 * no_lean, abs=1e-6)
        # the leftward drift shrinks; the meta tier is not calibrated
        assert pick(plain, "subjective", state) > pick(after, "subjective", state)
        assert pick(after, "meta", state) == pytest.approx(pick(plain, "meta", state))
    section = calibration_section(load_run(run))
    assert section is not None and section["surveys"]
    columns = section["surveys"][0]["table"]["columns"]
    assert {"value_before", "value_after", "ci_low_after", "deff", "ess"} <= set(columns)
    html = build_report(run).read_text()
    assert 'id="calibration"' in html and "deff" in html
    # the cross-tab uses the calibrated weights: its state cells are the calibrated scores
    cross = pd.read_parquet(run / "crosstab_elections.parquet")
    assert list(cross.columns) == CROSSTAB_COLUMNS
    assert {"overall", *ELECTION_BY} == set(cross["attribute"])
    dem = cross[cross["option"].str.contains("Democratic")]
    for state in ("VT", "NM"):
        for tier, scores in (("subjective", after), ("meta", plain)):
            sel = dem[(dem.tier == tier) & (dem.attribute == "state") & (dem.group == state)]
            value = pick(scores, tier, state)
            assert float(sel["share"].iloc[0]) == pytest.approx(value, abs=1e-9)
    assert 'id="crosstabs"' in html and "calibrated weights" in html


def pick(scores: pd.DataFrame, tier: str, state: str) -> float:
    """The tier's Democratic share in ``state`` from a scores table."""
    sel = scores[(scores.tier == tier) & (scores.group == state) & (scores.metric == "dem_share")]
    return float(sel["value"].iloc[0])


def test_score_stage_writes_census_weighted_crosstabs_and_the_report_shows_them(
    tmp_path, population
) -> None:
    few = population.groupby("state").head(40).reset_index(drop=True)  # small cells on purpose
    run, spec = _run_dir(tmp_path, few, calibrate=False)
    score_stage(StageContext(spec, run, None, StageTiming("score")))  # type: ignore[arg-type]
    cross = pd.read_parquet(run / "crosstab_elections.parquet")
    assert list(cross.columns) == CROSSTAB_COLUMNS and not (run / "weights.parquet").exists()
    dem = cross[cross["option"].str.contains("Democratic")]
    assert (dem["small"] == (dem["n"] < MIN_N)).all() and dem["small"].any()
    assert (dem["ci_low"] <= dem["share"] + 1e-12).all()
    assert (dem["share"] <= dem["ci_high"] + 1e-12).all()
    # census weights: a group's share is the weight-averaged Democratic probability
    responses = pd.read_parquet(run / "responses_elections.parquet")
    rows = responses[responses.tier == "subjective"].merge(few[["person_id", "sex", "weight"]])
    female = rows[rows.sex == "Female"]
    expected = (female["probs"].map(lambda p: p[0]) * female["weight"]).sum() / female[
        "weight"
    ].sum()
    cell = dem[(dem.tier == "subjective") & (dem.attribute == "sex") & (dem.group == "Female")]
    assert float(cell["share"].iloc[0]) == pytest.approx(expected, abs=1e-9)
    assert int(cell["n"].iloc[0]) == len(female)
    # the real result beside the state cells, none beside groups the truth lacks
    assert dem.loc[dem.attribute == "state", "truth_share"].between(0.2, 0.8).all()
    assert dem.loc[dem.attribute == "sex", "truth_share"].isna().all()
    plain = pd.read_parquet(run / "scores_elections.parquet")
    state = dem[(dem.tier == "subjective") & (dem.attribute == "state") & (dem.group == "VT")]
    assert float(state["share"].iloc[0]) == pytest.approx(pick(plain, "subjective", "VT"))
    html = build_report(run).read_text()
    section = re.search(r'<h2 id="crosstabs">(.*?)<h2 ', html, re.S)
    assert section and "census weights" in section.group(1) and "small" in section.group(1)
    text = f"{float(cell['share'].iloc[0]):.2f} [{float(cell['ci_low'].iloc[0]):.2f}, "
    assert text + f"{float(cell['ci_high'].iloc[0]):.2f}] n={len(female)}" in section.group(1)
    actual = float(state["truth_share"].iloc[0])
    assert f"<td>VT</td><td>{actual:.2f}</td>" in section.group(1)


def test_calibration_section_round_trips_and_rejects_unknown_keys() -> None:
    spec = builtin_study("tiny").model_copy(update={"calibration": CalibrationSection(trim=4)})
    import tomllib

    again = study_from_dict(tomllib.loads(spec.to_toml()))
    assert again.calibration == spec.calibration
    raw = tomllib.loads(builtin_study("tiny").to_toml())
    raw["calibration"] = {"target": "party"}
    from personasim.core.errors import ConfigError

    with pytest.raises(ConfigError, match="calibration.target") as error:
        study_from_dict(raw, "study.toml")
    assert "targets" in error.value.one_line()


def test_weights_are_fitted_on_the_scored_personas_only(tmp_path, population) -> None:
    # issue 19 §7: half the subjective Republicans are invalid personas, whose answers scoring
    # drops; weights fitted on all personas would miss Pew's shares on the rows that are scored
    run, spec = _run_dir(tmp_path, population)
    personas = pd.read_parquet(run / "personas.parquet")
    views = personas["fields"].map(lambda f: json.loads(f).get("political_views"))
    dropped = (
        (personas["tier"] == "subjective") & (views == "Republican") & (personas.index % 2 == 0)
    )
    personas.assign(valid=~dropped).to_parquet(run / "personas.parquet")
    score_stage(StageContext(spec, run, None, StageTiming("score")))  # type: ignore[arg-type]
    after = pd.read_parquet(run / "scores_elections_calibrated.parquet")
    pew = load_party_table().set_index("state")
    for state in ("VT", "NM"):
        row = pew.loc[state, ["rep_lean_rep", "no_lean", "dem_lean_dem"]].to_numpy(float)
        rep, no_lean, dem = row / row.sum()
        assert pick(after, "subjective", state) == pytest.approx(dem + 0.5 * no_lean, abs=1e-6)
    weights = pd.read_parquet(run / "weights.parquet")
    assert len(weights[weights.tier == "subjective"]) == int(
        ((personas.tier == "subjective") & ~dropped).sum()
    )
