"""Role-play agreement (Castricato et al. 2024, §4.2, Figures 6–9).

Raters — models (backend specs) and, optionally, humans imported from CSV (``rater,
persona_id, question_id, choice``; several humans per persona reduced to a majority label, as the
paper took 3 of 4) — answer the same persona x question items. Outputs:

* the pairwise Cohen's kappa matrix over all shared items (scikit-learn ``cohen_kappa_score``);
* per-persona kappa for each rater pair (the histograms);
* one figure across all raters: Fleiss' kappa (statsmodels) and Krippendorff's alpha
  (``krippendorff``, ``level_of_measurement="nominal"`` given explicitly: the package otherwise
  assumes interval data, which would treat letters as numbers).

Edge cases become NaN with a note, never a crash: kappa when both raters give one constant label;
Fleiss when every rating is the same category; alpha when the data hold a single value.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.core.errors import DataError, did_you_mean
from personasim.core.tables import read_table
from personasim.llm import Backend
from personasim.testbed import common as C
from personasim.testbed.questions import PreferenceQuestion, ask

LABELS = ["rater", "persona_id", "question_id", "choice"]
HUMAN = "human"


def model_labels(
    backend: Backend,
    personas: pd.DataFrame,
    questions: Sequence[PreferenceQuestion],
    rater: str | None = None,
    progress: bool | None = None,
    reverse: bool = False,
) -> pd.DataFrame:
    """One model's label per persona x question (rater = ``rater`` or the model's name).

    ``reverse`` shows the answers in reverse order (mapped back): the same model as a second
    rater whose disagreement with the first measures position bias.
    """
    pool = C.persona_tier(personas)
    profiles = dict(zip(pool["person_id"], pool["text"].astype(str), strict=True))
    got = ask(backend, profiles, questions, progress=progress, reverse=reverse)
    return pd.DataFrame(
        {
            "rater": rater or backend.display_name,
            "persona_id": got["key"],
            "question_id": got["question_id"],
            "choice": got["choice"],
        }
    )


def read_human_labels(
    path: str | Path,
    persona_ids: Sequence[str] | None,
    questions: Sequence[PreferenceQuestion] | None = None,
) -> pd.DataFrame:
    """Human labels from CSV, checked against the known persona ids (None: not known yet) and
    the questions' ids and answer letters."""
    frame = read_table(
        path, "human labels CSV", LABELS, hint="columns: rater, persona_id, question_id, choice"
    )
    frame = frame[LABELS].astype(str).apply(lambda s: s.str.strip())
    question_ids = [q.id for q in questions] if questions is not None else None
    for column, known in (("persona_id", persona_ids), ("question_id", question_ids)):
        if known is None:
            continue
        unknown = sorted(set(frame[column]) - set(map(str, known)))
        if unknown:
            raise DataError(
                f"{path}: unknown {column} {unknown[0]!r} ({len(unknown)} unknown in all)",
                hint=did_you_mean(unknown[0], map(str, known)),
            )
    if questions is not None:
        _check_choices(frame, questions, path)
    return frame


def _check_choices(
    frame: pd.DataFrame, questions: Sequence[PreferenceQuestion], path: str | Path
) -> None:
    """Every label is one of its question's answer letters."""
    letters = {q.id: q.labels for q in questions}
    pairs = zip(frame["question_id"], frame["choice"], strict=True)
    bad = [c not in letters.get(q, ()) for q, c in pairs]
    if any(bad):
        first = frame[bad].iloc[0]
        raise DataError(
            f"{path}: choice {first['choice']!r} of question {first['question_id']!r} is not "
            f"one of its answer letters ({sum(bad)} such labels)",
            hint="choices are " + ", ".join(letters[first["question_id"]]),
        )


def majority(humans: pd.DataFrame, rater: str = HUMAN) -> tuple[pd.DataFrame, int]:
    """The majority label per persona x question; ties are left out. Returns (labels, ties)."""
    rows, ties = [], 0
    for (pid, qid), group in humans.groupby(["persona_id", "question_id"], sort=True):
        counts = Counter(group["choice"]).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            ties += 1
            continue
        rows.append({"rater": rater, "persona_id": pid, "question_id": qid, "choice": counts[0][0]})
    return pd.DataFrame(rows, columns=LABELS), ties


def _wide(labels: pd.DataFrame) -> pd.DataFrame:
    """Items (persona_id, question_id) x raters, None where a rater gave no label."""
    clean = labels.dropna(subset=["choice"])
    return clean.pivot_table(
        index=["persona_id", "question_id"], columns="rater", values="choice", aggfunc="first"
    )


def kappa_matrix(labels: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa between every two raters over the items both labelled."""
    wide = _wide(labels)
    raters = list(wide.columns)
    out = pd.DataFrame(np.nan, index=raters, columns=raters)
    for a, b in itertools.product(raters, repeat=2):
        both = wide[list(dict.fromkeys([a, b]))].dropna()
        out.loc[a, b] = C.kappa(both[a].tolist(), both[b].tolist())
    return out


def per_persona_kappa(labels: pd.DataFrame) -> pd.DataFrame:
    """Kappa per rater pair and persona over that persona's questions (the histograms)."""
    wide = _wide(labels)
    rows = []
    for a, b in itertools.combinations(wide.columns, 2):
        for pid, group in wide[[a, b]].dropna().groupby(level="persona_id"):
            rows.append(
                {
                    "rater_a": a,
                    "rater_b": b,
                    "persona_id": pid,
                    "n": len(group),
                    "kappa": C.kappa(group[a].tolist(), group[b].tolist()),
                }
            )
    return pd.DataFrame(rows, columns=["rater_a", "rater_b", "persona_id", "n", "kappa"])


def fleiss(labels: pd.DataFrame) -> tuple[float, int]:
    """Fleiss' kappa (statsmodels) over the items every rater labelled -> (kappa, items)."""
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    complete = _wide(labels).dropna()
    if complete.shape[1] < 2 or complete.empty:
        return float("nan"), len(complete)
    codes = np.vectorize(sorted(set(complete.to_numpy().ravel())).index)(complete.to_numpy())
    table, _ = aggregate_raters(codes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fleiss_kappa(table, method="fleiss")), len(complete)


def kripp_alpha(labels: pd.DataFrame) -> float:
    """Krippendorff's alpha, nominal, over all items (missing labels allowed); NaN if undefined."""
    import krippendorff

    wide = _wide(labels)
    values = sorted(set(wide.stack().dropna().tolist()))
    if wide.shape[1] < 2 or len(values) < 2:
        return float("nan")
    data = wide.apply(lambda col: col.map(lambda v: np.nan if pd.isna(v) else values.index(v)))
    matrix = data.to_numpy(dtype=float).T  # raters x items
    try:
        return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))
    except ValueError:
        return float("nan")


@dataclass
class AgreementResult:
    """Every agreement figure, and the notes on edge cases met."""

    labels: pd.DataFrame
    """rater, persona_id, question_id, choice (humans already reduced to their majority)."""
    matrix: pd.DataFrame
    """Pairwise Cohen's kappa (raters x raters)."""
    per_persona: pd.DataFrame
    """rater_a, rater_b, persona_id, n, kappa."""
    fleiss_kappa: float
    """Fleiss' kappa over the items every rater labelled."""
    fleiss_items: int
    """Items in the Fleiss computation."""
    alpha: float
    """Krippendorff's alpha (nominal)."""
    notes: list[str] = field(default_factory=list)
    """Edge cases and reductions (ties, undefined values)."""

    def text(self) -> str:
        """Matrix, the two overall figures and the notes as text."""
        lines = [
            "pairwise Cohen's kappa:",
            self.matrix.round(3).to_string(),
            f"Fleiss' kappa {self.fleiss_kappa:.3f} over {self.fleiss_items} items; "
            f"Krippendorff's alpha (nominal) {self.alpha:.3f}",
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def agreement(labels: pd.DataFrame, humans: pd.DataFrame | None = None) -> AgreementResult:
    """All agreement figures for model labels plus optional raw human labels (majority-reduced)."""
    notes = []
    if humans is not None and len(humans):
        reduced, ties = majority(humans)
        labels = pd.concat([labels, reduced], ignore_index=True)
        notes.append(
            f"humans: {humans['rater'].nunique()} raters reduced to one majority label "
            f"per item; {ties} tied items left out"
        )
    if labels["rater"].nunique() < 2:
        raise DataError(
            "agreement needs at least two raters",
            hint="give several --model values or a --humans CSV",
        )
    matrix, per = kappa_matrix(labels), per_persona_kappa(labels)
    kappa_f, n_items = fleiss(labels)
    alpha = kripp_alpha(labels)
    off_diag = matrix.to_numpy()[~np.eye(len(matrix), dtype=bool)]
    if np.isnan(off_diag).any() or per["kappa"].isna().any():
        notes.append(
            f"{int(per['kappa'].isna().sum())} of {len(per)} per-persona kappas and "
            f"{int(np.isnan(off_diag).sum() // 2)} matrix cells undefined: " + C.KAPPA_NOTE
        )
    if np.isnan(kappa_f):
        notes.append(
            "Fleiss' kappa undefined: fewer than two raters, no item labelled by all, "
            "or every rating the same category"
        )
    if np.isnan(alpha):
        notes.append("Krippendorff's alpha undefined: the labels hold a single value")
    return AgreementResult(labels, matrix, per, kappa_f, n_items, alpha, notes)
