"""Packaged U.S. presidential results (2016, 2020, 2024) per state and nationally.

The table ``personasim/truth/data/elections.csv`` is derived by ``scripts/build_election_truth.py``
from MEDSL state results and electoral-vote apportionments: votes for the Democratic and
Republican candidates, the Democratic two-party share ``dem / (dem + rep)``, electoral votes and
the two-party winner. Maine and Nebraska split electoral votes by district; the table gives state
totals and treats every state as winner-take-all.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

from personasim.errors import ConfigError, DataError

YEARS = (2016, 2020, 2024)


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    """Read the packaged table once."""
    path = resources.files("personasim.truth") / "data" / "elections.csv"
    try:
        with resources.as_file(path) as real:
            return pd.read_csv(real, dtype={"state": str})
    except FileNotFoundError as error:
        raise DataError(
            "packaged election truth is missing", hint="run scripts/build_election_truth.py"
        ) from error


def election_table() -> pd.DataFrame:
    """The whole table (a copy): state and national rows for every year."""
    return _table().copy()


def _check_year(year: int) -> int:
    """Return ``year`` if the table covers it, else raise a ConfigError."""
    if int(year) not in YEARS:
        raise ConfigError(f"no election truth for year {year}", hint=f"years are {list(YEARS)}")
    return int(year)


def state_truth(year: int) -> pd.DataFrame:
    """Rows for the 50 states and DC in ``year`` (columns as in :func:`election_table`)."""
    table = _table()
    rows = table[(table["year"] == _check_year(year)) & (table["level"] == "state")]
    return rows.reset_index(drop=True)


def national_share(year: int) -> float:
    """Actual national Democratic two-party share in ``year``."""
    table = _table()
    row = table[(table["year"] == _check_year(year)) & (table["level"] == "national")]
    return float(row["dem_share"].iloc[0])


def state_code(value: object) -> str:
    """Postal code for a state given as a code (``CA``), a name (``California``) or FIPS (6)."""
    text = str(value).strip()
    names = _table().drop_duplicates("state")
    by_code = {c.upper(): c for c in names["state"]}
    by_name = {n.casefold(): c for n, c in zip(names["state_name"], names["state"], strict=True)}
    if text.upper() in by_code:
        return by_code[text.upper()]
    if text.casefold() in by_name:
        return by_name[text.casefold()]
    if text.isdigit() and int(text) in _FIPS:
        return _FIPS[int(text)]
    raise DataError(
        f"unknown state {value!r}", hint="use a postal code such as 'CA', a name or FIPS"
    )


_FIPS = {
    1: "AL", 2: "AK", 4: "AZ", 5: "AR", 6: "CA", 8: "CO", 9: "CT", 10: "DE", 11: "DC", 12: "FL",
    13: "GA", 15: "HI", 16: "ID", 17: "IL", 18: "IN", 19: "IA", 20: "KS", 21: "KY", 22: "LA",
    23: "ME", 24: "MD", 25: "MA", 26: "MI", 27: "MN", 28: "MS", 29: "MO", 30: "MT", 31: "NE",
    32: "NV", 33: "NH", 34: "NJ", 35: "NM", 36: "NY", 37: "NC", 38: "ND", 39: "OH", 40: "OK",
    41: "OR", 42: "PA", 44: "RI", 45: "SC", 46: "SD", 47: "TN", 48: "TX", 49: "UT", 50: "VT",
    51: "VA", 53: "WA", 54: "WV", 55: "WI", 56: "WY",
}  # fmt: skip
