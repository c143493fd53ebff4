"""OpinionQA ground truth: weighted human answer distributions from a wave's ``responses.csv``,
and per-group answer counts from a CSV (:func:`load_counts_csv`).

Both return a truth table (:data:`personasim.truth.table.TRUTH_COLUMNS`); the overall population
is ``attribute = "overall"``, ``group = "all"``. The questions come from
:func:`personasim.survey.loaders.load_opinionqa` (``info.csv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from personasim.core.errors import DataError
from personasim.survey.loaders import load_opinionqa, read_csv, wave_dirs, wave_of
from personasim.survey.questions import Question, Survey
from personasim.truth.table import OVERALL, TRUTH_COLUMNS


def opinionqa_attributes(folder: str | Path) -> list[str]:
    """Demographic attribute names listed in a wave's ``metadata.csv`` (e.g. ``AGE``)."""
    path = Path(folder) / "metadata.csv"
    frame = read_csv(path)
    if "key" not in frame.columns:
        raise DataError(f"{path}: missing column 'key'")
    return [str(k) for k in frame["key"]]


def _answer_index(question: Question, values: pd.Series, path: Path) -> pd.Series:
    """Option text for each answer cell (text or Pew code), NaN kept for 'not asked'."""
    lookup: dict[str, str] = {}
    for o in question.options:
        lookup[o.text.casefold()] = o.text
        if o.code is not None:
            lookup[o.code] = o.text

    def norm(v: Any) -> str:
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip().casefold() if isinstance(v, str) else str(v)

    given = values.dropna()
    mapped = given.map(lambda v: lookup.get(norm(v), lookup.get(str(v).strip())))
    bad = sorted({str(v) for v in given[mapped.isna()]})
    if bad:
        raise DataError(
            f"{path}: field {question.id}: answers not among the options: {bad[:3]}",
            hint=f"options are {question.texts}",
        )
    return mapped


def opinionqa_truth(folder: str | Path, survey: Survey | None = None) -> pd.DataFrame:
    """Weighted human answer distributions of one wave from ``responses.csv``.

    ``responses.csv`` holds one row per respondent: a column per question key (answer text or
    Pew code; empty when not asked), demographic columns named as in ``metadata.csv`` and the
    weight column ``WEIGHT_W<wave>``. Returns a truth table (:data:`TRUTH_COLUMNS`) with the
    overall population and every demographic group present.
    """
    folder = Path(folder)
    path = folder / "responses.csv"
    if not path.is_file():
        raise DataError(
            f"{path}: OpinionQA responses.csv is missing (individual answers are needed for "
            "weighted distributions)",
            hint="use csv:PATH with per-group counts (opinionqa_group_counts_unweighted.csv.gz)",
        )
    survey = survey or load_opinionqa(folder)
    frame = read_csv(path, low_memory=False)
    wave = wave_of(folder)
    weight_col = f"WEIGHT_{wave}" if wave else ""
    if weight_col not in frame.columns:
        raise DataError(f"{path}: weight column {weight_col or 'WEIGHT_W<wave>'} is missing")
    weights = pd.to_numeric(frame[weight_col], errors="coerce")
    if weights.isna().any() or (weights < 0).any():
        raise DataError(f"{path}: field {weight_col}: weights must be non-negative numbers")
    meta = folder / "metadata.csv"
    attrs = [a for a in (opinionqa_attributes(folder) if meta.is_file() else []) if a in frame]
    parts = []
    for q in survey.questions:
        if q.id in frame.columns:
            parts.append(_weighted_counts(q, frame, weights, attrs, path))
    if not parts:
        raise DataError(f"{path}: no column matches a question key of {folder / 'info.csv'}")
    return pd.concat(parts, ignore_index=True)


def _weighted_counts(
    question: Question, frame: pd.DataFrame, weights: pd.Series, attrs: list[str], path: Path
) -> pd.DataFrame:
    """Weighted option totals of one question, overall and per demographic group."""
    answers = _answer_index(question, frame[question.id], path)
    data = pd.DataFrame({"option": answers, "weight": weights.loc[answers.index]})
    data = pd.concat([data, frame.loc[answers.index, attrs].astype(str)], axis=1)
    out = [
        data.groupby("option", as_index=False)["weight"]
        .sum()
        .assign(attribute=OVERALL[0], group=OVERALL[1])
    ]
    for attr in attrs:
        sums = data.groupby([attr, "option"], as_index=False)["weight"].sum()
        out.append(sums.rename(columns={attr: "group"}).assign(attribute=attr))
    result = pd.concat(out, ignore_index=True).assign(question_id=question.id)
    return result[TRUTH_COLUMNS]


def load_counts_csv(path: str | Path) -> pd.DataFrame:
    """Per-group answer counts -> a truth table (:data:`TRUTH_COLUMNS`).

    Required columns: a question column (``question_id`` or ``key``), ``option`` and a count
    column (``count`` or ``weight``); optional ``attribute`` and ``group`` (absent = overall).
    Gzipped files are read transparently.
    """
    path = Path(path)
    frame = read_csv(path, dtype={"group": str, "attribute": str})
    rename = {"key": "question_id", "count": "weight"}
    frame = frame.rename(columns={k: v for k, v in rename.items() if v not in frame.columns})
    missing = sorted({"question_id", "option", "weight"} - set(frame.columns))
    if missing:
        raise DataError(
            f"{path}: missing columns {missing}",
            hint="need question_id (or key), option, count (or weight); attribute, group optional",
        )
    if "attribute" not in frame.columns:
        frame["attribute"], frame["group"] = OVERALL
    elif "group" not in frame.columns:
        raise DataError(f"{path}: has 'attribute' but no 'group' column")
    weight = pd.to_numeric(frame["weight"], errors="coerce")
    if weight.isna().any() or (weight < 0).any():
        raise DataError(f"{path}: field count: values must be non-negative numbers")
    frame = frame.assign(weight=weight.astype(float), option=frame["option"].astype(str))
    return frame[TRUTH_COLUMNS].reset_index(drop=True)


def opinionqa_tables(path: str | Path, survey: Survey | None = None) -> pd.DataFrame:
    """:func:`opinionqa_truth` of every wave folder below ``path`` (or of ``path`` itself)."""
    tables = [opinionqa_truth(folder, survey) for folder in wave_dirs(Path(path))]
    return pd.concat(tables, ignore_index=True)
