"""The study's optional ``[testbed]`` section (pydantic only, so that the study spec imports it
without loading the testbed)."""

from __future__ import annotations

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
    questions: str = "builtin"
    """Preference questions of LOO and agreement: ``builtin`` or a questions file."""
    n_questions: int | None = Field(default=8, ge=1)
    """Only the first N preference questions (None: all)."""
    loo_attributes: tuple[str, ...] | None = ("religion", "ideology", "political_views", "age")
    """Attributes of the leave-one-out analysis (None: every attribute)."""
    loo_personas: int = Field(default=8, ge=1)
    """Persona pairs per attribute."""
    loo_k: int = Field(default=3, ge=1)
    """Attributes per persona before the left-out one is added."""
    raters: tuple[str, ...] = ()
    """Other ``[backends.NAME]`` tables that rate the same items (agreement)."""
    reversed_rater: bool = True
    """Add each model rater again with the answers reversed (a position-bias probe)."""
    humans: str | None = None
    """CSV of human labels (rater, persona_id, question_id, choice), optional."""
    seed: int = 0
    """Seed of sampling, generation and bootstraps."""
