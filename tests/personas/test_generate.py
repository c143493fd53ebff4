"""Persona generation end to end on the real embedded model (SmolLM2-135M), 2 Vermont persons."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from personasim.census import sample_population
from personasim.core.states import STATE_NAMES
from personasim.personas import schema as S
from personasim.personas.generate import (
    OUTPUT_COLUMNS,
    attribute_drift,
    generate_personas,
    summarize,
)
from personasim.personas.meta import DEFAULT_ATTRIBUTES, meta_persona_text

pytestmark = pytest.mark.slow

#: Small budgets keep the module under about a minute on 2 shared cores.
SMALL = {
    "string_length": 20,
    "description_length": 160,
    "max_tokens": {"objective": 320, "subjective": 560, "descriptive": 80, "persona": 160},
    "max_attempts": 2,
    "max_resamples": 1,
    "seed": 5,
}


@pytest.fixture(scope="module")
def population():
    """Two census-sampled Vermont adults."""
    return sample_population(states=["VT"], per_state=2, seed=1)


@pytest.fixture(scope="module")
def run(embedded, population, tmp_path_factory):
    """Every tier for the 2 persons, with a fresh cache; the backend is restored afterwards."""
    from personasim.llm import Cache
    from personasim.llm.base import BackendStats

    saved = embedded.cache, embedded.stats
    folder = tmp_path_factory.mktemp("personas")
    embedded.cache, embedded.stats = Cache(folder / "cache.sqlite"), BackendStats()
    table = generate_personas(population, tiers=S.TIERS, backend=embedded, **SMALL)
    calls = embedded.stats.model_calls
    yield SimpleNamespace(table=table, folder=folder, calls=calls, backend=embedded)
    embedded.cache, embedded.stats = saved


def test_every_tier_has_a_row_per_person(run, population):
    table = run.table
    assert list(table.columns[: len(OUTPUT_COLUMNS)]) == OUTPUT_COLUMNS
    assert {"weight", "state", "age", "sex", "race"} <= set(table.columns)
    counts = table.groupby("tier").size().to_dict()
    assert counts == dict.fromkeys(S.TIERS, len(population))
    assert not table.duplicated(["person_id", "tier", "generator"]).any()
    assert (table.loc[table.tier != "meta", "generator"].str.startswith("llamacpp:")).all()
    assert run.calls > 0


def test_meta_rows_are_the_census_persona(run, population):
    meta = run.table[run.table.tier == "meta"].set_index("person_id")
    for person in population.to_dict("records"):
        assert meta.loc[person["person_id"], "text"] == meta_persona_text(person)


def test_rows_are_recorded_valid_or_kept_invalid(run):
    llm = run.table[run.table.tier != "meta"]
    assert llm["prompt_sha"].str.fullmatch("[0-9a-f]{64}").all()
    assert llm["attempts"].between(1, SMALL["max_attempts"]).all()
    assert (llm["first_valid"].astype(int) <= llm["valid"].astype(int)).all()
    for row in llm.itertuples():
        if row.valid:
            assert row.fields and row.text and row.error is None
        else:
            assert row.raw is not None and row.error  # kept with its raw text and reason
    assert llm["valid"].any()


def test_valid_fields_satisfy_the_tier_models(run):
    models = {
        "objective": S.objective_model(SMALL["string_length"]),
        "subjective": S.subjective_model(SMALL["string_length"]),
        "descriptive": S.descriptive_model(SMALL["description_length"]),
        "persona": S.persona_model(SMALL["string_length"]),
    }
    checked = run.table[(run.table.tier != "meta") & run.table.valid]
    assert set(checked.tier) == set(models), "some tier produced no valid row to check"
    for row in checked.itertuples():
        models[row.tier].model_validate(json.loads(row.fields))


def test_meta_attributes_come_back_unchanged(run, population):
    people = population.set_index("person_id")
    names = STATE_NAMES
    tabular = run.table[
        run.table.tier.isin(["objective", "subjective", "persona"]) & run.table.valid
    ]
    for row in tabular.itertuples():
        fields, person = json.loads(row.fields), people.loc[row.person_id]
        assert fields["age"] == person["age"] and fields["sex"] == person["sex"]
        assert fields["race"] == person["race"] and fields["state"] == names[person["state"]]
        assert row.n_contradictions == len(json.loads(row.contradictions))
        assert set(json.loads(row.contradictions)) <= set(DEFAULT_ATTRIBUTES)


def test_census_values_sit_beside_llm_values(run):
    objective = run.table[(run.table.tier == "objective") & run.table.valid]
    for row in objective.itertuples():
        assert set(json.loads(row.census)) == set(S.OBJECTIVE_KEYS)
    assert not objective.empty, "no valid objective persona: nothing to compare"
    drift = attribute_drift(run.table)
    assert {"education", "income"} <= set(drift["attribute"])
    assert drift["agree"].between(0, 1).all()


def test_persona_tier_reports_checks_and_rejections(run):
    persona = run.table[run.table.tier == "persona"]
    assert (persona["checks"] >= persona["rejections"]).all()
    assert (persona["rejections"] <= SMALL["max_resamples"] + 1).all()
    summary = summarize(run.table).set_index("tier")
    assert summary.loc["persona", "checks"] == persona["checks"].sum()
    assert summary.loc["meta", "valid"] == 1.0


def test_parts_resume_makes_no_new_model_calls(run, population):
    from personasim.core.parts import read_parts
    from personasim.pipeline.jobs import personas_to_parts

    before, folder = run.backend.stats.model_calls, run.folder / "parts"
    # the parts path (what the CLI and the study run): every reply comes from the cache
    first = personas_to_parts(
        population, S.TIERS, folder, backend=run.backend, show_progress=False, **SMALL
    )
    assert first.report.rows == len(run.table) and run.backend.stats.model_calls == before
    again = personas_to_parts(
        population, S.TIERS, folder, backend=run.backend, show_progress=False, **SMALL
    )
    assert again.report.rows == 0 and again.skipped == len(run.table)
    assert run.backend.stats.model_calls == before
    cols = ["person_id", "tier", "fields", "valid", "prompt_sha"]
    key = ["person_id", "tier"]
    got, want = (
        t.sort_values(key).reset_index(drop=True)[cols].astype(object).fillna("")
        for t in (read_parts(folder), run.table)
    )
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
