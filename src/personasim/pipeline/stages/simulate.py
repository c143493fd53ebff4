"""The ``simulate`` stage: every survey answered by every simulator (``responses_<id>.parquet``),
through the executor, committed batch by batch under ``parts/responses_<id>/``."""

from __future__ import annotations

from typing import Any

from personasim.core.keys import RESPONSE_KEY
from personasim.pipeline.context import StageContext, read_run_table
from personasim.pipeline.contract import Stage
from personasim.spec.study import StudySpec


def simulate_options(spec: StudySpec, simulator: str) -> Any:
    """The :class:`~personasim.simulate.plan.SimulateOptions` of ``[simulate]``."""
    from personasim.simulate.plan import SimulateOptions

    section = spec.simulate
    return SimulateOptions(
        estimator=section.estimator,
        samples=section.samples,
        permute=section.permute,
        temperature=section.temperature,
        seed=spec.seed,
        simulator=simulator,
        min_valid_mass=section.min_valid_mass,
    )


def simulate_stage(ctx: StageContext) -> None:
    """Answer every survey with every simulator into ``responses_<id>.parquet`` through the
    executor (committed batch by batch as parts under ``parts/responses_<id>/``; resumed from
    them)."""
    from personasim.pipeline.executor import simulate_on_executor

    personas = read_run_table(ctx, "personas.parquet", "personas table")
    options = {name: simulate_options(ctx.spec, name) for name in ctx.spec.simulate.simulators}
    written = 0
    for entry in ctx.spec.surveys:
        written += simulate_on_executor(
            ctx.spec, ctx.run, personas, entry.load(), entry.id, options, ctx.backends
        )
    ctx.timing.reused = written == 0


def response_tables(spec: StudySpec) -> list[str]:
    """The ``responses_<id>.parquet`` table of each ``[[surveys]]`` entry."""
    return [f"responses_{e.id}.parquet" for e in spec.surveys]


STAGE = Stage(
    "simulate",
    lambda s: ["personas.parquet"],
    response_tables,
    RESPONSE_KEY,
    lambda s: {
        "simulate": s.section("simulate"),
        "seed": s.seed,
        "backends": s.backend_sections(s.simulate.simulators),
        "surveys": [(e.id, e.source, e.max_questions) for e in s.surveys],
    },
    simulate_stage,
    resumable=True,
    code=("personasim.simulate", "personasim.survey", "personasim.pipeline.jobs", __name__),
)
"""Answers: resumable; a changed question is answered again (the LLM cache answers the rest)."""
