"""The shape every ground truth takes: a survey and a long table of weights per option."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from personasim.survey.questions import Survey

TRUTH_COLUMNS = ["question_id", "attribute", "group", "option", "weight"]
"""Columns of a truth table: a weight (count or weighted total) per question x group x option
(the option given by its text)."""
OVERALL = ("overall", "all")
"""``(attribute, group)`` of the whole population in a truth table."""


@dataclass(frozen=True)
class Truth:
    """Ground truth for scoring: the survey (question definitions) and a long truth table."""

    kind: Literal["elections", "distribution"]
    """``elections`` gets election metrics; ``distribution`` gets WD/TV/JS."""
    survey: Survey
    """Questions the truth refers to (kinds, positions, refusals)."""
    table: pd.DataFrame
    """Columns :data:`TRUTH_COLUMNS` (option given by text); a microdata truth adds the sample's
    uncertainty per question x group (``n``, ``n_eff``:
    :data:`personasim.truth.microdata.UNCERTAINTY_COLUMNS`)."""
