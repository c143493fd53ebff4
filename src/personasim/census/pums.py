"""Load ACS PUMS person records (any year from 2018 on) into the pooled seed table.

The seed holds, per person, the mapped persona attributes (categoricals over the vocabularies of
:mod:`personasim.census.mapping`), the person weight, and a few raw codes that raking and the
fidelity checks need (relationship, employment, class of worker, military service, language
group, earnings, civilian non-institutional flag).

Variable names differ across years; :data:`RENAMES` maps them to the 2018 names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.census import mapping as m
from personasim.core.errors import DataError

#: Variables read from the person file (2018 names).
PUMS_COLUMNS: tuple[str, ...] = (
    "SERIALNO",
    "ST",
    "PWGTP",
    "AGEP",
    "SEX",
    "RAC1P",
    "HISP",
    "ANC1P",
    "LANX",
    "LANP",
    "ENG",
    "SCHL",
    "ESR",
    "COW",
    "OCCP",
    "PINCP",
    "PERNP",
    "ADJINC",
    "MAR",
    "RELP",
    "POBP",
    "CIT",
    "MIL",
    "DIS",
    "DREM",
    "DEYE",
    "DEAR",
    "DPHY",
    "DDRS",
    "DOUT",
    "PRIVCOV",
    "PUBCOV",
    "FER",
)

#: Renamed variables in later years: new name -> (2018 name, code map or None).
#: 2019+: RELP became RELSHIPP with new codes (20-38). Everything else used here kept its name
#: from 2018 to 2023. Earlier years use the 2010 occupation scheme (OCCP10/OCCP12) and are
#: refused with a clear error rather than mapped wrongly.
RENAMES: dict[str, tuple[str, dict[int, int] | None]] = {
    "RELSHIPP": ("RELP", m.RELSHIPP_TO_RELP),
}
FIRST_SUPPORTED_YEAR = 2018

SEED_INTERNAL: tuple[str, ...] = (
    "st",
    "pwgtp",
    "age",
    "income",
    "relp",
    "esr",
    "cow",
    "mil",
    "lang",
    "earnings",
    "civ_noninst",
)


def pums_files(paths: Sequence[Path]) -> list[Path]:
    """Expand files and folders (``psam_p*.csv``, ``*.csv``, ``*.csv.gz``) into a sorted list."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.name.endswith((".csv", ".csv.gz")))
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"PUMS file {path} does not exist", "pass a person CSV or a folder")
    if not found:
        raise DataError(f"no PUMS CSV files under {', '.join(map(str, paths))}", "")
    return found


def read_pums_csv(path: Path) -> pd.DataFrame:
    """Read the needed columns of one PUMS person CSV as strings, applying :data:`RENAMES`."""
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, EOFError) as error:
        raise DataError(
            f"cannot read PUMS file {path}: {error}", "is it a PUMS person CSV?"
        ) from error
    upper = {c: c.upper() for c in header}
    available = set(upper.values())
    wanted = [c for c in PUMS_COLUMNS if c in available]
    wanted += [new for new in RENAMES if new in available]
    missing = [c for c in PUMS_COLUMNS if c not in available and not _renamed_from(c, available)]
    if missing:
        raise DataError(
            f"PUMS file {path} lacks columns {', '.join(missing)}",
            "use ACS 1-year or 5-year PUMS person files (psam_p*.csv) from 2018 on",
        )
    usecols = [c for c in header if upper[c] in wanted]
    frame = pd.read_csv(path, usecols=usecols, dtype=str).rename(columns=upper)
    return _apply_renames(frame)


def _renamed_from(name: str, available: set[str]) -> bool:
    """Whether a later-year variable provides the 2018 variable ``name``."""
    return any(old == name and new in available for new, (old, _) in RENAMES.items())


def _apply_renames(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename later-year variables to their 2018 names and recode them."""
    for new, (old, codes) in RENAMES.items():
        if new in frame.columns and old not in frame.columns:
            values = pd.to_numeric(frame[new], errors="coerce")
            frame[old] = values.map(codes).astype("Int64").astype(str) if codes else frame[new]
            frame = frame.drop(columns=new)
    return frame


def survey_year(frame: pd.DataFrame, path: Path) -> int:
    """The survey year from SERIALNO's first four digits (e.g. ``2018GQ0000001``)."""
    years = frame["SERIALNO"].str[:4].unique()
    if len(years) != 1 or not years[0].isdigit():
        raise DataError(f"cannot tell the survey year of {path} from SERIALNO", "one year per file")
    year = int(years[0])
    if year < FIRST_SUPPORTED_YEAR:
        raise DataError(
            f"{path} is ACS {year}; occupation (OCCP) and language (LANP) codes before "
            f"{FIRST_SUPPORTED_YEAR} use older schemes that this loader does not map",
            f"use PUMS files from {FIRST_SUPPORTED_YEAR} or later",
        )
    if year not in m.CPI_U:
        raise DataError(f"{path} is ACS {year}, which has no CPI-U factor here", "")
    return year


def load_pums(paths: Sequence[Path]) -> tuple[pd.DataFrame, list[int]]:
    """Read PUMS person files and build the pooled seed; returns (seed, survey years)."""
    frames, years = [], []
    for path in pums_files(paths):
        raw = read_pums_csv(path)
        year = survey_year(raw, path)
        frames.append(build_seed(raw, year))
        years.append(year)
    return finalize_seed(pd.concat(frames, ignore_index=True)), sorted(set(years))


def finalize_seed(seed: pd.DataFrame) -> pd.DataFrame:
    """Fix column dtypes (full vocabularies, sorted place-of-birth labels) and row order."""
    seed = seed.sort_values(["st"], kind="stable").reset_index(drop=True)
    for column in m.VOCAB:
        seed[column] = seed[column].astype(pd.CategoricalDtype(list(m.VOCAB[column])))
    labels = sorted(seed["place_of_birth"].astype(str).unique())
    seed["place_of_birth"] = pd.Categorical(seed["place_of_birth"].astype(str), categories=labels)
    return seed


def build_seed(
    raw: pd.DataFrame, year: int, pob_labels: dict[int, str] | None = None
) -> pd.DataFrame:
    """Map one year's raw PUMS person records (2018 names, string codes) to seed rows."""
    num = {c: pd.to_numeric(raw[c], errors="coerce") for c in PUMS_COLUMNS if c != "SERIALNO"}
    industry, occupation = m.map_occupation(raw["OCCP"])
    households = household_attributes(raw["SERIALNO"], num["RELP"], num["AGEP"])
    lang = _language_with_householder(raw, households["householder_row"].to_numpy())
    seed = pd.DataFrame(
        {
            "st": num["ST"].astype(np.int8),
            "pwgtp": num["PWGTP"].astype(np.int32),
            "age": num["AGEP"].astype(np.int16),
            "sex": m.map_sex(raw["SEX"]),
            "race": m.map_race(raw["RAC1P"]),
            "hispanic": m.map_hispanic(raw["HISP"]),
            "ancestry": m.map_ancestry(raw["ANC1P"]),
            "household_language": pd.Categorical.from_codes(lang, list(m.HOUSEHOLD_LANGUAGE)),
            "education": m.map_education(raw["SCHL"]),
            "employment_status": m.map_employment(raw["ESR"]),
            "class_of_worker": m.map_class_of_worker(raw["COW"]),
            "industry_category": industry,
            "occupation_category": occupation,
            "income": m.map_income(raw["PINCP"], raw["ADJINC"], year),
            "marital_status": m.map_marital(raw["MAR"]),
            "household_type": households["household_type"].to_numpy(),
            "family_presence_and_age": households["family_presence_and_age"].to_numpy(),
            "place_of_birth": place_of_birth(num["POBP"], pob_labels),
            "citizenship": m.map_citizenship(raw["CIT"]),
            "veteran_status": m.map_veteran(raw["MIL"]),
            "disability": m.map_disability(raw),
            "health_insurance": m.map_health_insurance(raw["PRIVCOV"], raw["PUBCOV"]),
            "cognitive_difficulty": m.map_yes_no(raw["DREM"]),
            "ability_to_speak_english": m.map_english(raw["ENG"], raw["LANX"]),
            "vision_difficulty": m.map_yes_no(raw["DEYE"]),
            "hearing_difficulty": m.map_yes_no(raw["DEAR"]),
            "fertility": m.map_fertility(raw["FER"]),
        }
    )
    return seed.assign(**_internal_codes(raw, num, year, lang))


def _internal_codes(
    raw: pd.DataFrame, num: dict[str, pd.Series], year: int, lang: np.ndarray
) -> dict:
    """Raw codes kept for raking and checks (0 = N/A for ESR, COW, MIL)."""
    relp, mil = num["RELP"].fillna(-1), num["MIL"].fillna(0)
    return {
        "relp": relp.astype(np.int8).to_numpy(),
        "esr": num["ESR"].fillna(0).astype(np.int8).to_numpy(),
        "cow": num["COW"].fillna(0).astype(np.int8).to_numpy(),
        "mil": mil.astype(np.int8).to_numpy(),
        "lang": np.where(num["LANX"].isna(), -1, lang).astype(np.int8),
        "earnings": np.rint(m.dollars_2023(raw["PERNP"], raw["ADJINC"], year)).astype(np.int32),
        "civ_noninst": ((relp != 16) & (mil != 1)).to_numpy(),
    }


def household_attributes(serialno: pd.Series, relp: pd.Series, age: pd.Series) -> pd.DataFrame:
    """Household type and presence of related children, from all persons of each household.

    Family = the householder lives with at least one relative (RELP 1-10); related children =
    relatives of the householder other than the spouse, under 18. Group-quarters persons
    (RELP 16-17) get ``Group quarters`` / ``Not applicable (group quarters)``.
    """
    frame = pd.DataFrame(
        {"hh": serialno.to_numpy(), "relp": relp.to_numpy(), "age": age.to_numpy()}
    )
    frame["row"] = np.arange(len(frame))
    relative = frame["relp"].between(1, 10)
    child = frame["relp"].between(2, 10) & (frame["age"] < 18)
    per_hh = pd.DataFrame(
        {
            "family": relative.groupby(frame["hh"]).transform("any"),
            "under5": (child & (frame["age"] < 5)).groupby(frame["hh"]).transform("any"),
            "kid5_17": (child & (frame["age"] >= 5)).groupby(frame["hh"]).transform("any"),
        }
    )
    gq = frame["relp"] >= 16
    htype = np.where(gq, 2, np.where(per_hh["family"], 0, 1))
    presence = np.select(
        [gq, per_hh["under5"] & per_hh["kid5_17"], per_hh["under5"], per_hh["kid5_17"]],
        [4, 2, 0, 1],
        default=3,
    )
    head = frame.loc[frame["relp"] == 0].set_index("hh")["row"]
    return pd.DataFrame(
        {
            "household_type": pd.Categorical.from_codes(htype, list(m.HOUSEHOLD_TYPE)),
            "family_presence_and_age": pd.Categorical.from_codes(
                presence, list(m.FAMILY_PRESENCE_AND_AGE)
            ),
            "householder_row": frame["hh"].map(head).fillna(-1).astype(int).to_numpy(),
        }
    )


def _language_with_householder(raw: pd.DataFrame, head_row: np.ndarray) -> np.ndarray:
    """Language group per person; children under 5 take their householder's (else English)."""
    own = m.language_group(raw["LANX"], raw["LANP"])
    inherited = np.where(head_row >= 0, own[np.maximum(head_row, 0)], 0)
    result = np.where(own >= 0, own, inherited)
    return np.where(result >= 0, result, 0).astype(np.int16)


def place_of_birth(pobp: pd.Series, labels: dict[int, str] | None) -> np.ndarray:
    """POBP -> the data dictionary's label (``"California/CA"``, ``"Philippines"``, ...)."""
    labels = labels or pob_labels()
    return pobp.map(labels).fillna("Unknown").to_numpy()


def pob_labels() -> dict[int, str]:
    """POBP code -> label, from the label table the build script derived from the dictionary."""
    from personasim.census.tables import load_pob_labels

    return load_pob_labels()


def dictionary_labels(path: Path, variable: str) -> dict[int, str]:
    """Code -> label for one variable of a PUMS data dictionary CSV (``VAL`` records)."""
    try:
        rows = pd.read_csv(path, header=None, dtype=str, names=range(7), usecols=range(7))
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read PUMS data dictionary {path}: {error}", "") from error
    rows = rows[(rows[0] == "VAL") & (rows[1] == variable)]
    if rows.empty:
        raise DataError(f"PUMS data dictionary {path} has no values for {variable}", "")
    codes = pd.to_numeric(rows[4], errors="coerce")
    return {int(c): label.strip() for c, label in zip(codes, rows[6], strict=True) if c == c}
