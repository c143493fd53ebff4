"""The one place where official ACS PUMS codes become persona attribute values.

Every output column of ``population.parquet`` has a vocabulary here (:data:`VOCAB`), and every
function below turns one or a few PUMS variables (named as in the 2018 data dictionary) into
those values. The value ranges follow the papers' persona templates (Li et al. 2025, Appendix B;
Castricato et al. 2024, Appendix A/C) where they give one; where they do not, the values are the
data dictionary's own labels. ``docs/census.md`` describes the same mapping in prose.

Conventions:

* Codes arrive as strings exactly as in the PUMS CSV; a blank (``NaN``) means "N/A" in the
  dictionary (``b`` / ``bbbb``).
* Persons outside a variable's universe get a documented fallback (e.g. ``"Not applicable"``)
  rather than a missing value, so every column is a complete categorical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NOT_APPLICABLE = "Not applicable"

SEX = ("Male", "Female")
RACE = (
    "White",
    "Black or African American",
    "American Indian and Alaska Native",
    "Asian",
    "Native Hawaiian and Other Pacific Islander",
    "Some Other Race",
    "Two or More Races",
)
HISPANIC = ("Not Hispanic or Latino", "Hispanic or Latino")
ANCESTRY = (
    "British",
    "Irish",
    "German",
    "Italian",
    "Polish",
    "French",
    "Norwegian",
    "Dutch",
    "Swedish",
    "Russian",
    "Chinese",
    "Filipino",
    "Asian Indian",
    "Vietnamese",
    "Korean",
    "Japanese",
    "Mexican",
    "Puerto Rican",
    "Cuban",
    "African American",
    "West Indian",
    "Arab",
    "American Indian",
    "Other",
    "Not reported",
)
HOUSEHOLD_LANGUAGE = (
    "English",
    "Spanish",
    "Other Indo-European",
    "Asian/Pacific Islander languages",
    "Other",
)
EDUCATION = ("Less than HS", "HS Graduate", "Some College", "Bachelor's", "Graduate Degree")
EMPLOYMENT_STATUS = ("Employed", "Unemployed", "Not in Labor Force")
CLASS_OF_WORKER = (
    "Private",
    "Government",
    "Self-employed",
    "Unpaid family worker",
    NOT_APPLICABLE,
)

#: The five census occupation groups and their subgroups, as in the papers' template. The
#: papers' ``INDUSTRY_CATEGORY`` holds the five groups and ``OCCUPATION_CATEGORY`` a subgroup;
#: we keep that layout. Military occupations (OCCP 9800-9830) are added as one extra group.
OCCUPATION_GROUPS: dict[str, tuple[str, ...]] = {
    "Management, business, science, and arts occupations": (
        "Management, business, and financial occupations",
        "Computer, engineering, and science occupations",
        "Education, legal, community service, arts, and media occupations",
        "Healthcare practitioner and technical occupations",
    ),
    "Service occupations": (
        "Healthcare support occupations",
        "Protective service occupations",
        "Food preparation and serving related occupations",
        "Building and grounds cleaning and maintenance occupations",
        "Personal care and service occupations",
    ),
    "Sales and office occupations": (
        "Sales and related occupations",
        "Office and administrative support occupations",
    ),
    "Natural resources, construction, and maintenance occupations": (
        "Farming, fishing, and forestry occupations",
        "Construction and extraction occupations",
        "Installation, maintenance, and repair occupations",
    ),
    "Production, transportation, and material moving occupations": (
        "Production occupations",
        "Transportation occupations",
        "Material moving occupations",
    ),
    "Military specific occupations": ("Military specific occupations",),
}
INDUSTRY_CATEGORY = (*OCCUPATION_GROUPS, NOT_APPLICABLE)
OCCUPATION_CATEGORY = (*(s for subs in OCCUPATION_GROUPS.values() for s in subs), NOT_APPLICABLE)

#: First OCCP code (2018 census occupation scheme) of each subgroup, in code order.
_OCCP_2018_STARTS: tuple[tuple[int, str], ...] = (
    (10, "Management, business, and financial occupations"),
    (1005, "Computer, engineering, and science occupations"),
    (2001, "Education, legal, community service, arts, and media occupations"),
    (3000, "Healthcare practitioner and technical occupations"),
    (3601, "Healthcare support occupations"),
    (3700, "Protective service occupations"),
    (4000, "Food preparation and serving related occupations"),
    (4200, "Building and grounds cleaning and maintenance occupations"),
    (4330, "Personal care and service occupations"),
    (4700, "Sales and related occupations"),
    (5000, "Office and administrative support occupations"),
    (6005, "Farming, fishing, and forestry occupations"),
    (6200, "Construction and extraction occupations"),
    (7000, "Installation, maintenance, and repair occupations"),
    (7700, "Production occupations"),
    (9005, "Transportation occupations"),
    (9510, "Material moving occupations"),
    (9800, "Military specific occupations"),
    (9920, NOT_APPLICABLE),  # unemployed, last worked 5+ years ago or never
)

MARITAL_STATUS = ("Married", "Widowed", "Divorced", "Separated", "Never Married")
HOUSEHOLD_TYPE = ("Family", "Non-family", "Group quarters")
FAMILY_PRESENCE_AND_AGE = (
    "With related children under 5 years only",
    "With related children 5 to 17 years only",
    "With related children under 5 years and 5 to 17 years",
    "No related children under 18 years",
    "Not applicable (group quarters)",
)
CITIZENSHIP = (
    "Born in the U.S.",
    "Born in Puerto Rico, Guam, the U.S. Virgin Islands, or the Northern Marianas",
    "Born abroad of American parent(s)",
    "U.S. citizen by naturalization",
    "Not a citizen of the U.S.",
)
VETERAN_STATUS = ("Veteran", "Non-veteran")
DISABILITY = ("None", "Physical", "Mental", "Both")
HEALTH_INSURANCE = ("Private", "Public", "None")
YES_NO = ("Yes", "No")
ABILITY_TO_SPEAK_ENGLISH = (
    "Very well",
    "Well",
    "Not well",
    "Not at all",
    "Speaks only English",
    NOT_APPLICABLE,
)
FERTILITY = (
    "Gave birth in the past 12 months",
    "Did not give birth in the past 12 months",
    NOT_APPLICABLE,
)

#: Output columns with a closed vocabulary. ``place_of_birth`` is open: it holds the data
#: dictionary's POBP label (a US state such as ``"California/CA"`` or a foreign country).
VOCAB: dict[str, tuple[str, ...]] = {
    "sex": SEX,
    "race": RACE,
    "hispanic": HISPANIC,
    "ancestry": ANCESTRY,
    "household_language": HOUSEHOLD_LANGUAGE,
    "education": EDUCATION,
    "employment_status": EMPLOYMENT_STATUS,
    "class_of_worker": CLASS_OF_WORKER,
    "industry_category": INDUSTRY_CATEGORY,
    "occupation_category": OCCUPATION_CATEGORY,
    "marital_status": MARITAL_STATUS,
    "household_type": HOUSEHOLD_TYPE,
    "family_presence_and_age": FAMILY_PRESENCE_AND_AGE,
    "citizenship": CITIZENSHIP,
    "veteran_status": VETERAN_STATUS,
    "disability": DISABILITY,
    "health_insurance": HEALTH_INSURANCE,
    "cognitive_difficulty": YES_NO,
    "ability_to_speak_english": ABILITY_TO_SPEAK_ENGLISH,
    "vision_difficulty": YES_NO,
    "hearing_difficulty": YES_NO,
    "fertility": FERTILITY,
}

#: Columns of ``population.parquet``, in order.
POPULATION_COLUMNS: tuple[str, ...] = (
    "person_id",
    "state",
    "weight",
    "age",
    "sex",
    "race",
    "hispanic",
    "ancestry",
    "household_language",
    "education",
    "employment_status",
    "class_of_worker",
    "industry_category",
    "occupation_category",
    "income",
    "marital_status",
    "household_type",
    "family_presence_and_age",
    "place_of_birth",
    "citizenship",
    "veteran_status",
    "disability",
    "health_insurance",
    "cognitive_difficulty",
    "ability_to_speak_english",
    "vision_difficulty",
    "hearing_difficulty",
    "fertility",
    "source",
)

#: CPI-U annual averages (BLS, 1982-84 = 100), to express income in 2023 dollars.
CPI_U: dict[int, float] = {
    2012: 229.594,
    2013: 232.957,
    2014: 236.736,
    2015: 237.017,
    2016: 240.007,
    2017: 245.120,
    2018: 251.107,
    2019: 255.657,
    2020: 258.811,
    2021: 270.970,
    2022: 292.655,
    2023: 304.702,
}
INCOME_YEAR = 2023
INCOME_MAX = 1_000_000


def _num(codes: pd.Series) -> np.ndarray:
    """PUMS codes as float (``NaN`` for blank/N/A)."""
    return pd.to_numeric(codes, errors="coerce").to_numpy(dtype=float)


def _pick(index: np.ndarray, vocab: tuple[str, ...]) -> pd.Categorical:
    """A categorical over ``vocab`` from integer positions into it."""
    return pd.Categorical.from_codes(index.astype(np.int16), categories=list(vocab))


def _lookup(codes: np.ndarray, table: dict[int, int], default: int) -> np.ndarray:
    """Map numeric codes through ``table`` (code -> vocabulary position), else ``default``."""
    out = np.full(codes.shape, default, dtype=np.int16)
    for code, position in table.items():
        out[codes == code] = position
    return out


def map_sex(sex: pd.Series) -> pd.Categorical:
    """SEX 1/2 -> Male/Female."""
    return _pick(_num(sex).astype(int) - 1, SEX)


def map_race(rac1p: pd.Series) -> pd.Categorical:
    """RAC1P (1 White ... 9 Two or more) -> seven race-alone groups (AIAN codes 3-5 pooled)."""
    table = {1: 0, 2: 1, 3: 2, 4: 2, 5: 2, 6: 3, 7: 4, 8: 5, 9: 6}
    return _pick(_lookup(_num(rac1p), table, 5), RACE)


def map_hispanic(hisp: pd.Series) -> pd.Categorical:
    """HISP 01 = not Hispanic; any other origin code = Hispanic or Latino."""
    return _pick((_num(hisp) != 1).astype(int), HISPANIC)


def map_ancestry(anc1p: pd.Series) -> pd.Categorical:
    """ANC1P (first ancestry) -> the papers' 23 groups, else ``Other`` / ``Not reported``.

    British = British, British Isles, English, Scotch-Irish, Scottish, Welsh; French includes
    French Canadian, Acadian, Cajun; Arab = the dictionary's Arab-world origins (400-429, 435,
    465, 495-499); ``Not reported`` = 999 and 000 (suppressed); everything else is ``Other``.
    """
    code = _num(anc1p)
    groups: dict[str, list[int]] = {
        "British": [11, 12, 22, 87, 88, 97],
        "Irish": [50, 94],
        "German": [32, 40, 929],
        "Italian": [51, 68],
        "Polish": [142],
        "French": [26, 935, 936, 937],
        "Norwegian": [82],
        "Dutch": [21],
        "Swedish": [89],
        "Russian": [148],
        "Chinese": [706, 707, 716, 782],
        "Filipino": [720],
        "Asian Indian": [615, 620],
        "Vietnamese": [785],
        "Korean": [750],
        "Japanese": [740, 748],
        "Mexican": list(range(210, 220)),
        "Puerto Rican": [261],
        "Cuban": [271],
        "African American": [900, 901, 902, 903, 904],
        "West Indian": list(range(300, 360)),
        "Arab": [*range(400, 412), 417, 421, 423, 425, 427, 429, 435, 465, 495, 496, 499],
        "American Indian": [913, 914, 917, 918, 919, 920, 922],
        "Not reported": [999, 0],
    }
    table = {c: ANCESTRY.index(name) for name, cs in groups.items() for c in cs}
    return _pick(_lookup(code, table, ANCESTRY.index("Other")), ANCESTRY)


def language_group(lanx: pd.Series, lanp: pd.Series) -> np.ndarray:
    """LANX/LANP (2016+ four-digit language codes) -> position in :data:`HOUSEHOLD_LANGUAGE`.

    English only (LANX 2) -> English; 1200 -> Spanish; 1000-1564 -> Other Indo-European
    (Germanic, Romance, Slavic, Baltic, Celtic, Greek, Indo-Iranian, the creoles); 1690-3600
    -> Asian/Pacific Islander (incl. Dravidian, Chinese, Philippine, Polynesian); Uralic
    (Finnish, Hungarian), Turkish, Afro-Asiatic, African, Native American and unspecified -> Other.
    Returns -1 where LANX is N/A (under 5).
    """
    speaks, code = _num(lanx), _num(lanp)
    out = np.full(code.shape, 4, dtype=np.int16)
    out[(code >= 1000) & (code <= 1564)] = 2
    out[code == 1200] = 1
    out[(code >= 1690) & (code <= 3600)] = 3
    out[speaks == 2] = 0
    out[np.isnan(speaks)] = -1
    return out


def map_education(schl: pd.Series) -> pd.Categorical:
    """SCHL -> five levels: 1-15 (incl. N/A under 3) Less than HS; 16-17 HS (diploma or GED);
    18-20 Some College (incl. associate's); 21 Bachelor's; 22-24 Graduate Degree."""
    code = np.nan_to_num(_num(schl), nan=1)
    position = np.digitize(code, [16, 18, 21, 22])
    return _pick(position, EDUCATION)


def map_employment(esr: pd.Series) -> pd.Categorical:
    """ESR: civilian or armed-forces employed (1, 2, 4, 5) -> Employed; 3 -> Unemployed;
    6 and N/A (under 16) -> Not in Labor Force."""
    return _pick(_lookup(_num(esr), {1: 0, 2: 0, 4: 0, 5: 0, 3: 1}, 2), EMPLOYMENT_STATUS)


def map_class_of_worker(cow: pd.Series) -> pd.Categorical:
    """COW: 1-2 Private; 3-5 Government; 6-7 Self-employed; 8 Unpaid family worker;
    9 and N/A (never worked / not in the last 5 years / under 16) -> Not applicable."""
    table = {1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 3}
    return _pick(_lookup(_num(cow), table, 4), CLASS_OF_WORKER)


def map_occupation(occp: pd.Series) -> tuple[pd.Categorical, pd.Categorical]:
    """OCCP (2018 census occupation codes) -> (five-group category, subgroup).

    Subgroups follow the code ranges of the 2018 scheme (used by ACS PUMS 2018 onwards), e.g.
    0010-0960 management/business/financial, 9005-9430 transportation, 9510-9760 material
    moving; N/A and 9920 (no work in the last 5 years) -> Not applicable.
    """
    code = np.nan_to_num(_num(occp), nan=9920)
    starts = np.array([s for s, _ in _OCCP_2018_STARTS])
    subgroup_names = [name for _, name in _OCCP_2018_STARTS]
    sub = np.array([OCCUPATION_CATEGORY.index(n) for n in subgroup_names])[
        np.searchsorted(starts, code, side="right") - 1
    ]
    parent_of = {
        s: INDUSTRY_CATEGORY.index(g) for g, subs in OCCUPATION_GROUPS.items() for s in subs
    }
    parent_table = np.array(
        [parent_of.get(s, INDUSTRY_CATEGORY.index(NOT_APPLICABLE)) for s in OCCUPATION_CATEGORY]
    )
    return _pick(parent_table[sub], INDUSTRY_CATEGORY), _pick(sub, OCCUPATION_CATEGORY)


def dollars_2023(amount: pd.Series, adjinc: pd.Series, year: int) -> np.ndarray:
    """A PUMS dollar amount (PINCP, PERNP) in 2023 dollars: ``amount * ADJINC / 1e6`` gives the
    survey year's dollars, then the CPI-U ratio ``CPI(2023) / CPI(year)``."""
    factor = CPI_U[INCOME_YEAR] / CPI_U[year]
    return np.nan_to_num(_num(amount)) * _num(adjinc) / 1e6 * factor


def map_income(pincp: pd.Series, adjinc: pd.Series, year: int) -> np.ndarray:
    """PINCP (total personal income) in 2023 dollars, rounded and clipped to the papers' range
    $0-$1,000,000 (losses become 0; N/A under 15 becomes 0)."""
    value = np.rint(dollars_2023(pincp, adjinc, year))
    return np.clip(value, 0, INCOME_MAX).astype(np.int32)


def map_marital(mar: pd.Series) -> pd.Categorical:
    """MAR 1 Married, 2 Widowed, 3 Divorced, 4 Separated, 5 Never married (or under 15)."""
    return _pick(_num(mar).astype(int) - 1, MARITAL_STATUS)


def map_citizenship(cit: pd.Series) -> pd.Categorical:
    """CIT 1-5 -> the data dictionary's own labels."""
    return _pick(_num(cit).astype(int) - 1, CITIZENSHIP)


def map_veteran(mil: pd.Series) -> pd.Categorical:
    """MIL 2 (served on active duty in the past, not now) -> Veteran; everyone else (active
    duty, reserves-only training, never served, under 17) -> Non-veteran."""
    return _pick((_num(mil) != 2).astype(int), VETERAN_STATUS)


def map_disability(frame: pd.DataFrame) -> pd.Categorical:
    """DIS with its parts: Mental = cognitive difficulty (DREM); Physical = any of hearing,
    vision, ambulatory, self-care or independent-living difficulty (DEAR, DEYE, DPHY, DDRS,
    DOUT); Both = both kinds; None = DIS 2."""
    has = {v: _num(frame[v]) == 1 for v in ("DREM", "DEAR", "DEYE", "DPHY", "DDRS", "DOUT")}
    mental = has["DREM"]
    physical = has["DEAR"] | has["DEYE"] | has["DPHY"] | has["DDRS"] | has["DOUT"]
    position = np.where(mental & physical, 3, np.where(mental, 2, np.where(physical, 1, 0)))
    position[_num(frame["DIS"]) != 1] = 0
    return _pick(position, DISABILITY)


def map_health_insurance(privcov: pd.Series, pubcov: pd.Series) -> pd.Categorical:
    """PRIVCOV 1 -> Private (even with public coverage too); else PUBCOV 1 -> Public; else None."""
    private, public = _num(privcov) == 1, _num(pubcov) == 1
    return _pick(np.where(private, 0, np.where(public, 1, 2)), HEALTH_INSURANCE)


def map_yes_no(flag: pd.Series) -> pd.Categorical:
    """A 1/2 difficulty flag (DREM, DEYE, DEAR) -> Yes/No; N/A (DREM under 5) -> No."""
    return _pick((_num(flag) != 1).astype(int), YES_NO)


def map_english(eng: pd.Series, lanx: pd.Series) -> pd.Categorical:
    """ENG 1-4 (speakers of another language); LANX 2 -> Speaks only English; under 5 -> N/A."""
    code, speaks = _num(eng), _num(lanx)
    position = np.where(np.isnan(code), np.where(speaks == 2, 4, 5), np.nan_to_num(code) - 1)
    return _pick(position.astype(int), ABILITY_TO_SPEAK_ENGLISH)


def map_fertility(fer: pd.Series) -> pd.Categorical:
    """FER 1/2 (women 15-50) -> gave / did not give birth in the past 12 months; else N/A."""
    return _pick(_lookup(_num(fer), {1: 0, 2: 1}, 2), FERTILITY)


#: RELSHIPP (2019+) -> RELP (2018 and earlier) codes, so one mapping serves all years.
RELSHIPP_TO_RELP: dict[int, int] = {
    20: 0,
    21: 1,
    22: 13,
    23: 1,
    24: 13,
    25: 2,
    26: 3,
    27: 4,
    28: 5,
    29: 6,
    30: 7,
    31: 8,
    32: 9,
    33: 10,
    34: 12,
    35: 14,
    36: 15,
    37: 16,
    38: 17,
}
