"""OpinionQA demographic groups derived from census attributes, so census persons can be scored
per group against Pew's answers.

OpinionQA (Pew American Trends Panel) names its groups in its own vocabulary: ``AGE`` ``18-29``,
``RACE`` ``Hispanic``, ``CREGION`` ``South``, ... A census population has ``age`` 47, ``race``
``White`` plus ``hispanic``, ``state`` ``TX``. Matching the columns by name alone would compare
different things (census ``White`` includes Hispanic Whites; ages would never match a bracket), so
:func:`with_opinionqa_groups` adds one column per OpinionQA attribute, derived as follows:

============  ===================================================================================
attribute     derived from
============  ===================================================================================
AGE           ``age``: 18-29, 30-49, 50-64, 65+ (under 18: no group)
SEX           ``sex``: Male, Female
RACE          ``hispanic`` and ``race``: Hispanic or Latino of any race -> Hispanic; otherwise
              White, Black (Black or African American), Asian, Mixed Race (Two or More Races),
              Other (American Indian and Alaska Native, Native Hawaiian and Other Pacific
              Islander, Some Other Race)
EDUCATION     ``education``: Less than HS -> Less than high school; HS Graduate -> High school
              graduate; Bachelor's -> College graduate/some postgrad; Graduate Degree ->
              Postgraduate. Some College has no group: the census category joins Pew's "Some
              college, no degree" and "Associate's degree".
CREGION       ``state``: the Census Bureau's four regions
RACE_SEX      both, as ``RACE | SEX`` (``White | Female``); any ``A_B`` of derivable parts alike
INCOME_BAND   ``income`` (personal income, 2023 dollars): <30k, 30-50k, 50-100k, 100-150k, 150k+.
              Not a Pew attribute: a microdata mapping (:mod:`personasim.truth.microdata`) maps a
              survey's income codes onto these bands.
============  ===================================================================================

Not derived: ``INCOME`` (Pew asks family income; the population carries personal income),
``POLPARTY``, ``POLIDEOLOGY``, ``RELIG`` and the other attitudes; a persons table that has a
column with one of these names (and Pew's group labels as values) is scored on it as it is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from personasim.core.states import state_code

REGIONS: dict[str, tuple[str, ...]] = {
    "Northeast": ("CT", "ME", "MA", "NH", "RI", "VT", "NJ", "NY", "PA"),
    "Midwest": ("IL", "IN", "MI", "OH", "WI", "IA", "KS", "MN", "MO", "NE", "ND", "SD"),
    "South": (
        "DE",
        "DC",
        "FL",
        "GA",
        "MD",
        "NC",
        "SC",
        "VA",
        "WV",
        "AL",
        "KY",
        "MS",
        "TN",
        "AR",
        "LA",
        "OK",
        "TX",
    ),
    "West": ("AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY", "AK", "CA", "HI", "OR", "WA"),
}
"""The Census Bureau's four regions by state postal code (DC counts as a state)."""

RACE_GROUPS = {
    "White": "White",
    "Black or African American": "Black",
    "Asian": "Asian",
    "Two or More Races": "Mixed Race",
    "American Indian and Alaska Native": "Other",
    "Native Hawaiian and Other Pacific Islander": "Other",
    "Some Other Race": "Other",
}
"""Census race (non-Hispanic persons) -> OpinionQA ``RACE`` group."""

EDUCATION_GROUPS = {
    "Less than HS": "Less than high school",
    "HS Graduate": "High school graduate",
    "Bachelor's": "College graduate/some postgrad",
    "Graduate Degree": "Postgraduate",
}
"""Census education -> OpinionQA ``EDUCATION`` group (``Some College`` has none)."""


def age_group(age: pd.Series) -> pd.Series:
    """Pew's age brackets (18-29, 30-49, 50-64, 65+); missing below 18."""
    years = pd.to_numeric(age, errors="coerce")
    bins = [18, 30, 50, 65, np.inf]
    groups = pd.cut(years, bins=bins, right=False, labels=["18-29", "30-49", "50-64", "65+"])
    return groups.astype(object).where(groups.notna(), None)


INCOME_BANDS: tuple[tuple[str, float], ...] = (
    ("<30k", 0.0),
    ("30-50k", 30_000.0),
    ("50-100k", 50_000.0),
    ("100-150k", 100_000.0),
    ("150k+", 150_000.0),
)
"""``INCOME_BAND`` levels and their lower edges (2023 dollars; negative incomes count as <30k)."""


def income_band(income: pd.Series) -> pd.Series:
    """Income in :data:`INCOME_BANDS` (missing stays missing)."""
    value = pd.to_numeric(income, errors="coerce").clip(lower=0)
    edges = [edge for _, edge in INCOME_BANDS] + [np.inf]
    bands = pd.cut(value, edges, right=False, labels=[band for band, _ in INCOME_BANDS])
    return bands.astype(object).where(bands.notna(), None)


def race_group(persons: pd.DataFrame) -> pd.Series:
    """Hispanic of any race -> Hispanic, else the census race mapped to Pew's groups."""
    race = persons["race"].astype(object).map(RACE_GROUPS)
    if "hispanic" in persons.columns:
        hispanic = persons["hispanic"].astype(str).str.casefold().eq("hispanic or latino")
        race = race.where(~hispanic, "Hispanic")
    return race


def region_group(state: pd.Series) -> pd.Series:
    """The Census region of each person's state."""
    by_state = {code: region for region, codes in REGIONS.items() for code in codes}
    codes = {value: state_code(value) for value in state.dropna().unique()}
    return state.map(lambda value: by_state.get(codes.get(value, "")))


DERIVATIONS: dict[str, tuple[tuple[str, ...], Callable[[pd.DataFrame], pd.Series]]] = {
    "AGE": (("age",), lambda p: age_group(p["age"])),
    "SEX": (("sex",), lambda p: p["sex"].astype(object).where(p["sex"].isin(["Male", "Female"]))),
    "RACE": (("race",), race_group),
    "EDUCATION": (("education",), lambda p: p["education"].astype(object).map(EDUCATION_GROUPS)),
    "CREGION": (("state",), lambda p: region_group(p["state"])),
    "INCOME_BAND": (("income",), lambda p: income_band(p["income"])),
}
"""OpinionQA attribute -> (census columns it needs, how to derive it)."""


def derive_group(persons: pd.DataFrame, attribute: str) -> pd.Series | None:
    """One OpinionQA attribute for every person, or None when ``persons`` lacks what it needs.

    A cross attribute ``A_B`` (``RACE_SEX``) joins its parts as ``"a | b"``, Pew's labels.
    """
    if attribute in DERIVATIONS:
        needs, derive = DERIVATIONS[attribute]
        return derive(persons) if set(needs) <= set(persons.columns) else None
    parts = attribute.split("_")
    if len(parts) < 2 or not all(part in DERIVATIONS for part in parts):
        return None
    columns = [derive_group(persons, part) for part in parts]
    if any(column is None for column in columns):
        return None
    joined = pd.concat(columns, axis=1)
    complete = joined.notna().all(axis=1)
    return joined.astype(str).agg(" | ".join, axis=1).where(complete, None)


def with_opinionqa_groups(
    persons: pd.DataFrame, attributes: list[str] | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """``persons`` plus a column per OpinionQA attribute derivable from its census columns.

    ``attributes`` limits the work to the ones a truth table needs (default: all of
    :data:`DERIVATIONS`). A column already named exactly like the attribute is kept as it is.
    Returns the table and notes for the user: what was derived, and what could not be.
    """
    wanted = attributes if attributes is not None else list(DERIVATIONS)
    columns: dict[str, pd.Series] = {}
    missing: list[str] = []
    for attribute in (a for a in wanted if a not in persons.columns):
        column = derive_group(persons, attribute)
        if column is None:
            missing.append(attribute)
        else:
            columns[attribute] = column
    out = persons.assign(**columns) if columns else persons
    derived = list(columns)
    notes = []
    if derived:
        notes.append(f"groups derived from census attributes: {', '.join(derived)}")
    if missing:
        notes.append(
            f"no groups for {', '.join(sorted(missing))}: add columns with these names "
            "(Pew's group labels as values) to the persons table to score them"
        )
    return out, notes
