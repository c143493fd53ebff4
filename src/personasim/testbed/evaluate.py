"""Persona-judged evaluation of a model (persona-bench's main use).

A model under test answers held-out prompts for each persona. The answer modes:

* ``persona``: the persona in the system message (:func:`personasim.testbed.common.persona_system`),
  the prompt as the user message; one call.
* ``baseline``: no persona (the pairs' persona-free system message); the same answer serves
  every persona.
* ``chain_of_thought``: as ``persona``, but the user message adds :data:`PREAMBLE_ASK` (think
  it through, do not answer yet); the reasoning comes back as the assistant's turn, then
  :data:`ANSWER_NOW` asks for the answer alone. Two calls.
* ``demographic_summary``: the same two calls, the first asking for a short summary of who the
  person is (demographics, circumstances, values) as it bears on the prompt.

The first text of a two-call mode is kept as ``preamble``; only the answer is judged. A
persona-conditioned critic (a role-played persona) then says whether the answer would need
revision for this person, asked twice with the two options' order swapped; ``p_fine`` is the
mean probability of "no revision needed" and an answer is fine when ``p_fine > 0.5``.

With ``k`` > 1 each item (persona x prompt) gets ``k`` sampled answers (temperature > 0, a seed
per sample, so a rerun is answered from the cache), each judged; :mod:`.eval_scores` turns them
into the pass@k curve. ``k`` = 1 decodes greedily (one row per item, ``sample`` 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.llm import (
    Backend,
    ChoiceRequest,
    ChoiceResult,
    GenerateRequest,
    GenerateResult,
    Message,
)
from personasim.personas.generate import stable_seed
from personasim.testbed import common as C
from personasim.testbed.eval_groups import persona_attributes, select_personas
from personasim.testbed.eval_scores import (
    group_column,
    pass_at_k_curve,
    score_by_group,
    summarize_eval,
)
from personasim.testbed.pairs import PairsTemplates

Mode = Literal["persona", "baseline", "chain_of_thought", "demographic_summary"]
CRITIC_USER = (
    "Someone like you asked: {question}\n\nThe assistant replied:\n{answer}\n\n"
    "Would this reply need to be revised before it suited you?\n{options}\nReply with A or B."
)
FINE, REVISE = "No, it suits me as it is", "Yes, it needs revision"
PREAMBLE_ASK: dict[str, str] = {
    "chain_of_thought": (
        "Do not answer yet. First think it through step by step: what does this person need "
        "from an answer, and how do their circumstances and values bear on it? Write only "
        "your reasoning."
    ),
    "demographic_summary": (
        "Do not answer yet. First sum up in two or three sentences who this person is: their "
        "age, background, circumstances and values, as far as they matter for this question. "
        "Write only the summary."
    ),
}
"""What the first call of a two-call mode adds under the prompt."""
ANSWER_NOW = (
    "Now give your answer to the question for this person in a short paragraph. Do not repeat "
    "what you wrote above."
)
"""The second call's user message, after the first text as the assistant's turn."""
EVAL_COLUMNS = [
    "person_id",
    "prompt_id",
    "sample",
    "model",
    "mode",
    "critic",
    "prompt",
    "preamble",
    "preamble_truncated",
    "answer",
    "answer_truncated",
    "p_fine",
    "fine",
    "valid_mass",
]


class EvalOptions(BaseModel):
    """Options of :func:`evaluate_model`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    modes: tuple[Mode, ...] = ("persona", "baseline")
    """Answer modes (see the module docstring)."""
    n_prompts: int = Field(default=20, ge=1)
    """Held-out prompts per persona (sampled per persona, seeded)."""
    answer_tokens: int = Field(default=128, ge=8, le=4096)
    """Token cap of the model's answer."""
    preamble_tokens: int = Field(default=160, ge=8, le=4096)
    """Token cap of the reasoning or summary of the two-call modes."""
    k: int = Field(default=1, ge=1, le=100)
    """Answers sampled per item; 1 = one greedy answer."""
    temperature: float = Field(default=0.7, gt=0.0, le=2.0)
    """Sampling temperature when ``k`` > 1."""
    where: tuple[tuple[str, str], ...] = ()
    """Only the personas with every ``(attribute, value)`` (an intersection)."""
    by: tuple[str, ...] = ()
    """Attributes whose shared values form the groups of the breakdown."""
    seed: int = 0
    """Seed of prompt sampling, of the answer samples and of the bootstrap."""
    n_boot: int = Field(default=1000, ge=0)
    """Bootstrap replicates over personas (0 = no CI)."""


def critic_requests(profile: str, question: str, answer: str) -> list[ChoiceRequest]:
    """Two requests, "fine" shown as A then as B."""
    system = C.roleplay(profile)
    out = []
    for first, second in ((FINE, REVISE), (REVISE, FINE)):
        user = CRITIC_USER.format(
            question=question, answer=answer, options=f"A. {first}\nB. {second}"
        )
        out.append(
            ChoiceRequest(
                messages=(system, Message(role="user", content=user)),
                labels=("A", "B"),
                answer_prefix="Answer:",
            )
        )
    return out


Unit = tuple[str, str, int]
"""What one answer is generated for: (person_id, or "" for the shared baseline; prompt_id;
sample)."""


def _opening(mode: Mode, question: str, profile: str | None) -> tuple[Message, Message]:
    """The system and first user message of ``mode``."""
    if mode == "baseline" or profile is None:
        system = PairsTemplates().answer_system
    else:
        system = C.persona_system(profile)
    ask = PREAMBLE_ASK.get(mode)
    user = question if ask is None else f"{question}\n\n{ask}"
    return Message(role="system", content=system), Message(role="user", content=user)


def _sampling(options: EvalOptions, unit: Unit, mode: Mode, step: str) -> dict[str, object]:
    """Greedy for ``k`` = 1; else the temperature and a seed of its own per unit and step."""
    if options.k == 1:
        return {"temperature": 0.0}
    return {
        "temperature": options.temperature,
        "seed": stable_seed(options.seed, *unit, mode, step),
    }


def _generate(
    units: list[Unit],
    mode: Mode,
    model: Backend,
    texts: dict[str, str],
    profiles: dict[str, str],
    options: EvalOptions,
) -> tuple[list[GenerateResult | None], list[GenerateResult]]:
    """The preamble (two-call modes, else None) and the answer of each unit."""
    openings = [_opening(mode, texts[p], profiles.get(pid)) for pid, p, _ in units]
    preambles: list[GenerateResult | None] = [None] * len(units)
    conversations: list[tuple[Message, ...]] = list(openings)
    if mode in PREAMBLE_ASK:
        requests = [
            GenerateRequest(
                messages=o, max_tokens=options.preamble_tokens, **_sampling(options, u, mode, "pre")
            )
            for o, u in zip(openings, units, strict=True)
        ]
        preambles = list(model.generate(requests, progress=False))
        conversations = [
            (
                *o,
                Message(role="assistant", content=r.text.strip()),
                Message(role="user", content=ANSWER_NOW),
            )
            for o, r in zip(openings, preambles, strict=True)
        ]
    requests = [
        GenerateRequest(
            messages=c, max_tokens=options.answer_tokens, **_sampling(options, u, mode, "answer")
        )
        for c, u in zip(conversations, units, strict=True)
    ]
    return preambles, list(model.generate(requests, progress=False))


def _row(
    unit: Unit,
    person: str,
    mode: Mode,
    names: tuple[str, str],
    question: str,
    made: tuple[GenerateResult | None, GenerateResult],
    verdicts: Sequence[ChoiceResult],
) -> dict[str, object]:
    """One eval row of ``person`` from the unit's texts and the critic's two verdicts."""
    preamble, answer = made
    first, second = verdicts
    p_fine = (first.probs["A"] + second.probs["B"]) / 2
    return {
        "person_id": person,
        "prompt_id": unit[1],
        "sample": unit[2],
        "model": names[0],
        "mode": mode,
        "critic": names[1],
        "prompt": question,
        "preamble": None if preamble is None else preamble.text.strip(),
        "preamble_truncated": preamble is not None and preamble.truncated,
        "answer": answer.text.strip(),
        "answer_truncated": answer.truncated,
        "p_fine": p_fine,
        "fine": p_fine > 0.5,
        "valid_mass": min(first.valid_mass, second.valid_mass),
    }


def _rows(
    items: pd.DataFrame,
    mode: Mode,
    model: Backend,
    critic: Backend,
    texts: dict[str, str],
    profiles: dict[str, str],
    options: EvalOptions,
) -> pd.DataFrame:
    """Answers of one mode (``k`` per item), then the critic's two-order verdicts."""
    keys = [
        (pid, p, s)
        for pid, p in zip(items["person_id"], items["prompt_id"], strict=True)
        for s in range(options.k)
    ]
    units = [("" if mode == "baseline" else pid, p, s) for pid, p, s in keys]
    unique = list(dict.fromkeys(units))
    preambles, answers = _generate(unique, mode, model, texts, profiles, options)
    made = dict(zip(unique, zip(preambles, answers, strict=True), strict=True))
    requests = [
        r
        for (pid, p, _), u in zip(keys, units, strict=True)
        for r in critic_requests(profiles[pid], texts[p], made[u][1].text.strip())
    ]
    verdicts = critic.choice_logprobs(requests, progress=False)
    names = (model.display_name, critic.display_name)
    rows = [
        _row(u, pid, mode, names, texts[p], made[u], verdicts[2 * i : 2 * i + 2])
        for i, ((pid, p, _), u) in enumerate(zip(keys, units, strict=True))
    ]
    return pd.DataFrame(rows, columns=EVAL_COLUMNS)


def _items(pool: pd.DataFrame, prompts: pd.DataFrame, options: EvalOptions) -> pd.DataFrame:
    """``(person_id, prompt_id)`` rows, persona-major, sampled per persona."""
    held = prompts[prompts["split"] == "held_out"] if "split" in prompts else prompts
    ids = (held if len(held) else prompts)["prompt_id"].astype(str).tolist()
    rows = []
    for pid in pool["person_id"]:
        rng = np.random.default_rng(stable_seed(options.seed, pid, "eval"))
        rows += [(pid, ids[i]) for i in rng.permutation(len(ids))[: options.n_prompts]]
    return pd.DataFrame(rows, columns=["person_id", "prompt_id"])


def _ci(low: float, high: float) -> str:
    """``[low, high]``, or ``-`` without an interval."""
    return "-" if np.isnan(low) else f"[{low:.2f}, {high:.2f}]"


@dataclass
class EvalResult:
    """Per-sample verdicts and their summaries."""

    rows: pd.DataFrame
    """One row per persona x prompt x sample x model x mode (:data:`EVAL_COLUMNS`)."""
    summary: pd.DataFrame
    """model, mode, score, ci_low, ci_high, n_personas, n_items, k."""
    pass_at_k: pd.DataFrame
    """model, mode, k, pass_at_k, ci_low, ci_high, n_personas, n_items (k = 1 .. samples)."""
    by_group: pd.DataFrame = field(default_factory=pd.DataFrame)
    """model, mode, one column per ``by`` attribute, score, ci_low, ci_high, n_personas,
    n_items (empty without ``by``)."""
    where: tuple[tuple[str, str], ...] = ()
    """The intersection the personas were restricted to."""
    by: tuple[str, ...] = ()
    """The attributes of the breakdown."""

    def text(self) -> str:
        """The summaries as aligned text."""
        lines = []
        if self.where:
            lines.append("personas: " + " & ".join(f"{n}={v}" for n, v in self.where))
        lines.append(f"{'model':<34} {'mode':<19} {'score':>6} {'95% CI':>15} {'personas':>8}")
        for r in self.summary.itertuples(index=False):
            lines.append(
                f"{str(r.model)[:34]:<34} {r.mode:<19} {r.score:>6.2f} "
                f"{_ci(r.ci_low, r.ci_high):>15} {r.n_personas:>8}"
            )
        if len(self.pass_at_k) and self.pass_at_k["k"].max() > 1:
            lines += ["", "pass@k (any of k sampled answers needs no revision; unbiased estimator)"]
            lines.append(f"{'model':<34} {'mode':<19} {'k':>3} {'pass@k':>6} {'95% CI':>15}")
            for r in self.pass_at_k.itertuples(index=False):
                lines.append(
                    f"{str(r.model)[:34]:<34} {r.mode:<19} {r.k:>3} {r.pass_at_k:>6.2f} "
                    f"{_ci(r.ci_low, r.ci_high):>15}"
                )
        if len(self.by_group):
            lines += ["", self._groups()]
        return "\n".join(lines)

    def _groups(self) -> str:
        """The by-group table as text."""
        groups = self.by_group
        shown = groups.assign(
            group=groups[[group_column(b) for b in self.by]].astype(str).agg(" & ".join, axis=1),
            ci=[_ci(a, b) for a, b in zip(groups["ci_low"], groups["ci_high"], strict=True)],
        )
        table = shown[["model", "mode", "group", "score", "ci", "n_personas"]]
        head = "score by " + ", ".join(self.by)
        return head + "\n" + table.to_string(index=False, float_format=lambda v: f"{v:.2f}")


def evaluate_model(
    personas: pd.DataFrame,
    prompts: pd.DataFrame,
    model: Backend,
    critic: Backend | None = None,
    options: EvalOptions | None = None,
    models: Sequence[Backend] = (),
) -> EvalResult:
    """Evaluate ``model`` (and any ``models``) on held-out prompts, judged by ``critic``.

    ``critic`` defaults to ``model``. Prompts come from the ``held_out`` split when there is
    one, else from the whole set. Personas are restricted to ``options.where`` first; the
    attributes of ``where`` and ``by`` are checked before any model call.
    """
    opts = options or EvalOptions()
    pool = select_personas(C.persona_tier(personas), opts.where, opts.by)
    items = _items(pool, prompts, opts)
    texts = dict(zip(prompts["prompt_id"].astype(str), prompts["text"].astype(str), strict=True))
    profiles = dict(zip(pool["person_id"], pool["text"].astype(str), strict=True))
    frames = [
        _rows(items, mode, m, critic or model, texts, profiles, opts)
        for m in (model, *models)
        for mode in opts.modes
    ]
    rows = pd.concat(frames, ignore_index=True)
    groups = (
        score_by_group(rows, persona_attributes(pool), opts.by, opts.n_boot, opts.seed)
        if opts.by
        else pd.DataFrame()
    )
    return EvalResult(
        rows,
        summarize_eval(rows, opts.n_boot, opts.seed),
        pass_at_k_curve(rows, opts.n_boot, opts.seed),
        groups,
        opts.where,
        opts.by,
    )
