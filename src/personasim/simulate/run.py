"""Simulate survey answers: every persona answers every question of a survey through an LLM.

The prompt follows the simulation instructions of Li et al. (2025, Appendix B.5) in personasim's
own words: the instructions and the persona's profile form the system message, the question with
its lettered options is the user message. Requests are scheduled persona-major, so a backend that
reuses the KV cache of a shared prompt prefix (llama.cpp, vLLM, SGLang) evaluates each persona once
for all of its questions.

Estimators (``SimulateOptions.estimator``):

- ``logprobs`` (default): the next-token distribution over the option letters right after
  ``Answer:``; ``valid_mass`` is the probability that landed on any letter before renormalizing.
- ``sample``: the paper's way. ``samples`` replies per persona and question, each with its own
  seed; with ``constrained=True`` the reply is restricted to ``Answer: <letter>`` by the backend,
  otherwise free text parsed strictly by :func:`parse_answer`. A reply that does not parse is
  counted in ``invalid`` and never becomes an option; ``probs`` are the shares among valid replies.

Validity (no answer is invented): a row is ``valid`` only when its ``valid_mass`` is above
``SimulateOptions.min_valid_mass`` (default 0). An invalid row keeps ``valid_mass``, the reply in
``raw`` (the presented-letter probabilities and top tokens, or the sampled replies) and has
``probs`` and ``answer`` None, so it can never enter a distribution as a uniform respondent.
Persona rows marked ``valid = False`` (a failed generation) are not simulated at all; they are
counted per tier x generator in :attr:`SimulateReport.excluded`.

With ``permute=True`` each person sees each question's options in a seeded random order (the same
order for every tier and generator of that person, so tiers stay paired); ``probs`` are always
mapped back to the original option order, and ``option_order[slot]`` is the original index of the
option shown at letter ``slot``.

Output: one row per persona x question (:data:`RESPONSE_COLUMNS`, plus ``weight``/``state`` when
the personas carry them, for scoring), keyed by :data:`personasim.core.keys.RESPONSE_KEY`. This
module computes rows in memory; writing them, resuming and skipping rows already done is the
part-writing driver's job (:func:`personasim.pipeline.jobs.simulate_to_parts`), and the LLM cache
answers repeated calls.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.core.errors import ConfigError, DataError
from personasim.core.keys import PERSONA_KEY, RESPONSE_KEY
from personasim.core.validity import (
    blank_text,
    enough_mass,
    excluded_personas,
    invalid_answer_rows,
    invalid_personas,
)
from personasim.llm.base import (
    Backend,
    ChoiceRequest,
    ChoiceResult,
    GenerateRequest,
    GenerateResult,
    Message,
)
from personasim.survey.questions import Question, Survey, letter

RESPONSE_COLUMNS = [
    *RESPONSE_KEY,
    "probs",
    "answer",
    "valid_mass",
    "valid",
    "invalid",
    "option_order",
    "raw",
]
PERSONA_COLUMNS = [*PERSONA_KEY, "text"]

INSTRUCTIONS = """\
You take part in a survey study as a stand-in for one specific person, described in the profile \
below. Answer the multiple-choice question you are given as this person would answer it.

How to answer:
- Let the profile decide: the choice should follow from who this person is and how they live.
- Consider only the parts of the profile that bear on the topic of the question.
- Leave your own opinions out, and do not tone down views this person would plausibly hold.
- Give exactly one of the lettered options, also when the profile does not settle the matter; \
when several options could fit, take the one this person would most likely give.
- Reply with "Answer: " followed by the letter of the option, and write nothing else."""

PROFILE_HEADER = "Profile of the person:"

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


@dataclass
class SimulateReport:
    """What :func:`simulate` did."""

    responses: pd.DataFrame
    """The rows computed."""
    written: int
    """Rows computed in this run."""
    model_calls: int
    """Requests that reached the model in this run (0 on a finished rerun)."""
    cache_hits: int
    """Requests answered by the LLM cache in this run."""
    mean_valid_mass: float
    """Mean ``valid_mass`` of the new rows (NaN when none)."""
    invalid_share: float
    """Invalid replies / all replies of the new rows (``sample``); 0 for ``logprobs``."""
    invalid_answers: int = 0
    """New rows recorded as invalid (``valid_mass`` at or below ``min_valid_mass``)."""
    excluded: dict[tuple[str, str], int] = field(default_factory=dict)
    """Invalid personas left out, per (tier, generator)."""

    def summary(self) -> str:
        """One line for the CLI."""
        detail = ", ".join(f"{t}/{g} {n}" for (t, g), n in sorted(self.excluded.items()))
        return (
            f"{self.written} rows written; "
            f"model calls {self.model_calls}, cache hits {self.cache_hits}; "
            f"mean valid_mass {self.mean_valid_mass:.3f}, invalid share {self.invalid_share:.3f}; "
            f"{self.invalid_answers} invalid answers; "
            f"{sum(self.excluded.values())} invalid personas excluded"
            + (f" ({detail})" if detail else "")
        )


@dataclass(frozen=True)
class Task:
    """One persona answering one question, with the option order shown."""

    persona: dict[str, Any]
    question: Question
    order: tuple[int, ...]


# --------------------------------------------------------------------------- prompts


def format_question(question: Question, order: Sequence[int] | None = None) -> str:
    """The user message: the question, its options under presented letters, the letters allowed."""
    lines = [f"Question: {question.text.strip()}", ""]
    idx = list(order) if order is not None else list(range(len(question.options)))
    for (mark, text), i in zip(question.presented(order), idx, strict=True):
        detail = question.options[i].detail.strip()
        lines.append(f"{mark}. {text}" + (f" ({detail})" if detail else ""))
    letters = [letter(i) for i in range(len(idx))]
    lines += ["", f"Possible answers: {', '.join(letters)}."]
    return "\n".join(lines)


def build_messages(
    persona_text: str,
    question: Question,
    order: Sequence[int] | None = None,
    instructions: str = INSTRUCTIONS,
) -> tuple[Message, ...]:
    """System message = instructions + profile (shared by all of a persona's questions);
    user message = the question."""
    system = f"{instructions.strip()}\n\n{PROFILE_HEADER}\n{persona_text.strip()}"
    return (
        Message(role="system", content=system),
        Message(role="user", content=format_question(question, order)),
    )


_ANSWER = re.compile(
    r"^\s*answer\s*:\s*[\[(]?(?P<letter>[A-Za-z]{1,2})[\])]?(?:\s*$|[.):,;]|\s*\n)",
    re.IGNORECASE,
)


def parse_answer(reply: str, letters: Sequence[str]) -> str | None:
    """The letter of a strict ``Answer: X`` reply, or None when the reply does not have that form.

    The reply must start with ``Answer:`` and the letter must stand alone (end of reply, or
    followed by punctuation or a line break): ``"Answer: B"`` and ``"Answer: B. Trump"`` give
    ``B``; ``"A person like me..."``, ``"Answer: A person..."`` and letters outside ``letters``
    give None.
    """
    match = _ANSWER.match(reply or "")
    if not match:
        return None
    found = match.group("letter").upper()
    return found if found in letters else None


# --------------------------------------------------------------------------- scheduling


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


# --------------------------------------------------------------------------- estimators


def _base_row(task: Task, simulator: str, options: SimulateOptions) -> dict[str, Any]:
    """Key columns, carried persona columns and ``option_order`` of a task's row."""
    p = task.persona
    row = {
        "person_id": p["person_id"],
        "tier": str(p["tier"]),
        "generator": str(p["generator"]),
        "simulator": simulator,
        "question_id": task.question.id,
        "estimator": options.estimator,
        "option_order": list(task.order),
    }
    row.update({c: p[c] for c in options.carry if c in p})
    return row


def _answer_label(question: Question, probs: Sequence[float] | None) -> str | None:
    """Original label of the most likely option (None without a distribution)."""
    if probs is None:
        return None
    return question.options[int(np.argmax(probs))].label


def _run_logprobs(
    tasks: list[Task], backend: Backend, options: SimulateOptions, simulator: str
) -> list[dict[str, Any]]:
    """One ``choice_logprobs`` call for all tasks; a row per task."""
    requests = [
        ChoiceRequest(
            messages=build_messages(t.persona["text"], t.question, t.order, options.instructions),
            labels=tuple(letter(i) for i in range(len(t.order))),
            answer_prefix=options.answer_prefix,
        )
        for t in tasks
    ]
    results = backend.choice_logprobs(requests, progress=False)
    return [_logprob_row(t, r, options, simulator) for t, r in zip(tasks, results, strict=True)]


def _logprob_row(
    task: Task, result: ChoiceResult, options: SimulateOptions, simulator: str
) -> dict[str, Any]:
    """A response row from a label distribution over the presented letters."""
    presented = [result.probs[letter(i)] for i in range(len(task.order))]
    valid = enough_mass(result.valid_mass, options.min_valid_mass)
    probs = task.question.to_original(presented, task.order) if valid else None
    raw = {"presented": presented, "top_tokens": result.top_tokens}
    return {
        **_base_row(task, simulator, options),
        "probs": probs,
        "answer": _answer_label(task.question, probs),
        "valid_mass": float(result.valid_mass),
        "valid": bool(valid),
        "invalid": 0 if valid else 1,
        "raw": json.dumps(raw, ensure_ascii=False),
    }


def _sample_requests(task: Task, options: SimulateOptions) -> list[GenerateRequest]:
    """The ``samples`` generation requests of a task, each with its own seed."""
    letters = [letter(i) for i in range(len(task.order))]
    messages = build_messages(task.persona["text"], task.question, task.order, options.instructions)
    choices = (
        tuple(f"{options.answer_prefix} {x}" for x in letters) if options.constrained else None
    )
    return [
        GenerateRequest(
            messages=messages,
            choices=choices,
            temperature=options.temperature,
            max_tokens=options.max_tokens,
            seed=sample_seed(options.seed, task, k),
        )
        for k in range(options.samples)
    ]


def _run_samples(
    tasks: list[Task], backend: Backend, options: SimulateOptions, simulator: str
) -> list[dict[str, Any]]:
    """One ``generate`` call for all samples of all tasks; a row per task."""
    requests = [r for t in tasks for r in _sample_requests(t, options)]
    results = backend.generate(requests, progress=False)
    n = options.samples
    return [
        _sample_row(t, results[i * n : (i + 1) * n], options, simulator)
        for i, t in enumerate(tasks)
    ]


def reply_text(result: GenerateResult, constrained: bool) -> str:
    """The text to parse: the chosen string of a valid constrained reply, else the raw text."""
    if constrained and result.ok and isinstance(result.value, str):
        return result.value
    return result.text


def _sample_row(
    task: Task, results: list[GenerateResult], options: SimulateOptions, simulator: str
) -> dict[str, Any]:
    """A response row from sampled replies: shares among the valid ones, invalid counted apart."""
    letters = [letter(i) for i in range(len(task.order))]
    replies = [reply_text(r, options.constrained) for r in results]
    parsed = [parse_answer(text, letters) for text in replies]
    counts = np.array([sum(p == x for p in parsed) for x in letters], dtype=float)
    valid = int(counts.sum())
    mass = valid / len(results)
    ok = valid > 0 and bool(enough_mass(mass, options.min_valid_mass))
    probs = task.question.to_original(counts / valid, task.order) if ok else None
    return {
        **_base_row(task, simulator, options),
        "probs": probs,
        "answer": _answer_label(task.question, probs),
        "valid_mass": mass,
        "valid": bool(ok),
        "invalid": len(results) - valid,
        "raw": json.dumps(replies, ensure_ascii=False),
    }


ESTIMATORS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "logprobs": _run_logprobs,
    "sample": _run_samples,
}


# --------------------------------------------------------------------------- tables


def drop_invalid_personas(
    personas: pd.DataFrame,
) -> tuple[pd.DataFrame, dict[tuple[str, str], int]]:
    """The persona rows to simulate and, per (tier, generator), how many invalid rows were left
    out (the rule and its null policy: :mod:`personasim.core.validity`)."""
    return personas[~invalid_personas(personas)], excluded_personas(personas)


CHECK_ROWS = 20_000
"""Persona texts checked at once (a Python copy, or a stripped copy, of every text at once would
double the memory of a large table)."""


def _not_text(part: pd.Series) -> np.ndarray:
    """Which values are neither text nor missing (none in a column of the string dtype)."""
    if isinstance(part.dtype, pd.StringDtype):
        return np.zeros(len(part), dtype=bool)
    text = part.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    return ~(text | part.isna().to_numpy(dtype=bool))  # isna: None, NaN and pd.NA alike


def _first_where(text: pd.Series, test: Callable[[pd.Series], np.ndarray]) -> int | None:
    """Position of the first value ``test`` flags, checking ``CHECK_ROWS`` values at a time."""
    for start in range(0, len(text), CHECK_ROWS):
        flagged = test(text.iloc[start : start + CHECK_ROWS])
        if flagged.any():
            return start + int(np.argmax(flagged))
    return None


def check_personas(personas: pd.DataFrame, source: str | Path = "personas table") -> pd.DataFrame:
    """Check the required columns and text of a personas table; return it with clean types."""
    missing = [c for c in PERSONA_COLUMNS if c not in personas.columns]
    if missing:
        raise DataError(
            f"{source}: missing column {missing[0]!r}",
            hint=f"a personas table needs {', '.join(PERSONA_COLUMNS)}",
        )
    wrong = _first_where(personas["text"], _not_text)
    if wrong is not None:
        pid, value = personas[["person_id", "text"]].iloc[wrong]
        raise DataError(f"{source}: column 'text' must hold text, but person_id {pid} has "
                        f"{type(value).__name__} {value}",
                        hint="a personas table comes from `personasim personas`")  # fmt: skip
    empty = _first_where(personas["text"], blank_text)
    if empty is not None:
        pid = personas["person_id"].iloc[empty]
        raise DataError(f"{source}: column 'text' is empty for person_id {pid}")
    dupes = personas.duplicated(list(PERSONA_KEY))
    if dupes.any():
        pid = personas.loc[dupes, "person_id"].iloc[0]
        raise DataError(
            f"{source}: person_id {pid} appears twice for the same tier and generator"
        )
    return personas.reset_index(drop=True)


def select_personas(
    personas: pd.DataFrame, tiers: Sequence[str] | None = None, limit_persons: int | None = None
) -> pd.DataFrame:
    """Keep the given tiers and the first ``limit_persons`` distinct persons (in table order)."""
    out = personas
    if tiers:
        known = set(out["tier"].astype(str))
        unknown = [t for t in tiers if t not in known]
        if unknown:
            raise ConfigError(
                f"no personas of tier {unknown[0]!r}", hint=f"tiers present: {sorted(known)}"
            )
        out = out[out["tier"].astype(str).isin(list(tiers))]
    if limit_persons is not None:
        keep = pd.unique(out["person_id"])[:limit_persons]
        out = out[out["person_id"].isin(keep)]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- driver


def simulate(
    personas: pd.DataFrame,
    survey: Survey,
    backend: Backend,
    options: SimulateOptions | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> SimulateReport:
    """Answer every question of ``survey`` for every persona, in memory; see the module docstring.

    ``progress``: called as ``progress(finished, total)`` with the rows finished so far and the
    rows to compute, once before the first chunk and after every ``backend.progress_step`` rows
    (one answer at a time on llama.cpp).
    """
    options = options or SimulateOptions()
    personas, excluded = drop_invalid_personas(personas)
    personas = check_personas(personas)
    simulator = options.simulator or backend.display_name
    todo = len(personas) * len(survey.questions)
    calls, hits = backend.stats.model_calls, backend.stats.cache_hits
    frames: list[pd.DataFrame] = []
    finished, step = 0, max(1, backend.progress_step)
    if progress:
        progress(0, todo)
    for start in range(0, len(personas), options.chunk_persons):
        # planned chunk by chunk: memory holds the rows, never a task list of the whole run
        tasks = plan_tasks(personas.iloc[start : start + options.chunk_persons], survey, options)
        rows: list[dict[str, Any]] = []
        for at in range(0, len(tasks), step):
            part = tasks[at : at + step]
            rows += ESTIMATORS[options.estimator](part, backend, options, simulator)
            finished += len(part)
            if progress:
                progress(finished, todo)
        if rows:
            frames.append(pd.DataFrame(rows))
    report = _report(frames, backend, (calls, hits), options)
    report.excluded = excluded
    return report


def _table(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The new rows, columns in the standard order first (an empty table without rows)."""
    if not frames:
        return pd.DataFrame(columns=RESPONSE_COLUMNS)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    extra = [c for c in frame.columns if c not in RESPONSE_COLUMNS]
    return frame[[c for c in RESPONSE_COLUMNS if c in frame.columns] + extra]


def _report(
    new: list[pd.DataFrame],
    backend: Backend,
    before: tuple[int, int],
    options: SimulateOptions,
) -> SimulateReport:
    """Summarize a run (``new``: the chunks of rows computed in it)."""
    written = sum(len(f) for f in new)
    replies = written * (options.samples if options.estimator == "sample" else 1)
    invalid = int(sum(f["invalid"].sum() for f in new))
    valid = [f["valid_mass"] for f in new]
    invalid_answers = int(sum(invalid_answer_rows(f, options.min_valid_mass).sum() for f in new))
    return SimulateReport(
        responses=_table(new),
        written=written,
        model_calls=backend.stats.model_calls - before[0],
        cache_hits=backend.stats.cache_hits - before[1],
        mean_valid_mass=float(pd.concat(valid).mean()) if valid else float("nan"),
        invalid_share=invalid / replies if replies and options.estimator == "sample" else 0.0,
        invalid_answers=invalid_answers,
    )
