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

import numpy as np
import pandas as pd

from personasim.core.errors import ConfigError, DataError
from personasim.survey.loaders import builtin_survey
from personasim.survey.questions import Survey
from personasim.truth.table import OVERALL, TRUTH_COLUMNS, Truth

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


def elections_truth(survey: Survey | None = None) -> Truth:
    """Truth of the built-in elections survey: votes per option, per state and nationally, for
    each question's ``year`` tag."""
    survey = survey or builtin_survey("elections")
    table = _table()
    parts = []
    for q in survey.questions:
        rows = table[table["year"] == _check_year(int(q.tags.get("year", "0")))]
        dem, rep = q.options[q.index_of("dem")].text, q.options[q.index_of("rep")].text
        state = rows["level"] == "state"
        for column, text in (("dem_votes", dem), ("rep_votes", rep)):
            parts.append(
                pd.DataFrame(
                    {
                        "question_id": q.id,
                        "attribute": np.where(state, "state", OVERALL[0]),
                        "group": np.where(state, rows["state"], OVERALL[1]),
                        "option": text,
                        "weight": rows[column].astype(float),
                    }
                )
            )
    return Truth("elections", survey, pd.concat(parts, ignore_index=True)[TRUTH_COLUMNS])
