"""The testbed as a study stage: run_testbed writes pairs, LOO and agreement tables under the run
folder and report_section reads them back with the figures (ScriptedStandIn: the real model runs
these steps in test_pairs and test_loo)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from personasim.pipeline.stages.testbed import run_testbed
from personasim.report.testbed import png_bytes, report_section
from personasim.testbed.spec import TestbedSpec
from tests.support.scripted import ScriptedStandIn

from .conftest import persona_table


def chooser(request, _seen):
    """Picks by the profile: A for a Catholic, B otherwise (first letters always valid)."""
    return {"A": 0.9, "B": 0.1} if "Catholic" in request.messages[0].content else {"B": 1.0}


def test_run_testbed_then_the_report_section(tmp_path):
    stand_in = ScriptedStandIn(
        generate_script=lambda r, _: "A few words.", choice_script=chooser, identity="rater-a"
    )
    other = ScriptedStandIn(choice_script=lambda r, _: {"A": 1.0}, identity="rater-b")
    spec = TestbedSpec(
        per_persona=2,
        held_out=1,
        loo_attributes=("religion", "age"),
        loo_personas=2,
        questions="builtin",
    )
    run = run_testbed(spec, persona_table(), stand_in, tmp_path, raters={"b": other})
    for name in ("pairs", "loo", "loo_summary", "kappa_matrix", "per_persona", "agreement"):
        assert (run.folder / f"{name}.parquet").exists(), name
    section = report_section(tmp_path)
    assert section is not None and section["stats"]["pairs"] == 2 * 3
    assert png_bytes(section["loo_figure"])[:4] == b"\x89PNG"
    assert png_bytes(section["heatmap"])[:4] == b"\x89PNG"
    assert report_section(tmp_path / "elsewhere") is None


def test_the_spec_is_frozen_and_forbids_unknown_keys():
    with pytest.raises(ValidationError):
        TestbedSpec(per_persona=2, loo_atributes=("age",))
    with pytest.raises(ValidationError):
        TestbedSpec().per_persona = 3
