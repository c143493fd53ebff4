"""The ``meta`` persona tier: a short profile written from census attributes only, no LLM.

A population row (``population.parquet``: ``person_id, state, weight, age, sex, race, ...``)
becomes a few ``- Label: value`` lines, e.g.::

    - Age: 46 years
    - Sex: Female
    - Race: White
    - State of residence: Ohio

The attributes shown are configurable; any population column can be used, with a readable label
derived from its name when personasim has none of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.core.errors import ConfigError, DataError
from personasim.core.states import state_name

#: Tier name and generator name of census-only personas.
META_TIER = "meta"
META_GENERATOR = "census"
#: Attributes shown by default (the paper's meta persona: age, sex, race, state).
DEFAULT_ATTRIBUTES: tuple[str, ...] = ("age", "sex", "race", "state")

_LABELS = {
    "age": "Age",
    "sex": "Sex",
    "race": "Race",
    "hispanic": "Hispanic origin",
    "state": "State of residence",
    "education": "Highest education",
    "income": "Yearly personal income",
    "employment_status": "Work status",
    "marital_status": "Marital status",
    "place_of_birth": "Born in",
}


def _value_text(attribute: str, value: Any) -> str:
    """A readable rendering of one attribute value."""
    if attribute == "age":
        return f"{int(value)} years"
    if attribute == "state":
        return state_name(value)
    if attribute == "income" and isinstance(value, int | float):
        return f"${float(value):,.0f}"
    return str(value)


def attribute_label(attribute: str) -> str:
    """The label shown before an attribute's value (``household_language`` -> ``Household
    language``)."""
    return _LABELS.get(attribute, attribute.replace("_", " ").strip().capitalize())


def meta_persona_text(
    row: Mapping[str, Any], attributes: Sequence[str] = DEFAULT_ATTRIBUTES
) -> str:
    """The meta-tier profile of one person: one ``- Label: value`` line per attribute.

    Missing or empty values are left out; an attribute the row does not have at all is an error.
    """
    lines = []
    for attribute in attributes:
        if attribute not in row:
            raise ConfigError(
                f"person has no attribute {attribute!r}",
                hint=f"available: {', '.join(map(str, row.keys()))}",
            )
        value = row[attribute]
        if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
            continue
        lines.append(f"- {attribute_label(attribute)}: {_value_text(attribute, value)}")
    return "\n".join(lines)


def meta_personas(
    population: pd.DataFrame,
    attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
    source: str | Path = "population table",
) -> pd.DataFrame:
    """A personas table (``person_id, tier, generator, text`` + the population's columns) for the
    meta tier, one row per person of ``population``."""
    needed = ["person_id", *attributes]
    missing = [c for c in needed if c not in population.columns]
    if missing:
        raise DataError(
            f"{source}: missing column {missing[0]!r}",
            hint=f"a population table needs {', '.join(needed)} (see `personasim population`)",
        )
    records = population.to_dict("records")
    texts = [meta_persona_text(r, attributes) for r in records]
    out = population.copy()
    for column in ("tier", "generator", "text"):
        if column in out.columns:
            out = out.drop(columns=column)
    return out.assign(tier=META_TIER, generator=META_GENERATOR, text=texts)
