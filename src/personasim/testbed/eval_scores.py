"""Scores of ``testbed eval`` rows: the share of answers needing no revision, the pass@k curve
and the score per group of personas, each with a percentile bootstrap CI over personas (one
persona's mean is one unit).

pass@k uses the unbiased estimator of Chen et al. (2021): for an item with ``n`` judged samples
of which ``c`` need no revision, ``pass@k = 1 - C(n - c, k) / C(n, k)``, the chance that ``k``
samples drawn without replacement from the ``n`` hold at least one fine answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from personasim.testbed import common as C

ITEM = ["person_id", "prompt_id"]
"""The columns that name one item (one persona x prompt) of a model and mode."""
SUMMARY_COLUMNS = ["model", "mode", "score", "ci_low", "ci_high", "n_personas", "n_items", "k"]
PASS_COLUMNS = ["model", "mode", "k", "pass_at_k", "ci_low", "ci_high", "n_personas", "n_items"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one item with ``n`` samples, ``c`` of them fine (``k <= n``)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def _counts(group: pd.DataFrame) -> pd.DataFrame:
    """Per item: person_id, prompt_id, ``n`` samples and ``c`` fine ones."""
    fine = group["fine"].astype(bool)
    out = fine.groupby([group["person_id"], group["prompt_id"]], sort=False).agg(["size", "sum"])
    return out.rename(columns={"size": "n", "sum": "c"}).reset_index()


def _by_persona(items: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Mean of the per-item ``values`` for each persona (the bootstrap's units)."""
    return pd.Series(values).groupby(items["person_id"].to_numpy(), sort=False).mean().to_numpy()


def _scored(group: pd.DataFrame, n_boot: int, seed: int) -> dict[str, float | int]:
    """Share fine (pass@1) of ``group`` with its CI, persona and item counts."""
    items = _counts(group)
    score, low, high = C.bootstrap_mean(
        _by_persona(items, (items["c"] / items["n"]).to_numpy(float)), n_boot, seed
    )
    return {
        "score": score,
        "ci_low": low,
        "ci_high": high,
        "n_personas": int(items["person_id"].nunique()),
        "n_items": len(items),
    }


def summarize_eval(rows: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Share of answers needing no revision per model and mode (over every sample, so pass@1
    when there are several), CI over personas; ``k`` is the number of samples per item."""
    out = []
    for (model, mode), group in rows.groupby(["model", "mode"], sort=False):
        k = int(group.groupby(ITEM)["fine"].size().min())
        out.append({"model": model, "mode": mode, **_scored(group, n_boot, seed), "k": k})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def pass_at_k_curve(rows: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """pass@1 .. pass@n per model and mode (``n`` = fewest samples of an item), each the mean
    over personas of their items' unbiased pass@k, with a bootstrap CI over personas."""
    out = []
    for (model, mode), group in rows.groupby(["model", "mode"], sort=False):
        items = _counts(group)
        n_personas = int(items["person_id"].nunique())
        for k in range(1, int(items["n"].min()) + 1):
            values = [
                pass_at_k(int(n), int(c), k) for n, c in zip(items["n"], items["c"], strict=True)
            ]
            value, low, high = C.bootstrap_mean(
                _by_persona(items, np.asarray(values)), n_boot, seed
            )
            out.append(
                {
                    "model": model,
                    "mode": mode,
                    "k": k,
                    "pass_at_k": value,
                    "ci_low": low,
                    "ci_high": high,
                    "n_personas": n_personas,
                    "n_items": len(items),
                }
            )
    return pd.DataFrame(out, columns=PASS_COLUMNS)


def score_by_group(
    rows: pd.DataFrame,
    attributes: pd.DataFrame,
    by: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """The score per model, mode and group of personas sharing the values of ``by`` (their
    intersection), from ``attributes`` (person_id + one text column per attribute). A group of
    one persona has no interval. An attribute named like a result column (``model``,
    ``score``, ...) gets the column :func:`group_column` names, so neither hides the other."""
    group_of = attributes.set_index("person_id")[list(by)].apply(tuple, axis=1)
    columns = [group_column(name) for name in by]
    out = []
    for (model, mode), runs in rows.groupby(["model", "mode"], sort=False):
        for key, group in runs.groupby(runs["person_id"].map(group_of), sort=True):
            values = dict(zip(columns, key, strict=True))
            out.append({"model": model, "mode": mode, **values, **_scored(group, n_boot, seed)})
    return pd.DataFrame(out, columns=["model", "mode", *columns, *SUMMARY_COLUMNS[2:-1]])


def group_column(attribute: str) -> str:
    """The by-group table's column of an attribute: its name, or ``attribute:NAME`` when the
    name is one of the table's own columns (:data:`SUMMARY_COLUMNS`)."""
    return f"attribute:{attribute}" if attribute in SUMMARY_COLUMNS else attribute
