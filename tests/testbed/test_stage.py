"""The testbed as a study stage: run_testbed writes pairs, the paper's leave-one-out and the
role-play agreement under the run folder, exactly the tables the stage declares, and
report_section reads them back with the figures. A ScriptedStandIn whose preferences are known
drives it (the real model runs these steps in test_pairs, test_loo_paper and
test_study_testbed), so the kappas below are computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.metrics import cohen_kappa_score

from personasim.pipeline.stages.testbed import run_testbed
from personasim.report.testbed import png_bytes, report_section
from personasim.testbed import stage_outputs
from personasim.testbed.spec import TestbedSpec
from tests.support.scripted import ScriptedStandIn

from .conftest import persona_table
from .test_loo_paper import preferring, writer

SMALL = {
    "per_persona": 2,
    "held_out": 1,
    "loo_attributes": ("religion", "age"),
    "loo_personas": 2,
    "loo_k": 2,
    "n_questions": 2,
    "agreement_items": 3,
}


def judge_or_pick(request, seen):
    """The two-answer judge of test_loo_paper; on a fixed-answer question (the choice
    protocol) always the first answer."""
    if "Answer B:\n" not in request.messages[-1].content:
        return {"A": 1.0}
    return preferring(request, seen)


def stand_in() -> ScriptedStandIn:
    """Critiques ask for faith when the profile names a religion, the judge follows them."""
    return ScriptedStandIn(generate_script=writer, choice_script=judge_or_pick, identity="rater-a")


def written(folder) -> set[str]:
    return {p.name for p in folder.glob("*.parquet")}


def test_the_stage_runs_the_paper_protocol_and_writes_what_it_declares(tmp_path):
    spec = TestbedSpec(**SMALL)
    run = run_testbed(spec, persona_table(), stand_in(), tmp_path)
    assert written(run.folder) == set(stage_outputs("paper", humans=False))
    loo = pd.read_parquet(run.folder / "loo.parquet")
    items = pd.read_parquet(run.folder / "loo_items.parquet")
    # each pair: both versions label (baseline vs R-) and (baseline vs R+) for 2 questions
    assert (loo["n_items"] == 4).all() and len(items) == 2 * 2 * 4 * 2
    # religion added: without it the critique asks for facts (R- refined, R+ baseline), with it
    # for faith (R- baseline, R+ refined): R B R B vs B R B R, observed 0, chance 1/2 -> -1
    religion = loo[loo["attribute"] == "religion"]
    assert religion["kappa"].tolist() == pytest.approx([-1.0, -1.0])
    summary = pd.read_parquet(run.folder / "loo_summary.parquet")
    assert summary.iloc[0]["attribute"] == "religion" and "median_kappa" in summary.columns
    refinements = pd.read_parquet(run.folder / "loo_refinements.parquet")
    assert set(refinements["refined"]) == {"faith version", "facts version"}
    labels = pd.read_parquet(run.folder / "labels.parquet")
    # the model, then the model once per display order (the position-bias probe)
    assert labels["rater"].nunique() == 3 and len(labels) == 3 * 2 * 3
    section = report_section(tmp_path)
    assert section is not None and section["stats"]["pairs"] == 2 * 3
    assert section["loo_protocol"] == "paper" and section["human"] is None
    for figure in ("loo_figure", "heatmap", "histograms"):
        assert png_bytes(section[figure])[:4] == b"\x89PNG", figure
    assert report_section(tmp_path / "elsewhere") is None


def human_labels(items: pd.DataFrame) -> pd.DataFrame:
    """Four annotators per persona: h1 always B, h2 B but A on each persona's first item, h3
    the reverse of h2, h4 A but B on the last item."""
    rows = []
    for _pid, group in items.groupby("persona_id", sort=True):
        qids = group["question_id"].tolist()
        for i, qid in enumerate(qids):
            picks = {
                "h1": "B",
                "h2": "A" if i == 0 else "B",
                "h3": "B" if i == 0 else "A",
                "h4": "B" if i == len(qids) - 1 else "A",
            }
            rows += [(a, _pid, qid, c) for a, c in picks.items()]
    return pd.DataFrame(rows, columns=["annotator", "persona_id", "question_id", "choice"])


def test_human_labels_add_the_human_baseline(tmp_path):
    first = run_testbed(TestbedSpec(**SMALL), persona_table(), stand_in(), tmp_path)
    items = pd.read_parquet(first.folder / "items.parquet")
    labels = human_labels(items)
    labels.to_csv(tmp_path / "humans.csv", index=False)
    spec = TestbedSpec(**SMALL, humans=str(tmp_path / "humans.csv"))
    run = run_testbed(spec, persona_table(), stand_in(), tmp_path)
    assert written(run.folder) == set(stage_outputs("paper", humans=True))
    matrix = pd.read_parquet(run.folder / "human_kappa_matrix.parquet").set_index("rater")
    wide = labels.pivot_table(
        index=["persona_id", "question_id"], columns="annotator", values="choice", aggfunc="first"
    )
    # per persona (3 items): h1 B B B, h2 A B B, h3 B A A, h4 A A B
    # h1-h2: h1 constant -> chance = observed -> 0; h2-h3: never agree, chance 2*(2/3)(1/3) =
    # 4/9 -> -4/5; h3-h4: agree on 1 of 3, chance (1/3)^2 + (2/3)^2 = 5/9 -> -1/2
    for (a, b), hand in {("h1", "h2"): 0.0, ("h2", "h3"): -0.8, ("h3", "h4"): -0.5}.items():
        value = matrix.loc[f"human {a[1]}", f"human {b[1]}"]
        assert value == pytest.approx(hand) == cohen_kappa_score(wide[a], wide[b]), (a, b)
    model = pd.read_parquet(run.folder / "kappa_matrix.parquet").set_index("rater")
    assert "human majority" in model.index
    section = report_section(tmp_path)
    assert section["human"] is not None
    assert png_bytes(section["human"]["heatmap"])[:4] == b"\x89PNG"


def test_the_choice_protocol_is_kept_under_its_name(tmp_path):
    spec = TestbedSpec(**SMALL, loo_protocol="choice")
    run = run_testbed(spec, persona_table(), stand_in(), tmp_path)
    assert written(run.folder) == set(stage_outputs("choice", humans=False))
    summary = pd.read_parquet(run.folder / "loo_summary.parquet")
    assert "mean_kappa" in summary.columns and "median_kappa" not in summary.columns
    assert report_section(tmp_path)["loo_protocol"] == "choice"


def test_the_spec_is_frozen_and_forbids_unknown_keys():
    assert TestbedSpec().loo_protocol == "paper"
    with pytest.raises(ValidationError):
        TestbedSpec(per_persona=2, loo_atributes=("age",))
    with pytest.raises(ValidationError):
        TestbedSpec(loo_protocol="fast")
    with pytest.raises(ValidationError):
        TestbedSpec().per_persona = 3
