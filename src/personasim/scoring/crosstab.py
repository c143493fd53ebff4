"""Cross-tabs: weighted answer shares per question by population or persona attributes.

For each question x tier x models and each value of each ``by`` attribute, the weighted mean of
the persons' answer distributions (``probs``), a percentile bootstrap CI per option (resampling
the persons of the cell, who carry their weights:
:func:`personasim.scoring.metrics.bootstrap_distributions`), the cell count ``n`` and ``small``
when ``n`` is below ``min_n``.

Attributes are looked up in this order: a column of the responses or persons table; a derived
bracket (:data:`BRACKETS`: ``age_group`` as Pew's 18-29 / 30-49 / 50-64 / 65+ from
:func:`personasim.survey.groups.age_group`, ``income_bracket``); an OpinionQA attribute
(``AGE``, ``RACE``, ``EDUCATION``, ``CREGION``, ... via
:func:`personasim.survey.groups.derive_group`); a calibration variable (``age_band``,
``race_ethnicity``, ``party`` via :func:`personasim.calibrate.targets.variable_values`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from personasim.calibrate.targets import variable_values
from personasim.core.errors import ConfigError, DataError, did_you_mean
from personasim.core.keys import MODEL_KEY
from personasim.scoring import metrics as M
from personasim.survey.groups import DERIVATIONS, age_group, derive_group
from personasim.survey.questions import Survey

if TYPE_CHECKING:
    from personasim.truth import Truth

CROSSTAB_COLUMNS = [
    "question_id",
    *MODEL_KEY,
    "attribute",
    "group",
    "option",
    "share",
    "ci_low",
    "ci_high",
    "n",
    "weight_sum",
    "small",
    "truth_share",
    "truth_ci_low",
    "truth_ci_high",
    "truth_n_eff",
]
TRUTH_SHARE_COLUMNS = ["truth_share", "truth_ci_low", "truth_ci_high", "truth_n_eff"]
"""The real side of a cell: the truth's share of the option in the group and, when the truth is
a respondent sample with Kish's effective size ``truth_n_eff`` (microdata), its 95% Wilson
interval (:func:`wilson_interval`); NaN where the truth has no such group or no sample size."""
Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile (two-sided 95% intervals)."""
MIN_N = 30
"""Default minimum cell count: cells with fewer persons are flagged ``small``."""
ELECTION_BY = ("age_group", "sex", "race_ethnicity", "education", "state")
"""The attributes an election survey is cross-tabulated by in a study (vote by age group, sex,
race x Hispanic origin, education and state)."""
INCOME_EDGES = (0, 25_000, 50_000, 75_000, 100_000, 150_000)
INCOME_LABELS = ("<25k", "25-50k", "50-75k", "75-100k", "100-150k", "150k+")


def income_bracket(income: pd.Series) -> pd.Series:
    """Personal income in brackets (``<25k`` ... ``150k+``, 2023 dollars; negative -> <25k)."""
    value = pd.to_numeric(income, errors="coerce").clip(lower=0)
    cut = pd.cut(value, [*INCOME_EDGES, np.inf], right=False, labels=INCOME_LABELS)
    return cut.astype(object).where(cut.notna(), None)


BRACKETS: dict[str, tuple[str, Callable[[pd.Series], pd.Series]]] = {
    "age_group": ("age", age_group),
    "income_bracket": ("income", income_bracket),
}
"""Derived attribute -> (column it comes from, how)."""


def attribute_values(frame: pd.DataFrame, attribute: str) -> pd.Series:
    """Each row's value of ``attribute`` (see the module docstring for the lookup order)."""
    if attribute in frame.columns:
        return frame[attribute].astype(object).where(frame[attribute].notna(), None)
    if attribute in BRACKETS and BRACKETS[attribute][0] in frame.columns:
        source, derive = BRACKETS[attribute]
        return derive(frame[source])
    derived = derive_group(frame, attribute) if attribute.isupper() else None
    if derived is None:
        derived = variable_values(frame, attribute)
    if derived is None:
        known = [*frame.columns, *BRACKETS, *DERIVATIONS, "age_band", "race_ethnicity", "party"]
        raise ConfigError(
            f"crosstab: no attribute {attribute!r} in the responses or persons",
            hint=did_you_mean(attribute, known),
        )
    return derived


def prepare(
    responses: pd.DataFrame,
    persons: pd.DataFrame | None = None,
    weights: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Responses with person columns and ``weight`` joined (weights beat the persons' weight)."""
    from personasim.calibrate.weights import attach_weights

    missing = [c for c in ["person_id", "question_id", "probs"] if c not in responses.columns]
    if missing:
        raise DataError(
            f"responses lack column {missing[0]!r}",
            hint="a responses table from `personasim simulate`",
        )
    out = responses.copy()
    for column in MODEL_KEY:
        out[column] = out[column].fillna("").astype(str) if column in out else ""
    if persons is not None:
        extra = persons.drop_duplicates("person_id")
        keep = ["person_id", *[c for c in extra.columns if c not in out.columns]]
        out = out.merge(extra[keep], on="person_id", how="left")
    if weights is not None:
        out, _ = attach_weights(out, weights, persons)
    if "weight" not in out.columns:
        out["weight"] = 1.0
    out["weight"] = pd.to_numeric(out["weight"], errors="coerce").fillna(0.0).astype(float)
    return out


def _option_names(question_id: str, k: int, survey: Survey | None) -> list[str]:
    """Option texts from the survey, else ``option 1`` ... ``option k``."""
    if survey is not None and question_id in survey.ids:
        texts = survey.question(question_id).texts
        if len(texts) == k:
            return list(texts)
    return [f"option {i + 1}" for i in range(k)]


def _cell_rows(
    probs: np.ndarray, w: np.ndarray, names: list[str], n_boot: int, seed: int, min_n: int
) -> list[dict[str, Any]]:
    """Rows (one per option) of one cell."""
    share = M.group_distribution(probs, w) if w.sum() > 0 else np.full(len(names), np.nan)
    if n_boot and w.sum() > 0:
        reps = M.bootstrap_distributions(probs, w, n_boot, seed)
        reps = reps[np.isfinite(reps).all(axis=1)]
        low, high = (
            np.quantile(reps, [0.025, 0.975], axis=0) if len(reps) else (share * np.nan,) * 2
        )
    else:
        low = high = np.full(len(names), np.nan)
    n = len(probs)
    return [
        {
            "option": name,
            "share": float(share[i]),
            "ci_low": float(low[i]),
            "ci_high": float(high[i]),
            "n": n,
            "weight_sum": float(w.sum()),
            "small": n < min_n,
        }
        for i, name in enumerate(names)
    ]


def wilson_interval(
    share: ArrayLike, n_eff: ArrayLike, z: float = Z95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a weighted share with Kish's effective sample size ``n_eff`` in
    place of the count: center ``(p + z^2 / 2m) / (1 + z^2 / m)``, half-width
    ``z / (1 + z^2 / m) * sqrt(p (1 - p) / m + z^2 / 4m^2)`` with ``m = n_eff``. NaN where
    ``n_eff`` is missing or not positive. Unlike ``p +- z se`` it stays inside [0, 1] and is not
    empty at a share of 0 or 1 (small groups)."""
    p = np.asarray(share, dtype=float)
    m = np.asarray(n_eff, dtype=float)
    m = np.where(np.isfinite(m) & (m > 0), m, np.nan)
    shrink = 1 + z**2 / m
    center = (p + z**2 / (2 * m)) / shrink
    half = z / shrink * np.sqrt(p * (1 - p) / m + z**2 / (4 * m**2))
    return np.clip(center - half, 0.0, 1.0), np.clip(center + half, 0.0, 1.0)


def truth_shares(truth: Truth) -> pd.DataFrame:
    """The truth's answer shares per question, attribute, group and option text
    (:data:`TRUTH_SHARE_COLUMNS`)."""
    table = truth.table.copy()
    totals = table.groupby(["question_id", "attribute", "group"])["weight"].transform("sum")
    table["truth_share"] = table["weight"] / totals.where(totals > 0)
    table["truth_n_eff"] = table["n_eff"] if "n_eff" in table.columns else np.nan
    keys = ["question_id", "attribute", "group", "option"]
    out = (
        table.astype({k: str for k in keys})
        .groupby(keys, as_index=False)
        .agg(truth_share=("truth_share", "sum"), truth_n_eff=("truth_n_eff", "first"))
    )
    out["truth_ci_low"], out["truth_ci_high"] = wilson_interval(
        out["truth_share"], out["truth_n_eff"]
    )
    return out[[*keys, *TRUTH_SHARE_COLUMNS]]


def crosstab(
    responses: pd.DataFrame,
    by: list[str],
    persons: pd.DataFrame | None = None,
    weights: pd.DataFrame | None = None,
    survey: Survey | None = None,
    n_boot: int = 200,
    min_n: int = MIN_N,
    seed: int = 0,
    truth: Truth | None = None,
) -> pd.DataFrame:
    """The long cross-tab table (:data:`CROSSTAB_COLUMNS`), overall group included; with a
    ``truth`` (:func:`personasim.truth.load_truth`), the real share of each option in the
    same group beside the simulated one (``truth_share``, NaN where the truth has no such
    group; the question's options are named by the truth's survey), with its interval when the
    truth is a respondent sample (:data:`TRUTH_SHARE_COLUMNS`)."""
    survey = truth.survey if truth is not None and survey is None else survey
    rows_in = prepare(responses, persons, weights)
    rows_in = rows_in[rows_in["probs"].map(lambda p: p is not None and len(p) > 0)]
    if rows_in.empty:
        raise DataError("no response rows with probs to cross-tabulate")
    columns = {
        a: v.astype(str).where(v.notna())
        for a in by  # as text once, not per cell
        for v in [attribute_values(rows_in, a)]
    }
    out: list[dict[str, Any]] = []
    for keys, cell in rows_in.groupby(["question_id", *MODEL_KEY], sort=True):
        labels = dict(zip(["question_id", *MODEL_KEY], keys, strict=True))
        mat = np.vstack(cell["probs"].map(lambda p: np.asarray(p, float)).to_numpy())
        names = _option_names(str(keys[0]), mat.shape[1], survey)
        w = cell["weight"].to_numpy(float)
        parts = [("overall", "all", np.arange(len(cell)))]
        for attribute, values in columns.items():
            v = values.loc[cell.index].reset_index(drop=True)
            parts += [(attribute, str(g), rows) for g, rows in v.groupby(v).indices.items()]
        for attribute, group, rows in parts:
            for row in _cell_rows(mat[rows], w[rows], names, n_boot, seed, min_n):
                out.append({**labels, "attribute": attribute, "group": group, **row})
    table = pd.DataFrame(out, columns=[c for c in CROSSTAB_COLUMNS if c not in TRUTH_SHARE_COLUMNS])
    if truth is None:
        return table.assign(**dict.fromkeys(TRUTH_SHARE_COLUMNS, np.nan))
    keys = ["question_id", "attribute", "group", "option"]
    return table.merge(truth_shares(truth), on=keys, how="left")[CROSSTAB_COLUMNS]


def study_attributes(truth: Truth, persons: pd.DataFrame) -> list[str]:
    """What a study cross-tabulates a scored survey by: :data:`ELECTION_BY` for elections, else
    the truth's own group attributes (OpinionQA's ``AGE``, ``RACE``, ...) that ``persons`` can
    give, so each cell has the real group's shares beside it."""
    if truth.kind == "elections":
        return list(ELECTION_BY)
    wanted = [str(a) for a in truth.table["attribute"].unique() if str(a) != "overall"]
    return [a for a in wanted if _derivable(persons, a)]


def _derivable(persons: pd.DataFrame, attribute: str) -> bool:
    """True when :func:`attribute_values` finds ``attribute`` for ``persons``."""
    try:
        attribute_values(persons.head(1), attribute)
    except ConfigError:
        return False
    return True


def format_crosstab(table: pd.DataFrame, min_n: int) -> str:
    """Printed form: one line per cell and option, small cells marked with ``*``."""
    with pd.option_context("display.width", 160, "display.max_rows", 400, "display.precision", 3):
        shown = table.assign(small=table["small"].map({True: "*", False: ""}))
        text = shown.drop(columns=["weight_sum"]).to_string(index=False)
    return text + f"\n* fewer than {min_n} persons in the cell"
