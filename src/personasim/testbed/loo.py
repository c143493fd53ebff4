"""Leave-one-out attribute influence (Castricato et al. 2024, §4.1, Figure 5).

For each attribute ``a``: ``n_personas`` personas made of ``k`` attributes drawn from a persona of
the pool without ``a``, and the same personas with ``a`` added. When ``a`` is *conditional* (some
personas lack it, e.g. a disability type), only personas that have it are drawn, and the result
says so (``conditional``). Both versions answer the same preference questions
(:mod:`personasim.testbed.questions`); Cohen's kappa between the two label vectors measures how
little ``a`` changed the choices. Per attribute: the kappa distribution, its mean with a bootstrap
CI, and the rank by influence ``1 - mean kappa``.

Kappa is NaN when both versions give one constant label (see
:data:`personasim.testbed.common.KAPPA_NOTE`); such pairs are counted in ``n_undefined`` and left
out of the mean.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.core.errors import DataError, did_you_mean
from personasim.llm import Backend
from personasim.personas.generate import render_fields, stable_seed
from personasim.testbed import common as C
from personasim.testbed.questions import PreferenceQuestion, ask

LOO_COLUMNS = [
    "attribute",
    "j",
    "person_id",
    "attributes",
    "conditional",
    "kappa",
    "agreement",
    "n_questions",
]


class LooOptions(BaseModel):
    """Options of :func:`leave_one_out`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attributes: tuple[str, ...] | None = None
    """Attributes to test (default: every attribute of the pool's profiles)."""
    n_personas: int = Field(default=40, ge=1)
    """Persona pairs per attribute."""
    k: int = Field(default=3, ge=1)
    """Attributes of each persona before the left-out one is added."""
    seed: int = 0
    """Seed of the persona draws and the bootstrap."""
    n_boot: int = Field(default=1000, ge=0)
    """Bootstrap replicates of the mean kappa (0 = no CI)."""


def _present(value: Any) -> bool:
    """True when an attribute value is there (not None, empty or NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    return str(value).strip().lower() not in ("", "nan")


def _pool(personas: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """person_id -> its attributes with a value."""
    pool = {}
    for row in C.persona_tier(personas).to_dict("records"):
        fields = {k: v for k, v in C.persona_fields(row).items() if _present(v)}
        if fields:
            pool[str(row["person_id"])] = fields
    if not pool:
        raise DataError("no persona has attribute fields", hint="the persona tier's 'fields'")
    return pool


def _attributes(pool: dict[str, dict[str, Any]], wanted: Sequence[str] | None) -> list[str]:
    """The attributes to test (checked against the pool)."""
    known = list(dict.fromkeys(k for fields in pool.values() for k in fields))
    if wanted is None:
        return known
    unknown = [a for a in wanted if a not in known]
    if unknown:
        raise DataError(
            f"no persona has attribute {unknown[0]!r}", hint=did_you_mean(unknown[0], known)
        )
    return list(wanted)


def _draws(
    attribute: str, pool: dict[str, dict[str, Any]], options: LooOptions
) -> list[dict[str, Any]]:
    """The persona pairs of one attribute: base profile and profile + attribute."""
    holders = [pid for pid, f in pool.items() if attribute in f]
    rng = np.random.default_rng(stable_seed(options.seed, "loo", attribute))
    draws = []
    for j in range(options.n_personas):
        pid = holders[int(rng.integers(len(holders)))]
        others = [k for k in pool[pid] if k != attribute]
        picked = [others[i] for i in sorted(rng.permutation(len(others))[: options.k])]
        base = {k: pool[pid][k] for k in picked}
        draws.append(
            {
                "attribute": attribute,
                "j": j,
                "person_id": pid,
                "attributes": picked,
                "conditional": len(holders) < len(pool),
                "base": render_fields(base),
                "plus": render_fields({**base, attribute: pool[pid][attribute]}),
            }
        )
    return draws


@dataclass
class LooResult:
    """Kappa per persona pair, the per-attribute summary, the labels, and notes."""

    pairs: pd.DataFrame
    """One row per attribute x persona pair (:data:`LOO_COLUMNS`)."""
    summary: pd.DataFrame
    """attribute, n, n_undefined, mean_kappa, ci_low, ci_high, influence, rank, conditional."""
    labels: pd.DataFrame
    """Every profile's label per question (``key`` = ``attribute|j|base`` or ``...|plus``)."""
    notes: list[str] = field(default_factory=list)
    """Edge cases met (undefined kappas, conditional attributes, small pools)."""

    def text(self) -> str:
        """The ranked summary as aligned text, then the notes."""
        lines = [
            f"{'rank':>4} {'attribute':<26} {'mean kappa':>10} {'95% CI':>16} "
            f"{'influence':>9} {'n':>4} {'NaN':>4}"
        ]
        for r in self.summary.itertuples(index=False):
            ci = "-" if np.isnan(r.ci_low) else f"[{r.ci_low:.2f}, {r.ci_high:.2f}]"
            cond = " (conditional)" if r.conditional else ""
            lines.append(
                f"{r.rank:>4} {r.attribute:<26} {r.mean_kappa:>10.3f} {ci:>16} "
                f"{r.influence:>9.3f} {r.n:>4} {r.n_undefined:>4}{cond}"
            )
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _kappas(draws: list[dict[str, Any]], labels: pd.DataFrame) -> pd.DataFrame:
    """Kappa and raw agreement of each base/plus pair over the questions both answered."""
    table = labels.pivot(index="key", columns="question_id", values="choice")
    rows = []
    for d in draws:
        key = f"{d['attribute']}|{d['j']}"
        base, plus = table.loc[f"{key}|base"], table.loc[f"{key}|plus"]
        both = base.notna() & plus.notna()
        a, b = base[both].tolist(), plus[both].tolist()
        rows.append(
            {
                **{c: d[c] for c in ("attribute", "j", "person_id", "conditional")},
                "attributes": json.dumps(d["attributes"]),
                "kappa": C.kappa(a, b),
                "agreement": float(np.mean([x == y for x, y in zip(a, b, strict=True)]))
                if a
                else float("nan"),
                "n_questions": len(a),
            }
        )
    return pd.DataFrame(rows, columns=LOO_COLUMNS)


def summarize_loo(pairs: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per attribute: mean kappa with CI, influence = 1 - mean, ranked (most influential first)."""
    rows = []
    for attribute, group in pairs.groupby("attribute", sort=False):
        mean, low, high = C.bootstrap_mean(group["kappa"].tolist(), n_boot, seed)
        rows.append(
            {
                "attribute": attribute,
                "n": len(group),
                "n_undefined": int(group["kappa"].isna().sum()),
                "mean_kappa": mean,
                "ci_low": low,
                "ci_high": high,
                "influence": 1 - mean,
                "conditional": bool(group["conditional"].any()),
            }
        )
    out = pd.DataFrame(rows).sort_values("influence", ascending=False, na_position="last")
    out["rank"] = range(1, len(out) + 1)
    return out.reset_index(drop=True)


def _notes(pairs: pd.DataFrame, pool_size: int, options: LooOptions) -> list[str]:
    """Edge cases worth saying next to the numbers."""
    notes = []
    undefined = int(pairs["kappa"].isna().sum())
    if undefined:
        notes.append(f"{undefined} of {len(pairs)} pairs have undefined kappa: {C.KAPPA_NOTE}")
    conditional = sorted(pairs.loc[pairs["conditional"], "attribute"].unique())
    if conditional:
        notes.append(
            "conditional attributes (drawn only from personas that have them): "
            + ", ".join(conditional)
        )
    if options.n_personas > pool_size:
        notes.append(
            f"{options.n_personas} pairs per attribute from a pool of {pool_size} "
            "personas: personas are drawn with replacement"
        )
    return notes


def leave_one_out(
    personas: pd.DataFrame,
    questions: Sequence[PreferenceQuestion],
    backend: Backend,
    options: LooOptions | None = None,
    progress: bool | None = None,
) -> LooResult:
    """Run the leave-one-out analysis (see the module docstring)."""
    opts = options or LooOptions()
    if not questions:
        raise DataError("no preference questions", hint="use builtin or a questions file")
    pool = _pool(personas)
    draws = [d for a in _attributes(pool, opts.attributes) for d in _draws(a, pool, opts)]
    profiles = {f"{d['attribute']}|{d['j']}|{v}": d[v] for d in draws for v in ("base", "plus")}
    labels = ask(backend, profiles, questions, progress=progress)
    pairs = _kappas(draws, labels)
    return LooResult(
        pairs, summarize_loo(pairs, opts.n_boot, opts.seed), labels, _notes(pairs, len(pool), opts)
    )
