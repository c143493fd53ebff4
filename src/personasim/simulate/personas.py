"""The personas a simulation reads: the checks of the table (one line naming the bad row) and
the selection of valid personas of the chosen tiers (:mod:`personasim.core.validity`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.core.errors import ConfigError, DataError
from personasim.core.keys import PERSONA_KEY
from personasim.core.validity import (
    blank_text,
    excluded_personas,
    invalid_personas,
)

PERSONA_COLUMNS = [*PERSONA_KEY, "text"]


def drop_invalid_personas(
    personas: pd.DataFrame,
) -> tuple[pd.DataFrame, dict[tuple[str, str], int]]:
    """The persona rows to simulate and, per (tier, generator), how many invalid rows were left
    out (the rule and its null policy: :mod:`personasim.core.validity`)."""
    return personas[~invalid_personas(personas)], excluded_personas(personas)


CHECK_ROWS = 20_000
"""Persona texts checked at once (a Python copy, or a stripped copy, of every text at once would
double the memory of a large table)."""


def _not_text(part: pd.Series) -> np.ndarray:
    """Which values are neither text nor missing (none in a column of the string dtype)."""
    if isinstance(part.dtype, pd.StringDtype):
        return np.zeros(len(part), dtype=bool)
    text = part.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    return ~(text | part.isna().to_numpy(dtype=bool))  # isna: None, NaN and pd.NA alike


def _first_where(text: pd.Series, test: Callable[[pd.Series], np.ndarray]) -> int | None:
    """Position of the first value ``test`` flags, checking ``CHECK_ROWS`` values at a time."""
    for start in range(0, len(text), CHECK_ROWS):
        flagged = test(text.iloc[start : start + CHECK_ROWS])
        if flagged.any():
            return start + int(np.argmax(flagged))
    return None


def check_personas(personas: pd.DataFrame, source: str | Path = "personas table") -> pd.DataFrame:
    """Check the required columns and text of a personas table; return it with clean types."""
    missing = [c for c in PERSONA_COLUMNS if c not in personas.columns]
    if missing:
        raise DataError(
            f"{source}: missing column {missing[0]!r}",
            hint=f"a personas table needs {', '.join(PERSONA_COLUMNS)}",
        )
    wrong = _first_where(personas["text"], _not_text)
    if wrong is not None:
        pid, value = personas[["person_id", "text"]].iloc[wrong]
        raise DataError(
            f"{source}: column 'text' must hold text, but person_id {pid} has "
            f"{type(value).__name__} {value}",
            hint="a personas table comes from `personasim personas`",
        )
    empty = _first_where(personas["text"], blank_text)
    if empty is not None:
        pid = personas["person_id"].iloc[empty]
        raise DataError(f"{source}: column 'text' is empty for person_id {pid}")
    dupes = personas.duplicated(list(PERSONA_KEY))
    if dupes.any():
        pid = personas.loc[dupes, "person_id"].iloc[0]
        raise DataError(f"{source}: person_id {pid} appears twice for the same tier and generator")
    return personas.reset_index(drop=True)


def select_personas(
    personas: pd.DataFrame, tiers: Sequence[str] | None = None, limit_persons: int | None = None
) -> pd.DataFrame:
    """Keep the given tiers and the first ``limit_persons`` distinct persons (in table order)."""
    out = personas
    if tiers:
        known = set(out["tier"].astype(str))
        unknown = [t for t in tiers if t not in known]
        if unknown:
            raise ConfigError(
                f"no personas of tier {unknown[0]!r}", hint=f"tiers present: {sorted(known)}"
            )
        out = out[out["tier"].astype(str).isin(list(tiers))]
    if limit_persons is not None:
        keep = pd.unique(out["person_id"])[:limit_persons]
        out = out[out["person_id"].isin(keep)]
    return out.reset_index(drop=True)
