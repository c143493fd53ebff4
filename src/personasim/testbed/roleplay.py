"""Role-play agreement with per-annotator human labels (Castricato et al. 2024, §4.2, Figs. 6-9).

**Items.** One item is (persona, question) with two answers: ``A`` the persona-free baseline and
``B`` the baseline revised for this persona (one critique-and-revision step, a row of
:mod:`personasim.testbed.pairs`). The paper made 20 such items per persona and sampled 10 of
them for the humans; :func:`items_from_pairs` samples ``per_persona`` items per persona, seeded.
The letters are fixed per item; a page or a model may show the answers in either order, and
records the fixed letter.

**Human labels** are kept per annotator (``annotator, persona_id, question_id, choice``). The
human *majority* follows the paper's rule, 3 of 4 annotators per persona:

* an annotator who did not label every item of their persona is dropped for that persona (the
  paper's fourth annotator existed so that one set could be dropped);
* a persona keeps its items only when at least ``min_annotators`` (3) annotators remain;
* an item's majority label is the letter a strict majority of the remaining annotators chose:
  3 of 4, or 2 of 3 once one was dropped. A 2-2 tie has no majority and is left out, counted.

**Outputs.** Models and the human majority in one pairwise kappa matrix and per-persona kappas
(Figs. 6-9, via :mod:`personasim.testbed.agreement`); and the *human baseline* (Fig. 6, bottom):
the annotators of each persona, in the order of their ids, become ``human 1`` ... ``human N``,
and the same matrix and per-persona kappas are computed between those slots.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.core.errors import DataError, did_you_mean
from personasim.llm import Backend
from personasim.personas.generate import stable_seed
from personasim.testbed import agreement as G
from personasim.testbed import common as C

ITEM_COLUMNS = ["persona_id", "question_id", "persona", "question", "answer_a", "answer_b"]
ANNOTATION_COLUMNS = ["annotator", "persona_id", "question_id", "choice"]
LETTERS = ("A", "B")
MAJORITY = "human majority"


# --------------------------------------------------------------------------- items


def items_from_pairs(pairs: pd.DataFrame, per_persona: int = 10, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_persona`` items per persona from a pairs table (usable rows only), seeded."""
    ok = pairs[pairs["ok"].astype(bool)] if "ok" in pairs.columns else pairs
    ok = ok.drop_duplicates(["person_id", "prompt_id"])
    frames = []
    for pid, group in ok.groupby("person_id", sort=True):
        rng = np.random.default_rng(stable_seed(seed, "items", str(pid)))
        picked = group.iloc[sorted(rng.permutation(len(group))[:per_persona])]
        frames.append(
            pd.DataFrame(
                {
                    "persona_id": picked["person_id"].astype(str),
                    "question_id": picked["prompt_id"].astype(str),
                    "persona": picked["persona"].astype(str),
                    "question": picked["prompt"].astype(str),
                    "answer_a": picked["rejected"].astype(str),
                    "answer_b": picked["chosen"].astype(str),
                }
            )
        )
    if not frames:
        raise DataError("the pairs table has no usable pair", hint="make pairs first")
    return pd.concat(frames, ignore_index=True)[ITEM_COLUMNS]


def read_items(path: str | Path) -> pd.DataFrame:
    """An items table (Parquet) written by ``testbed agreement`` or ``testbed annotate``."""
    from personasim.core.tables import read_table

    frame = read_table(
        path,
        "items table",
        ITEM_COLUMNS,
        hint="items come from `personasim testbed agreement --out DIR`",
    )
    return frame[ITEM_COLUMNS].astype(str)


# --------------------------------------------------------------------------- model labels


ORDERS = {"both": "p_first", "B shown as A": "p_first_as_a", "B shown as B": "p_first_as_b"}
"""Which probability of the revision (``B``) a model rater reads: the mean over both display
orders, or one order only (the position-bias probe)."""


def model_item_labels(
    backend: Backend,
    items: pd.DataFrame,
    rater: str | None = None,
    progress: bool | None = None,
    order: str = "both",
) -> pd.DataFrame:
    """One model's letter per item: ``B`` when its P(revision) exceeds 0.5, read over both
    display orders or over one (``order``, a key of :data:`ORDERS`)."""
    verdicts = C.judge(
        backend,
        [(r.persona, r.question, r.answer_b, r.answer_a) for r in items.itertuples(index=False)],
        progress,
    )
    key = ORDERS[order]
    choice = [None if v["valid_mass"] <= 0 else ("B" if v[key] > 0.5 else "A") for v in verdicts]
    return pd.DataFrame(
        {
            "rater": rater or backend.display_name,
            "persona_id": items["persona_id"].tolist(),
            "question_id": items["question_id"].tolist(),
            "choice": choice,
        }
    )


# --------------------------------------------------------------------------- human labels


def _csv_files(path: Path) -> list[Path]:
    """The CSV files of a file or a folder of per-annotator files."""
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise DataError(
                f"{path}: no .csv label files in the folder",
                hint="point --humans at the annotation page's labels folder",
            )
        return files
    if not path.is_file():
        raise DataError(f"{path}: file not found", hint="give a labels CSV or folder")
    return [path]


def _read_one(path: Path) -> pd.DataFrame:
    """One labels CSV with its line numbers; ``rater`` is accepted for ``annotator``."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read labels ({str(error).splitlines()[0]})") from None
    frame = frame.rename(columns={"rater": "annotator"})
    missing = [c for c in ANNOTATION_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: no {missing[0]!r} column", hint="columns: " + ", ".join(ANNOTATION_COLUMNS)
        )
    frame = frame.apply(lambda s: s.str.strip() if s.dtype == object else s)
    frame["file"], frame["line"] = str(path), range(2, len(frame) + 2)
    return frame


def _check_rows(frame: pd.DataFrame, items: pd.DataFrame | None) -> None:
    """Letters, known ids (when ``items`` are given) and no item labelled twice by one
    annotator; one line per error."""
    known = None
    if items is not None:
        known = set(zip(items["persona_id"], items["question_id"], strict=True))
    seen: dict[tuple[str, str, str], int] = {}
    for r in frame.itertuples(index=False):
        where = f"{r.file}: row {r.line}"
        if r.choice not in LETTERS:
            raise DataError(
                f"{where}: choice {r.choice!r} is not an answer letter",
                hint="each choice is A (baseline) or B (revised)",
            )
        if known is not None and (r.persona_id, r.question_id) not in known:
            column = "persona_id" if r.persona_id not in set(items["persona_id"]) else "question_id"
            value = getattr(r, column)
            raise DataError(
                f"{where}: unknown {column} {value!r}", hint=did_you_mean(value, set(items[column]))
            )
        if not r.annotator:
            raise DataError(f"{where}: empty annotator", hint="every row names its annotator")
        key = (r.annotator, r.persona_id, r.question_id)
        if key in seen:
            raise DataError(
                f"{where}: annotator {r.annotator!r} labelled this item already (row {seen[key]})"
            )
        seen[key] = r.line


def read_annotations(path: str | Path, items: pd.DataFrame | None) -> pd.DataFrame:
    """Per-annotator labels from a CSV or a folder of CSVs, checked against ``items`` (with
    ``items=None``, the format only: columns, letters, annotators; a study checks that much
    before its first stage, when the items are not drawn yet)."""
    frames = [_read_one(p) for p in _csv_files(Path(path))]
    frame = pd.concat(frames, ignore_index=True)
    _check_rows(frame, items)
    return frame[ANNOTATION_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- majority


@dataclass
class Majority:
    """The human majority labels and what the rule left out."""

    labels: pd.DataFrame
    """rater (``human majority``), persona_id, question_id, choice."""
    kept: pd.DataFrame
    """The annotations of the annotators kept (complete sets of personas with enough of them)."""
    dropped_annotators: list[tuple[str, str]] = field(default_factory=list)
    """(persona_id, annotator) sets dropped as incomplete."""
    short_personas: list[str] = field(default_factory=list)
    """Personas left out: fewer than ``min_annotators`` complete sets."""
    ties: int = 0
    """Items without a strict majority (left out)."""


def majority(annotations: pd.DataFrame, items: pd.DataFrame, min_annotators: int = 3) -> Majority:
    """The paper's 3-of-4 rule (see the module docstring)."""
    rows, kept, out = [], [], Majority(pd.DataFrame(), pd.DataFrame())
    needed = items.groupby("persona_id")["question_id"].apply(set).to_dict()
    for pid, group in annotations.groupby("persona_id", sort=True):
        complete = [
            a
            for a, g in group.groupby("annotator", sort=True)
            if set(g["question_id"]) >= needed[pid]
        ]
        incomplete = sorted(set(group["annotator"]) - set(complete))
        out.dropped_annotators += [(pid, a) for a in incomplete]
        if len(complete) < min_annotators:
            out.short_personas.append(pid)
            continue
        use = group[group["annotator"].isin(complete)]
        kept.append(use)
        for qid, votes in use.groupby("question_id", sort=True):
            (top, count), *_ = Counter(votes["choice"]).most_common()
            if count * 2 > len(votes):
                rows.append(
                    {"rater": MAJORITY, "persona_id": pid, "question_id": qid, "choice": top}
                )
            else:
                out.ties += 1
    out.labels = pd.DataFrame(rows, columns=G.LABELS)
    out.kept = pd.concat(kept, ignore_index=True) if kept else annotations.iloc[0:0]
    return out


def human_slots(kept: pd.DataFrame) -> pd.DataFrame:
    """Each persona's annotators renamed ``human 1`` ... in the order of their ids."""
    out = kept.copy()
    rank = out.groupby("persona_id")["annotator"].rank(method="dense").astype(int)
    out["rater"] = "human " + rank.astype(str)
    return out[G.LABELS]


# --------------------------------------------------------------------------- agreement


@dataclass
class RoleplayResult:
    """Models vs the human majority, and the human-vs-human baseline."""

    agreement: G.AgreementResult
    """Models and the human majority (matrix, per-persona kappas, Fleiss, alpha)."""
    human_matrix: pd.DataFrame
    """Kappa between annotator slots (``human 1`` ...): the human baseline (empty without)."""
    human_per_persona: pd.DataFrame
    """Per-persona kappa between annotator slots (the baseline histogram)."""
    notes: list[str] = field(default_factory=list)
    """What the majority rule left out, and the agreement notes."""

    def text(self) -> str:
        """Both matrices as text, then the notes."""
        lines = [self.agreement.text()]
        if len(self.human_matrix):
            lines += ["human baseline (annotator slots):", self.human_matrix.round(3).to_string()]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _majority_notes(rule: Majority, min_annotators: int) -> list[str]:
    """One line on what the 3-of-4 rule dropped."""
    return [
        f"human majority (strict majority of each persona's complete annotators, at least "
        f"{min_annotators}):"
        f" {len(rule.labels)} items labelled, {rule.ties} tied items left out, "
        f"{len(rule.dropped_annotators)} incomplete annotator sets dropped, "
        f"{len(rule.short_personas)} personas with too few annotators left out"
    ]


def roleplay_agreement(
    models: pd.DataFrame,
    items: pd.DataFrame,
    annotations: pd.DataFrame | None = None,
    min_annotators: int = 3,
) -> RoleplayResult:
    """Agreement of the model labels, the human majority and the human baseline."""
    empty = pd.DataFrame()
    if annotations is None or annotations.empty:
        return RoleplayResult(G.agreement(models), empty, empty)
    rule = majority(annotations, items, min_annotators)
    result = G.agreement(pd.concat([models, rule.labels], ignore_index=True))
    slots = human_slots(rule.kept)
    matrix = G.kappa_matrix(slots) if len(slots) else empty
    per = G.per_persona_kappa(slots) if len(slots) else empty
    return RoleplayResult(result, matrix, per, _majority_notes(rule, min_annotators))


def model_labels_for(
    backends: Sequence[tuple[str | None, Backend]],
    items: pd.DataFrame,
    progress: bool | None = None,
) -> pd.DataFrame:
    """The labels of several named model raters over the same items."""
    frames = [model_item_labels(b, items, name, progress) for name, b in backends]
    return pd.concat(frames, ignore_index=True)
