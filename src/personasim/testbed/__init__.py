"""The PERSONA testbed (Castricato et al. 2024): prompt sets, preference pairs by critique and
revision, persona-judged evaluation, leave-one-out attribute influence, role-play agreement.

Python API, one module per step: :mod:`~personasim.testbed.prompts`,
:mod:`~personasim.testbed.pairs`, :mod:`~personasim.export.trl`,
:mod:`~personasim.testbed.evaluate`, :mod:`~personasim.testbed.loo`,
:mod:`~personasim.testbed.agreement`, :mod:`~personasim.report.testbed`.
"""

FOLDER = "testbed"
OUTPUTS = (
    "pairs.parquet",
    "loo.parquet",
    "loo_summary.parquet",
    "kappa_matrix.parquet",
    "per_persona.parquet",
    "agreement.parquet",
)
"""The tables :func:`personasim.pipeline.stages.testbed.run_testbed` writes under
``RUN/testbed`` (pairs first: the key table)."""
