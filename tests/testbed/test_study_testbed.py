"""A study with a ``[testbed]`` section: the spec checks, then a tiny run on the real embedded
model whose report shows the testbed (verification rate, the paper-protocol leave-one-out
figure, the agreement heatmap and histograms). One question, one LOO pair, one agreement item:
the smallest sizes that still take every path (the paper protocol costs 4 generations and 8
choices per pair and question)."""

from __future__ import annotations

import pandas as pd
import pytest

from personasim.core.errors import ConfigError
from personasim.spec.study import check_study, study_from_dict

TINY = {
    "name": "tb",
    "population": {"states": ["VT"], "per_state": 2},
    "personas": {"tiers": ["persona"]},
    "surveys": [{"id": "topics", "source": "topics", "max_questions": 1}],
    "testbed": {
        "per_persona": 1,
        "held_out": 0,
        "answer_tokens": 32,
        "critique_tokens": 40,
        "revision_tokens": 32,
        "n_questions": 1,
        "loo_attributes": ["religion"],
        "loo_personas": 1,
        "loo_k": 2,
        "agreement_items": 1,
    },
}


def test_the_testbed_section_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="needs personas of the persona tier"):
        check_study(study_from_dict({**TINY, "personas": {"tiers": ["meta"]}}))
    with pytest.raises(ConfigError, match="testbed.raters"):
        check_study(study_from_dict({**TINY, "testbed": {"raters": ["gpt4"]}}))
    with pytest.raises(ConfigError, match="agreement needs at least two raters"):
        study_from_dict({**TINY, "testbed": {"reversed_rater": False}})
    with pytest.raises(ConfigError, match="loo_protocol"):
        study_from_dict({**TINY, "testbed": {"loo_protocol": "fast"}})
    with pytest.raises(ConfigError) as error:
        study_from_dict({**TINY, "testbed": {"per_persna": 1}})
    assert "did you mean 'per_persona'" in error.value.one_line()
    spec = study_from_dict(TINY)
    assert study_from_dict(__import__("tomllib").loads(spec.to_toml())) == spec


@pytest.mark.slow
def test_a_study_runs_the_testbed_and_reports_it(tmp_path):
    from personasim.pipeline.driver import run_study

    spec = study_from_dict(TINY)
    result = run_study(spec, tmp_path / "tb")
    folder = result.out_dir / "testbed"
    pairs = pd.read_parquet(folder / "pairs.parquet")
    assert len(pairs) == 2 and set(pairs["split"]) == {"train"}
    loo = pd.read_parquet(folder / "loo.parquet")
    assert len(loo) == 1 and loo["n_questions"].tolist() == [1]
    refinements = pd.read_parquet(folder / "loo_refinements.parquet")
    assert len(refinements) == 2  # the one baseline revised for both versions of the pair
    assert pd.read_parquet(folder / "labels.parquet")["rater"].nunique() == 3
    html = result.report_path.read_text(encoding="utf-8")
    assert 'id="testbed"' in html and "Verification rate" in html
    assert "Paper protocol" in html and 'alt="leave-one-out attribute influence"' in html
    assert 'alt="pairwise kappa heatmap"' in html
    assert 'alt="per-persona kappa histograms"' in html
    again = run_study(spec, tmp_path / "tb")
    testbed = next(t for t in again.stages if t.stage == "testbed")
    assert testbed.model_calls == 0


def test_the_builtin_persona_study_runs_the_paper_protocol():
    from personasim.spec.study import BUILTIN_STUDIES, load_study

    assert "persona" in BUILTIN_STUDIES
    spec = load_study("persona")
    check_study(spec)
    assert spec.personas.tiers == ("persona",) and spec.testbed.loo_protocol == "paper"
    assert spec.testbed.prompts == "builtin" and spec.testbed.reversed_rater
    assert study_from_dict(__import__("tomllib").loads(spec.to_toml())) == spec
