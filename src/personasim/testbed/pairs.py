"""Preference pairs by critique and revision (Castricato et al. 2024, §3.2 and Appendix B).

For each persona, prompts are sampled independently of the persona (seeded): ``per_persona``
from the train split, of which a ``test_share`` is labelled ``test`` (the paper: 100 train / 50
test of 150), plus ``held_out`` prompts from the held-out split (labelled ``held_out``).
Personas are split too (``persona_split``: ``train`` / ``test``, a seeded
``persona_test_share``), and every pair carries both splits. For each
(persona, prompt):

1. ``rejected``: the model's answer to the prompt alone, without the persona (the paper's
   "representative user" answer). It depends on the prompt only, so all personas share it.
2. ``critique``: the persona (role-played from its profile) says what in that answer speaks to
   it and what does not, quoting both, and suggests a change that stays on the question and
   adds no length.
3. ``chosen``: a revision of the answer that follows the critique, stays on the prompt, does not
   name the persona's attributes, and is asked to be no longer than the original.

Verification: the persona judges which of the two answers it prefers, asked twice with the order
swapped, read as label probabilities (:func:`personasim.testbed.common.judge`). A pair is
*verified* when the mean probability of ``chosen`` over both orders exceeds 0.5 and
*position-consistent* when both orders pick the same answer.

Prompts are in our own words; a user who wants other wording passes templates
(:class:`PairsTemplates`, CLI ``--templates FILE.yaml``). With ``out``, each chunk of personas is
committed as a part (``<out stem>.parts/``, like ``simulate``) when it finishes: a killed run keeps
finished personas, a rerun makes only the missing pairs, and ``out`` is written from the parts.
"""

from __future__ import annotations

import json
import re
import string
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from tqdm import tqdm

from personasim.core import parts
from personasim.core.errors import ConfigError, DataError, validation_error
from personasim.core.keys import PAIRS_KEY
from personasim.core.tables import read_table
from personasim.llm import Backend, GenerateRequest, GenerateResult, Message
from personasim.llm.base import PROGRESS_DELAY_SECONDS
from personasim.personas.generate import stable_seed
from personasim.testbed import common as C
from personasim.testbed.persona_split import split_personas
from personasim.testbed.prompts import split_prompts

PAIR_COLUMNS = [
    *PAIRS_KEY,
    "split",
    "persona_split",
    "topic",
    "prompt",
    "persona",
    "persona_fields",
    "rejected",
    "critique",
    "chosen",
    "judge",
    "p_chosen",
    "p_chosen_as_a",
    "p_chosen_as_b",
    "judge_valid_mass",
    "verified",
    "position_consistent",
    "rejected_words",
    "chosen_words",
    "revision_longer",
    "rejected_truncated",
    "critique_truncated",
    "chosen_truncated",
    "ok",
    "error",
    "seed",
    "answer_sha",
    "critique_sha",
    "revision_sha",
]


PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "critique": ("question", "answer"),
    "revision": ("question", "answer", "critique"),
}
"""The placeholders each formatted template may use."""


class PairsTemplates(BaseModel):
    """The three generation prompts; ``{question}``, ``{answer}``, ``{critique}`` are filled in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer_system: str = "You are a helpful assistant. Answer in a short paragraph."
    """System message of the persona-free ("representative user") answer."""
    critique: str = (
        "Someone asked: {question}\n\nThey received this ANSWER:\n{answer}\n\n"
        "Read the answer as yourself. In a few sentences, say what in it speaks to you and what "
        "does not, quoting a few words of the answer and naming what about your own life or "
        "values makes you react that way. Then suggest one change that would make it suit you "
        "better while staying on the question and getting no longer. You like short answers.\n"
        "Format:\nEVALUATION: ...\nSUGGESTION: ..."
    )
    """User message of the critique (the system message is the persona's role-play)."""
    revision_system: str = "You edit answers. Reply with the edited answer only."
    """System message of the revision."""
    revision: str = (
        "QUESTION: {question}\n\nANSWER:\n{answer}\n\nCRITIQUE:\n{critique}\n\n"
        "Rewrite the ANSWER so that it follows the CRITIQUE while still answering the QUESTION. "
        "Adapt it quietly: never mention the reader's personal details, traits or preferences. "
        "Use fewer words than the original ANSWER."
    )
    """User message of the revision (no persona: only the critique carries it)."""

    @field_validator("critique", "revision")
    @classmethod
    def _known_placeholders(cls, text: str, info: ValidationInfo) -> str:
        """Every ``{name}`` of a template is one the pairs fill in (checked when the file is
        read, before any model work; the system messages are sent as written)."""
        known = PLACEHOLDERS[info.field_name or ""]
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as error:  # a lone "{" or "}"
            raise ValueError(f"{error} (write {{{{ or }}}} for a literal brace)") from None
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}} (this template knows "
                + ", ".join(f"{{{k}}}" for k in known)
                + ")"
            )
        return text


class PairsOptions(BaseModel):
    """Options of :func:`make_pairs`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_persona: int = Field(default=150, ge=1)
    """Prompts sampled from the train split per persona (fewer when the split is smaller)."""
    test_share: float = Field(default=1 / 3, ge=0.0, lt=1.0)
    """Share of those labelled ``test`` (seen prompts held back; the paper: 50 of 150)."""
    persona_test_share: float = Field(default=0.2, ge=0.0, lt=1.0)
    """Share of personas whose pairs are labelled ``persona_split = test`` (seeded; see
    :mod:`personasim.testbed.persona_split`): people a personalized model never trains on."""
    held_out: int = Field(default=50, ge=0)
    """Prompts sampled from the held-out split per persona (labelled ``held_out``)."""
    answer_tokens: int = Field(default=128, ge=8, le=4096)
    """Token cap of the persona-free answer (``rejected``)."""
    critique_tokens: int = Field(default=160, ge=8, le=4096)
    """Token cap of the critique."""
    revision_tokens: int = Field(default=128, ge=8, le=4096)
    """Token cap of the revision (``chosen``)."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """Sampling temperature of the three generations (seeded; the judge is read greedily)."""
    seed: int = 0
    """Seed of the prompt sampling, the split (when the set has none) and the generations."""
    chunk: int = Field(default=8, ge=1)
    """Personas per step; each step's pairs are committed as one part (see :func:`make_pairs`)."""
    templates: PairsTemplates = PairsTemplates()
    """The generation prompts (own words by default)."""


def pairs_options(**values: Any) -> PairsOptions:
    """:class:`PairsOptions` with validation errors as one line."""
    return C.make_options(PairsOptions, "pairs options", **values)


def load_templates(path: str | Path) -> PairsTemplates:
    """Templates from a YAML file with any of :class:`PairsTemplates`' fields."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return PairsTemplates(**data)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read templates ({error.strerror})") from None
    except ValidationError as error:
        raise validation_error(
            error, str(path), known_fields=lambda _loc: PairsTemplates.model_fields
        ) from None
    except (yaml.YAMLError, TypeError) as error:
        raise ConfigError(f"{path}: not a YAML mapping of templates ({error})") from None


# --------------------------------------------------------------------------- planning


def _sample(ids: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """Up to ``n`` of ``ids`` without replacement, in a seeded order."""
    return [ids[i] for i in rng.permutation(len(ids))[: min(n, len(ids))]]


def plan_pairs(person_ids: list[str], prompts: pd.DataFrame, options: PairsOptions) -> pd.DataFrame:
    """``(person_id, prompt_id, split)`` rows, persona-major, sampled independently per persona."""
    train = prompts.loc[prompts["split"] == "train", "prompt_id"].astype(str).tolist()
    held = prompts.loc[prompts["split"] == "held_out", "prompt_id"].astype(str).tolist()
    rows = []
    people = split_personas(person_ids, options.persona_test_share, options.seed)
    for pid in person_ids:
        rng = np.random.default_rng(stable_seed(options.seed, pid, "prompts"))
        picked = _sample(train, options.per_persona, rng)
        n_train = len(picked) - int(round(len(picked) * options.test_share))
        rows += [
            (pid, p, "train" if i < n_train else "test", people[str(pid)])
            for i, p in enumerate(picked)
        ]
        rows += [
            (pid, p, "held_out", people[str(pid)]) for p in _sample(held, options.held_out, rng)
        ]
    return pd.DataFrame(rows, columns=["person_id", "prompt_id", "split", "persona_split"])


def ready_prompts(prompts: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The prompt set with a split (seeded split when it has none); error when empty."""
    if prompts.empty:
        raise DataError("the prompt set is empty", hint="give at least one prompt")
    out = prompts.copy()
    if "split" not in out.columns or out["split"].isna().all():
        out["split"] = pd.NA
        out = split_prompts(out, seed=seed)
    return out


# --------------------------------------------------------------------------- generation


_LABEL = re.compile(
    r"^\s*(revised( answer| preference| completion)?|answer|edited answer)\s*:\s*", re.IGNORECASE
)


def clean_revision(text: str) -> str:
    """The revision without a leading label (``Revised answer:``) or a trailing ``DONE``."""
    text = _LABEL.sub("", text.strip())
    return re.sub(r"\s*\bDONE\s*$", "", text).strip()


def _gen(
    messages: tuple[Message, ...], tokens: int, options: PairsOptions, *seed: Any
) -> GenerateRequest:
    """A seeded generation request."""
    return GenerateRequest(
        messages=messages,
        max_tokens=tokens,
        temperature=options.temperature,
        seed=stable_seed(options.seed, *seed),
    )


def answer_request(question: str, prompt_key: str, options: PairsOptions) -> GenerateRequest:
    """The persona-free answer to ``question``."""
    t = options.templates
    messages = (
        Message(role="system", content=t.answer_system),
        Message(role="user", content=question),
    )
    return _gen(messages, options.answer_tokens, options, prompt_key, "answer")


def critique_request(
    profile: str, question: str, answer: str, key: tuple[str, str], options: PairsOptions
) -> GenerateRequest:
    """The persona's critique of ``answer``."""
    user = options.templates.critique.format(question=question, answer=answer)
    messages = (C.roleplay(profile), Message(role="user", content=user))
    return _gen(messages, options.critique_tokens, options, *key, "critique")


def revision_request(
    question: str, answer: str, critique: str, key: tuple[str, str], options: PairsOptions
) -> GenerateRequest:
    """The revision of ``answer`` that follows ``critique``."""
    t = options.templates
    user = t.revision.format(question=question, answer=answer, critique=critique)
    messages = (
        Message(role="system", content=t.revision_system),
        Message(role="user", content=user),
    )
    return _gen(messages, options.revision_tokens, options, *key, "revision")


@dataclass
class _Step:
    """Everything a chunk of pairs needs."""

    backend: Backend
    judge: Backend
    options: PairsOptions
    prompts: dict[str, dict[str, Any]]
    profiles: dict[str, str]
    fields: dict[str, str]
    """Each persona's attributes as a JSON object text (the ``persona_fields`` column)."""
    answers: dict[str, GenerateResult]
    progress: bool | None = None
    """Inner progress bars of the model calls (None: shown for 20 or more misses)."""


def _answers(todo: pd.DataFrame, step: _Step) -> None:
    """Generate the persona-free answers of the prompts not answered yet in this run."""
    missing = [p for p in dict.fromkeys(todo["prompt_id"]) if p not in step.answers]
    requests = [answer_request(step.prompts[p]["text"], p, step.options) for p in missing]
    for p, result in zip(missing, step.backend.generate(requests, step.progress), strict=True):
        step.answers[p] = result


def _chunk_rows(todo: pd.DataFrame, step: _Step) -> list[dict[str, Any]]:
    """Make the pairs of ``todo`` (a few personas' rows, persona-major)."""
    _answers(todo, step)
    keys = list(zip(todo["person_id"], todo["prompt_id"], strict=True))
    q = {k: step.prompts[k[1]]["text"] for k in keys}
    ans = {k: step.answers[k[1]].text.strip() for k in keys}
    crit_req = [critique_request(step.profiles[k[0]], q[k], ans[k], k, step.options) for k in keys]
    crits = step.backend.generate(crit_req, step.progress)
    rev_req = [
        revision_request(q[k], ans[k], c.text.strip(), k, step.options)
        for k, c in zip(keys, crits, strict=True)
    ]
    revs = step.backend.generate(rev_req, step.progress)
    chosen = [clean_revision(r.text) for r in revs]
    items = [(step.profiles[k[0]], q[k], ch, ans[k]) for k, ch in zip(keys, chosen, strict=True)]
    verdicts = C.judge(step.judge, items, step.progress)
    splits, people = todo["split"].tolist(), todo["persona_split"].tolist()
    return [
        {
            **_row(k, splits[i], step, crits[i], revs[i], chosen[i], verdicts[i]),
            "persona_split": people[i],
        }
        for i, k in enumerate(keys)
    ]


def _row(
    key: tuple[str, str],
    split: str,
    step: _Step,
    crit: GenerateResult,
    rev: GenerateResult,
    chosen: str,
    verdict: dict[str, Any],
) -> dict[str, Any]:
    """One output row."""
    pid, prompt = key
    answer = step.answers[prompt]
    errors = [r.error for r in (answer, crit, rev) if r.finish_reason == "error"]
    empty = [
        name
        for name, text in (("rejected", answer.text), ("critique", crit.text), ("chosen", chosen))
        if not text.strip()
    ]
    error = "; ".join([e for e in errors if e] + [f"empty {n}" for n in empty]) or None
    rejected = answer.text.strip()
    verified = error is None and verdict["valid_mass"] > 0 and verdict["p_first"] > 0.5
    return {
        "person_id": pid,
        "prompt_id": prompt,
        "generator": step.backend.display_name,
        "split": split,
        "topic": step.prompts[prompt].get("topic"),
        "prompt": step.prompts[prompt]["text"],
        "persona": step.profiles[pid],
        "persona_fields": step.fields[pid],
        "rejected": rejected,
        "critique": crit.text.strip(),
        "chosen": chosen,
        "judge": step.judge.display_name,
        "p_chosen": verdict["p_first"],
        "p_chosen_as_a": verdict["p_first_as_a"],
        "p_chosen_as_b": verdict["p_first_as_b"],
        "judge_valid_mass": verdict["valid_mass"],
        "verified": bool(verified),
        "position_consistent": bool(verdict["consistent"]),
        "rejected_words": C.words(rejected),
        "chosen_words": C.words(chosen),
        "revision_longer": C.words(chosen) > C.words(rejected),
        "rejected_truncated": answer.truncated,
        "critique_truncated": crit.truncated,
        "chosen_truncated": rev.truncated,
        "ok": error is None,
        "error": error,
        "seed": step.options.seed,
        "answer_sha": C.sha(step.options.templates.answer_system),
        "critique_sha": C.sha(C.ROLEPLAY + step.options.templates.critique),
        "revision_sha": C.sha(
            step.options.templates.revision_system + step.options.templates.revision
        ),
    }


# --------------------------------------------------------------------------- driver


@dataclass
class PairsResult:
    """The pairs table and how it was made."""

    pairs: pd.DataFrame
    """Every row of the output (earlier rows included)."""
    made: int
    """Pairs made in this run (the rest were already in the output file)."""
    seconds: float
    """Wall time of this run."""
    notes: list[str]
    """Remarks: prompts short of the asked counts, personas skipped."""

    def summary(self) -> str:
        """Counts and the verification figures (see :func:`pair_stats`)."""
        stats = pair_stats(self.pairs)
        rate = self.made / self.seconds * 60 if self.seconds > 0 and self.made else 0.0
        lines = [f"pairs {stats['pairs']} ({self.made} made now, {rate:.1f} pairs/min)"]
        lines += [f"{k:<22} {v}" for k, v in stats.items() if k != "pairs"]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def pair_stats(pairs: pd.DataFrame) -> dict[str, Any]:
    """Verification rate, position consistency, longer revisions, truncations, per split."""
    ok = pairs[pairs["ok"].astype(bool)] if len(pairs) else pairs

    def share(column: str, frame: pd.DataFrame = ok) -> str:
        return f"{frame[column].astype(bool).mean():.1%}" if len(frame) else "-"

    return {
        "pairs": len(pairs),
        "ok": len(ok),
        "verification_rate": share("verified"),
        "position_consistency": share("position_consistent"),
        "revision_longer": f"{int(ok['revision_longer'].sum()) if len(ok) else 0} of {len(ok)}",
        "chosen_truncated": f"{int(ok['chosen_truncated'].sum()) if len(ok) else 0} of {len(ok)}",
        "mean_judge_mass": f"{ok['judge_valid_mass'].mean():.3f}" if len(ok) else "-",
        "per_split": {str(k): int(v) for k, v in pairs.groupby("split").size().items()},
    }


def read_pairs(path: str | Path) -> pd.DataFrame:
    """A pairs table written by :func:`make_pairs`."""
    return read_table(
        path,
        "pairs table",
        ["person_id", "prompt_id", "prompt", "chosen", "rejected", "split"],
        hint="make one with `personasim testbed pairs`",
    )


def _plan_notes(plan: pd.DataFrame, prompts: pd.DataFrame, options: PairsOptions) -> list[str]:
    """Say when the prompt set is smaller than the asked counts."""
    n_train = int((prompts["split"] == "train").sum())
    n_held = int((prompts["split"] == "held_out").sum())
    notes = []
    if n_train < options.per_persona:
        notes.append(f"train split has {n_train} prompts < per_persona={options.per_persona}")
    if n_held < options.held_out:
        notes.append(f"held-out split has {n_held} prompts < held_out={options.held_out}")
    return notes


def make_pairs(
    personas: pd.DataFrame | str | Path,
    prompts: pd.DataFrame,
    backend: Backend,
    options: PairsOptions | None = None,
    *,
    judge: Backend | None = None,
    out: str | Path | None = None,
    parts_dir: str | Path | None = None,
    progress: bool | None = None,
) -> PairsResult:
    """Make preference pairs for every persona of the ``persona`` tier (see the module doc).

    ``judge`` defaults to ``backend``. With ``out``, each chunk of personas is committed as a
    part of ``parts_dir`` (default :func:`pairs_parts_dir`) as it finishes, so a killed run
    keeps its finished personas and a rerun resumes (same person, prompt and generator kept);
    ``out`` is then written from the parts. A parts folder made with other options is refused.
    """
    opts = options or PairsOptions()
    pool = C.persona_tier(personas)
    prompts = ready_prompts(prompts, opts.seed)
    plan = plan_pairs(pool["person_id"].tolist(), prompts, opts)
    if plan.empty:
        raise DataError(
            "no prompts to pair: the train and held-out splits are both empty",
            hint="check the prompt set's split column",
        )
    plan["generator"] = backend.display_name
    step = _Step(
        backend=backend,
        judge=judge or backend,
        options=opts,
        prompts=prompts.set_index("prompt_id").to_dict("index"),
        profiles=dict(zip(pool["person_id"], pool["text"], strict=True)),
        fields={
            str(row.person_id): json.dumps(C.persona_fields(row), ensure_ascii=False)
            for row in pool.itertuples(index=False)
        },
        answers={},
        progress=False if progress is False else None,
    )
    started = time.perf_counter()
    if out is None:
        table = _pairs_in_memory(plan, step, progress)
        made = len(plan)
    else:
        folder = Path(parts_dir) if parts_dir is not None else pairs_parts_dir(out)
        table, made = _pairs_to_parts(plan, step, Path(out), folder, progress)
    return PairsResult(table, made, time.perf_counter() - started, _plan_notes(plan, prompts, opts))


def pairs_parts_dir(out: str | Path) -> Path:
    """Where the pairs of ``out`` are committed as they finish: ``<out stem>.parts/`` beside it."""
    out = Path(out)
    return out.with_name(f"{out.stem}.parts")


def pairs_record(step: _Step) -> dict[str, Any]:
    """What a pair row depends on besides its key: the options (not the sampled counts or the
    chunk size) and the judge."""
    record = step.options.model_dump(exclude={"per_persona", "held_out", "chunk"}, mode="json")
    record["judge"] = step.judge.display_name
    return record


def _bar(total: int, progress: bool | None) -> tqdm:
    """The pairs progress bar on stderr, first drawn after
    :data:`~personasim.llm.base.PROGRESS_DELAY_SECONDS` (a run that fails at once, e.g. on an
    unreachable model, prints its error line and no bar frame)."""
    return tqdm(
        total=total,
        desc="pairs",
        unit="pair",
        file=sys.stderr,
        dynamic_ncols=True,
        disable=progress is False or total == 0,
        delay=PROGRESS_DELAY_SECONDS,
    )


def _pairs_in_memory(plan: pd.DataFrame, step: _Step, progress: bool | None) -> pd.DataFrame:
    """Every planned pair, made chunk by chunk."""
    frames = []
    with _bar(len(plan), progress) as bar:
        for chunk in _chunks(plan, step.options.chunk):
            frames.append(pd.DataFrame(_chunk_rows(chunk, step), columns=PAIR_COLUMNS))
            bar.update(len(chunk))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PAIR_COLUMNS)


def _pairs_to_parts(
    plan: pd.DataFrame, step: _Step, out: Path, folder: Path, progress: bool | None
) -> tuple[pd.DataFrame, int]:
    """Make the pairs not yet in ``folder`` (or in an ``out`` written before parts were kept),
    committing a part per chunk, then write ``out`` from the parts; the table and the count
    made now."""
    with parts.folder_lock(folder):
        parts.remove_stale_temps(folder)
        hint = f"give another --out, or move {out} and {folder} away to start over"
        parts.check_made_with(folder, pairs_record(step), hint)
        if out.exists() and not parts.part_paths(folder):
            parts.commit_part(read_pairs(out), folder)
            parts.mark_published(folder, out)
        done = parts.read_parts(folder, list(PAIRS_KEY))
        todo = _todo(plan, done if len(done) else None)
        with _bar(len(todo), progress) as bar:
            for chunk in _chunks(todo, step.options.chunk):
                frame = pd.DataFrame(_chunk_rows(chunk, step), columns=PAIR_COLUMNS)
                parts.commit_part(frame, folder)
                bar.update(len(chunk))
        parts.publish(folder, out, PAIRS_KEY)
    table = read_pairs(out) if out.exists() else pd.DataFrame(columns=PAIR_COLUMNS)
    return table, len(todo)


def _todo(plan: pd.DataFrame, existing: pd.DataFrame | None) -> pd.DataFrame:
    """Planned rows not yet in ``existing``."""
    if existing is None or existing.empty:
        return plan
    done = set(zip(*(existing[k].astype(str) for k in PAIRS_KEY), strict=True))
    mask = [tuple(r) not in done for r in plan[list(PAIRS_KEY)].astype(str).itertuples(index=False)]
    return plan[mask].reset_index(drop=True)


def _chunks(todo: pd.DataFrame, personas_per_chunk: int) -> list[pd.DataFrame]:
    """Consecutive groups of ``personas_per_chunk`` personas' rows."""
    persons = list(dict.fromkeys(todo["person_id"]))
    groups = [
        persons[i : i + personas_per_chunk] for i in range(0, len(persons), personas_per_chunk)
    ]
    return [todo[todo["person_id"].isin(g)] for g in groups]
