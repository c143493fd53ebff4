"""The one validity rule of personas and answers; every stage, the manifest and the report ask it.

Personas. A persona row is *invalid* (never simulated, never scored, counted as excluded) when
its ``valid`` flag is False **or missing** (null, NaN, ``pd.NA``). A table without a ``valid``
column at all is taken as all valid.

Answers. A response row is *invalid* (never enters a distribution, counted as excluded) when its
``valid`` flag is False or missing, or when its ``valid_mass`` is at or below ``min_valid_mass``.
A table without a ``valid`` column is judged by the threshold alone; a missing ``valid_mass``
judges nothing (the flag still does). A row whose ``probs`` are missing, empty or of mass 0 has
no distribution (:func:`empty_probs`); the scorer then falls back on its ``answer``.

The null policy, and why: the pipeline writes ``valid`` as a plain bool on every row it makes
(``personasim personas`` and ``simulate``). A null therefore means that nobody recorded a
decision for that row (a hand-edited CSV, rows merged from a table of another schema), and the
project never uses what it has not checked: such a row is left out and shows up in the
``excluded`` counts, where a reader sees it, instead of silently entering a score. A *missing
column* is different: the whole table comes from outside the pipeline (a hand-written personas
table, a responses file written before the column existed) and states nothing about any row, so
the other checks decide.

Blank text is not an invalid persona but a broken table: the generator writes an empty text only
with ``valid = False``, so a row marked valid whose text is blank (:func:`blank_text`) is
refused with a :class:`~personasim.core.errors.DataError` by whoever needs the text (simulate,
the testbed).

Inputs may be pandas (Series, DataFrame) or Arrow (Array, ChunkedArray, Table, RecordBatch): the
streaming scorer judges Arrow record batches, the stages judge DataFrames; both give a numpy
bool array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from personasim.core.errors import DataError
from personasim.core.keys import PERSONA_KEY

Column = pd.Series | pa.Array | pa.ChunkedArray
Frame = pd.DataFrame | pa.Table | pa.RecordBatch


def said_valid(flags: Column | None, rows: int) -> np.ndarray:
    """True where a ``valid`` flag says True; False where it is False or missing; all True when
    there is no column (``flags`` None)."""
    if flags is None:
        return np.ones(rows, dtype=bool)
    if isinstance(flags, pd.Series):
        try:
            flags = pa.array(flags.astype("boolean"), from_pandas=True)
        except (TypeError, ValueError) as error:
            raise DataError(f"column 'valid' must hold True/False ({error})") from None
    try:
        cast = pc.cast(flags, pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise DataError(f"column 'valid' must hold True/False ({error})") from None
    return np.asarray(pc.fill_null(cast, False).to_numpy(zero_copy_only=False), dtype=bool)


def enough_mass(valid_mass: Any, min_valid_mass: float) -> Any:
    """Whether a ``valid_mass`` (a number or an array) is above ``min_valid_mass``: the answer
    rule as the simulator applies it to a fresh row (NaN is not above anything)."""
    return np.asarray(valid_mass, dtype=float) > min_valid_mass


def invalid_answers(
    rows: int, valid: Column | None, valid_mass: Column | None, min_valid_mass: float
) -> np.ndarray:
    """True for the answers that must not enter a distribution (see the module docstring);
    ``valid`` / ``valid_mass`` None: the column is absent."""
    bad = ~said_valid(valid, rows)
    if valid_mass is not None:
        mass = _numbers(valid_mass)
        bad |= ~np.isnan(mass) & ~enough_mass(mass, min_valid_mass)
    return bad


def invalid_answer_rows(responses: Frame, min_valid_mass: float = 0.0) -> np.ndarray:
    """:func:`invalid_answers` of a responses table (pandas or Arrow)."""
    return invalid_answers(
        _rows(responses),
        _column(responses, "valid"),
        _column(responses, "valid_mass"),
        min_valid_mass,
    )


def invalid_personas(personas: Frame) -> np.ndarray:
    """True for the persona rows never simulated or scored (see the module docstring)."""
    return ~said_valid(_column(personas, "valid"), _rows(personas))


def valid_personas(personas: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``personas`` that :func:`invalid_personas` keeps."""
    return personas[~invalid_personas(personas)]


def excluded_personas(personas: pd.DataFrame) -> dict[tuple[str, str], int]:
    """Invalid persona rows per (tier, generator), for the stage summaries and the manifest."""
    bad = personas[invalid_personas(personas)]
    counts = bad.groupby([bad["tier"].astype(str), bad["generator"].astype(str)]).size()
    return {(str(t), str(g)): int(n) for (t, g), n in counts.items()}


def invalid_persona_keys(personas: pd.DataFrame | None) -> set[tuple[str, ...]]:
    """(person_id, tier, generator) of the invalid personas, as text (for dropping their
    answers from a responses table)."""
    if personas is None:
        return set()
    bad = personas[invalid_personas(personas)]
    return set(zip(*(bad[c].astype(str) for c in PERSONA_KEY), strict=True))


def answers_of_invalid_personas(
    responses: pd.DataFrame, personas: pd.DataFrame | None
) -> np.ndarray:
    """True for the response rows whose persona (:data:`PERSONA_KEY`) is invalid in
    ``personas`` (None: no personas table, nothing to drop)."""
    wrong = invalid_persona_keys(personas)
    if not wrong:
        return np.zeros(len(responses), dtype=bool)
    keys = pd.MultiIndex.from_arrays([responses[c].astype(str) for c in PERSONA_KEY])
    return np.asarray(keys.isin(list(wrong)), dtype=bool)


def empty_probs(probs: Column) -> np.ndarray:
    """True where ``probs`` is missing, an empty list or a list of total 0 (no distribution)."""
    if isinstance(probs, pd.Series):
        return probs.map(_no_mass).to_numpy(dtype=bool)
    given = pc.fill_null(pc.greater(pc.list_value_length(probs), 0), False)
    out = ~np.asarray(given.to_numpy(zero_copy_only=False), dtype=bool)
    sums = [_no_mass(p) for p in probs.filter(given).to_pylist()]
    out[~out] = sums
    return out


def blank_text(text: pd.Series) -> np.ndarray:
    """True where a persona text is missing or whitespace only."""
    return (text.isna() | (text.astype(str).str.strip() == "")).to_numpy(dtype=bool)


def _no_mass(probs: Any) -> bool:
    """A single ``probs`` value without a distribution (missing, empty, total not above 0)."""
    if probs is None or (np.ndim(probs) == 0 and pd.isna(probs)):
        return True
    values = np.asarray(probs, dtype=float)
    return values.size == 0 or not values.sum() > 0


def _rows(frame: Frame) -> int:
    """Row count of a pandas or Arrow table."""
    return len(frame) if isinstance(frame, pd.DataFrame) else frame.num_rows


def _column(frame: Frame, name: str) -> Column | None:
    """Column ``name`` of a pandas or Arrow table, None when absent."""
    if isinstance(frame, pd.DataFrame):
        return frame[name] if name in frame.columns else None
    return frame.column(name) if name in frame.schema.names else None


def _numbers(column: Column) -> np.ndarray:
    """A numeric column as float64; text that is no number and missing values as NaN."""
    if isinstance(column, pd.Series):
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    try:
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(float)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pd.to_numeric(column.to_pandas(), errors="coerce").to_numpy(float)
