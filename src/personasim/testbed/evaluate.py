"""Persona-judged evaluation of a model (persona-bench's main use).

A model under test answers held-out prompts for each persona, with the persona in its system
message (mode ``persona``) or without it (mode ``baseline``, the same answer for every persona).
A persona-conditioned critic (a role-played persona) then says whether the answer would need
revision for this person, asked twice with the two options' order swapped; ``p_fine`` is the
mean probability of "no revision needed". The score is the share of answers that need none
(``p_fine > 0.5``), per model and mode, with a bootstrap CI over personas (each persona's share
is one unit), side by side with the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.llm import Backend, ChoiceRequest, GenerateRequest, Message
from personasim.personas.generate import stable_seed
from personasim.testbed import common as C
from personasim.testbed.pairs import PairsTemplates

Mode = Literal["persona", "baseline"]
CRITIC_USER = (
    "Someone like you asked: {question}\n\nThe assistant replied:\n{answer}\n\n"
    "Would this reply need to be revised before it suited you?\n{options}\nReply with A or B."
)
FINE, REVISE = "No, it suits me as it is", "Yes, it needs revision"
EVAL_COLUMNS = [
    "person_id",
    "prompt_id",
    "model",
    "mode",
    "critic",
    "prompt",
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
    """Answer with the persona in the system message, without it, or both."""
    n_prompts: int = Field(default=20, ge=1)
    """Held-out prompts per persona (sampled per persona, seeded)."""
    answer_tokens: int = Field(default=128, ge=8, le=4096)
    """Token cap of the model's answer."""
    seed: int = 0
    """Seed of prompt sampling and of the bootstrap."""
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


def _answer_request(question: str, profile: str | None, tokens: int) -> GenerateRequest:
    """The model's answer, tailored (with ``profile``) or baseline."""
    system = C.persona_system(profile) if profile is not None else PairsTemplates().answer_system
    return GenerateRequest(
        messages=(Message(role="system", content=system), Message(role="user", content=question)),
        max_tokens=tokens,
        temperature=0.0,
    )


def _items(pool: pd.DataFrame, prompts: pd.DataFrame, options: EvalOptions) -> pd.DataFrame:
    """``(person_id, prompt_id)`` rows, persona-major, sampled per persona."""
    held = prompts[prompts["split"] == "held_out"] if "split" in prompts else prompts
    ids = (held if len(held) else prompts)["prompt_id"].astype(str).tolist()
    rows = []
    for pid in pool["person_id"]:
        rng = np.random.default_rng(stable_seed(options.seed, pid, "eval"))
        rows += [(pid, ids[i]) for i in rng.permutation(len(ids))[: options.n_prompts]]
    return pd.DataFrame(rows, columns=["person_id", "prompt_id"])


def _rows(
    items: pd.DataFrame,
    mode: Mode,
    model: Backend,
    critic: Backend,
    texts: dict[str, str],
    profiles: dict[str, str],
    tokens: int,
) -> pd.DataFrame:
    """Answers of one mode, then the critic's two-order verdicts."""
    keys = list(zip(items["person_id"], items["prompt_id"], strict=True))
    if mode == "baseline":
        unique = list(dict.fromkeys(p for _, p in keys))
        got = model.generate([_answer_request(texts[p], None, tokens) for p in unique], False)
        answers = dict(zip(unique, got, strict=True))
        results = [answers[p] for _, p in keys]
    else:
        results = model.generate(
            [_answer_request(texts[p], profiles[pid], tokens) for pid, p in keys], progress=False
        )
    requests = [
        r
        for (pid, p), a in zip(keys, results, strict=True)
        for r in critic_requests(profiles[pid], texts[p], a.text.strip())
    ]
    verdicts = critic.choice_logprobs(requests, progress=False)
    rows = []
    for i, ((pid, p), answer) in enumerate(zip(keys, results, strict=True)):
        first, second = verdicts[2 * i], verdicts[2 * i + 1]
        p_fine = (first.probs["A"] + second.probs["B"]) / 2
        rows.append(
            {
                "person_id": pid,
                "prompt_id": p,
                "model": model.display_name,
                "mode": mode,
                "critic": critic.display_name,
                "prompt": texts[p],
                "answer": answer.text.strip(),
                "answer_truncated": answer.truncated,
                "p_fine": p_fine,
                "fine": p_fine > 0.5,
                "valid_mass": min(first.valid_mass, second.valid_mass),
            }
        )
    return pd.DataFrame(rows, columns=EVAL_COLUMNS)


@dataclass
class EvalResult:
    """Per-item verdicts and the per model x mode summary."""

    rows: pd.DataFrame
    """One row per persona x prompt x mode (:data:`EVAL_COLUMNS`)."""
    summary: pd.DataFrame
    """model, mode, score, ci_low, ci_high, n_personas, n_items."""

    def text(self) -> str:
        """The summary as aligned text."""
        lines = [f"{'model':<34} {'mode':<9} {'score':>6} {'95% CI':>15} {'personas':>8}"]
        for r in self.summary.itertuples(index=False):
            ci = "-" if np.isnan(r.ci_low) else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
            lines.append(
                f"{str(r.model)[:34]:<34} {r.mode:<9} {r.score:>6.2f} {ci:>15} {r.n_personas:>8}"
            )
        return "\n".join(lines)


def summarize_eval(rows: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Share of answers needing no revision per model and mode, CI over personas."""
    out = []
    for (model, mode), group in rows.groupby(["model", "mode"], sort=False):
        shares = group.groupby("person_id")["fine"].mean().to_numpy(dtype=float)
        score, low, high = C.bootstrap_mean(shares, n_boot, seed)
        out.append(
            {
                "model": model,
                "mode": mode,
                "score": score,
                "ci_low": low,
                "ci_high": high,
                "n_personas": len(shares),
                "n_items": len(group),
            }
        )
    return pd.DataFrame(out)


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
    one, else from the whole set.
    """
    opts = options or EvalOptions()
    pool = C.persona_tier(personas)
    items = _items(pool, prompts, opts)
    texts = dict(zip(prompts["prompt_id"].astype(str), prompts["text"].astype(str), strict=True))
    profiles = dict(zip(pool["person_id"], pool["text"].astype(str), strict=True))
    frames = [
        _rows(items, mode, m, critic or model, texts, profiles, opts.answer_tokens)
        for m in (model, *models)
        for mode in opts.modes
    ]
    rows = pd.concat(frames, ignore_index=True)
    return EvalResult(rows, summarize_eval(rows, opts.n_boot, opts.seed))
