"""The ``diagnostics`` stage: text statistics and imputation drift of the personas."""

from __future__ import annotations

from personasim.core.tables import write_atomic
from personasim.pipeline.context import StageContext, read_run_table
from personasim.pipeline.contract import Stage


def diagnostics_stage(ctx: StageContext) -> None:
    """Text statistics and imputation drift of the personas (no model calls)."""
    from personasim.analysis import imputation_drift, text_stats

    personas = read_run_table(ctx, "personas.parquet", "personas table")
    write_atomic(text_stats(personas), ctx.run / "text_stats.parquet")
    write_atomic(imputation_drift(personas), ctx.run / "drift.parquet")


STAGE = Stage(
    "diagnostics",
    lambda s: ["personas.parquet"],
    lambda s: ["text_stats.parquet", "drift.parquet"],
    (),
    lambda s: {},
    diagnostics_stage,
    code=("personasim.analysis", __name__),
)
"""Persona diagnostics: no model calls."""
