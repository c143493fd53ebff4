"""The two estimators of an answer: ``logprobs`` (next-token distribution over the option
letters) and ``sample`` (the paper's sampled replies, constrained or parsed); each turns tasks
into response rows, with no answer ever invented (see :mod:`personasim.simulate.run`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from personasim.core.validity import (
    enough_mass,
)
from personasim.llm.base import (
    Backend,
    ChoiceRequest,
    ChoiceResult,
    GenerateRequest,
    GenerateResult,
)
from personasim.simulate.plan import SimulateOptions, Task, sample_seed
from personasim.simulate.prompt import build_messages, parse_answer, reply_text
from personasim.survey.questions import Question, letter


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


def run_logprobs(
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


def run_samples(
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
