"""Simulate survey answers: every persona answers every question of a survey through an LLM.

The prompt follows the simulation instructions of Li et al. (2025, Appendix B.5) in personasim's
own words: the instructions and the persona's profile form the system message, the question with
its lettered options is the user message. Requests are scheduled persona-major, so a backend that
reuses the KV cache of a shared prompt prefix (llama.cpp, vLLM, SGLang) evaluates each persona once
for all of its questions.

Estimators (``SimulateOptions.estimator``):

- ``logprobs`` (default): the next-token distribution over the option letters right after
  ``Answer:``; ``valid_mass`` is the probability that landed on any letter before renormalizing.
- ``sample``: the paper's way. ``samples`` replies per persona and question, each with its own
  seed; with ``constrained=True`` the reply is restricted to ``Answer: <letter>`` by the backend,
  otherwise free text parsed strictly by :func:`parse_answer`. A reply that does not parse is
  counted in ``invalid`` and never becomes an option; ``probs`` are the shares among valid replies.

Validity (no answer is invented): a row is ``valid`` only when its ``valid_mass`` is above
``SimulateOptions.min_valid_mass`` (default 0). An invalid row keeps ``valid_mass``, the reply in
``raw`` (the presented-letter probabilities and top tokens, or the sampled replies) and has
``probs`` and ``answer`` None, so it can never enter a distribution as a uniform respondent.
Persona rows marked ``valid = False`` (a failed generation) are not simulated at all; they are
counted per tier x generator in :attr:`SimulateReport.excluded`.

With ``permute=True`` each person sees each question's options in a seeded random order (the same
order for every tier and generator of that person, so tiers stay paired); ``probs`` are always
mapped back to the original option order, and ``option_order[slot]`` is the original index of the
option shown at letter ``slot``.

Output: one row per persona x question (:data:`RESPONSE_COLUMNS`, plus ``weight``/``state`` when
the personas carry them, for scoring), keyed by :data:`personasim.core.keys.RESPONSE_KEY`. This
module computes rows in memory; writing them, resuming and skipping rows already done is the
part-writing driver's job (:func:`personasim.pipeline.jobs.simulate_to_parts`), and the LLM cache
answers repeated calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from personasim.core.keys import RESPONSE_KEY
from personasim.core.validity import (
    invalid_answer_rows,
)
from personasim.llm.base import (
    Backend,
)
from personasim.simulate.estimators import run_logprobs, run_samples
from personasim.simulate.personas import check_personas, drop_invalid_personas
from personasim.simulate.plan import SimulateOptions, plan_tasks
from personasim.survey.questions import Survey

RESPONSE_COLUMNS = [
    *RESPONSE_KEY,
    "probs",
    "answer",
    "valid_mass",
    "valid",
    "invalid",
    "option_order",
    "raw",
]


@dataclass
class SimulateReport:
    """What :func:`simulate` did."""

    responses: pd.DataFrame
    """The rows computed."""
    written: int
    """Rows computed in this run."""
    model_calls: int
    """Requests that reached the model in this run (0 on a finished rerun)."""
    cache_hits: int
    """Requests answered by the LLM cache in this run."""
    mean_valid_mass: float
    """Mean ``valid_mass`` of the new rows (NaN when none)."""
    invalid_share: float
    """Invalid replies / all replies of the new rows (``sample``); 0 for ``logprobs``."""
    invalid_answers: int = 0
    """New rows recorded as invalid (``valid_mass`` at or below ``min_valid_mass``)."""
    excluded: dict[tuple[str, str], int] = field(default_factory=dict)
    """Invalid personas left out, per (tier, generator)."""

    def summary(self) -> str:
        """One line for the CLI."""
        detail = ", ".join(f"{t}/{g} {n}" for (t, g), n in sorted(self.excluded.items()))
        return (
            f"{self.written} rows written; "
            f"model calls {self.model_calls}, cache hits {self.cache_hits}; "
            f"mean valid_mass {self.mean_valid_mass:.3f}, invalid share {self.invalid_share:.3f}; "
            f"{self.invalid_answers} invalid answers; "
            f"{sum(self.excluded.values())} invalid personas excluded"
            + (f" ({detail})" if detail else "")
        )


ESTIMATORS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "logprobs": run_logprobs,
    "sample": run_samples,
}


def simulate(
    personas: pd.DataFrame,
    survey: Survey,
    backend: Backend,
    options: SimulateOptions | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> SimulateReport:
    """Answer every question of ``survey`` for every persona, in memory; see the module docstring.

    ``progress``: called as ``progress(finished, total)`` with the rows finished so far and the
    rows to compute, once before the first chunk and after every ``backend.progress_step`` rows
    (one answer at a time on llama.cpp).
    """
    options = options or SimulateOptions()
    personas, excluded = drop_invalid_personas(personas)
    personas = check_personas(personas)
    simulator = options.simulator or backend.display_name
    todo = len(personas) * len(survey.questions)
    calls, hits = backend.stats.model_calls, backend.stats.cache_hits
    frames: list[pd.DataFrame] = []
    finished, step = 0, max(1, backend.progress_step)
    if progress:
        progress(0, todo)
    for start in range(0, len(personas), options.chunk_persons):
        # planned chunk by chunk: memory holds the rows, never a task list of the whole run
        tasks = plan_tasks(personas.iloc[start : start + options.chunk_persons], survey, options)
        rows: list[dict[str, Any]] = []
        for at in range(0, len(tasks), step):
            part = tasks[at : at + step]
            rows += ESTIMATORS[options.estimator](part, backend, options, simulator)
            finished += len(part)
            if progress:
                progress(finished, todo)
        if rows:
            frames.append(pd.DataFrame(rows))
    report = _report(frames, backend, (calls, hits), options)
    report.excluded = excluded
    return report


def _table(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The new rows, columns in the standard order first (an empty table without rows)."""
    if not frames:
        return pd.DataFrame(columns=RESPONSE_COLUMNS)
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    extra = [c for c in frame.columns if c not in RESPONSE_COLUMNS]
    return frame[[c for c in RESPONSE_COLUMNS if c in frame.columns] + extra]


def _report(
    new: list[pd.DataFrame],
    backend: Backend,
    before: tuple[int, int],
    options: SimulateOptions,
) -> SimulateReport:
    """Summarize a run (``new``: the chunks of rows computed in it)."""
    written = sum(len(f) for f in new)
    replies = written * (options.samples if options.estimator == "sample" else 1)
    invalid = int(sum(f["invalid"].sum() for f in new))
    valid = [f["valid_mass"] for f in new]
    invalid_answers = int(sum(invalid_answer_rows(f, options.min_valid_mass).sum() for f in new))
    return SimulateReport(
        responses=_table(new),
        written=written,
        model_calls=backend.stats.model_calls - before[0],
        cache_hits=backend.stats.cache_hits - before[1],
        mean_valid_mass=float(pd.concat(valid).mean()) if valid else float("nan"),
        invalid_share=invalid / replies if replies and options.estimator == "sample" else 0.0,
        invalid_answers=invalid_answers,
    )
