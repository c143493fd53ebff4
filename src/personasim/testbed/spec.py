"""The study's optional ``[testbed]`` section (pydantic only, so that the study spec imports it
without loading the testbed)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TestbedSpec(BaseModel):
    """The ``[testbed]`` section of a study: what the PERSONA testbed runs on its personas."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    __test__ = False  # not a pytest test class

    backend: str | None = None
    """Name of a ``[backends.NAME]`` table to run on (default: the study's simulate backend)."""
    prompts: str = "builtin"
    """Prompt set: ``builtin`` or a prompt file / prompts.parquet."""
    per_persona: int = Field(default=4, ge=1)
    """Train-split prompts per persona."""
    held_out: int = Field(default=2, ge=0)
    """Held-out prompts per persona."""
    answer_tokens: int = Field(default=96, ge=8, le=4096)
    """Token cap of the persona-free answer."""
    critique_tokens: int = Field(default=128, ge=8, le=4096)
    """Token cap of the critique."""
    revision_tokens: int = Field(default=96, ge=8, le=4096)
    """Token cap of the revision."""
    loo_protocol: Literal["paper", "choice"] = "paper"
    """Leave-one-out protocol: ``paper`` (every baseline critiqued and revised for both versions
    of each persona, :mod:`personasim.testbed.loo_paper`) or ``choice`` (both versions pick among
    the fixed answers of ``questions``, :mod:`personasim.testbed.loo`)."""
    questions: str = "builtin"
    """Preference questions of the ``choice`` protocol: ``builtin`` or a questions file."""
    n_questions: int | None = Field(default=8, ge=1)
    """Questions of the leave-one-out: the first N prompts of the pairs with their persona-free
    answers as baselines (``paper``), or the first N preference questions (``choice``); None:
    all."""
    loo_attributes: tuple[str, ...] | None = ("religion", "ideology", "political_views", "age")
    """Attributes of the leave-one-out analysis (None: every attribute)."""
    loo_personas: int = Field(default=8, ge=1)
    """Persona pairs per attribute."""
    loo_k: int = Field(default=3, ge=1)
    """Attributes per persona before the left-out one is added."""
    agreement_items: int = Field(default=10, ge=1)
    """Role-play agreement items per persona, sampled from the pairs (the paper: 10)."""
    raters: tuple[str, ...] = ()
    """Other ``[backends.NAME]`` tables that rate the same items (agreement)."""
    reversed_rater: bool = True
    """Add the study's model twice more, once per display order (the revision shown as A, then
    as B): a position-bias probe from the same model calls."""
    humans: str | None = None
    """Per-annotator human labels of the agreement items: a CSV (annotator, persona_id,
    question_id, choice) or the annotation page's labels folder; optional."""
    seed: int = 0
    """Seed of sampling, generation and bootstraps."""
