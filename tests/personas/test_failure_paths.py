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
OPEN = json.dumps(
    {
        "detailed_job_description": "teaches",
        "lifestyle": "outdoors",
        "ideology": "Moderate",
        "political_views": "Independent",
        "religion": "None",
    }
)


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
    """A script: the open attributes for a fill, the next of ``verdicts`` for a check."""
    given = iter(verdicts)

    def script(request, seen):
        return next(given) if request.choices else OPEN

    return script


def test_persona_redraws_after_an_inconsistent_verdict() -> None:
    backend = ScriptedStandIn(_checker(["inconsistent", "consistent"]))
    row = _persona(backend, max_resamples=2)
    assert row["valid"] and row["checks"] == 2 and row["rejections"] == 1
    assert not row["first_valid"]
    # the accepted profile is the second procedural draw (round 1)
    assert row["seed"] == stable_seed(3, PEOPLE.iloc[0]["person_id"], "persona", 1)
    fills = [c for c in backend.calls if not c.choices]
    assert len(fills) == 2 and fills[0].messages != fills[1].messages


def test_persona_rejected_every_time_is_invalid_after_max_resamples() -> None:
    backend = ScriptedStandIn(_checker(["inconsistent"] * 3))
    row = _persona(backend, max_resamples=1)
    assert not row["valid"] and row["checks"] == 2 and row["rejections"] == 2
    assert row["error"] == "judged inconsistent in 2 of 2 checks"


def test_persona_check_lost_to_the_backend_is_not_a_verdict() -> None:
    def script(request, seen):
        return backend_failure() if request.choices else OPEN

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
