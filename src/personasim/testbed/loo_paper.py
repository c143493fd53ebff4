"""Leave-one-out as the paper runs it (Castricato et al. 2024, §4.1, Figure 5).

For each attribute ``a`` the persona pairs are drawn as in :mod:`personasim.testbed.loo`:
``n_personas`` personas of ``k`` attributes other than ``a`` (from one pool persona each), and
the same personas with ``a`` added. A conditional attribute (one only some personas have, e.g. a
difficulty only people with a disability have) is drawn only from personas that have it, so its
pool is first narrowed the way the paper narrowed "disability type" to personas with a disability.

``n_questions`` questions get one persona-free *baseline* answer each (generated, or the pairs'
``rejected`` answers). For each persona of each pair, every baseline answer is critiqued by the
role-played persona and revised after that critique (the prompts of
:mod:`personasim.testbed.pairs`). So each pair has, per question, two refinements: ``R-`` made
for the persona without ``a`` and ``R+`` made for the persona with ``a``.

**What each annotator labels (fixed here; the paper leaves it implicit).** The two versions of
the persona are the two annotators. Both label the same ``2 x n_questions`` items: for each
question, "baseline vs ``R-``" and "baseline vs ``R+``". The label is ``refined`` or
``baseline``: which answer the role-played version prefers, read as the mean probability of the
refinement over both display orders (:func:`personasim.testbed.common.judge`), ``refined`` when
it exceeds 0.5. An item where no probability mass landed on the letters has no label and is left
out of that pair's kappa. Why this choice: kappa needs both annotators to label the same items;
a two-way choice between the generic answer and a persona-made answer is what the paper's humans
were asked (§4.2); and including each version's own and the other version's refinement lets an
influential attribute show up as the versions accepting different refinements.

Per attribute the output gives the kappa distribution, its median with a percentile bootstrap
interval, and the rank by influence ``1 - median kappa`` (low kappa = influential).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.core.errors import DataError
from personasim.llm import Backend
from personasim.personas.generate import stable_seed
from personasim.testbed import common as C
from personasim.testbed import loo as L
from personasim.testbed.pairs import (
    PairsOptions,
    answer_request,
    clean_revision,
    critique_request,
    revision_request,
)

VERSIONS = ("without", "with")
"""The two annotators of a pair: the persona without and with the left-out attribute."""
REFINED, BASELINE = "refined", "baseline"
ITEM_COLUMNS = [
    "attribute",
    "j",
    "question_id",
    "source",
    "annotator",
    "label",
    "p_refined",
    "valid_mass",
]
PAIR_COLUMNS = [*L.LOO_COLUMNS, "n_items"]


class PaperLooOptions(BaseModel):
    """Options of :func:`paper_leave_one_out`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attributes: tuple[str, ...] | None = None
    """Attributes to test (default: every attribute of the pool's profiles)."""
    n_personas: int = Field(default=40, ge=1)
    """Persona pairs per attribute (the paper: 40)."""
    k: int = Field(default=3, ge=1)
    """Attributes of each persona before the left-out one is added (the paper: 3)."""
    n_questions: int = Field(default=20, ge=1)
    """Questions with a baseline answer (the paper: 20)."""
    seed: int = 0
    """Seed of the persona draws, the generations and the bootstrap."""
    n_boot: int = Field(default=1000, ge=0)
    """Bootstrap replicates of each attribute's median kappa (0 = no interval)."""
    level: float = Field(default=0.95, gt=0.0, lt=1.0)
    """Level of the bootstrap interval."""
    generation: PairsOptions = PairsOptions()
    """Token caps, temperature and templates of the baseline, critique and revision."""


@dataclass
class Question:
    """A question and its baseline (persona-free) answer."""

    id: str
    """Question id (the prompt id)."""
    text: str
    """The question."""
    baseline: str
    """The persona-free answer every persona critiques."""


def baseline_answers(
    prompts: pd.DataFrame, backend: Backend, options: PaperLooOptions, progress: bool | None = None
) -> list[Question]:
    """The first ``n_questions`` prompts, each with a generated persona-free answer."""
    rows = prompts.head(options.n_questions)
    if rows.empty:
        raise DataError("no questions for leave-one-out", hint="give a prompt set")
    requests = [
        answer_request(t, str(p), options.generation)
        for p, t in zip(rows["prompt_id"], rows["text"], strict=True)
    ]
    answers = backend.generate(requests, progress)
    return [
        Question(str(p), str(t), a.text.strip())
        for p, t, a in zip(rows["prompt_id"], rows["text"], answers, strict=True)
    ]


def questions_from_pairs(pairs: pd.DataFrame, n: int) -> list[Question]:
    """Up to ``n`` questions with their baseline answers (``rejected``) from a pairs table."""
    ok = pairs[pairs["ok"].astype(bool)] if "ok" in pairs.columns else pairs
    first = ok.drop_duplicates("prompt_id").head(n)
    if first.empty:
        raise DataError("the pairs table has no usable pair", hint="make pairs first")
    return [
        Question(str(r.prompt_id), str(r.prompt), str(r.rejected))
        for r in first.itertuples(index=False)
    ]


def _refine(
    backend: Backend,
    profiles: dict[str, str],
    questions: Sequence[Question],
    options: PaperLooOptions,
    progress: bool | None,
) -> dict[tuple[str, str], str]:
    """(profile key, question id) -> the baseline answer revised for that profile."""
    gen = options.generation.model_copy(update={"seed": options.seed})
    keys = [(k, q) for k in profiles for q in questions]
    crit = backend.generate(
        [critique_request(profiles[k], q.text, q.baseline, (k, q.id), gen) for k, q in keys],
        progress,
    )
    revs = backend.generate(
        [
            revision_request(q.text, q.baseline, c.text.strip(), (k, q.id), gen)
            for (k, q), c in zip(keys, crit, strict=True)
        ],
        progress,
    )
    return {
        (k, q.id): clean_revision(r.text) or q.baseline
        for (k, q), r in zip(keys, revs, strict=True)
    }


def _label(verdict: dict[str, float]) -> str | None:
    """``refined`` / ``baseline`` from a two-order verdict, None without probability mass."""
    if verdict["valid_mass"] <= 0:
        return None
    return REFINED if verdict["p_first"] > 0.5 else BASELINE


def _annotate(
    backend: Backend,
    draw: dict[str, Any],
    questions: Sequence[Question],
    refined: dict[tuple[str, str], str],
    progress: bool | None,
) -> list[dict[str, Any]]:
    """Both annotators' labels of the pair's ``2 x n_questions`` items."""
    key = f"{draw['attribute']}|{draw['j']}"
    profiles = {"without": draw["base"], "with": draw["plus"]}
    specs = [(who, q, src) for who in VERSIONS for q in questions for src in VERSIONS]
    items = [
        (profiles[who], q.text, refined[(f"{key}|{src}", q.id)], q.baseline)
        for who, q, src in specs
    ]
    verdicts = C.judge(backend, items, progress)
    return [
        {
            "attribute": draw["attribute"],
            "j": draw["j"],
            "question_id": q.id,
            "source": src,
            "annotator": who,
            "label": _label(v),
            "p_refined": v["p_first"],
            "valid_mass": v["valid_mass"],
        }
        for (who, q, src), v in zip(specs, verdicts, strict=True)
    ]


def pair_kappa(items: pd.DataFrame) -> tuple[float, float, int]:
    """(kappa, raw agreement, items) of one pair's two annotators over the items both labelled."""
    wide = items.pivot_table(
        index=["question_id", "source"], columns="annotator", values="label", aggfunc="first"
    )
    wide = wide.reindex(columns=list(VERSIONS)).dropna()
    a, b = wide["without"].tolist(), wide["with"].tolist()
    if not a:
        return float("nan"), float("nan"), 0
    agree = float(np.mean([x == y for x, y in zip(a, b, strict=True)]))
    return C.kappa(a, b), agree, len(a)


def bootstrap_median(
    values: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Median of the non-NaN ``values`` with a percentile bootstrap interval (NaNs when none)."""
    data = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    if n_boot <= 0 or data.size == 1:
        return float(np.median(data)), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(data, size=(n_boot, data.size), replace=True), axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(np.median(data)), float(low), float(high)


def summarize(pairs: pd.DataFrame, options: PaperLooOptions) -> pd.DataFrame:
    """Per attribute: median kappa with its bootstrap interval, influence, rank (1 = most)."""
    rows = []
    for attribute, group in pairs.groupby("attribute", sort=False):
        seed = stable_seed(options.seed, "loo-median", attribute)
        median, low, high = bootstrap_median(
            group["kappa"].tolist(), options.n_boot, seed, options.level
        )
        rows.append(
            {
                "attribute": attribute,
                "n": len(group),
                "n_undefined": int(group["kappa"].isna().sum()),
                "median_kappa": median,
                "ci_low": low,
                "ci_high": high,
                "mean_kappa": group["kappa"].mean(),
                "influence": 1 - median,
                "conditional": bool(group["conditional"].any()),
            }
        )
    out = pd.DataFrame(rows).sort_values("influence", ascending=False, na_position="last")
    out["rank"] = range(1, len(out) + 1)
    return out.reset_index(drop=True)


@dataclass
class PaperLooResult:
    """Kappa per pair, the per-attribute summary, every item label, the refinements, notes."""

    pairs: pd.DataFrame
    """One row per attribute x persona pair (:data:`PAIR_COLUMNS`)."""
    summary: pd.DataFrame
    """attribute, n, n_undefined, median_kappa, ci_low, ci_high, mean_kappa, influence, rank."""
    items: pd.DataFrame
    """Every annotator's label per item (:data:`ITEM_COLUMNS`)."""
    refinements: pd.DataFrame
    """attribute, j, version, question_id, baseline, refined."""
    notes: list[str] = field(default_factory=list)
    """Edge cases met (undefined kappas, conditional attributes, small pools)."""

    def text(self) -> str:
        """The ranked summary as aligned text, then the notes."""
        head = (
            f"{'rank':>4} {'attribute':<26} {'median kappa':>12} {'interval':>16} "
            f"{'influence':>9} {'n':>4} {'NaN':>4}"
        )
        lines = [head]
        for r in self.summary.itertuples(index=False):
            ci = "-" if np.isnan(r.ci_low) else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
            cond = " (conditional)" if r.conditional else ""
            lines.append(
                f"{r.rank:>4} {r.attribute:<26} {r.median_kappa:>12.3f} {ci:>16} "
                f"{r.influence:>9.3f} {r.n:>4} {r.n_undefined:>4}{cond}"
            )
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _pair_row(draw: dict[str, Any], items: pd.DataFrame) -> dict[str, Any]:
    """The output row of one persona pair."""
    value, agree, n = pair_kappa(items)
    return {
        **{c: draw[c] for c in ("attribute", "j", "person_id", "conditional")},
        "attributes": json.dumps(draw["attributes"]),
        "kappa": value,
        "agreement": agree,
        "n_questions": int(items["question_id"].nunique()),
        "n_items": n,
    }


def _refinement_rows(
    draw: dict[str, Any], questions: Sequence[Question], refined: dict[tuple[str, str], str]
) -> list[dict[str, Any]]:
    """The pair's refinements as rows (kept so a reader can see what was judged)."""
    key = f"{draw['attribute']}|{draw['j']}"
    return [
        {
            "attribute": draw["attribute"],
            "j": draw["j"],
            "version": v,
            "question_id": q.id,
            "baseline": q.baseline,
            "refined": refined[(f"{key}|{v}", q.id)],
        }
        for v in VERSIONS
        for q in questions
    ]


def paper_leave_one_out(
    personas: pd.DataFrame,
    questions: Sequence[Question],
    backend: Backend,
    options: PaperLooOptions | None = None,
    progress: bool | None = None,
) -> PaperLooResult:
    """Run the paper's leave-one-out protocol (see the module docstring)."""
    opts = options or PaperLooOptions()
    if not questions:
        raise DataError("no questions for leave-one-out", hint="give a prompt set")
    pool = L._pool(personas)
    draw_opts = L.LooOptions(
        attributes=opts.attributes, n_personas=opts.n_personas, k=opts.k, seed=opts.seed, n_boot=0
    )
    draws = [d for a in L._attributes(pool, opts.attributes) for d in L._draws(a, pool, draw_opts)]
    rows, items, refinements = [], [], []
    for draw in draws:  # persona-major: each pair's prompts share its two profiles
        key = f"{draw['attribute']}|{draw['j']}"
        profiles = {f"{key}|without": draw["base"], f"{key}|with": draw["plus"]}
        refined = _refine(backend, profiles, questions, opts, progress)
        labels = pd.DataFrame(
            _annotate(backend, draw, questions, refined, progress), columns=ITEM_COLUMNS
        )
        rows.append(_pair_row(draw, labels))
        items.append(labels)
        refinements += _refinement_rows(draw, questions, refined)
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    return PaperLooResult(
        pairs,
        summarize(pairs, opts),
        pd.concat(items, ignore_index=True),
        pd.DataFrame(refinements),
        L._notes(pairs, len(pool), draw_opts),
    )
