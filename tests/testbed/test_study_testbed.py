"""A study with a ``[testbed]`` section: the spec checks, then a tiny run on the real embedded
model whose report shows the testbed (verification rate, LOO box plot, kappa heatmap)."""

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
        "n_questions": 3,
        "loo_attributes": ["religion"],
        "loo_personas": 2,
        "loo_k": 2,
    },
}


def test_the_testbed_section_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="needs personas of the persona tier"):
        check_study(study_from_dict({**TINY, "personas": {"tiers": ["meta"]}}))
    with pytest.raises(ConfigError, match="testbed.raters"):
        check_study(study_from_dict({**TINY, "testbed": {"raters": ["gpt4"]}}))
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
    assert len(pd.read_parquet(folder / "loo.parquet")) == 2
    html = result.report_path.read_text(encoding="utf-8")
    assert 'id="testbed"' in html and "Verification rate" in html
    assert 'alt="leave-one-out attribute influence"' in html
    assert 'alt="pairwise kappa heatmap"' in html
    again = run_study(spec, tmp_path / "tb")
    testbed = next(t for t in again.stages if t.stage == "testbed")
    assert testbed.model_calls == 0
