"""The ``population`` stage: persons drawn from the census (``population.parquet``) and each
state's raking report (``raking.parquet``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from personasim.core.tables import write_atomic
from personasim.pipeline.context import StageContext
from personasim.pipeline.contract import Stage


def population_stage(ctx: StageContext) -> None:
    """Draw the population into ``population.parquet``; each state's raking report into
    ``raking.parquet``."""
    from personasim.census.sample import PopulationSpec, build_population

    section = ctx.spec.population
    spec = PopulationSpec(
        states=section.states,
        per_state=section.per_state,
        seed=section.seed,
        min_age=section.min_age,
        pums=section.pums,
    )
    population = build_population(spec)
    write_atomic(population.frame, ctx.run / "population.parquet")
    write_atomic(raking_table(population.reports), ctx.run / "raking.parquet")


def raking_table(reports: list[Any]) -> pd.DataFrame:
    """One row per state x control: iterations, convergence, max relative error, ESS, unmet."""
    rows = [
        {
            "state": r.state,
            "control": control,
            "max_rel_error": float(error),
            "iterations": r.iterations,
            "converged": r.converged,
            "status": r.status,
            "offending": r.offending,
            "ess": r.ess,
            "n_seed": r.n_seed,
            "unmet": ", ".join(r.unmet),
            "note": r.note,
        }
        for r in reports
        for control, error in (r.max_rel_error or {"(none)": 0.0}).items()
    ]
    return pd.DataFrame(rows, columns=RAKING_COLUMNS)


RAKING_COLUMNS = [
    "state",
    "control",
    "max_rel_error",
    "iterations",
    "converged",
    "status",
    "offending",
    "ess",
    "n_seed",
    "unmet",
    "note",
]


STAGE = Stage(
    "population",
    lambda s: [],
    lambda s: ["population.parquet", "raking.parquet"],
    ("person_id",),
    lambda s: s.section("population"),
    population_stage,
    code=("personasim.census", "personasim.core.states", __name__),
)
"""Census-sampled persons: no model calls; stale when ``[population]`` or the census code
changes."""
