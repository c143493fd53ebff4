"""A study's [calibration] section: the score stage writes weights and calibrated scores, and the
report shows before/after with the design effect; no model runs (the tables are built here)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from personasim.calibrate.targets import load_party_table
from personasim.report.build import build_report, calibration_section, load_run
from personasim.spec import CalibrationSection, builtin_study, study_from_dict
from personasim.study import StageContext, StageTiming, score_stage
from tests.calibrate.conftest import fake_personas

VOTE = {"Democrat": 1.0, "Republican": 0.0, "Independent": 0.5, "Other": 0.5}


def _run_dir(tmp_path: Path, population: pd.DataFrame) -> tuple[Path, object]:
    spec = builtin_study("tiny").model_copy(
        update={"calibration": CalibrationSection(tiers=("subjective",)),
                "surveys": builtin_study("tiny").surveys[:1]}  # fmt: skip
    )
    run = tmp_path / "run"
    run.mkdir()
    (run / "study.toml").write_text(spec.to_toml())
    personas = fake_personas(population).assign(
        valid=True, first_valid=True, text="x", raw=None, checks=0, n_contradictions=0,
        rejections=0, attempts=1, error=None, finish_reason="stop",
    )
    population.to_parquet(run / "population.parquet")
    personas.to_parquet(run / "personas.parquet")
    rows = []
    for r in personas.itertuples(index=False):
        views = json.loads(r.fields).get("political_views")
        dem = VOTE.get(views, 0.5)
        rows.append({"person_id": r.person_id, "tier": r.tier, "generator": r.generator,
                     "simulator": "s", "question_id": "president_2020", "estimator": "logprobs",
                     "probs": [dem, 1 - dem], "valid_mass": 1.0, "valid": True})  # fmt: skip
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

        def pick(s: pd.DataFrame, t: str, state: str = state) -> float:
            sel = s[(s.tier == t) & (s.group == state) & (s.metric == "dem_share")]
            return float(sel["value"].iloc[0])

        row = pew.loc[state, ["rep_lean_rep", "no_lean", "dem_lean_dem"]].to_numpy(float)
        rep, no_lean, dem = row / row.sum()
        # Democrat votes 1, Republican 0, Independent/Other 0.5 -> the Pew-weighted share
        assert pick(after, "subjective") == pytest.approx(dem + 0.5 * no_lean, abs=1e-6)
        assert pick(plain, "subjective") > pick(after, "subjective")  # the leftward drift shrinks
        assert pick(after, "meta") == pytest.approx(pick(plain, "meta"))  # not calibrated
    section = calibration_section(load_run(run))
    assert section is not None and section["surveys"]
    columns = section["surveys"][0]["table"]["columns"]
    assert {"value_before", "value_after", "ci_low_after", "deff", "ess"} <= set(columns)
    html = build_report(run).read_text()
    assert 'id="calibration"' in html and "deff" in html


def test_calibration_section_round_trips_and_rejects_unknown_keys() -> None:
    spec = builtin_study("tiny").model_copy(update={"calibration": CalibrationSection(trim=4)})
    import tomllib

    again = study_from_dict(tomllib.loads(spec.to_toml()))
    assert again.calibration == spec.calibration
    raw = tomllib.loads(builtin_study("tiny").to_toml())
    raw["calibration"] = {"target": "party"}
    from personasim.errors import ConfigError

    with pytest.raises(ConfigError, match="calibration.target") as error:
        study_from_dict(raw, "study.toml")
    assert "targets" in error.value.one_line()
