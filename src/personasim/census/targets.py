"""State targets from the ACS 2023 1-year profile and subject tables (DP02, DP03, DP05, S2301,
S2401).

:data:`FIGURES` names every figure the raking uses and the ACS label it is read from. The build
script reads those labels from the raw ``Label,Value`` CSVs and writes one compact long table
(``state, key, value``); nothing else from the raw files is kept.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from personasim.core.errors import DataError

_AGE = "Estimate!!SEX AND AGE!!Total population"
_HISP = "Estimate!!HISPANIC OR LATINO AND RACE!!Total population"
_MAR = "Estimate!!MARITAL STATUS!!{sex} 15 years and over"
_EDU = "Estimate!!EDUCATIONAL ATTAINMENT!!Population 25 years and over"
_DIS = "Estimate!!DISABILITY STATUS OF THE CIVILIAN NONINSTITUTIONALIZED POPULATION"
_LANG = "Estimate!!LANGUAGE SPOKEN AT HOME!!Population 5 years and over"
_EMP = "Estimate!!EMPLOYMENT STATUS!!Population 16 years and over"
_COW = "Estimate!!CLASS OF WORKER!!Civilian employed population 16 years and over"
_HI = "Estimate!!HEALTH INSURANCE COVERAGE!!Civilian noninstitutionalized population"

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("Under 5 years", 0, 4),
    ("5 to 9 years", 5, 9),
    ("10 to 14 years", 10, 14),
    ("15 to 19 years", 15, 19),
    ("20 to 24 years", 20, 24),
    ("25 to 34 years", 25, 34),
    ("35 to 44 years", 35, 44),
    ("45 to 54 years", 45, 54),
    ("55 to 59 years", 55, 59),
    ("60 to 64 years", 60, 64),
    ("65 to 74 years", 65, 74),
    ("75 to 84 years", 75, 84),
    ("85 years and over", 85, 200),
)
RACE_LABELS: tuple[str, ...] = (
    "White alone",
    "Black or African American alone",
    "American Indian and Alaska Native alone",
    "Asian alone",
    "Native Hawaiian and Other Pacific Islander alone",
    "Some Other Race alone",
    "Two or More Races",
)
MARITAL_LABELS = (
    "Now married, except separated",
    "Widowed",
    "Divorced",
    "Separated",
    "Never married",
)
EDU_LABELS = (
    "Less than 9th grade",
    "9th to 12th grade, no diploma",
    "High school graduate (includes equivalency)",
    "Some college, no degree",
    "Associate's degree",
    "Bachelor's degree",
    "Graduate or professional degree",
)
LANG_LABELS = (
    "English only",
    "Spanish",
    "Other Indo-European languages",
    "Asian and Pacific Islander languages",
    "Other languages",
)
OCC_GROUPS = (
    "Management, business, science, and arts occupations",
    "Service occupations",
    "Sales and office occupations",
    "Natural resources, construction, and maintenance occupations",
    "Production, transportation, and material moving occupations",
)
#: S2301 (employment status by demographics): age bands of the population 16 and over.
EMP_AGE_BANDS: tuple[tuple[str, int], ...] = (
    ("16 to 19 years", 16),
    ("20 to 24 years", 20),
    ("25 to 29 years", 25),
    ("30 to 34 years", 30),
    ("35 to 44 years", 35),
    ("45 to 54 years", 45),
    ("55 to 59 years", 55),
    ("60 to 64 years", 60),
    ("65 to 74 years", 65),
    ("75 years and over", 75),
)
#: S2301 education groups of the population 25 to 64 (in the order of the five census levels,
#: Bachelor's and Graduate Degree joined).
EMP_EDU_LABELS = (
    "Less than high school graduate",
    "High school graduate (includes equivalency)",
    "Some college or associate's degree",
    "Bachelor's degree or higher",
)
_S23 = "{kind}!!Estimate!!{label}"
COW_LABELS = (
    "Private wage and salary workers",
    "Government workers",
    "Self-employed in own not incorporated business workers",
    "Unpaid family workers",
)


def _figures() -> dict[str, tuple[str, str]]:
    """key -> (table, ACS label) for every figure the raking uses."""
    f: dict[str, tuple[str, str]] = {"total": ("dp05", _AGE)}
    for sex in ("Male", "Female"):
        f[f"sex:{sex}"] = ("dp05", f"{_AGE}!!{sex}")
        f[f"sex18:{sex}"] = ("dp05", f"{_AGE}!!18 years and over!!{sex}")
        f[f"sex65:{sex}"] = ("dp05", f"{_AGE}!!65 years and over!!{sex}")
        f[f"marital_total:{sex}"] = ("dp02", _MAR.format(sex=f"{sex}s"))
        for label in MARITAL_LABELS:
            f[f"marital:{sex}:{label}"] = ("dp02", _MAR.format(sex=f"{sex}s") + f"!!{label}")
        f[f"occupation_total:{sex}"] = (
            "s2401",
            f"{sex}!!Estimate!!Civilian employed population 16 years and over",
        )
        for group in OCC_GROUPS:
            f[f"occupation:{sex}:{group}"] = ("s2401", f"{sex}!!Estimate!!{group}")
    for band, _, _ in AGE_BANDS:
        f[f"age:{band}"] = ("dp05", f"{_AGE}!!{band}")
    f["hispanic"] = ("dp05", f"{_HISP}!!Hispanic or Latino (of any race)")
    for label in RACE_LABELS:
        f[f"race_nh:{label}"] = ("dp05", f"{_HISP}!!Not Hispanic or Latino!!{label}")
    f["education_total"] = ("dp02", _EDU)
    for label in EDU_LABELS:
        f[f"education:{label}"] = ("dp02", f"{_EDU}!!{label}")
    f["veteran_total"] = ("dp02", "Estimate!!VETERAN STATUS!!Civilian population 18 years and over")
    f["veteran"] = (
        "dp02",
        "Estimate!!VETERAN STATUS!!Civilian population 18 years and over!!Civilian veterans",
    )
    f["civ_noninst"] = ("dp02", f"{_DIS}!!Total Civilian Noninstitutionalized Population")
    for band in ("Under 18 years", "18 to 64 years", "65 years and over"):
        f[f"disability_total:{band}"] = ("dp02", f"{_DIS}!!{band}")
        f[f"disability:{band}"] = ("dp02", f"{_DIS}!!{band}!!With a disability")
    f["native"] = ("dp02", "Estimate!!PLACE OF BIRTH!!Total population!!Native")
    f["naturalized"] = (
        "dp02",
        "Estimate!!U.S. CITIZENSHIP STATUS!!Foreign-born population!!Naturalized U.S. citizen",
    )
    f["noncitizen"] = (
        "dp02",
        "Estimate!!U.S. CITIZENSHIP STATUS!!Foreign-born population!!Not a U.S. citizen",
    )
    f["language_total"] = ("dp02", _LANG)
    for label in LANG_LABELS:
        f[f"language:{label}"] = ("dp02", f"{_LANG}!!{label}")
    f["employment_total"] = ("dp03", _EMP)
    f["employment:Employed"] = ("dp03", f"{_EMP}!!In labor force!!Civilian labor force!!Employed")
    f["employment:Unemployed"] = (
        "dp03",
        f"{_EMP}!!In labor force!!Civilian labor force!!Unemployed",
    )
    f["employment:Armed Forces"] = ("dp03", f"{_EMP}!!In labor force!!Armed Forces")
    f["employment:Not in labor force"] = ("dp03", f"{_EMP}!!Not in labor force")
    f["class_of_worker_total"] = ("dp03", _COW)
    for label in COW_LABELS:
        f[f"class_of_worker:{label}"] = ("dp03", f"{_COW}!!{label}")
    f["median_earnings"] = (
        "dp03",
        "Estimate!!INCOME AND BENEFITS (IN 2023 INFLATION-ADJUSTED "
        "DOLLARS)!!Median earnings for workers (dollars)",
    )
    _employment_rates(f)
    f["insurance_total"] = ("dp03", _HI)
    f["insurance:private"] = (
        "dp03",
        f"{_HI}!!With health insurance coverage!!With private health insurance",
    )
    f["insurance:covered"] = ("dp03", f"{_HI}!!With health insurance coverage")
    f["insurance:none"] = ("dp03", f"{_HI}!!No health insurance coverage")
    return f


def _employment_rates(f: dict[str, tuple[str, str]]) -> None:
    """S2301 group sizes (``emp_total:...``) and employment/population ratios in percent
    (``emp_ratio:...``) by age band, by sex (20 to 64) and by education (25 to 64)."""
    groups = {f"age:{band}": f"AGE!!{band}" for band, _ in EMP_AGE_BANDS}
    groups |= {f"sex:{sex}": f"Population 20 to 64 years!!SEX!!{sex}" for sex in ("Male", "Female")}
    groups |= {
        f"education:{label}": f"EDUCATIONAL ATTAINMENT!!Population 25 to 64 years!!{label}"
        for label in EMP_EDU_LABELS
    }
    for key, label in groups.items():
        f[f"emp_total:{key}"] = ("s2301", _S23.format(kind="Total", label=label))
        f[f"emp_ratio:{key}"] = (
            "s2301",
            _S23.format(kind="Employment/Population Ratio", label=label),
        )


FIGURES: dict[str, tuple[str, str]] = _figures()

#: Raw file of each table for a state code ``st`` (lower case), relative to the ACS folder.
TABLE_FILES: dict[str, str] = {
    "dp02": "DP02/raw_data/{st}_dp02.csv",
    "dp03": "DP03/raw_data/{st}_dp03.csv",
    "dp05": "DP05/raw_data/{st}_sex_race_age.csv",
    "s2401": "s2401/raw_data/{st}_s2401.csv",
    "s2301": "s2301/raw_data/{st}_s2301.csv",
}


def read_label_values(path: Path) -> dict[str, float]:
    """First value of each label in a raw ``Label,Value`` ACS CSV."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except OSError as error:
        raise DataError(
            f"cannot read ACS table {path}: {error.strerror}", "check the path"
        ) from error
    if not rows or rows[0][:2] != ["Label", "Value"]:
        raise DataError(f"ACS table {path} is malformed: expected a 'Label,Value' header", "")
    values: dict[str, float] = {}
    for row in rows[1:]:
        if len(row) >= 2 and row[0] not in values:
            try:
                values[row[0]] = float(row[1])
            except ValueError:
                continue
    return values


def state_figures(acs_dir: Path, state: str) -> dict[str, float]:
    """Every figure of :data:`FIGURES` for one state, read from the raw ACS CSVs."""
    tables = {
        t: read_label_values(acs_dir / p.format(st=state.lower())) for t, p in TABLE_FILES.items()
    }
    figures: dict[str, float] = {}
    for key, (table, label) in FIGURES.items():
        value = tables[table].get(label)
        path = acs_dir / TABLE_FILES[table].format(st=state.lower())
        if value is None:
            raise DataError(
                f"ACS table {path} has no row '{label}'", "is it the 2023 profile table?"
            )
        if value < 0:
            raise DataError(f"ACS table {path} has no estimate for '{label}' ({value:.0f})", "")
        figures[key] = value
    return figures


def build_targets_table(acs_dir: Path, states: list[str]) -> pd.DataFrame:
    """Long table ``state, key, value`` of all figures for ``states`` (sorted, deterministic)."""
    rows = [
        (state, key, value)
        for state in sorted(states)
        for key, value in state_figures(acs_dir, state).items()
    ]
    return pd.DataFrame(rows, columns=["state", "key", "value"])


def national_figures(targets: pd.DataFrame) -> dict[str, float]:
    """National figures as the sum over the states in ``targets`` (the DC fallback).

    Counts add up exactly; the national median earnings is approximated by the mean of the
    state medians weighted by each state's employed population, and each S2301
    employment/population ratio is the mean of the state ratios weighted by the group's size.
    """
    wide = targets.pivot(index="state", columns="key", values="value")
    figures = wide.sum().to_dict()
    employed = wide["employment:Employed"]
    figures["median_earnings"] = float((wide["median_earnings"] * employed).sum() / employed.sum())
    for key in (k for k in wide.columns if k.startswith("emp_ratio:")):
        size = wide[key.replace("emp_ratio:", "emp_total:", 1)]
        figures[key] = float((wide[key] * size).sum() / size.sum())
    return {k: float(v) for k, v in figures.items()}
