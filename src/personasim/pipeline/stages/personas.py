"""The ``personas`` stage: every tier with every generator (``personas.parquet``), through the
executor, committed batch by batch under ``parts/personas/`` and resumed from there."""

from __future__ import annotations

from personasim.core.keys import PERSONA_KEY
from personasim.pipeline.context import StageContext, read_run_table
from personasim.pipeline.contract import Stage


def personas_stage(ctx: StageContext) -> None:
    """Generate every tier with every generator into ``personas.parquet`` through the executor
    (committed batch by batch as parts under ``parts/personas/``; resumed from them)."""
    from personasim.pipeline.executor import personas_on_executor

    section = ctx.spec.personas
    population = read_run_table(ctx, "population.parquet", "population table")
    written = personas_on_executor(
        ctx.spec,
        ctx.run,
        population,
        ctx.backends,
        seed=ctx.spec.seed,
        temperature=section.temperature,
        max_attempts=section.max_attempts,
        degenerate_retries=section.degenerate_retries,
        prompt_file={t: str(p) for t, p in section.prompt_files.items()} or None,
        max_runs=section.max_runs,
    )
    ctx.timing.reused = written == 0


STAGE = Stage(
    "personas",
    lambda s: ["population.parquet"],
    lambda s: ["personas.parquet"],
    PERSONA_KEY,
    lambda s: {
        "personas": s.section("personas"),
        "seed": s.seed,
        "backends": s.backend_sections(s.personas.generators),
    },
    personas_stage,
    resumable=True,
    code=("personasim.personas", "personasim.census.mapping", "personasim.pipeline.jobs", __name__),
)
"""Persona texts: resumable (committed parts are kept), stale when ``[personas]``, the seed or a
generator's backend section changes."""
