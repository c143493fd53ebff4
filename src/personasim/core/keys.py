"""The key columns of the pipeline's tables, in one place.

A key names one row: the stages resume by it, the parts folders publish by it (a key's last row
wins), the exports and the tests check that no key appears twice. Every list is a tuple, so no
caller can grow the shared copy.
"""

from __future__ import annotations

PERSONA_KEY: tuple[str, ...] = ("person_id", "tier", "generator")
"""A persona: one person written as one tier by one generator model."""

PERSONA_MODEL_KEY: tuple[str, ...] = PERSONA_KEY[1:]
"""The models of a persona (tier and generator): a calibrated weight belongs to a person under
these, since each tier x generator is weighted as a population of its own."""

MODEL_KEY: tuple[str, ...] = ("tier", "generator", "simulator", "estimator")
"""The models behind an answer (persona tier, its generator, the simulator and the estimator):
what a score, a cross-model table and a crosstab are broken down by."""

RESPONSE_KEY: tuple[str, ...] = (*PERSONA_KEY, "simulator", "question_id", "estimator")
"""An answer: one persona answering one question through one simulator and estimator."""

SCORE_KEY: tuple[str, ...] = (
    "attribute",
    "group",
    "question_id",
    "tier",
    "generator",
    "simulator",
    "estimator",
    "metric",
)
"""A row of a scores table: one metric of one group's answers to one question, per models."""

CALIBRATED_PAIR_KEY: tuple[str, ...] = (
    "tier",
    "generator",
    "simulator",
    "estimator",
    "question_id",
    "metric",
)
"""What pairs an unweighted overall score with its calibrated twin: :data:`SCORE_KEY` without
``attribute`` and ``group``, on purpose, since both sides are the overall group already."""

PAIRS_KEY: tuple[str, ...] = ("person_id", "prompt_id", "generator")
"""A PERSONA testbed preference pair: one person's rewrite of one prompt by one generator."""
