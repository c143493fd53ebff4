"""Ground truth: packaged election results (:mod:`~personasim.truth.elections`) and OpinionQA
human answer distributions (:mod:`~personasim.truth.opinionqa`), each as a :class:`Truth`.

:func:`load_truth` resolves a truth spec: ``elections``, ``opinionqa:PATH`` (a wave folder with
``responses.csv``, or a folder of waves), ``csv:PATH`` (per-group counts; the questions come
from the survey given) or ``microdata:MAPPING`` (respondent microdata described by a mapping
YAML, or a shipped mapping such as ``anes96``: :mod:`~personasim.truth.microdata`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from personasim.core.errors import ConfigError, did_you_mean
from personasim.survey.loaders import load_opinionqa, load_survey
from personasim.survey.questions import Survey
from personasim.truth.elections import elections_truth
from personasim.truth.microdata import microdata_truth
from personasim.truth.opinionqa import load_counts_csv, opinionqa_tables
from personasim.truth.table import OVERALL, TRUTH_COLUMNS, Truth

__all__ = ["OVERALL", "TRUTH_COLUMNS", "TRUTH_SOURCES", "Truth", "load_truth"]


def _opinionqa(path: str, survey: Survey | None) -> Truth:
    """Weighted OpinionQA truth from ``responses.csv`` in each wave folder below ``path``."""
    survey = survey or load_opinionqa(path)
    return Truth("distribution", survey, opinionqa_tables(Path(path), survey))


def _csv(path: str, survey: Survey | None) -> Truth:
    """Truth from a per-group counts CSV; the questions must come from ``survey``."""
    if survey is None:
        raise ConfigError(
            "csv truth needs the survey its questions come from",
            hint="pass --survey (e.g. opinionqa:human_resp or a survey YAML)",
        )
    return Truth("distribution", survey, load_counts_csv(path))


def _microdata(path: str, survey: Survey | None) -> Truth:
    """Weighted truth from respondent microdata described by the mapping file ``path``."""
    questions, table = microdata_truth(path, survey)
    return Truth("distribution", questions, table)


TRUTH_SOURCES: dict[str, Callable[[str, Survey | None], Truth]] = {
    "elections": lambda _path, survey: elections_truth(survey),
    "opinionqa": _opinionqa,
    "csv": _csv,
    "microdata": _microdata,
}
"""Truth source name -> ``f(path, survey)``."""


def load_truth(spec: str, survey: Survey | str | None = None) -> Truth:
    """Resolve ``elections``, ``opinionqa:PATH``, ``csv:PATH`` or ``microdata:MAPPING`` into a
    :class:`Truth`."""
    name, _, path = spec.partition(":")
    if name not in TRUTH_SOURCES:
        raise ConfigError(f"unknown truth source {name!r}", hint=did_you_mean(name, TRUTH_SOURCES))
    if name != "elections" and not path:
        raise ConfigError(f"truth source {name!r} needs a path", hint=f"write {name}:PATH")
    resolved = load_survey(survey) if isinstance(survey, str) else survey
    return TRUTH_SOURCES[name](path, resolved)
