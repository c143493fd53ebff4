"""The question model: a survey is an id, a title and a list of multiple-choice questions.

A question keeps its options in their *original* order. A simulator may present them in another
order (a permutation, ``option_order``) under fresh letters ``A, B, C, ...``; the helpers
:meth:`Question.presented` and :meth:`Question.to_original` do the relabelling and map a
distribution over the presented letters back to the original option order.

Ordinal questions carry a numeric position per substantive option (OpinionQA's
``option_ordinal``); refusal options ("Refused", "Not sure") carry none and are dropped before any
distance is computed.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from functools import cached_property
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from personasim.core.errors import ConfigError, did_you_mean

LETTERS = string.ascii_uppercase

MAX_OPTIONS = 26 + 26 * 26
"""Most options a question may have: presentation labels run A..Z, then AA, AB... up to ZZ,
the longest label a sampled ``Answer: XX`` reply is parsed for."""


def letter(index: int) -> str:
    """The presentation letter of the ``index``-th option: 0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``.

    Past ``Z`` the labels keep going like spreadsheet columns (``AA``, ``AB``... ``ZZ``) rather
    than stop: a question with more than 26 options is rare but legitimate (a list of
    occupations, of states). See "More than 26 options" in ``docs/surveys.md``.
    """
    if index < 0:
        raise ConfigError(f"option index must be >= 0, got {index}")
    head, tail = divmod(index, len(LETTERS))
    return (letter(head - 1) if head else "") + LETTERS[tail]


class Option(BaseModel):
    """One answer option of a question."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(min_length=1)
    """Short label in the original order, e.g. ``A``; unique within the question."""
    text: str = Field(min_length=1)
    """The answer text shown to a respondent."""
    position: float | None = None
    """Numeric position on the ordinal scale (ordinal questions only; never for refusals)."""
    refusal: bool = False
    """True for non-substantive answers ("Refused", "Not sure"): dropped before distances."""
    code: str | None = None
    """Optional stable machine code, e.g. a Pew answer code or ``dem``/``rep``."""
    detail: str = ""
    """Optional longer description shown after the text (e.g. a candidate's stance)."""


class Question(BaseModel):
    """A multiple-choice question with its options in original order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """Unique id within the survey, e.g. ``SAFECRIME_W26`` or ``president_2020``."""
    text: str = Field(min_length=1)
    """The question as asked."""
    options: tuple[Option, ...]
    """Answer options in their original order (at least two)."""
    kind: Literal["ordinal", "nominal"] = "nominal"
    """``ordinal``: options lie on a scale (positions required); ``nominal``: unordered."""
    source: str = ""
    """Where the question comes from (file, wave, survey), free text."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Free key/value metadata, e.g. ``{"year": "2020"}`` or ``{"wave": "W26"}``."""

    @model_validator(mode="after")
    def _check(self) -> Question:
        """Validate options: count, unique labels, refusal and position rules."""
        where = f"question {self.id!r}"
        if len(self.options) < 2:
            raise ValueError(f"{where}: needs at least 2 options, got {len(self.options)}")
        if len(self.options) > MAX_OPTIONS:
            raise ValueError(
                f"{where}: has {len(self.options)} options, more than the {MAX_OPTIONS} that "
                "labels A..ZZ can tell apart"
            )
        labels = [o.label for o in self.options]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"{where}: duplicate option labels {dupes}")
        if all(o.refusal for o in self.options):
            raise ValueError(
                f"{where}: every option is a refusal; at least one must be substantive"
            )
        for o in self.options:
            if o.refusal and o.position is not None:
                raise ValueError(f"{where}: refusal option {o.label!r} must not have a position")
        if self.kind == "ordinal":
            missing = [o.label for o in self.options if not o.refusal and o.position is None]
            if missing:
                raise ValueError(
                    f"{where}: ordinal question needs a position for options {missing}"
                )
            if len({o.position for o in self.options if not o.refusal}) < 2:
                raise ValueError(f"{where}: ordinal question needs at least 2 distinct positions")
        elif any(o.position is not None for o in self.options):
            raise ValueError(
                f"{where}: nominal question must not give positions (use kind: ordinal)"
            )
        return self

    @property
    def labels(self) -> list[str]:
        """Option labels in original order."""
        return [o.label for o in self.options]

    @property
    def texts(self) -> list[str]:
        """Option texts in original order."""
        return [o.text for o in self.options]

    @property
    def refusal_mask(self) -> np.ndarray:
        """Boolean array, True where the option is a refusal (original order)."""
        return np.array([o.refusal for o in self.options], dtype=bool)

    @property
    def positions(self) -> np.ndarray:
        """Positions of the substantive options (ordinal only; NaN-free), original order."""
        if self.kind != "ordinal":
            raise ConfigError(f"question {self.id!r} is nominal and has no positions")
        return np.array([o.position for o in self.options if not o.refusal], dtype=float)

    def index_of(self, key: str) -> int:
        """Original index of an option given its label, text or code (case-insensitive)."""
        wanted = key.strip().casefold()
        for i, o in enumerate(self.options):
            names = (o.label, o.text, o.code or "")
            if wanted in (n.strip().casefold() for n in names if n):
                return i
        hint = did_you_mean(key, self.labels + self.texts, n=1, otherwise=f"options: {self.texts}")
        raise ConfigError(f"question {self.id!r} has no option {key!r}", hint=hint)

    def presented(self, order: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """Options as shown: ``(letter, text)`` pairs, ``order[i]`` = original index at slot i."""
        idx = self._check_order(order)
        return [(letter(slot), self.options[i].text) for slot, i in enumerate(idx)]

    def to_original(
        self, presented_probs: Sequence[float], order: Sequence[int] | None
    ) -> list[float]:
        """Map a distribution over the presented letters back to the original option order."""
        idx = self._check_order(order)
        if len(presented_probs) != len(idx):
            raise ConfigError(
                f"question {self.id!r}: got {len(presented_probs)} probabilities "
                f"for {len(idx)} options"
            )
        out = [0.0] * len(idx)
        for slot, i in enumerate(idx):
            out[i] = float(presented_probs[slot])
        return out

    def permutation(self, rng: np.random.Generator) -> list[int]:
        """A random option order (original indices in presented order) drawn from ``rng``."""
        return [int(i) for i in rng.permutation(len(self.options))]

    def _check_order(self, order: Sequence[int] | None) -> list[int]:
        """Return ``order`` (or the identity) after checking it is a permutation of the options."""
        n = len(self.options)
        if order is None:
            return list(range(n))
        idx = [int(i) for i in order]
        if sorted(idx) != list(range(n)):
            raise ConfigError(
                f"question {self.id!r}: option order {idx} is not a permutation of 0..{n - 1}"
            )
        return idx


class Survey(BaseModel):
    """A named list of questions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """Short identifier, e.g. ``elections``."""
    title: str = ""
    """Human-readable title."""
    questions: tuple[Question, ...] = Field(min_length=1)
    """The questions, in asking order; ids unique."""
    source: str = ""
    """Where the survey was loaded from."""

    @model_validator(mode="after")
    def _unique_ids(self) -> Survey:
        """Question ids must be unique."""
        ids = [q.id for q in self.questions]
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        if dupes:
            raise ValueError(f"duplicate question ids {dupes}")
        return self

    @property
    def ids(self) -> list[str]:
        """Question ids in order."""
        return [q.id for q in self.questions]

    @cached_property
    def _by_id(self) -> dict[str, Question]:
        """Question id -> question (built once: scoring looks questions up per batch)."""
        return {q.id: q for q in self.questions}

    def question(self, question_id: str) -> Question:
        """The question with this id; unknown ids raise with a "did you mean" hint."""
        if question_id in self._by_id:
            return self._by_id[question_id]
        hint = did_you_mean(
            question_id,
            self.ids,
            n=1,
            otherwise=f"survey {self.id!r} has {len(self.ids)} questions",
        )
        raise ConfigError(f"survey {self.id!r} has no question {question_id!r}", hint=hint)
