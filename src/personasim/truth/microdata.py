"""Respondent microdata as ground truth: one row per respondent, a weight column, answer columns
and demographic columns, described by a mapping file (YAML, :class:`MicrodataMapping`).

The data file is CSV, Parquet, SPSS ``.sav`` or Stata ``.dta`` (both read with pyreadstat, which
keeps the value labels so codes can be mapped by label), or ``statsmodels:NAME``, a data set
that ships with statsmodels (``statsmodels:anes96``). A relative path is relative to the mapping
file. :func:`microdata_truth` returns a truth table (:data:`~personasim.truth.table.TRUTH_COLUMNS`)
of weighted option totals for the whole sample and for every group of every mapped group column,
plus the sample's uncertainty per question x group (:data:`UNCERTAINTY_COLUMNS`).

Group columns are mapped onto person attributes that scoring and cross-tabs derive for a census
population (:data:`ATTRIBUTES`); a group value no person could take is refused, so every truth
group can be met by simulated persons.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from personasim.census.mapping import EDUCATION as CENSUS_EDUCATION
from personasim.core.errors import ConfigError, DataError, validation_error
from personasim.core.states import STATE_FIPS, state_code
from personasim.survey.groups import (
    EDUCATION_GROUPS,
    INCOME_BANDS,
    RACE_GROUPS,
    REGIONS,
    age_group,
    region_group,
)
from personasim.survey.loaders import load_survey
from personasim.survey.questions import Question, Survey
from personasim.truth.table import OVERALL, TRUTH_COLUMNS

UNCERTAINTY_COLUMNS = ["n", "n_eff"]
"""Extra truth-table columns of a microdata truth, the same on every option row of one question x
group: ``n`` respondents who gave a mapped answer and ``n_eff`` Kish's effective sample size
``(sum w)^2 / sum w^2`` of their weights. The sampling standard error of an option's weighted
share ``p`` is about ``sqrt(p (1 - p) / n_eff)``; ``n_eff = n`` with equal weights."""

BUILTIN_MAPPINGS = ("anes96",)
"""Mappings shipped with personasim: ``microdata:anes96``."""

_AGE_LEVELS = ("18-29", "30-49", "50-64", "65+")


def _state_levels(values: pd.Series) -> pd.Series:
    """Postal codes of states given as codes, names or FIPS numbers (missing stays missing)."""
    given = values.dropna()
    return given.map(lambda v: state_code(_key(v))).reindex(values.index)


ATTRIBUTES: dict[str, tuple[tuple[str, ...], Callable[[pd.Series], pd.Series] | None]] = {
    "AGE": (_AGE_LEVELS, age_group),
    "SEX": (("Male", "Female"), None),
    "RACE": ((*dict.fromkeys(RACE_GROUPS.values()), "Hispanic"), None),
    "EDUCATION": (tuple(EDUCATION_GROUPS.values()), None),
    "CREGION": (tuple(REGIONS), region_group),
    "INCOME_BAND": (tuple(band for band, _ in INCOME_BANDS), None),
    "sex": (("Male", "Female"), None),
    "education": (CENSUS_EDUCATION, None),
    "state": (tuple(STATE_FIPS), _state_levels),
}
"""Person attribute -> (the levels a person can have, how a raw value becomes a level when the
mapping says ``derive: true``). Upper-case names are derived from census columns
(:mod:`personasim.survey.groups`); lower-case ones are the persons' own columns."""


class AnswerColumn(BaseModel):
    """How one survey question is read from the data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(min_length=1)
    """The data column holding the answers."""
    codes: dict[str, str] = Field(min_length=1)
    """Code or value label in the data -> the option (its label, text or code in the survey)."""
    missing: tuple[str, ...] = ()
    """Codes or value labels left out (not asked, don't know, refused when the survey has no
    refusal option). Empty cells are always left out."""


class GroupColumn(BaseModel):
    """How one demographic column becomes groups of a person attribute."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(min_length=1)
    """The data column."""
    attribute: str = Field(min_length=1)
    """The person attribute the groups belong to (a key of :data:`ATTRIBUTES`)."""
    codes: dict[str, str] = Field(default_factory=dict)
    """Code or value label in the data -> the attribute's level (e.g. ``4: Some College``)."""
    derive: bool = False
    """True: the column holds the raw value (age in years, a state) and personasim derives the
    level as it does for persons; ``codes`` must then be empty."""
    missing: tuple[str, ...] = ()
    """Codes or value labels with no group (the respondent still counts overall)."""


class MicrodataMapping(BaseModel):
    """The mapping file: where the respondents are and how their columns are read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data: str = Field(min_length=1)
    """The data file (CSV, Parquet, ``.sav``, ``.dta``; relative to the mapping file) or
    ``statsmodels:NAME``."""
    survey: str | None = None
    """The survey the questions come from (a survey spec; a relative file path is relative to
    the mapping file). None: the study's or command's survey."""
    weight: str | None = None
    """The weight column; None: every respondent weighs 1 (say so when the data has none)."""
    questions: dict[str, AnswerColumn] = Field(min_length=1)
    """Question id -> how its answers are read."""
    groups: tuple[GroupColumn, ...] = ()
    """Group columns; the whole sample is always a group (``overall``)."""


def _key(value: Any) -> str:
    """A cell or mapping key as text: ``1.0`` and ``1`` are both ``"1"``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def mapping_path(spec: str) -> Path:
    """The mapping file of ``microdata:SPEC``: a shipped mapping's name or a file path."""
    if spec in BUILTIN_MAPPINGS:
        ref = resources.files("personasim.truth") / "data" / f"{spec}.yaml"
        with resources.as_file(ref) as real:
            return Path(real)
    return Path(spec)


def load_mapping(path: Path) -> MicrodataMapping:
    """Read and validate a mapping file (one line naming the file and field when wrong)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: mapping file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read mapping ({str(error).splitlines()[0]})") from None
    if isinstance(raw, dict):  # YAML keys and values may be numbers; codes are text
        raw = {
            **raw,
            "questions": _text_codes(raw.get("questions")),
            "groups": [_text_codes_of(g) for g in raw.get("groups") or []],
        }
    try:
        return MicrodataMapping.model_validate(raw)
    except ValidationError as error:
        raise validation_error(error, str(path), known_fields=_fields_at) from None


def _fields_at(loc: tuple[object, ...]) -> list[str]:
    """The mapping's valid keys at ``loc`` (for "did you mean" on an unknown key)."""
    model: type[BaseModel] = MicrodataMapping
    if loc[:1] == ("questions",) and len(loc) == 2:
        model = AnswerColumn
    elif loc[:1] == ("groups",) and len(loc) == 2:
        model = GroupColumn
    elif loc:
        return []
    return list(model.model_fields)


def _text_codes_of(entry: Any) -> Any:
    """One column entry with its ``codes`` keys/values and ``missing`` items as text."""
    if not isinstance(entry, dict):
        return entry
    out = dict(entry)
    if isinstance(out.get("codes"), dict):
        out["codes"] = {_key(k): _key(v) for k, v in out["codes"].items()}
    if isinstance(out.get("missing"), list):
        out["missing"] = [_key(v) for v in out["missing"]]
    return out


def _text_codes(questions: Any) -> Any:
    """Every question entry through :func:`_text_codes_of`."""
    if not isinstance(questions, dict):
        return questions
    return {str(k): _text_codes_of(v) for k, v in questions.items()}


def data_files(truth_spec: str | None) -> list[str]:
    """The data file a ``microdata:`` truth spec reads (its mapping names it), for stage hashes:
    a respondent file that changes makes the scores stale. Empty for other specs, for
    ``statsmodels:`` data and for a mapping that cannot be read (the pre-flight reports it)."""
    name, _, spec = (truth_spec or "").partition(":")
    if name != "microdata" or not spec:
        return []
    path = mapping_path(spec)
    try:
        data = load_mapping(path).data
    except ConfigError:
        return []
    if data.startswith("statsmodels:"):
        return []
    return [str(Path(data) if Path(data).is_absolute() else path.parent / data)]


def read_microdata(data: str, base: Path) -> tuple[pd.DataFrame, dict[str, dict[str, str]], str]:
    """The respondents, value labels by column (``code -> label``) and the name of the source."""
    if data.startswith("statsmodels:"):
        return _statsmodels(data.partition(":")[2]), {}, data
    path = Path(data) if Path(data).is_absolute() else base / data
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: microdata file not found")
    try:
        if suffix in {".sav", ".zsav", ".dta"}:
            import pyreadstat

            reader = pyreadstat.read_dta if suffix == ".dta" else pyreadstat.read_sav
            frame, meta = reader(str(path))
            labels = {
                col: {_key(code): str(text) for code, text in codes.items()}
                for col, codes in meta.variable_value_labels.items()
            }
            return frame, labels, str(path)
        if suffix == ".parquet":
            return pd.read_parquet(path), {}, str(path)
        if suffix in {".csv", ".gz"}:
            return pd.read_csv(path), {}, str(path)
    except Exception as error:  # readers raise many types; one line naming the file
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot read microdata ({first})") from None
    raise DataError(
        f"{path}: unknown microdata file type",
        hint="use .csv, .parquet, .sav, .dta or statsmodels:NAME",
    )


def _statsmodels(name: str) -> pd.DataFrame:
    """A data set shipped with statsmodels (``statsmodels.datasets.NAME``)."""
    import statsmodels.datasets as datasets

    module = getattr(datasets, name, None)
    if module is None or not hasattr(module, "load_pandas"):
        raise DataError(
            f"statsmodels:{name}: no such statsmodels data set", hint="e.g. statsmodels:anes96"
        )
    return module.load_pandas().data


def _column(frame: pd.DataFrame, column: str, source: str, field: str) -> pd.Series:
    """A data column, or one line naming the source, the field and the column."""
    if column not in frame.columns:
        raise DataError(
            f"{source}: column {column!r} ({field}) is missing",
            hint=f"columns: {', '.join(map(str, frame.columns[:20]))}",
        )
    return frame[column]


def _mapped(
    values: pd.Series,
    codes: dict[str, str],
    missing: tuple[str, ...],
    labels: dict[str, str],
    where: str,
) -> pd.Series:
    """Each cell's target by its code, else by its value label; None for missing codes."""
    folded = {k.casefold(): v for k, v in codes.items()}
    skip = {m.casefold() for m in missing}
    out: dict[Any, str | None] = {}
    for value in values.dropna().unique():
        code = _key(value)
        label = labels.get(code, "")
        if code.casefold() in skip or label.casefold() in skip:
            out[value] = None
        elif code.casefold() in folded or label.casefold() in folded:
            out[value] = folded.get(code.casefold(), folded.get(label.casefold()))
        else:
            shown = f"{code!r} ({label})" if label else repr(code)
            raise DataError(
                f"{where}: value {shown} is not mapped",
                hint="add it to codes or to missing in the mapping",
            )
    return values.map(out).astype(object).where(values.notna(), None)


def _weights(frame: pd.DataFrame, mapping: MicrodataMapping, source: str) -> pd.Series:
    """Respondent weights: the weight column (non-negative numbers) or 1 each."""
    if mapping.weight is None:
        return pd.Series(1.0, index=frame.index)
    raw = _column(frame, mapping.weight, source, "weight")
    weights = pd.to_numeric(raw, errors="coerce")
    bad = raw[weights.isna() | (weights < 0)]
    if len(bad):
        raise DataError(
            f"{source}: column {mapping.weight!r}: weight {_key(bad.iloc[0])!r} "
            f"(row {bad.index[0]}) is not a non-negative number"
        )
    return weights.astype(float)


def _answers(
    question: Question,
    entry: AnswerColumn,
    frame: pd.DataFrame,
    labels: dict[str, dict[str, str]],
    source: str,
) -> pd.Series:
    """Option text of each respondent's answer (None: left out)."""
    where = f"{source}: column {entry.column!r} (question {question.id})"
    for code, option in entry.codes.items():
        try:
            question.index_of(option)
        except ConfigError as error:
            raise ConfigError(
                f"{where}: code {code!r} -> {error.message}", hint=error.hint
            ) from None
    codes = {k: question.options[question.index_of(v)].text for k, v in entry.codes.items()}
    values = _column(frame, entry.column, source, f"question {question.id}")
    return _mapped(values, codes, entry.missing, labels.get(entry.column, {}), where)


def _groups(
    entry: GroupColumn, frame: pd.DataFrame, labels: dict[str, dict[str, str]], source: str
) -> pd.Series:
    """Each respondent's level of ``entry.attribute`` (None: no group)."""
    where = f"{source}: column {entry.column!r} (group {entry.attribute})"
    if entry.attribute not in ATTRIBUTES:
        raise ConfigError(
            f"{where}: unknown person attribute {entry.attribute!r}",
            hint=f"one of {', '.join(ATTRIBUTES)}",
        )
    levels, derive = ATTRIBUTES[entry.attribute]
    values = _column(frame, entry.column, source, f"group {entry.attribute}")
    if entry.derive:
        if derive is None or entry.codes:
            raise ConfigError(
                f"{where}: derive: true needs no codes and an attribute derived "
                "from a raw value (AGE from years, CREGION or state from a state)"
            )
        kept = values.where(~values.map(_key).isin(set(entry.missing)))
        try:
            derived = derive(kept)
        except DataError as error:
            raise DataError(f"{where}: {error.message}", hint=error.hint) from None
        return derived.astype(object).where(derived.notna(), None)
    unknown = sorted({v for v in entry.codes.values() if v not in levels})
    if unknown:
        code = next(k for k, v in entry.codes.items() if v == unknown[0])
        raise DataError(
            f"{where}: code {code!r} -> {unknown[0]!r}: no person has this level",
            hint=f"levels of {entry.attribute}: {', '.join(levels)}",
        )
    return _mapped(values, entry.codes, entry.missing, labels.get(entry.column, {}), where)


def _totals(data: pd.DataFrame) -> pd.DataFrame:
    """Weighted totals per group and option, with ``n`` and Kish's ``n_eff`` per group."""
    keys, cell = ["group", "option"], ["group"]
    data = data.assign(w2=data["weight"] ** 2)
    sums = data.groupby(keys, as_index=False)["weight"].sum()
    per = data.groupby(cell, as_index=False).agg(
        n=("weight", "size"), w=("weight", "sum"), w2=("w2", "sum")
    )
    per["n_eff"] = np.where(per["w2"] > 0, per["w"] ** 2 / per["w2"].where(per["w2"] > 0), 0.0)
    return sums.merge(per[[*cell, "n", "n_eff"]], on=cell, how="left")


def _question_table(
    question_id: str, answers: pd.Series, weights: pd.Series, groups: dict[str, pd.Series]
) -> pd.DataFrame:
    """Truth rows of one question: overall, then every group of every attribute."""
    data = pd.DataFrame({"option": answers, "weight": weights}).dropna(subset=["option"])
    overall = data.assign(group=OVERALL[1])
    parts = [_totals(overall).assign(attribute=OVERALL[0])]
    for attribute, levels in groups.items():
        sub = data.assign(group=levels.loc[data.index]).dropna(subset=["group"])
        parts.append(_totals(sub).assign(attribute=attribute))
    table = pd.concat(parts, ignore_index=True).assign(question_id=question_id)
    return table[TRUTH_COLUMNS + UNCERTAINTY_COLUMNS]


def microdata_truth(spec: str, survey: Survey | None) -> tuple[Survey, pd.DataFrame]:
    """The survey and the weighted truth table of ``microdata:SPEC`` (see the module docstring).

    ``survey``: the questions, when the mapping names none. Every mapped question must be in it.
    """
    path = mapping_path(spec)
    mapping = load_mapping(path)
    if mapping.survey is not None:
        relative = path.parent / mapping.survey
        survey = load_survey(str(relative) if relative.is_file() else mapping.survey)
    if survey is None:
        raise ConfigError(
            f"{path}: microdata truth needs the survey its questions come from",
            hint="name it in the mapping (survey: ...) or pass --survey",
        )
    frame, labels, source = read_microdata(mapping.data, path.parent)
    weights = _weights(frame, mapping, source)
    groups = {g.attribute: _groups(g, frame, labels, source) for g in mapping.groups}
    tables = []
    for question_id, entry in mapping.questions.items():
        if question_id not in survey.ids:
            raise ConfigError(
                f"{path}: question {question_id!r} is not in survey {survey.id!r}",
                hint=f"questions: {', '.join(survey.ids[:10])}",
            )
        answers = _answers(survey.question(question_id), entry, frame, labels, source)
        tables.append(_question_table(question_id, answers, weights, groups))
    return survey, pd.concat(tables, ignore_index=True)
