"""Calibration targets: one long table ``variable, level, share, group`` from any mix of sources.

Sources (``--targets census,party,csv:PATH``):

* ``census``: shares computed from the shipped ACS 2023 figures
  (``personasim/census/data/targets.csv``, read with :func:`personasim.census.tables.load_targets`),
  per state (``group`` = USPS code) and national (``group`` empty: the sum over the 50 states).
* ``party``: Pew Religious Landscape Study 2014, party affiliation by state, all adults
  (``calibrate/data/party_by_state.csv``, built by ``scripts/build_party_table.py``), matched
  against the personas' ``political_views`` through :data:`PARTY_LEVELS`.
* ``csv:PATH``: a user CSV ``variable, level, share[, group]``, validated by
  :func:`check_targets` (shares per variable and group sum to 1, no negative share, known
  variables and levels).

A row with an empty ``group`` applies to every group; a row with a group (a state) applies to
the persons of that group when calibrating ``--by`` that column.

The persons' side of each variable comes from :func:`variable_values`: a column of the table as
it is, or one of the derived :data:`DERIVED` variables (adult age bands, race x Hispanic origin,
party), restricted to the variable's ACS universe (:data:`UNIVERSE_MIN_AGE`). Persons outside
the universe, or with a value the targets do not name, are left out of that variable's margin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.census import mapping as m
from personasim.census import tables as census_tables
from personasim.census import targets as acs
from personasim.core.errors import ConfigError, DataError, did_you_mean
from personasim.core.tables import read_table

TARGET_COLUMNS = ["variable", "level", "share", "group"]
SHARE_TOLERANCE = 0.01
"""Shares of one variable (and group) must add to 1 within this."""

PARTY_DIR = Path(__file__).parent / "data"
PARTY_FILE = "party_by_state.csv"
PARTY_COLUMNS = ("state", "rep_lean_rep", "no_lean", "dem_lean_dem", "sample_size")

PARTY_LEVELS: dict[str, str] = {
    "Democrat": "Democrat",
    "Republican": "Republican",
    "Independent": "Independent/Other",
    "Other": "Independent/Other",
}
"""Persona ``political_views`` -> ``party`` level. Pew's "Democrat/lean Dem." is matched with
Democrat, "Republican/lean Rep." with Republican, and "No lean" with Independent or Other."""
PEW_LEVELS = {
    "dem_lean_dem": "Democrat",
    "rep_lean_rep": "Republican",
    "no_lean": "Independent/Other",
}

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65-74", 65, 74),
    ("75+", 75, 200),
)
"""Adult age bands that the ACS DP05 bands add up to exactly (18-24 is adults minus 25+)."""
RACE_ETHNICITY = ("Hispanic", "White", "Black", "Asian", "Other")
"""Hispanic of any race, else the non-Hispanic race (Other: AIAN, NHPI, some other, two+)."""
_RACE_MAP = {"White": "White", "Black or African American": "Black", "Asian": "Asian"}
_NON_PARTISAN = "Independent/Other"

UNIVERSE_MIN_AGE: dict[str, int] = {
    "education": 25,
    "employment_status": 16,
    "marital_status": 15,
    "household_language": 5,
    "veteran_status": 18,
}
"""ACS universe of the census variables by minimum age (younger persons are left out)."""


# --------------------------------------------------------------------------- persons' side


def _age_band(frame: pd.DataFrame) -> pd.Series:
    """Adult ACS-aligned age band; missing under 18."""
    age = pd.to_numeric(frame["age"], errors="coerce")
    edges = [lo for _, lo, _ in AGE_BANDS] + [np.inf]
    return pd.cut(age, edges, right=False, labels=[b for b, _, _ in AGE_BANDS])


def _race_ethnicity(frame: pd.DataFrame) -> pd.Series:
    """Hispanic of any race, else White / Black / Asian / Other."""
    race = pd.Series(pd.Categorical(frame["race"].astype(object)), index=frame.index)
    groups = [_RACE_MAP.get(str(c), "Other") for c in race.cat.categories]
    codes = np.array([RACE_ETHNICITY.index(g) for g in groups] + [len(RACE_ETHNICITY) - 1])
    out = codes[race.cat.codes.to_numpy()]  # code -1 (missing race) -> Other
    hispanic = frame["hispanic"].astype(str).str.casefold().eq("hispanic or latino").to_numpy()
    out = np.where(hispanic, RACE_ETHNICITY.index("Hispanic"), out)
    return pd.Series(pd.Categorical.from_codes(out, RACE_ETHNICITY), index=frame.index)


def _field(frame: pd.DataFrame, name: str) -> pd.Series | None:
    """A column, else the same key inside the personas' ``fields`` JSON (None if neither)."""
    if name in frame.columns:
        return frame[name].astype(object)
    if "fields" not in frame.columns:
        return None

    def pick(raw: object) -> object:
        if isinstance(raw, str) and raw:
            try:
                return (json.loads(raw) or {}).get(name)
            except (json.JSONDecodeError, AttributeError):
                return None
        return raw.get(name) if isinstance(raw, dict) else None

    values = frame["fields"].map(pick)
    return values if values.notna().any() else None


def _party(frame: pd.DataFrame) -> pd.Series | None:
    """``political_views`` mapped to Democrat / Republican / Independent/Other."""
    views = _field(frame, "political_views")
    return None if views is None else views.map(PARTY_LEVELS)


DERIVED: dict[str, tuple[tuple[str, ...], Callable[[pd.DataFrame], pd.Series | None]]] = {
    "age_band": (("age",), _age_band),
    "race_ethnicity": (("race", "hispanic"), _race_ethnicity),
    "party": ((), _party),
}
"""Derived variable -> (columns it needs, how to derive it)."""

DERIVED_LEVELS: dict[str, tuple[str, ...]] = {
    "age_band": tuple(b for b, _, _ in AGE_BANDS),
    "race_ethnicity": RACE_ETHNICITY,
    "party": ("Democrat", "Republican", _NON_PARTISAN),
}


def variable_values(frame: pd.DataFrame, variable: str) -> pd.Series | None:
    """Each person's level of ``variable`` (missing outside its universe); None if underivable.

    ``a*b`` is the crossed variable with levels ``"x | y"``.
    """
    if "*" in variable:
        parts = [variable_values(frame, v.strip()) for v in variable.split("*")]
        if any(p is None for p in parts):
            return None
        joined = pd.concat(parts, axis=1)
        complete = joined.notna().all(axis=1)
        return joined.astype(str).agg(" | ".join, axis=1).where(complete, None)
    if variable in DERIVED:
        needs, derive = DERIVED[variable]
        values = derive(frame) if set(needs) <= set(frame.columns) else None
    else:
        values = _field(frame, variable)
    if values is None:
        return None
    if variable in UNIVERSE_MIN_AGE and "age" in frame.columns:
        values = values.where(
            pd.to_numeric(frame["age"], errors="coerce") >= UNIVERSE_MIN_AGE[variable]
        )
    return values


def vocabulary(frame: pd.DataFrame, variable: str, values: pd.Series | None = None) -> set[str]:
    """Levels ``variable`` can take: its fixed vocabulary, else the values seen in ``frame``
    (``values``: the variable's values when already derived)."""
    if "*" in variable:
        parts = [vocabulary(frame, v.strip()) for v in variable.split("*")]
        out = {""}
        for part in parts:
            out = {f"{a} | {b}" if a else b for a in out for b in part}
        return out
    if variable in DERIVED_LEVELS:
        return set(DERIVED_LEVELS[variable])
    if variable in m.VOCAB:
        return set(m.VOCAB[variable])
    values = variable_values(frame, variable) if values is None else values
    return set() if values is None else {str(v) for v in values.dropna().unique()}


# --------------------------------------------------------------------------- census


def _rows(variable: str, counts: dict[str, float], group: str) -> list[dict]:
    """Long rows of one variable from counts per level (normalized to shares)."""
    total = sum(max(v, 0.0) for v in counts.values())
    return [
        {"variable": variable, "level": level, "share": max(v, 0.0) / total, "group": group}
        for level, v in counts.items()
    ]


def census_shares(f: dict[str, float], group: str = "") -> list[dict]:
    """Target rows of every census variable from one state's (or the nation's) ACS figures."""
    adults = f["sex18:Male"] + f["sex18:Female"]
    bands = {b: f[f"age:{b}"] for b, _, _ in acs.AGE_BANDS}
    age = {
        "25-34": bands["25 to 34 years"],
        "35-44": bands["35 to 44 years"],
        "45-54": bands["45 to 54 years"],
        "55-64": bands["55 to 59 years"] + bands["60 to 64 years"],
        "65-74": bands["65 to 74 years"],
        "75+": bands["75 to 84 years"] + bands["85 years and over"],
    }
    age = {"18-24": adults - sum(age.values()), **age}
    nh = {r: f[f"race_nh:{r}"] for r in acs.RACE_LABELS}
    race = {
        "Hispanic": f["hispanic"],
        "White": nh["White alone"],
        "Black": nh["Black or African American alone"],
        "Asian": nh["Asian alone"],
    }
    race["Other"] = sum(nh.values()) - race["White"] - race["Black"] - race["Asian"]
    e = [f[f"education:{label}"] for label in acs.EDU_LABELS]
    education = dict(zip(m.EDUCATION, [e[0] + e[1], e[2], e[3] + e[4], e[5], e[6]], strict=True))
    employment = {
        "Employed": f["employment:Employed"] + f["employment:Armed Forces"],
        "Unemployed": f["employment:Unemployed"],
        "Not in Labor Force": f["employment:Not in labor force"],
    }
    marital = {
        level: sum(f[f"marital:{s}:{label}"] for s in m.SEX)
        for level, label in zip(m.MARITAL_STATUS, acs.MARITAL_LABELS, strict=True)
    }
    language = {
        level: f[f"language:{label}"]
        for level, label in zip(m.HOUSEHOLD_LANGUAGE, acs.LANG_LABELS, strict=True)
    }
    insurance = {
        "Private": f["insurance:private"],
        "Public": f["insurance:covered"] - f["insurance:private"],
        "None": f["insurance:none"],
    }
    veteran = {"Veteran": f["veteran"], "Non-veteran": f["veteran_total"] - f["veteran"]}
    sex = {s: f[f"sex18:{s}"] for s in m.SEX}
    parts = {
        "sex": sex,
        "age_band": age,
        "race_ethnicity": race,
        "education": education,
        "employment_status": employment,
        "marital_status": marital,
        "household_language": language,
        "health_insurance": insurance,
        "veteran_status": veteran,
    }
    return [row for name, counts in parts.items() for row in _rows(name, counts, group)]


def census_targets() -> pd.DataFrame:
    """Census target shares of every state (``group`` = state) and of the nation (``""``)."""
    table = census_tables.load_targets()
    rows = census_shares(acs.national_figures(table))
    for state, part in table.groupby("state", sort=True):
        rows += census_shares(dict(zip(part["key"], part["value"], strict=True)), str(state))
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


# --------------------------------------------------------------------------- party


def load_party_table(data_dir: Path | None = None) -> pd.DataFrame:
    """The shipped Pew party-identification table (percentages as published)."""
    path = (data_dir or PARTY_DIR) / PARTY_FILE
    return read_table(
        path,
        "party table",
        PARTY_COLUMNS,
        hint="reinstall personasim or run scripts/build_party_table.py",
    )


def party_targets() -> pd.DataFrame:
    """Party shares per state (normalized to sum to 1) and national (states weighted by adults)."""
    table = load_party_table().set_index("state")
    levels = list(PEW_LEVELS)
    shares = table[levels].div(table[levels].sum(axis=1), axis=0)
    figures = census_tables.load_targets()
    adults = figures[figures["key"].isin(["sex18:Male", "sex18:Female"])].groupby("state")["value"]
    size = adults.sum().reindex(shares.index)
    size = size.fillna(size.mean())  # DC has no ACS tables: it weighs like an average state
    national = shares.mul(size, axis=0).sum() / size.sum()
    rows = [
        {"variable": "party", "level": PEW_LEVELS[k], "share": float(national[k]), "group": ""}
        for k in levels
    ]
    for state, row in shares.iterrows():
        rows += [
            {
                "variable": "party",
                "level": PEW_LEVELS[k],
                "share": float(row[k]),
                "group": str(state),
            }
            for k in levels
        ]
    return pd.DataFrame(rows, columns=TARGET_COLUMNS)


# --------------------------------------------------------------------------- user CSV


def csv_targets(path: str | Path) -> pd.DataFrame:
    """A user CSV of marginals ``variable, level, share[, group]`` (checked for form only)."""
    hint = "columns: variable, level, share and optionally group"
    frame = read_table(
        Path(path),
        "targets CSV",
        ["variable", "level", "share"],
        hint=hint,
        as_csv=True,
        csv_text=True,
    )  # levels `None` and `NA` are levels
    extra = sorted(set(frame.columns) - set(TARGET_COLUMNS))
    if extra:
        raise ConfigError(f"{path}: unknown column {extra[0]!r}", hint=hint)
    share = pd.to_numeric(frame["share"], errors="coerce")
    if share.isna().any():
        row = int(np.flatnonzero(share.isna().to_numpy())[0]) + 2
        raise ConfigError(f"{path}: line {row}: share is not a number", hint=hint)
    if (share < 0).any():
        bad = frame[share < 0].iloc[0]
        raise ConfigError(
            f"{path}: negative share {float(bad['share'])} for {bad['variable']}={bad['level']}",
            hint="shares lie in [0, 1]",
        )
    group = frame["group"] if "group" in frame.columns else ""
    out = pd.DataFrame(
        {
            "variable": frame["variable"].astype(str).str.strip(),
            "level": frame["level"].astype(str).str.strip(),
            "share": share,
            "group": pd.Series(group, index=frame.index).fillna("").astype(str),
        }
    )
    return _check_sums(out, str(path))


def _check_sums(targets: pd.DataFrame, source: str) -> pd.DataFrame:
    """Shares of each variable and group must add to 1 (within :data:`SHARE_TOLERANCE`)."""
    sums = targets.groupby(["variable", "group"], sort=True)["share"].sum()
    bad = sums[(sums - 1).abs() > SHARE_TOLERANCE]
    if not bad.empty:
        (variable, group), total = bad.index[0], float(bad.iloc[0])
        where = f" in group {group!r}" if group else ""
        raise ConfigError(
            f"{source}: shares of {variable!r}{where} add to {total:.4g}, not 1",
            hint=f"make them sum to 1 (within {SHARE_TOLERANCE})",
        )
    return targets


SOURCES: dict[str, Callable[[str], pd.DataFrame]] = {
    "census": lambda _path: census_targets(),
    "party": lambda _path: party_targets(),
    "csv": csv_targets,
}


def load_targets(spec: str) -> pd.DataFrame:
    """Resolve ``census``, ``party``, ``csv:PATH`` (comma-separated, any mix) into one table."""
    parts, seen = [], {}
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        name, _, path = item.partition(":")
        if name not in SOURCES:
            raise ConfigError(
                f"unknown target source {name!r}",
                hint=did_you_mean(name, SOURCES) + " (census, party, csv:PATH)",
            )
        if name == "csv" and not path:
            raise ConfigError("target source 'csv' needs a path", hint="write csv:PATH")
        table = SOURCES[name](path).assign(source=name)
        for variable in table["variable"].unique():
            if variable in seen:
                raise ConfigError(
                    f"variable {variable!r} is given by both {seen[variable]} and {item}",
                    hint="give each variable once",
                )
            seen[variable] = item
        parts.append(table)
    if not parts:
        raise ConfigError("no targets given", hint="use --targets census,party or csv:PATH")
    return pd.concat(parts, ignore_index=True)[[*TARGET_COLUMNS, "source"]]


def usable_targets(targets: pd.DataFrame, pool: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Drop the ``census`` variables ``pool`` cannot derive (a bare persons table may lack some
    columns), with a note; every other source's variables must be there (see
    :func:`check_targets`)."""
    if "source" not in targets.columns:
        return targets, []
    census = targets[targets["source"] == "census"]["variable"].unique()
    lacking = [v for v in census if variable_values(pool, str(v)) is None]
    if not lacking:
        return targets, []
    note = f"census targets skipped, the pool has no column for: {', '.join(lacking)}"
    return targets[~targets["variable"].isin(lacking)], [note]


def check_targets(
    targets: pd.DataFrame, pool: pd.DataFrame, source: str = "targets"
) -> dict[str, pd.Series]:
    """Every variable derivable from ``pool`` and every level in its vocabulary (else one line);
    returns each variable's values (derived once, reused by the caller)."""
    derived: dict[str, pd.Series] = {}
    for variable, rows in targets.groupby("variable", sort=True):
        values = variable_values(pool, str(variable))
        if values is None:
            raise ConfigError(
                f"{source}: unknown variable {variable!r}: {_needs(str(variable))}",
                hint=_known_hint(str(variable), pool),
            )
        vocab = vocabulary(pool, str(variable), values)
        lacking = sorted(set(rows["level"].astype(str)) - vocab)
        if lacking:
            raise DataError(
                f"{source}: the pool has no level {', '.join(map(repr, lacking))} of {variable!r}",
                hint=did_you_mean(lacking[0], vocab),
            )
        derived[str(variable)] = values
    return derived


def _needs(variable: str) -> str:
    """Why ``variable`` is not derivable, in words."""
    if variable == "party":
        return "it needs political_views (a subjective or persona tier), which the pool lacks"
    if variable in DERIVED:
        return f"it needs the columns {', '.join(DERIVED[variable][0])}"
    return "the pool has no such column"


def _known_hint(variable: str, pool: pd.DataFrame) -> str:
    """Close names among the derived variables and the pool's columns."""
    known = [*DERIVED, *(c for c in pool.columns if c not in ("person_id", "weight"))]
    if variable == "party" and "tier" in pool.columns:
        return "calibrate the tiers that have it (--tiers subjective,persona)"
    return did_you_mean(variable, [k for k in known if k != variable])


def targets_for_group(targets: pd.DataFrame, group: str) -> pd.DataFrame:
    """The targets that apply to one group: its own rows, else the rows for every group."""
    every = targets[targets["group"] == ""]
    if not group:
        return every.reset_index(drop=True)
    own = targets[targets["group"] == group]
    shared = every[~every["variable"].isin(own["variable"])]
    return pd.concat([own, shared], ignore_index=True)
