"""Drift of LLM-imputed attributes: the objective tier's LLM-filled values against the census
values drawn for the same persons.

Per attribute: the total variation distance between the distribution of the LLM's values and the
distribution of the census values over the same persons, and the share of persons whose value the
LLM changed (:func:`personasim.personas.generate.attribute_drift` decides equality). The meta
attributes the LLM is shown (age, sex, race, state) are pinned to the census and left out.
Numbers (income) are compared in brackets for the distribution, exactly for "changed".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from personasim.core.validity import valid_personas
from personasim.personas.generate import attribute_drift
from personasim.personas.meta import DEFAULT_ATTRIBUTES
from personasim.scoring.metrics import total_variation

DRIFT_COLUMNS = ["tier", "generator", "attribute", "n", "tv", "changed", "top_llm", "top_census"]
INCOME_EDGES = (0, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000)


def bucket(key: str, value: Any) -> str:
    """A value as a category: income in brackets, everything else trimmed and case-folded."""
    if key == "income":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return "unknown"
        low = max(e for e in INCOME_EDGES if e <= max(number, 0))
        higher = [e for e in INCOME_EDGES if e > low]
        return f"${low // 1000}k-{higher[0] // 1000}k" if higher else f"${low // 1000}k+"
    return " ".join(str(value).split()).casefold()


def sample_tv(a: Sequence[str], b: Sequence[str]) -> float:
    """Total variation distance (:func:`personasim.scoring.metrics.total_variation`) between the
    empirical distributions of two non-empty samples of categories."""
    pa, pb = Counter(a), Counter(b)
    keys = sorted(set(pa) | set(pb))
    return total_variation([pa[k] for k in keys], [pb[k] for k in keys])


def _pairs(personas: pd.DataFrame, tiers: Sequence[str]) -> pd.DataFrame:
    """One row per valid persona x attribute with the LLM's and the census value."""
    rows = valid_personas(personas)
    rows = rows[rows["tier"].isin(tiers)]
    records = []
    for r in rows.itertuples(index=False):
        fields, census = json.loads(r.fields or "{}"), json.loads(r.census or "{}")
        for key, truth in census.items():
            if key in DEFAULT_ATTRIBUTES or key not in fields or truth is None:
                continue
            records.append(
                {
                    "tier": r.tier,
                    "generator": r.generator,
                    "attribute": key,
                    "llm": bucket(key, fields[key]),
                    "census": bucket(key, truth),
                }
            )
    return pd.DataFrame(records, columns=["tier", "generator", "attribute", "llm", "census"])


def _mode(values: pd.Series) -> str:
    """The most frequent value with its share, e.g. ``private (60%)``."""
    counts = values.value_counts()
    return f"{counts.index[0]} ({counts.iloc[0] / len(values):.0%})" if len(values) else ""


def imputation_drift(personas: pd.DataFrame, tiers: Sequence[str] = ("objective",)) -> pd.DataFrame:
    """Per tier x generator x attribute: ``n``, ``tv`` (LLM vs census distribution),
    ``changed`` (share of persons whose value the LLM changed) and the most common value of
    each side."""
    pairs = _pairs(personas, tiers)
    if pairs.empty:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    keys = ["tier", "generator", "attribute"]
    rows = []
    for (tier, gen, attr), cell in pairs.groupby(keys, sort=False):
        rows.append(
            {
                "tier": tier,
                "generator": gen,
                "attribute": attr,
                "n": len(cell),
                "tv": sample_tv(list(cell["llm"]), list(cell["census"])),
                "top_llm": _mode(cell["llm"]),
                "top_census": _mode(cell["census"]),
            }
        )
    frame = pd.DataFrame(rows)
    agree = attribute_drift(personas, tiers).rename(columns={"agree": "same"})
    frame = frame.merge(agree[[*keys, "same"]], on=keys, how="left")
    frame["changed"] = 1.0 - frame.pop("same")
    order = ["tier", "generator", "tv"]
    return frame[DRIFT_COLUMNS].sort_values(order, ascending=[True, True, False], ignore_index=True)
