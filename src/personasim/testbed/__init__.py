"""The PERSONA testbed (Castricato et al. 2024): prompt sets, preference pairs by critique and
revision, persona-judged evaluation, leave-one-out attribute influence, role-play agreement.

Python API, one module per step: :mod:`~personasim.testbed.prompts`,
:mod:`~personasim.testbed.pairs`, :mod:`~personasim.testbed.export`,
:mod:`~personasim.testbed.evaluate`, :mod:`~personasim.testbed.loo`,
:mod:`~personasim.testbed.agreement`, :mod:`~personasim.testbed.figures`.
"""
