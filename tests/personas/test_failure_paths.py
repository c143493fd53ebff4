"""Failure branches of persona generation, pinned every run with ScriptedStandIn (a test double
named as such: the real model reaches these branches only by chance).

The happy paths run on the real embedded model in test_generate.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from personasim.census import sample_population
from personasim.personas.generate import generate_personas, retryable, stable_seed
from tests.support.scripted import ScriptedStandIn, backend_failure, truncated

PEOPLE = sample_population(states=["VT"], per_state=2, seed=1)
DESCRIPTION = '{"description": "Lives near Burlington and likes long walks."}'


def _open_reply(request) -> str:
    """A schema-valid fill: the first allowed value of each categorical entry, else a word."""
    props = request.json_schema["properties"]
    return json.dumps({k: v["enum"][0] if "enum" in v else "steady" for k, v in props.items()})


def _descriptive(backend: ScriptedStandIn, **options) -> pd.DataFrame:
    """Generate the descriptive tier (meta first); return the descriptive rows."""
    table = generate_personas(
        PEOPLE, tiers=("meta", "descriptive"), backend=backend, description_length=160, **options
    )
    return table[table["tier"] == "descriptive"].set_index("person_id")


def test_invalid_json_is_repaired_with_the_error_appended() -> None:
    def script(request, seen):
        # first attempt (system + user): broken JSON; the repair turn (more messages): valid
        return "{not json" if len(request.messages) == 2 else DESCRIPTION

    backend = ScriptedStandIn(script)
    rows = _descriptive(backend, max_attempts=3)
    assert rows["valid"].all() and not rows["first_valid"].any()
    assert list(rows["attempts"]) == [2, 2]
    assert len(backend.calls) == 4  # 2 persons x (first try + one repair)
    repair = backend.calls[-1].messages
    assert "not valid JSON" in " ".join(m.content for m in repair[2:])
    assert rows.iloc[0]["text"] == "Lives near Burlington and likes long walks."


def test_permanent_failure_is_kept_invalid_and_done(tmp_path: Path) -> None:
    from personasim.pipeline.jobs import personas_to_parts

    backend = ScriptedStandIn(lambda request, seen: truncated(request))
    rows = _descriptive(backend, max_attempts=2)
    assert not rows["valid"].any() and set(rows["finish_reason"]) == {"length"}
    assert list(rows["attempts"]) == [2, 2] and list(rows["runs"]) == [1, 1]
    # on the parts path a committed invalid row is done: a rerun asks nothing
    for _ in range(2):
        personas_to_parts(
            PEOPLE,
            ("meta", "descriptive"),
            tmp_path,
            backend=backend,
            show_progress=False,
            description_length=160,
            max_attempts=2,
        )
    assert len(backend.calls) == 8  # 2 persons x 2 attempts, twice: in memory, then one part


def test_backend_failure_is_not_repaired_and_not_done() -> None:
    """The retry in later runs, bounded by max_runs, is pinned on the parts path
    (tests/executor/test_parts.py::test_a_study_tries_backend_failures_again_...)."""
    backend = ScriptedStandIn(lambda request, seen: backend_failure())
    first = _descriptive(backend, max_attempts=3)
    # not re-asked with a repair prompt in the same run: one call per person
    assert len(backend.calls) == 2
    assert not first["valid"].any() and set(first["finish_reason"]) == {"error"}
    assert list(first["attempts"]) == [1, 1] and list(first["runs"]) == [1, 1]
    assert retryable(first, max_runs=2).all() and not retryable(first, max_runs=1).any()


def _persona(backend: ScriptedStandIn, **options) -> pd.Series:
    """The PERSONA-tier row of person 1."""
    table = generate_personas(
        PEOPLE.head(1), tiers=("persona",), backend=backend, string_length=20, seed=3, **options
    )
    return table.iloc[0]


def _checker(verdicts: list[str]):
    """A script: a schema-valid fill for a fill, the next of ``verdicts`` for a check."""
    given = iter(verdicts)

    def script(request, seen):
        return next(given) if request.choices else _open_reply(request)

    return script


def test_persona_check_runs_before_the_fill_and_a_rejection_redraws() -> None:
    """The paper's order (Fig. 1): the check judges census + procedural traits; the rejected
    draft is never filled, the redraw is checked again and only then filled."""
    backend = ScriptedStandIn(_checker(["inconsistent", "consistent"]))
    row = _persona(backend, max_resamples=2)
    assert row["valid"] and row["checks"] == 2 and row["rejections"] == 1
    assert not row["first_valid"]
    assert json.loads(row["rejection_causes"]) == {
        "inconsistent": 1,
        "pruned": 0,
        "fill_invalid": 0,
    }
    # the accepted profile is the second procedural draw (round 1)
    assert row["seed"] == stable_seed(3, PEOPLE.iloc[0]["person_id"], "persona", 1)
    kinds = ["check" if c.choices else "fill" for c in backend.calls]
    assert kinds == ["check", "check", "fill"]  # no fill for the rejected draft
    first, second = (c.messages[1].content for c in backend.calls[:2])
    assert first != second and "Personal time" in first  # the check saw the procedural part
    assert "Religion" not in first  # ... and no LLM-filled attribute
    fill = backend.calls[2].messages[1].content
    assert second.split("PROFILE", 1)[1].strip() in fill  # the accepted draw is the one filled


def test_persona_rejected_every_time_is_pruned_unfilled_after_max_resamples() -> None:
    backend = ScriptedStandIn(_checker(["inconsistent"] * 3))
    row = _persona(backend, max_resamples=1)
    assert not row["valid"] and row["checks"] == 2 and row["rejections"] == 2
    assert row["error"] == "judged inconsistent in 2 of 2 checks"
    assert all(c.choices for c in backend.calls)  # pruned: never filled
    assert json.loads(row["rejection_causes"])["pruned"] == 1


def test_rejection_shares_per_cause_are_counted_by_hand() -> None:
    """4 persons: A accepted at once, B rejected once then accepted, C rejected twice (pruned
    with max_resamples=1), D accepted but its fill stays invalid. Checks 1 + 2 + 2 + 1 = 6,
    inconsistent 3 -> 50 %; pruned 1 of 4 checked -> 25 %; fill invalid 1 of 3 fills."""
    from personasim.personas.generate import format_summary, summarize

    people = sample_population(states=["VT"], per_state=4, seed=1)
    ids = list(people["person_id"])
    plan = {ids[0]: ["consistent"], ids[1]: ["inconsistent", "consistent"]}
    plan |= {ids[2]: ["inconsistent", "inconsistent"], ids[3]: ["consistent"]}
    ages = {f"Age: {a} years": pid for a, pid in zip(people["age"], ids, strict=True)}
    verdicts = {pid: iter(v) for pid, v in plan.items()}

    def whose(request) -> int:
        text = request.messages[1].content
        return next(pid for age, pid in ages.items() if age in text)

    def script(request, seen):
        if request.choices:
            return next(verdicts[whose(request)])
        return "{not json" if whose(request) == ids[3] else _open_reply(request)

    assert len(ages) == 4, "the hand count needs four distinct ages"
    table = generate_personas(
        people,
        tiers=("persona",),
        backend=ScriptedStandIn(script),
        max_resamples=1,
        max_attempts=1,
        string_length=20,
    )
    summary = summarize(table).iloc[0]
    assert (summary["checks"], summary["rejections"], summary["pruned"]) == (6, 3, 1)
    assert summary["rejected_share"] == 0.5 and summary["pruned_share"] == 0.25
    assert summary["fill_invalid_share"] == 1 / 3
    assert summary["valid"] == 0.5
    line = format_summary(summarize(table)).splitlines()[1]
    assert "50.0%" in line and "25.0%" in line and "33.3%" in line


def test_open_categories_differ_across_persons_and_repeat_for_a_seed() -> None:
    people = sample_population(states=["VT"], per_state=6, seed=1)

    def asked(seed: int) -> dict[int, tuple[str, ...]]:
        backend = ScriptedStandIn(_checker(["consistent"] * 6))
        generate_personas(people, tiers=("persona",), backend=backend, seed=seed)
        fills = [c for c in backend.calls if not c.choices]
        return {i: tuple(c.json_schema["properties"]) for i, c in enumerate(fills)}

    first = asked(seed=4)
    assert len(set(first.values())) > 1  # not the same keys for everyone
    assert asked(seed=4) == first
    assert asked(seed=5) != first


def test_a_child_is_asked_no_job_and_no_party_and_the_check_sees_the_age() -> None:
    people = sample_population(states=["VT"], per_state=40, seed=1, min_age=0)
    child = people[people["age"] < 12].head(1)
    assert not child.empty, "the sample has no child to test"
    backend = ScriptedStandIn(_checker(["consistent"]))
    table = generate_personas(child, tiers=("persona",), backend=backend, string_length=20)
    check, fill = backend.calls
    assert f"Age: {int(child.iloc[0]['age'])} years" in check.messages[1].content
    keys = set(fill.json_schema["properties"])
    assert not keys & {"detailed_job_description", "ideology", "political_views"}
    assert {"lifestyle", "religion"} <= keys and table.iloc[0]["valid"]


def test_persona_check_lost_to_the_backend_is_not_a_verdict() -> None:
    def script(request, seen):
        return backend_failure() if request.choices else _open_reply(request)

    row = _persona(ScriptedStandIn(script))
    assert not row["valid"] and row["finish_reason"] == "error" and row["checks"] == 0


@pytest.mark.parametrize("bad", [0, 21])
def test_max_runs_is_bounded(bad: int) -> None:
    from personasim.core.errors import ConfigError

    with pytest.raises(ConfigError, match="max_runs"):
        generate_personas(PEOPLE, tiers=("meta",), max_runs=bad)


def _cli_run(
    population: Path,
    out: Path,
    backend: ScriptedStandIn,
    max_runs: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> pd.DataFrame:
    """``personasim personas`` (in process) with the stand-in as its backend; the descriptive
    rows of the folder, read as one table."""
    from personasim.cli import options
    from personasim.cli.main import main
    from personasim.core.tables import read_table
    from personasim.executor.base import BackendRecipe

    recipe = BackendRecipe(factory=lambda: backend)
    monkeypatch.setattr(options, "backend_recipe", lambda *args: recipe)
    given = ["--max-runs", str(max_runs)] if max_runs else []
    argv = [
        "personas",
        "--population",
        str(population),
        "--tiers",
        "meta,descriptive",
        "--out",
        str(out),
        "--no-cache",
        *given,
    ]
    assert main(argv) == 0
    table = read_table(out, "personas table")
    assert not table.duplicated(["person_id", "tier", "generator"]).any()
    return table[table["tier"] == "descriptive"].set_index("person_id")


def test_the_personas_command_retries_backend_failures_on_rerun_up_to_max_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One retry policy: the command retries like a study's run (``--max-runs``, default 3)."""
    victim = f"Age: {PEOPLE['age'].iloc[0]} years"
    assert victim not in f"Age: {PEOPLE['age'].iloc[1]} years"
    state = {"fail": True}

    def script(request, seen):
        asked = request.messages[-1].content
        return backend_failure() if state["fail"] and victim in asked else DESCRIPTION

    backend = ScriptedStandIn(script)
    population = tmp_path / "population.parquet"
    PEOPLE.to_parquet(population, index=False)
    first = _cli_run(population, tmp_path / "a", backend, None, monkeypatch)
    assert first["finish_reason"].tolist() == ["error", "stop"] and len(backend.calls) == 2
    second = _cli_run(population, tmp_path / "a", backend, None, monkeypatch)  # still failing
    assert second.loc[0, "runs"] == 2 and len(backend.calls) == 3  # only the failed one again
    state["fail"] = False
    third = _cli_run(population, tmp_path / "a", backend, None, monkeypatch)
    assert third["valid"].all() and third.loc[0, "runs"] == 3 and len(backend.calls) == 4
    _cli_run(population, tmp_path / "a", backend, None, monkeypatch)
    assert len(backend.calls) == 4  # valid now: done
    state["fail"] = True
    bounded = _cli_run(population, tmp_path / "b", backend, 2, monkeypatch)
    assert bounded.loc[0, "finish_reason"] == "error" and len(backend.calls) == 6
    again = _cli_run(population, tmp_path / "b", backend, 2, monkeypatch)
    assert again.loc[0, "runs"] == 2 and len(backend.calls) == 7
    _cli_run(population, tmp_path / "b", backend, 2, monkeypatch)
    assert len(backend.calls) == 7  # runs == --max-runs: kept invalid and done


FILLER = '{"description": "None_None_None_None_None"}'


def test_degenerate_text_is_retried_and_the_better_reply_kept() -> None:
    def script(request, seen):
        # first try: valid JSON with filler; the retry (repair turn appended): plain text
        return FILLER if len(request.messages) == 2 else DESCRIPTION

    backend = ScriptedStandIn(script)
    rows = _descriptive(backend, degenerate_retries=1)
    assert rows["valid"].all() and rows["first_valid"].all()
    assert list(rows["attempts"]) == [2, 2]
    assert rows.iloc[0]["text"] == "Lives near Burlington and likes long walks."
    retry = backend.calls[-1].messages
    assert "say nothing" in retry[-1].content and "description" in retry[-1].content
    assert retry[-2].content == FILLER  # the degenerate reply is shown back to the model


def test_a_worse_or_invalid_retry_never_replaces_a_valid_reply() -> None:
    replies = iter([FILLER, FILLER, "{broken", '{"description": "x_x_x_x_x_x_x"}'])
    backend = ScriptedStandIn(lambda request, seen: next(replies))
    rows = _descriptive(backend, degenerate_retries=1)
    # person 1's retry is invalid JSON, person 2's is as degenerate: both keep their first reply
    assert rows["valid"].all() and list(rows["attempts"]) == [2, 2]
    assert (rows["text"] == "None_None_None_None_None").all()
    assert len(backend.calls) == 4


def test_no_degenerate_retry_by_default() -> None:
    backend = ScriptedStandIn(lambda request, seen: FILLER)
    rows = _descriptive(backend)
    assert list(rows["attempts"]) == [1, 1] and len(backend.calls) == 2
    assert (rows["text"] == "None_None_None_None_None").all()
