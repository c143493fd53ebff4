"""What a simulation asks: its options (:class:`SimulateOptions`), one task per persona x
question, the seeded option order of a person and the seed of each sample."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.simulate.prompt import INSTRUCTIONS
from personasim.survey.questions import Question, Survey


class SimulateOptions(BaseModel):
    """How to simulate: estimator, sampling, option order, labels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimator: Literal["logprobs", "sample"] = "logprobs"
    """``logprobs``: letter distribution after ``Answer:``; ``sample``: generated replies."""
    samples: int = Field(default=1, ge=1, le=1000)
    """Replies per persona and question (``sample`` only), each with its own seed."""
    temperature: float = Field(default=1.0, ge=0.0, le=5.0)
    """Sampling temperature (``sample`` only)."""
    constrained: bool = True
    """``sample``: restrict replies to ``Answer: <letter>`` through the backend's choice list."""
    max_tokens: int = Field(default=8, ge=1, le=4096)
    """``sample``: tokens allowed per reply (``Answer: B`` takes about four)."""
    permute: bool = False
    """Show each person the options of each question in a seeded random order."""
    seed: int = 0
    """Seed of option permutations and of sampled replies."""
    simulator: str | None = None
    """Name written to the ``simulator`` column; default: derived from the backend."""
    answer_prefix: str = "Answer:"
    """Text the reply starts with; the option letter follows it."""
    instructions: str = INSTRUCTIONS
    """The instruction text that opens every prompt."""
    chunk_persons: int = Field(default=32, ge=1)
    """Personas per chunk (one batch of model requests)."""
    min_valid_mass: float = Field(default=0.0, ge=0.0, lt=1.0)
    """An answer whose ``valid_mass`` (probability on the option letters, or share of parsable
    samples) is at or below this is recorded as invalid (``valid`` False, ``probs`` None)."""
    carry: tuple[str, ...] = ("weight", "state")
    """Persona columns copied to the responses when present (weights and groups for scoring)."""


@dataclass(frozen=True)
class Task:
    """One persona answering one question, with the option order shown."""

    persona: dict[str, Any]
    question: Question
    order: tuple[int, ...]


def _stable_int(*parts: Any) -> int:
    """A 63-bit integer that depends only on ``parts`` (not on Python's hash seed)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def option_order(question: Question, person_id: Any, seed: int, permute: bool) -> tuple[int, ...]:
    """The option order shown to a person: identity, or a permutation seeded by (seed, person,
    question) so that every tier of the same person sees the same order."""
    if not permute:
        return tuple(range(len(question.options)))
    rng = np.random.default_rng(_stable_int(seed, person_id, question.id))
    return tuple(question.permutation(rng))


def sample_seed(seed: int, task: Task, k: int) -> int:
    """Seed of the ``k``-th sampled reply of a task."""
    p = task.persona
    return _stable_int(seed, p["person_id"], p["tier"], p["generator"], task.question.id, k) % (
        2**31
    )


def plan_tasks(
    personas: pd.DataFrame,
    survey: Survey,
    options: SimulateOptions,
) -> list[Task]:
    """Persona-major list of tasks: every question of every persona."""
    tasks = []
    for persona in personas.to_dict("records"):
        for question in survey.questions:
            order = option_order(question, persona["person_id"], options.seed, options.permute)
            tasks.append(Task(persona, question, order))
    return tasks
