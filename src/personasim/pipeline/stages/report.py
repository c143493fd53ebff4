"""The ``report`` stage: ``report.html`` from the run directory's declared tables (always runs)."""

from __future__ import annotations

from personasim.pipeline.context import StageContext
from personasim.pipeline.contract import Stage
from personasim.pipeline.stages.score import score_outputs
from personasim.pipeline.stages.simulate import response_tables
from personasim.pipeline.stages.testbed import testbed_outputs


def report_stage(ctx: StageContext) -> None:
    """Write ``report.html`` from the run directory's tables."""
    from personasim.report import build_report

    build_report(ctx.run)


TABLES = [
    "population.parquet",
    "raking.parquet",
    "personas.parquet",
    "text_stats.parquet",
    "drift.parquet",
]
"""The tables of the stages without per-survey outputs, which the report reads."""


STAGE = Stage(
    "report",
    lambda s: [*TABLES, *response_tables(s), *score_outputs(s), *testbed_outputs(s)],
    lambda s: ["report.html"],
    (),
    lambda s: s.section("report"),
    report_stage,
    always=True,
)
"""The report: rebuilt on every run (it is cheap and shows the run's timings)."""
