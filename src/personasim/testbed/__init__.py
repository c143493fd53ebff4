"""The PERSONA testbed (Castricato et al. 2024): prompt sets, preference pairs by critique and
revision, persona-judged evaluation, leave-one-out attribute influence, role-play agreement.

Python API, one module per step: :mod:`~personasim.testbed.prompts`,
:mod:`~personasim.testbed.pairs`, :mod:`~personasim.export.trl`,
:mod:`~personasim.testbed.evaluate`, :mod:`~personasim.testbed.loo_paper` (and the cheaper
:mod:`~personasim.testbed.loo`), :mod:`~personasim.testbed.roleplay` (over
:mod:`~personasim.testbed.agreement`), :mod:`~personasim.report.testbed`.
"""

FOLDER = "testbed"
OUTPUTS = (
    "pairs.parquet",
    "loo.parquet",
    "loo_summary.parquet",
    "items.parquet",
    "labels.parquet",
    "kappa_matrix.parquet",
    "per_persona.parquet",
    "agreement.parquet",
)
"""The tables :func:`personasim.pipeline.stages.testbed.run_testbed` always writes under
``RUN/testbed`` (pairs first: the key table)."""
PAPER_LOO_OUTPUTS = ("loo_items.parquet", "loo_refinements.parquet")
"""Written too with the ``paper`` leave-one-out protocol: every annotator label, every
refinement."""
HUMAN_OUTPUTS = (
    "annotations.parquet",
    "human_kappa_matrix.parquet",
    "human_per_persona.parquet",
)
"""Written too with human labels: the per-annotator labels and the human-vs-human baseline."""


def stage_outputs(loo_protocol: str, humans: bool) -> tuple[str, ...]:
    """The tables a ``[testbed]`` run writes under ``RUN/testbed`` for this protocol."""
    paper = PAPER_LOO_OUTPUTS if loo_protocol == "paper" else ()
    return OUTPUTS + paper + (HUMAN_OUTPUTS if humans else ())
