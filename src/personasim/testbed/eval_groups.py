"""Groups of personas for ``testbed eval``: the attribute table of the persona tier (its
``fields``), ``--where`` restrictions (persona-bench's intersectionality) and the ``--by`` check.

Values are compared as text (``age`` 71 matches ``age=71``); a persona without an attribute
is in the group ``(none)`` of it and matches no ``--where`` on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.errors import ConfigError, did_you_mean
from personasim.testbed import common as C

NONE = "(none)"
"""The value of an attribute a persona does not have."""
SHOWN = 20
"""How many known values a hint lists at most."""


def _text(value: Any) -> str:
    """An attribute value as text; missing values become :data:`NONE`."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return NONE
    text = str(value).strip()
    return text if text else NONE


def persona_attributes(pool: pd.DataFrame) -> pd.DataFrame:
    """``person_id`` and one text column per attribute of the pool's ``fields``."""
    records = [
        {"person_id": str(row["person_id"]), **C.persona_fields(row)}
        for row in pool.to_dict("records")
    ]
    table = pd.DataFrame.from_records(records)
    for column in table.columns[1:]:
        table[column] = table[column].map(_text)
    return table


def _known(table: pd.DataFrame) -> list[str]:
    """The attribute names of an attribute table."""
    return [c for c in table.columns if c != "person_id"]


def check_attribute(table: pd.DataFrame, name: str, flag: str) -> None:
    """Refuse an attribute no persona has, naming the ones that exist."""
    known = _known(table)
    if name in known:
        return
    close = did_you_mean(name, known, otherwise="")
    listed = "attributes: " + (", ".join(sorted(known)) or "none (the personas have no fields)")
    raise ConfigError(
        f"{flag} {name}: no persona has this attribute",
        hint=f"{close} {listed}".strip(),
    )


def parse_where(conditions: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``ATTR=VALUE`` texts -> ``(attr, value)`` pairs."""
    out = []
    for condition in conditions:
        name, sep, value = condition.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigError(
                f"--where {condition!r}: not ATTR=VALUE",
                hint="e.g. --where sex=Female (repeat --where for an intersection)",
            )
        out.append((name.strip(), value.strip()))
    return tuple(out)


def select_personas(
    pool: pd.DataFrame, where: Sequence[tuple[str, str]] = (), by: Sequence[str] = ()
) -> pd.DataFrame:
    """The personas of ``pool`` matching every ``(attr, value)`` of ``where``, after checking
    that each attribute of ``where`` and ``by`` exists and each value is held by someone."""
    table = persona_attributes(pool)
    for name in by:
        check_attribute(table, name, "--by")
    keep = pd.Series(True, index=table.index)
    for name, value in where:
        check_attribute(table, name, "--where")
        values = sorted(set(table[name]) - {NONE})
        if value not in values:
            shown = ", ".join(values[:SHOWN]) + (" ..." if len(values) > SHOWN else "")
            raise ConfigError(
                f"--where {name}={value}: no persona has this value",
                hint=f"{name} values: {shown}",
            )
        keep &= table[name] == value
    if not keep.any():
        raise ConfigError(
            "--where " + " & ".join(f"{n}={v}" for n, v in where) + ": no persona matches all",
            hint="each value exists, but not together; drop a condition",
        )
    return pool[keep.to_numpy()].reset_index(drop=True)
