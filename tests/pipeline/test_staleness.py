"""Staleness by content (issue 18 §1 and §3): every file a stage reads is hashed by content into
its fingerprint, so is the code that computes it; outputs a study no longer declares are removed
and never shown. Contract-level cases are cheap; one study runs the real embedded model."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from personasim.core.ledger import declared_outputs, read_ledger
from personasim.core.tables import read_table
from personasim.pipeline import contract as S
from personasim.pipeline.driver import STAGE_LIST, RunResult, run_study
from personasim.spec.study import StudySpec, study_from_dict

SURVEY = """\
id: drinks
questions:
  - id: tea
    text: {tea}
    options: ["Yes", "No"]
  - id: pets
    text: Do you have a pet?
    options: ["Yes", "No"]
"""
TRUTH = "question_id,option,count\ntea,Yes,{yes}\ntea,No,3\npets,Yes,1\npets,No,1\n"


def _files(folder: Path, tea: str = "Do you drink tea?", yes: int = 7) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    survey, truth = folder / "drinks.yaml", folder / "truth.csv"
    survey.write_text(SURVEY.format(tea=tea), encoding="utf-8")
    truth.write_text(TRUTH.format(yes=yes), encoding="utf-8")
    return survey, truth


def _spec(folder: Path, **extra: object) -> StudySpec:
    survey, truth = folder / "drinks.yaml", folder / "truth.csv"
    raw: dict = {
        "name": "stale",
        "population": {"states": ["VT"], "per_state": 2, "seed": 5},
        "personas": {"tiers": ["meta"], "generators": ["embedded"]},
        "simulate": {"simulators": ["embedded"]},
        "score": {"n_boot": 20},
        "backends": {"embedded": {"spec": "llamacpp", "n_ctx": 2048}},
        "surveys": [{"id": "drinks", "source": str(survey), "truth": f"csv:{truth}"}],
        **extra,
    }
    return study_from_dict(raw)


def _by_name(name: str) -> S.Stage:
    return next(stage for stage in STAGE_LIST if stage.name == name)


def _stale_stages(spec: StudySpec, run: Path, ledger: dict) -> dict[str, list[str]]:
    """Stage name -> reasons, for the stages that would rerun."""
    out = {}
    for stage in STAGE_LIST:
        if stage.name in ledger:
            status, reasons = S.state(stage, spec, run, ledger)
            if status != "fresh":
                out[stage.name] = reasons
    return out


def _ledger_of(spec: StudySpec, run: Path) -> dict:
    """A ledger as if every stage had just finished (their outputs written as empty files)."""
    run.mkdir(parents=True, exist_ok=True)
    ledger = {}
    for stage in STAGE_LIST:
        for name in stage.outputs(spec):
            (run / name).parent.mkdir(parents=True, exist_ok=True)
            (run / name).write_bytes(b"x")
        ledger[stage.name] = S.record(stage, spec, run)
    return ledger


def test_an_edited_survey_file_makes_simulate_and_score_stale_and_nothing_else(tmp_path):
    _files(tmp_path)
    spec = _spec(tmp_path)
    ledger = _ledger_of(spec, tmp_path / "run")
    assert _stale_stages(spec, tmp_path / "run", ledger) == {}
    _files(tmp_path, tea="Do you drink green tea?")  # same name, other content
    stale = _stale_stages(spec, tmp_path / "run", ledger)
    assert set(stale) == {"simulate", "score"}
    assert stale["simulate"] == [f"file {tmp_path / 'drinks.yaml'}"]


def test_an_edited_truth_file_makes_only_score_stale(tmp_path):
    _files(tmp_path)
    spec = _spec(tmp_path)
    ledger = _ledger_of(spec, tmp_path / "run")
    _files(tmp_path, yes=8)
    assert _stale_stages(spec, tmp_path / "run", ledger) == {
        "score": [f"file {tmp_path / 'truth.csv'}"]
    }


def test_an_edited_prompt_file_makes_only_personas_stale(tmp_path):
    _files(tmp_path)
    prompt = tmp_path / "objective.txt"
    prompt.write_text("Describe {person}.", encoding="utf-8")
    spec = _spec(
        tmp_path,
        personas={
            "tiers": ["meta", "objective"],
            "generators": ["embedded"],
            "prompt_files": {"objective": str(prompt)},
        },
    )
    ledger = _ledger_of(spec, tmp_path / "run")
    prompt.write_text("Describe {person} in detail.", encoding="utf-8")
    assert _stale_stages(spec, tmp_path / "run", ledger) == {"personas": [f"file {prompt}"]}


def test_an_edited_targets_csv_makes_only_score_stale(tmp_path):
    _files(tmp_path)
    targets = tmp_path / "targets.csv"
    targets.write_text("variable,level,share\nsex,Male,0.5\nsex,Female,0.5\n", encoding="utf-8")
    spec = _spec(tmp_path, calibration={"targets": f"census,csv:{targets}"})
    ledger = _ledger_of(spec, tmp_path / "run")
    targets.write_text("variable,level,share\nsex,Male,0.4\nsex,Female,0.6\n", encoding="utf-8")
    assert _stale_stages(spec, tmp_path / "run", ledger) == {"score": [f"file {targets}"]}


def test_a_bare_name_is_not_taken_for_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("elections").write_text("not a survey")  # a file that happens to bear the name
    assert S.referenced_files({"source": "elections", "states": ["VT"]}) == {}
    assert set(S.referenced_files({"source": "csv:elections"})) == {"elections"}


def test_changed_code_makes_the_stage_stale(tmp_path, monkeypatch):
    """A package upgrade that changes the code computing a stage: its digest changes."""
    package = tmp_path / "fakescoring"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "metric.py").write_text("def distance(p, q):\n    return abs(p - q)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    stage = S.Stage(
        "score", lambda s: [], lambda s: [], (), lambda s: {}, lambda c: None, code=("fakescoring",)
    )
    _files(tmp_path)
    spec = _spec(tmp_path)
    ledger = {"score": S.record(stage, spec, tmp_path)}
    assert S.state(stage, spec, tmp_path, ledger) == ("fresh", [])
    (package / "metric.py").write_text("def distance(p, q):\n    return (p - q) ** 2\n")
    S.code_digest.cache_clear()  # a new process would compute it afresh
    assert S.state(stage, spec, tmp_path, ledger) == ("stale", ["code"])
    sys.modules.pop("fakescoring", None)


def test_every_stage_but_the_report_declares_the_code_that_computes_it():
    spec_free = {stage.name: stage.code for stage in STAGE_LIST}
    assert all(spec_free[name] for name in spec_free if name != "report")
    scoring = _by_name("score").code
    assert "personasim.scoring" in scoring and "personasim.truth" in scoring


@pytest.fixture(scope="module")
def drinks_run(tmp_path_factory) -> tuple[Path, RunResult]:
    """The drinks study on the real embedded model: 2 persons x 2 questions, meta tier."""
    folder = tmp_path_factory.mktemp("drinks")
    _files(folder)
    return folder, run_study(_spec(folder), folder / "run")


def _reused(result: RunResult) -> dict[str, bool]:
    return {s.stage: s.reused for s in result.stages}


@pytest.mark.slow
def test_an_edited_question_is_simulated_again_and_only_it(drinks_run, tmp_path):
    folder, first = drinks_run
    work = tmp_path / "work"
    shutil.copytree(folder, work)
    spec = _spec(work)
    run = work / "run"
    assert run_study(spec, run).model_calls == 0  # settled: paths differ from the original
    before = read_table(run / "responses_drinks.parquet").set_index(["person_id", "question_id"])
    _files(work, tea="Do you drink tea with milk?")
    again = run_study(spec, run)
    reused = _reused(again)
    assert reused["population"] and reused["personas"]
    assert not reused["simulate"] and not reused["score"]
    assert again.model_calls == 2  # 2 persons x the one edited question; the cache has the rest
    after = read_table(run / "responses_drinks.parquet").set_index(["person_id", "question_id"])
    pets = [key for key in before.index if key[1] == "pets"]
    assert before.loc[pets, "raw"].tolist() == after.loc[pets, "raw"].tolist()
    stages = {s["stage"]: s for s in json.loads((run / "manifest.json").read_text())["stages"]}
    assert stages["simulate"]["reason"] == f"file {work / 'drinks.yaml'}"


@pytest.mark.slow
def test_an_edited_truth_file_prints_new_scores_without_model_calls(drinks_run, tmp_path):
    folder, _ = drinks_run
    work = tmp_path / "work"
    shutil.copytree(folder, work)
    spec, run = _spec(work), work / "run"
    run_study(spec, run)
    old = read_table(run / "scores_drinks.parquet")
    _files(work, yes=0)  # the real answer to "tea" becomes all No
    again = run_study(spec, run)
    assert again.model_calls == 0 and _reused(again)["simulate"] and not _reused(again)["score"]
    new = read_table(run / "scores_drinks.parquet")

    def tea_tv(scores):
        pick = (scores["question_id"] == "tea") & (scores["metric"] == "tv")
        return float(scores[pick & (scores["attribute"] == "overall")]["value"].iloc[0])

    responses = read_table(run / "responses_drinks.parquet")
    yes = float(responses[responses["question_id"] == "tea"]["probs"].map(lambda p: p[0]).mean())
    assert tea_tv(old) == pytest.approx(abs(yes - 0.7))  # truth was 7 Yes : 3 No
    assert tea_tv(new) == pytest.approx(yes)  # now all No: TV is the simulated Yes share


@pytest.mark.slow
def test_a_removed_survey_is_deleted_and_not_reported(drinks_run, tmp_path):
    folder, _ = drinks_run
    work = tmp_path / "work"
    shutil.copytree(folder, work)
    run = work / "run"
    spec = _spec(work)
    two = spec.model_copy(
        update={"surveys": (*spec.surveys, spec.surveys[0].model_copy(update={"id": "again"}))}
    )
    run_study(two, run)
    assert (run / "scores_again.parquet").exists()
    assert "scores_again.parquet" in declared_outputs(run)
    result = run_study(spec, run)  # the second survey is gone from the study
    assert result.model_calls == 0
    for name in ("responses_again.parquet", "scores_again.parquet", "summary_again.parquet"):
        assert not (run / name).exists(), name
    assert not (run / "parts" / "responses_again").exists()
    assert "scores_again.parquet" not in declared_outputs(run)
    assert all("again" not in name for e in read_ledger(run).values() for name in e["outputs"])
    assert ">again<" not in result.report_path.read_text(encoding="utf-8")
