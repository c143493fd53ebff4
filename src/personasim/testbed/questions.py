"""Preference questions: a question with 2–6 candidate answers; a persona picks the one it
prefers. Used by leave-one-out influence and role-play agreement.

Sources: ``builtin`` (22 questions with 3–4 answers, our own words), a YAML/JSONL file of
``{id, text, answers}`` records, or the pairs of :mod:`personasim.testbed.pairs`
(:func:`questions_from_pairs`: the persona-free answer and up to three personas' revisions).
:func:`ask` reads each persona's choice as label probabilities; the argmax is its label.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personasim.core.errors import DataError, validation_error
from personasim.llm import Backend, ChoiceRequest, Message
from personasim.testbed import common as C

LETTERS = "ABCDEF"
ASK_USER = (
    "{question}\n\n{options}\n\n"
    "Which answer would you, as this person, prefer? Reply with {letters}."
)
LABEL_COLUMNS = ["key", "question_id", "choice", "probs", "valid_mass"]


class PreferenceQuestion(BaseModel):
    """A question and its candidate answers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    """Stable question id."""
    text: str = Field(min_length=1)
    """The question a person could ask."""
    answers: tuple[str, ...] = Field(min_length=2, max_length=len(LETTERS))
    """Candidate answers, labelled A, B, ... in order."""

    @property
    def labels(self) -> tuple[str, ...]:
        """The option letters."""
        return tuple(LETTERS[: len(self.answers)])


def _parse(records: list, source: str) -> list[PreferenceQuestion]:
    """Validated questions; one line per error."""
    out = []
    for i, record in enumerate(records):
        try:
            out.append(PreferenceQuestion(**record))
        except (ValidationError, TypeError) as error:
            if isinstance(error, TypeError):
                raise DataError(f"{source}[{i}]: not a mapping of id, text, answers") from None
            raise validation_error(
                error,
                f"{source}[{i}]",
                cls=DataError,
                known_fields=lambda _l: PreferenceQuestion.model_fields,
            ) from None
    if not out:
        raise DataError(f"{source}: no preference questions", hint="give at least one")
    return out


def builtin_questions() -> list[PreferenceQuestion]:
    """The project's own preference questions."""
    text = resources.files("personasim.testbed").joinpath("data/preference_questions.yaml")
    return _parse(yaml.safe_load(text.read_text("utf-8"))["questions"], "builtin questions")


def load_questions(source: str | Path) -> list[PreferenceQuestion]:
    """Questions from ``builtin`` or a YAML (list or ``{questions: [...]}``) / JSONL file."""
    if str(source) == "builtin":
        return builtin_questions()
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise DataError(f"{path}: cannot read questions ({error.strerror})") from None
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = yaml.safe_load(text)
            records = data.get("questions", []) if isinstance(data, dict) else data or []
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise DataError(f"{path}: cannot parse questions ({str(error).splitlines()[0]})") from None
    return _parse(list(records), str(path))


def questions_from_pairs(pairs: pd.DataFrame, limit: int = 20) -> list[PreferenceQuestion]:
    """Questions made from pairs: per prompt, the persona-free answer and up to 3 revisions."""
    out = []
    for prompt_id, group in pairs[pairs["ok"].astype(bool)].groupby("prompt_id", sort=True):
        answers = [str(group["rejected"].iloc[0])]
        answers += [a for a in dict.fromkeys(group["chosen"].astype(str)) if a not in answers][:3]
        if len(answers) >= 2:
            out.append(
                PreferenceQuestion(
                    id=str(prompt_id), text=str(group["prompt"].iloc[0]), answers=tuple(answers)
                )
            )
    return _parse([q.model_dump() for q in out[:limit]], "questions from pairs")


def ask_request(profile: str, question: PreferenceQuestion, reverse: bool = False) -> ChoiceRequest:
    """The role-played persona's choice among the answers (shown in reverse order if asked)."""
    answers = question.answers[::-1] if reverse else question.answers
    options = "\n".join(f"{lab}. {a}" for lab, a in zip(question.labels, answers, strict=True))
    letters = ", ".join(question.labels)
    user = ASK_USER.format(question=question.text, options=options, letters=letters)
    return ChoiceRequest(
        messages=(C.roleplay(profile), Message(role="user", content=user)),
        labels=question.labels,
        answer_prefix="Answer:",
    )


def _original(probs: dict[str, float], reverse: bool) -> dict[str, float]:
    """Probabilities keyed by the answers' original letters."""
    if not reverse:
        return probs
    letters = list(probs)
    return {letters[len(letters) - 1 - i]: p for i, p in enumerate(probs.values())}


def ask(
    backend: Backend,
    profiles: Mapping[str, str],
    questions: Sequence[PreferenceQuestion],
    progress: bool | None = None,
    reverse: bool = False,
) -> pd.DataFrame:
    """Each profile's label per question, persona-major (``key`` is the profile's key).

    ``choice`` is the most probable answer's original letter, or None when no probability mass
    landed on the letters (``valid_mass`` 0). With ``reverse`` the answers are shown in reverse
    order (a check of position bias) and mapped back.
    """
    keys = [(k, q) for k in profiles for q in questions]
    results = backend.choice_logprobs(
        [ask_request(profiles[k], q, reverse) for k, q in keys], progress=progress
    )
    rows = []
    for (k, q), r in zip(keys, results, strict=True):
        probs = _original(dict(r.probs), reverse)
        rows.append(
            {
                "key": k,
                "question_id": q.id,
                "choice": max(probs, key=probs.get) if r.valid_mass > 0 else None,
                "probs": json.dumps(probs),
                "valid_mass": r.valid_mass,
            }
        )
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)
