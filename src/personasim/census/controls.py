"""Raking controls: which seed persons fall in which cell, and each cell's ACS target.

Every control covers the whole population. Persons outside its ACS universe (e.g. under 25 for
education) share one extra "not in universe" cell whose target is the complement
``total population - universe total`` from the same state's tables, so that all controls add up
to the same total and raking stays consistent. The earnings control is a share control: it
splits the current weight of workers with earnings at the state's median (half below, half
above) and leaves everyone else alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from personasim.census import mapping as m
from personasim.census import targets as t

Figures = dict[str, float]


@dataclass(frozen=True)
class Control:
    """One raking margin: a cell per person, a target per cell, and the cell names.

    The last cell is "not in universe" unless ``universe_cell`` is False. With ``share`` set,
    ``target`` holds shares of the in-universe weight instead of counts.
    """

    name: str
    cells: np.ndarray
    target: np.ndarray
    labels: tuple[str, ...]
    universe_cell: bool = True
    share: bool = False

    @property
    def size(self) -> int:
        """Number of cells (including the not-in-universe cell)."""
        return len(self.target)

    def targets_for(self, current: np.ndarray) -> np.ndarray:
        """Target counts given the current weighted cell totals."""
        if not self.share:
            return self.target
        inside = current[:-1].sum()
        return np.append(self.target[:-1] * inside, current[-1])


def _broad_age(age: np.ndarray) -> np.ndarray:
    """0 under 18, 1 for 18-64, 2 for 65 and over."""
    return np.digitize(age, [18, 65])


def _with_niu(cells: np.ndarray, inside: np.ndarray, values: list[float], total: float) -> tuple:
    """Cells with the not-in-universe cell appended, and targets with its complement."""
    niu = len(values)
    target = np.array([*values, max(total - sum(values), 0.0)])
    return np.where(inside, cells, niu).astype(np.int16), target


def age_group(seed: pd.DataFrame, f: Figures) -> Control:
    """Age in the 13 DP05 bands."""
    cells = np.digitize(seed["age"].to_numpy(), [lo for _, lo, _ in t.AGE_BANDS[1:]])
    target = np.array([f[f"age:{band}"] for band, _, _ in t.AGE_BANDS])
    return Control(
        "age_group",
        cells.astype(np.int16),
        target,
        tuple(b for b, _, _ in t.AGE_BANDS),
        universe_cell=False,
    )


def sex_by_age(seed: pd.DataFrame, f: Figures) -> Control:
    """Sex x (under 18, 18-64, 65+), from DP05's sex totals for all, 18+ and 65+."""
    sex = seed["sex"].cat.codes.to_numpy()
    cells = (sex * 3 + _broad_age(seed["age"].to_numpy())).astype(np.int16)
    target, labels = [], []
    for s in m.SEX:
        all_, a18, a65 = f[f"sex:{s}"], f[f"sex18:{s}"], f[f"sex65:{s}"]
        target += [all_ - a18, a18 - a65, a65]
        labels += [f"{s} under 18", f"{s} 18-64", f"{s} 65+"]
    return Control("sex_by_age", cells, np.array(target), tuple(labels), universe_cell=False)


def race_ethnicity(seed: pd.DataFrame, f: Figures) -> Control:
    """Hispanic (any race), else race alone (7 groups) among non-Hispanics (DP05)."""
    hispanic = seed["hispanic"].cat.codes.to_numpy() == 1
    cells = np.where(hispanic, 0, 1 + seed["race"].cat.codes.to_numpy()).astype(np.int16)
    target = np.array([f["hispanic"], *(f[f"race_nh:{r}"] for r in t.RACE_LABELS)])
    labels = ("Hispanic", *(f"Non-Hispanic {r}" for r in t.RACE_LABELS))
    return Control("race_ethnicity", cells, target, labels, universe_cell=False)


def education(seed: pd.DataFrame, f: Figures) -> Control:
    """Five education levels, population 25 and over (DP02)."""
    e = [f[f"education:{label}"] for label in t.EDU_LABELS]
    values = [e[0] + e[1], e[2], e[3] + e[4], e[5], e[6]]
    inside = seed["age"].to_numpy() >= 25
    cells, target = _with_niu(seed["education"].cat.codes.to_numpy(), inside, values, f["total"])
    return Control("education", cells, target, (*m.EDUCATION, "not 25+"))


def employment(seed: pd.DataFrame, f: Figures) -> Control:
    """Civilian employed, unemployed, armed forces, not in labor force; 16 and over (DP03)."""
    kinds = ("Employed", "Unemployed", "Armed Forces", "Not in labor force")
    esr = seed["esr"].to_numpy()
    cells = np.select([np.isin(esr, [1, 2]), esr == 3, np.isin(esr, [4, 5])], [0, 1, 2], 3)
    values = [f[f"employment:{k}"] for k in kinds]
    cells, target = _with_niu(cells, esr > 0, values, f["total"])
    return Control("employment", cells, target, (*kinds, "under 16"))


def earnings(seed: pd.DataFrame, f: Figures) -> Control:
    """Workers 16+ with earnings: half at or below the state's median earnings (DP03)."""
    earn = seed["earnings"].to_numpy()
    inside = (seed["age"].to_numpy() >= 16) & (earn > 0)
    cells = np.where(earn <= f["median_earnings"], 0, 1)
    cells = np.where(inside, cells, 2).astype(np.int16)
    labels = ("earnings <= median", "earnings > median", "no earnings or under 16")
    return Control("earnings", cells, np.array([0.5, 0.5, 0.0]), labels, share=True)


def marital_by_sex(seed: pd.DataFrame, f: Figures) -> Control:
    """Sex x five marital statuses, population 15 and over (DP02)."""
    cells = seed["sex"].cat.codes.to_numpy() * 5 + seed["marital_status"].cat.codes.to_numpy()
    values = [f[f"marital:{s}:{label}"] for s in m.SEX for label in t.MARITAL_LABELS]
    cells, target = _with_niu(cells, seed["age"].to_numpy() >= 15, values, f["total"])
    labels = tuple(f"{s} {ms}" for s in m.SEX for ms in m.MARITAL_STATUS)
    return Control("marital_by_sex", cells, target, (*labels, "under 15"))


def veteran(seed: pd.DataFrame, f: Figures) -> Control:
    """Veteran or not, civilians 18 and over (DP02)."""
    inside = (seed["age"].to_numpy() >= 18) & (seed["mil"].to_numpy() != 1)
    cells = seed["veteran_status"].cat.codes.to_numpy()
    values = [f["veteran"], f["veteran_total"] - f["veteran"]]
    cells, target = _with_niu(cells, inside, values, f["total"])
    return Control("veteran", cells, target, (*m.VETERAN_STATUS, "not civilian 18+"))


def nativity(seed: pd.DataFrame, f: Figures) -> Control:
    """Native, naturalized citizen, not a citizen (DP02)."""
    cells = np.clip(seed["citizenship"].cat.codes.to_numpy() - 2, 0, 2).astype(np.int16)
    target = np.array([f["native"], f["naturalized"], f["noncitizen"]])
    return Control(
        "nativity", cells, target, ("native", "naturalized", "not a citizen"), universe_cell=False
    )


def language(seed: pd.DataFrame, f: Figures) -> Control:
    """Language spoken at home in five groups, population 5 and over (DP02)."""
    values = [f[f"language:{label}"] for label in t.LANG_LABELS]
    codes = seed["household_language"].cat.codes.to_numpy()
    cells, target = _with_niu(codes, seed["age"].to_numpy() >= 5, values, f["total"])
    return Control("language", cells, target, (*m.HOUSEHOLD_LANGUAGE, "under 5"))


def health_insurance(seed: pd.DataFrame, f: Figures) -> Control:
    """Private, public only, uninsured; civilian noninstitutionalized (DP03)."""
    values = [
        f["insurance:private"],
        f["insurance:covered"] - f["insurance:private"],
        f["insurance:none"],
    ]
    codes = seed["health_insurance"].cat.codes.to_numpy()
    cells, target = _with_niu(codes, seed["civ_noninst"].to_numpy(), values, f["total"])
    return Control("health_insurance", cells, target, (*m.HEALTH_INSURANCE, "not civ. noninst."))


def disability_by_age(seed: pd.DataFrame, f: Figures) -> Control:
    """With/without a disability x (under 18, 18-64, 65+); civilian noninstitutionalized (DP02)."""
    bands = ("Under 18 years", "18 to 64 years", "65 years and over")
    without = (seed["disability"].cat.codes.to_numpy() == 0).astype(int)
    cells = _broad_age(seed["age"].to_numpy()) * 2 + without
    values = []
    for band in bands:
        values += [f[f"disability:{band}"], f[f"disability_total:{band}"] - f[f"disability:{band}"]]
    cells, target = _with_niu(cells, seed["civ_noninst"].to_numpy(), values, f["total"])
    labels = tuple(f"{b} {d}" for b in bands for d in ("with disability", "no disability"))
    return Control("disability_by_age", cells, target, (*labels, "not civ. noninst."))


def occupation_by_sex(seed: pd.DataFrame, f: Figures) -> Control:
    """Sex x five occupation groups, civilian employed 16 and over (S2401)."""
    group = seed["industry_category"].cat.codes.to_numpy()
    inside = np.isin(seed["esr"].to_numpy(), [1, 2]) & (group < 5)
    cells = seed["sex"].cat.codes.to_numpy() * 5 + group
    values = [f[f"occupation:{s}:{g}"] for s in m.SEX for g in t.OCC_GROUPS]
    cells, target = _with_niu(cells, inside, values, f["total"])
    labels = tuple(f"{s} {g.split(',')[0].split(' ')[0]}" for s in m.SEX for g in t.OCC_GROUPS)
    return Control("occupation_by_sex", cells, target, (*labels, "not civilian employed"))


def class_of_worker(seed: pd.DataFrame, f: Figures) -> Control:
    """Private wage (incl. own incorporated business), government, self-employed not
    incorporated, unpaid family; civilian employed 16 and over (DP03)."""
    cow = seed["cow"].to_numpy()
    cells = np.select([np.isin(cow, [1, 2, 7]), np.isin(cow, [3, 4, 5]), cow == 6], [0, 1, 2], 3)
    inside = np.isin(seed["esr"].to_numpy(), [1, 2]) & (cow > 0) & (cow < 9)
    values = [f[f"class_of_worker:{label}"] for label in t.COW_LABELS]
    cells, target = _with_niu(cells, inside, values, f["total"])
    labels = ("private wage", "government", "self-employed", "unpaid family")
    return Control("class_of_worker", cells, target, (*labels, "not civilian employed"))


def _employment_cross(
    name: str,
    group: np.ndarray,
    inside: np.ndarray,
    keys: list[str],
    labels: list[str],
    seed: pd.DataFrame,
    f: Figures,
) -> Control:
    """Group x (civilian employed, not) from S2301 group sizes and employment/population ratios;
    ``group`` indexes ``keys`` for the persons ``inside`` the universe."""
    employed = np.isin(seed["esr"].to_numpy(), [1, 2])
    cells = group * 2 + np.where(employed, 0, 1)
    values = []
    for key in keys:
        total, ratio = f[f"emp_total:{key}"], f[f"emp_ratio:{key}"] / 100.0
        values += [total * ratio, total * (1.0 - ratio)]
    cells, target = _with_niu(cells, inside, values, f["total"])
    names = tuple(f"{label} {e}" for label in labels for e in ("employed", "not employed"))
    return Control(name, cells, target, (*names, "not in universe"))


def employment_by_age(seed: pd.DataFrame, f: Figures) -> Control:
    """Civilian employed or not x ten age bands, population 16 and over (S2301)."""
    age = seed["age"].to_numpy()
    starts = [lo for _, lo in t.EMP_AGE_BANDS]
    group = np.clip(np.digitize(age, starts[1:]), 0, len(starts) - 1)
    keys = [f"age:{band}" for band, _ in t.EMP_AGE_BANDS]
    labels = [band.replace(" years", "") for band, _ in t.EMP_AGE_BANDS]
    return _employment_cross("employment_by_age", group, age >= 16, keys, labels, seed, f)


def employment_by_sex(seed: pd.DataFrame, f: Figures) -> Control:
    """Civilian employed or not x sex, population 20 to 64 (S2301)."""
    age = seed["age"].to_numpy()
    keys = [f"sex:{s}" for s in m.SEX]
    return _employment_cross(
        "employment_by_sex",
        seed["sex"].cat.codes.to_numpy(),
        (age >= 20) & (age <= 64),
        keys,
        list(m.SEX),
        seed,
        f,
    )


def employment_by_education(seed: pd.DataFrame, f: Figures) -> Control:
    """Civilian employed or not x four education groups, population 25 to 64 (S2301)."""
    age = seed["age"].to_numpy()
    group = np.minimum(seed["education"].cat.codes.to_numpy(), 3)  # Bachelor's or higher
    keys = [f"education:{label}" for label in t.EMP_EDU_LABELS]
    labels = ["less than HS", "HS graduate", "some college", "bachelor's+"]
    return _employment_cross(
        "employment_by_education", group, (age >= 25) & (age <= 64), keys, labels, seed, f
    )


#: Cross-tabulated controls from S2301 (employment status by age, by sex, by education). Race
#: is left out: S2301 suppresses its race rows in small states (e.g. all but White and Two or
#: more races in VT) and counts Hispanics inside each race, unlike ``race_ethnicity``.
CROSS_CONTROLS: tuple[str, ...] = (
    "employment_by_education",
    "employment_by_sex",
    "employment_by_age",
)

#: All controls, in raking order (the most important last: IPF ends on it exactly).
CONTROL_BUILDERS: dict[str, Callable[[pd.DataFrame, Figures], Control]] = {
    "employment_by_education": employment_by_education,
    "employment_by_sex": employment_by_sex,
    "employment_by_age": employment_by_age,
    "earnings": earnings,
    "class_of_worker": class_of_worker,
    "occupation_by_sex": occupation_by_sex,
    "health_insurance": health_insurance,
    "disability_by_age": disability_by_age,
    "language": language,
    "nativity": nativity,
    "veteran": veteran,
    "marital_by_sex": marital_by_sex,
    "employment": employment,
    "education": education,
    "race_ethnicity": race_ethnicity,
    "sex_by_age": sex_by_age,
    "age_group": age_group,
}


#: The one-way controls the population stage raked before the S2301 cross-tabulations.
MARGINAL_CONTROLS: tuple[str, ...] = tuple(n for n in CONTROL_BUILDERS if n not in CROSS_CONTROLS)


def build_controls(
    seed: pd.DataFrame, figures: Figures, names: list[str] | tuple[str, ...] | None = None
) -> list[Control]:
    """The controls named (default: all) for one state's figures."""
    chosen = names or list(CONTROL_BUILDERS)
    return [CONTROL_BUILDERS[name](seed, figures) for name in chosen]
