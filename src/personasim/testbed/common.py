"""Pieces every testbed step shares: the persona pool, the role-play system message, the
two-order preference judge, kappa with its undefined case, and a bootstrap over personas."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from personasim.core.errors import DataError, validation_error
from personasim.core.tables import read_table
from personasim.core.validity import blank_text, valid_personas
from personasim.llm import Backend, ChoiceRequest, Message

M = TypeVar("M")
PERSONA_TIER = "persona"
ROLEPLAY = (
    "You are role-playing the person described below. Think and answer as this person would, "
    "from their values, circumstances and tastes, not as an assistant.\n\nProfile:\n{profile}"
)
PERSONA_SYSTEM = (
    "You are talking with the person described below. Answer their question in a short "
    "paragraph that suits them, without naming their personal details.\n\n{persona}"
)
JUDGE_USER = (
    "Someone asked: {question}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n\n"
    "As the person in your profile, which answer do you prefer? Reply with A or B."
)
JUDGE_PREFIX = "Preferred answer:"
KAPPA_NOTE = (
    "kappa is undefined (NaN) when both raters give one constant label, so chance "
    "agreement is 1; such pairs are counted and left out of means"
)


def make_options(model: type[M], what: str, **values: Any) -> M:
    """``model(**values)`` with a validation error as one line naming ``what``."""
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as error:
        raise validation_error(
            error,
            what,
            known_fields=lambda _loc: model.model_fields,
            hint="see the command's --help",
        ) from None


def sha(text: str) -> str:
    """12 hex digits of the SHA-256 of ``text`` (prompt hashes in output tables)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def persona_tier(
    personas: pd.DataFrame | str | Path, source: str = "personas table"
) -> pd.DataFrame:
    """The valid rows of the ``persona`` tier (person_id, text, fields, ...), one per person.

    Raises :class:`DataError` when the table has no ``persona`` tier: the testbed needs the
    33-attribute PERSONA profiles, not the survey tiers.
    """
    if not isinstance(personas, pd.DataFrame):
        source = str(personas)
        personas = read_table(
            personas,
            "personas table",
            ["person_id", "tier", "text"],
            hint="generate one with `personasim personas --tiers persona`",
        )
    missing = [c for c in ("person_id", "tier", "text") if c not in personas.columns]
    if missing:
        raise DataError(f"{source}: not a personas table (no {missing[0]!r} column)")
    rows = personas[personas["tier"].astype(str) == PERSONA_TIER]
    if rows.empty:
        tiers = sorted(personas["tier"].astype(str).unique())
        raise DataError(
            f"{source}: no personas of the 'persona' tier (tiers: {tiers})",
            hint="generate them with `personasim personas --tiers persona`",
        )
    rows = valid_personas(rows)
    blank = blank_text(rows["text"])
    if blank.any():
        raise DataError(
            f"{source}: column 'text' is empty for person_id "
            f"{rows['person_id'].iloc[int(blank.argmax())]}",
            hint="a persona marked valid has a text; regenerate the personas",
        )
    if rows.empty:
        raise DataError(f"{source}: no valid persona of the 'persona' tier")
    out = rows.drop_duplicates("person_id").reset_index(drop=True)
    out["person_id"] = out["person_id"].astype(str)
    return out


def persona_fields(row: Any) -> dict[str, Any]:
    """The attribute dict of a persona row (its ``fields`` JSON)."""
    raw = getattr(row, "fields", None) if not isinstance(row, dict) else row.get("fields")
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return {}
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def roleplay(profile: str) -> Message:
    """The system message that puts the model in the persona's shoes."""
    return Message(role="system", content=ROLEPLAY.format(profile=profile.strip()))


def persona_system(profile: str) -> str:
    """The system message of an answer tailored to a persona: one text for the training rows
    (``testbed export``, persona in the system message) and the evaluation (``testbed eval``,
    mode ``persona``)."""
    return PERSONA_SYSTEM.format(persona=profile.strip())


def judge_requests(profile: str, question: str, first: str, second: str) -> list[ChoiceRequest]:
    """Two requests: ``first`` shown as A, then shown as B (position swapped)."""
    system = roleplay(profile)
    return [
        ChoiceRequest(
            messages=(
                system,
                Message(
                    role="user", content=JUDGE_USER.format(question=question, first=a, second=b)
                ),
            ),
            labels=("A", "B"),
            answer_prefix=JUDGE_PREFIX,
        )
        for a, b in ((first, second), (second, first))
    ]


def judge(
    backend: Backend, items: Sequence[tuple[str, str, str, str]], progress: bool | None = None
) -> list[dict[str, float]]:
    """For each ``(profile, question, first, second)``: P(first) in both orders and the mass.

    Returns ``p_first_as_a`` (first shown as A), ``p_first_as_b`` (first shown as B),
    ``p_first`` (their mean), ``valid_mass`` (the smaller of the two masses) and
    ``consistent`` (both orders pick the same answer).
    """
    requests = [r for item in items for r in judge_requests(*item)]
    results = backend.choice_logprobs(requests, progress=progress)
    out = []
    for a_res, b_res in zip(results[0::2], results[1::2], strict=True):
        as_a, as_b = a_res.probs["A"], b_res.probs["B"]
        out.append(
            {
                "p_first_as_a": as_a,
                "p_first_as_b": as_b,
                "p_first": (as_a + as_b) / 2,
                "valid_mass": min(a_res.valid_mass, b_res.valid_mass),
                "consistent": (as_a > 0.5) == (as_b > 0.5),
            }
        )
    return out


def kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's kappa of two label vectors (scikit-learn); NaN when undefined (see KAPPA_NOTE)."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on the undefined case; NaN says it
        value = cohen_kappa_score(list(map(str, a)), list(map(str, b)))
    return float(value)


def bootstrap_mean(
    values: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of the non-NaN ``values`` with a percentile bootstrap CI (NaNs when none)."""
    data = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    if n_boot <= 0 or data.size == 1:
        return float(data.mean()), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(data, size=(n_boot, data.size), replace=True).mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(data.mean()), float(low), float(high)


def words(text: Any) -> int:
    """Number of whitespace-separated words of a text (0 for missing)."""
    return len(str(text).split()) if isinstance(text, str) else 0
