"""The model-calling stages as executor stage functions, and their part-writing drivers.

* :class:`SimulateJob` runs :func:`personasim.simulate.run.simulate` on one batch of
  personas; :func:`simulate_to_parts` plans the batches (persona-major: every row of a person in
  the same batch, persons in table order) from the done keys of the parts and runs them.
* :class:`PersonaJob` runs :func:`personasim.personas.generate.generate_personas` on one batch
  of persons; :func:`personas_to_parts` does the same for the personas stage.

The local and the Ray executor run the same stage function on the same batches, so they write the
same rows.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from personasim.core import parts
from personasim.core.hashing import config_sha
from personasim.core.keys import PERSONA_KEY, RESPONSE_KEY
from personasim.core.tables import ParquetTable
from personasim.core.validity import invalid_answer_rows
from personasim.executor.base import BackendRecipe, BatchPlan, ExecutorSpec
from personasim.executor.run import RunReport, run_batches
from personasim.llm.base import Backend
from personasim.personas.generate import MAX_RUNS
from personasim.survey.questions import Survey


def person_batches(frame: pd.DataFrame, batch_persons: int) -> BatchPlan:
    """``frame`` cut into batches of ``batch_persons`` persons (all rows of a person together,
    persons in order of first appearance, rows within a batch in table order); each batch is
    built when it is asked for (see :class:`~personasim.executor.base.BatchPlan`)."""
    return BatchPlan.of_persons(frame, batch_persons)


def drop_done(rows: pd.DataFrame, done: parts.KeyIndex) -> pd.DataFrame:
    """``rows`` without the keys already committed."""
    if not len(done) or rows.empty:
        return rows
    return rows[~done.contains(rows)].reset_index(drop=True)


def _bar(total: int, desc: str, unit: str, show: bool | None) -> tqdm:
    """The progress bar of a stage run on stderr (``show`` None: only on a terminal)."""
    from personasim.llm.base import PROGRESS_DELAY_SECONDS

    # delay: a run that fails at once (endpoint down) prints its error line, no bar frame
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=None if show is None else not show,
        delay=PROGRESS_DELAY_SECONDS,
    )


# --------------------------------------------------------------------------- simulate


@dataclass(frozen=True)
class SimulateJob:
    """``simulate`` on one batch of personas (options carry the simulator name)."""

    survey: Survey
    options: Any  # SimulateOptions (imported lazily: the module is owned by the simulate stage)
    answers: Callable[[int], Any] | None = None
    """Called with the answers finished since its last call, as they finish (local executor
    only: a Ray actor cannot reach the driver's bar, which then moves per committed batch)."""

    def __call__(self, backend: Backend, batch: pd.DataFrame) -> pd.DataFrame:
        """The response rows of ``batch``."""
        from personasim.simulate.run import simulate

        ticks = _Ticks(self.answers) if self.answers is not None else None
        return simulate(batch, self.survey, backend, self.options, progress=ticks).responses

    def failed_rows(self, batch: pd.DataFrame, error: str) -> pd.DataFrame:
        """One row per persona x question of ``batch`` with its key and ``error``."""
        rows = [
            {
                "person_id": p,
                "tier": str(t),
                "generator": str(g),
                "simulator": self.options.simulator,
                "question_id": q.id,
                "estimator": self.options.estimator,
                "error": error,
            }
            for p, t, g in zip(batch["person_id"], batch["tier"], batch["generator"], strict=True)
            for q in self.survey.questions
        ]
        return pd.DataFrame(rows)


class _Ticks:
    """Turns ``simulate``'s ``progress(finished, total)`` of one batch into increments."""

    def __init__(self, update: Callable[[int], Any]) -> None:
        self.update, self.seen = update, 0

    def __call__(self, finished: int, total: int) -> None:
        """Report the answers finished since the last call."""
        if finished > self.seen:
            self.update(finished - self.seen)
        self.seen = finished


@dataclass
class JobRun:
    """What a part-writing stage run did."""

    report: RunReport
    """Batches, parts, rows and failures."""
    skipped: int
    """Output rows already present before the run."""
    folder: Path
    """The stage folder."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Stage-specific figures (e.g. the simulator name)."""

    def summary(self) -> str:
        """One line for the CLI."""
        r = self.report
        text = (
            f"{r.rows} rows written, {self.skipped} already present; model calls "
            f"{r.model_calls}, cache hits {r.cache_hits}; {r.parts} new part(s) in "
            f"{self.folder}"
        )
        if "valid_mass" in self.extra:
            excluded = self.extra["excluded"]
            detail = ", ".join(f"{t}/{g} {n}" for (t, g), n in sorted(excluded.items()))
            text += (
                f"; mean valid_mass {self.extra['valid_mass']:.3f}, invalid share "
                f"{self.extra['invalid_share']:.3f}; {self.extra['invalid_answers']} invalid "
                f"answers; {sum(excluded.values())} invalid personas excluded"
                + (f" ({detail})" if detail else "")
            )
        if r.failed_batches:
            text += (
                f"; {r.failed_batches} batch(es) failed ({r.failed_rows} rows, listed in "
                f"{self.folder / parts.FAILED}; a rerun retries them): {r.first_error}"
            )
        return text


def simulate_to_parts(
    personas: pd.DataFrame,
    survey: Survey,
    folder: str | Path,
    *,
    options: Any = None,
    executor: ExecutorSpec | None = None,
    backend: Backend | None = None,
    recipe: BackendRecipe | None = None,
    show_progress: bool | None = None,
    label: str = "simulate",
    made_with: dict[str, Any] | None = None,
) -> JobRun:
    """Simulate ``survey`` for ``personas`` into part files under ``folder`` (see module doc);
    ``label`` names the progress bar; ``made_with``: more options the rows depend on (e.g. the
    meta attributes of the personas), recorded beside the parts with
    :func:`simulate_record`'s (a folder made with other options is refused).

    Give ``backend`` (local) or ``recipe`` (either executor; Ray needs it to open a backend on
    each actor)."""
    from personasim.simulate.personas import check_personas, drop_invalid_personas
    from personasim.simulate.plan import SimulateOptions

    executor = executor or ExecutorSpec()
    options = options or SimulateOptions()
    personas, excluded = drop_invalid_personas(personas)
    personas = check_personas(personas)
    if options.simulator is None:
        options = options.model_copy(update={"simulator": _name(backend, recipe)})
    with parts.folder_lock(folder):  # the done keys stay true until the run ends
        check_responses_folder(folder, options, survey, made_with, personas=personas)
        done = parts.done_keys(folder, RESPONSE_KEY)
        pending = _pending_personas(personas, survey, options, done)
        batches = person_batches(pending, executor.batch_persons)
        skipped = (len(personas) - len(pending)) * len(survey.questions)
        tally = _Validity(
            options.samples if options.estimator == "sample" else 1, options.min_valid_mass
        )
        per_answer = executor.kind == "local"
        with _bar(len(pending) * len(survey.questions), label, "answer", show_progress) as bar:
            stage = SimulateJob(survey, options, bar.update if per_answer else None)
            report = run_batches(
                executor,
                stage,
                batches,
                folder,
                backend=backend,
                recipe=recipe,
                keep=lambda rows: tally.observe(drop_done(rows, done)),
                progress=(lambda n: None)
                if per_answer
                else (lambda n: bar.update(n * len(survey.questions))),
            )
    return JobRun(
        report,
        skipped,
        Path(folder),
        {"simulator": options.simulator, "excluded": excluded, **tally.figures(options.estimator)},
    )


SAMPLING_FIELDS = ("samples", "temperature", "constrained", "max_tokens")
"""Options that change the rows of ``--estimator sample`` only."""


def simulate_record(options: Any, survey: Survey) -> dict[str, Any]:
    """What the rows of a responses folder depend on besides their key: the options (the
    simulator and estimator are key columns; the sampling options count only with ``sample``)
    and a digest of each question (a question id whose text or options changed is refused,
    not recomputed: the folder's old answers to it would otherwise stand for the new one)."""
    skip = {"simulator", "chunk_persons", "instructions"}
    if options.estimator != "sample":
        skip |= set(SAMPLING_FIELDS)
    record = options.model_dump(exclude=skip, mode="json")
    record["instructions"] = config_sha(options.instructions)[:16]
    record["question"] = {
        q.id: config_sha(q.model_dump(mode="json"))[:16] for q in survey.questions
    }
    return record


def persona_digests(personas: pd.DataFrame) -> dict[str, str]:
    """``person_id|tier|generator`` -> a short digest of the persona's text (what the
    simulator reads), so a folder can tell a persona whose text changed under the same key."""
    first, *rest = (personas[c].astype(str) for c in PERSONA_KEY)
    keys = first.str.cat(rest, sep="|")
    return {
        key: hashlib.blake2b(text.encode("utf-8"), digest_size=6).hexdigest()
        for key, text in zip(keys, personas["text"].astype(str), strict=True)
    }


def check_responses_folder(
    folder: str | Path,
    options: Any,
    survey: Survey,
    made_with: dict[str, Any] | None = None,
    *,
    personas: pd.DataFrame | None = None,
    write: bool = True,
) -> None:
    """Refuse a responses folder made with other options (:func:`simulate_record` and
    ``made_with``) than these, or holding answers of a persona (``personas``) whose text has
    changed since (:func:`persona_digests`); with ``write``, record them. Cheap: a caller
    checks (without ``write``) before it loads a model; :func:`simulate_to_parts` checks and
    records."""
    record = {**simulate_record(options, survey), **(made_with or {})}
    if personas is not None:
        record["persona"] = persona_digests(personas)
    parts.check_made_with(folder, record, _other_out(folder), write=write)


def check_personas_folder(
    folder: str | Path, kwargs: dict[str, Any], *, write: bool = True
) -> None:
    """Refuse a personas folder made with other ``generate_personas`` options
    (:func:`personas_record`) than ``kwargs``; with ``write``, record them."""
    parts.check_made_with(folder, personas_record(kwargs), _other_out(folder), write=write)


def _other_out(folder: str | Path) -> str:
    """The hint of a folder made with other options."""
    return f"give another --out, or move {folder} away to start over"


@dataclass
class _Validity:
    """Running ``valid_mass`` and invalid replies of the rows committed in a run."""

    replies_per_row: int
    min_valid_mass: float
    rows: int = 0
    mass: float = 0.0
    invalid: int = 0
    invalid_answers: int = 0

    def observe(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Count ``rows`` and pass them on."""
        if len(rows):
            self.rows += len(rows)
            self.mass += float(rows["valid_mass"].sum())
            self.invalid += int(rows["invalid"].sum())
            self.invalid_answers += int(invalid_answer_rows(rows, self.min_valid_mass).sum())
        return rows

    def figures(self, estimator: str) -> dict[str, float]:
        """Mean ``valid_mass`` (NaN without rows) and the invalid share (``sample`` only)."""
        replies = self.rows * self.replies_per_row
        share = self.invalid / replies if replies and estimator == "sample" else 0.0
        return {
            "valid_mass": self.mass / self.rows if self.rows else float("nan"),
            "invalid_share": share,
            "invalid_answers": self.invalid_answers,
        }


def _name(backend: Backend | None, recipe: BackendRecipe | None) -> str:
    """The backend's display name (opens the recipe's backend once in the driver: this also
    fails early, with one line, on a bad model spec)."""
    if backend is not None:
        return backend.display_name
    if recipe is None:
        raise ValueError("give a backend or a BackendRecipe")
    opened = recipe.open(threads=1)
    try:
        return opened.display_name
    finally:
        opened.close()


PLAN_ROWS = 20_000
"""Persona rows whose keys are checked at once (bounds the memory of planning a resume)."""


def _fully_done(
    frame: pd.DataFrame,
    done: parts.KeyIndex,
    row_keys: Sequence[str],
    expand: dict[str, Sequence[str]],
    fixed: dict[str, str],
) -> np.ndarray:
    """For each row of ``frame``: are all of its keys committed? A row stands for one key per
    position of the ``expand`` columns (taken in step): its own ``row_keys`` columns, those
    values and the ``fixed`` ones. Checked :data:`PLAN_ROWS` rows at a time (bounded memory)."""
    width = len(next(iter(expand.values())))
    found = [np.zeros(0, dtype=bool)]
    for start in range(0, len(frame), PLAN_ROWS):
        chunk = frame.iloc[start : start + PLAN_ROWS]
        keys = pd.DataFrame(
            {
                **{c: np.repeat(chunk[c].astype(str).to_numpy(), width) for c in row_keys},
                **{c: np.tile(list(values), len(chunk)) for c, values in expand.items()},
                **fixed,
            }
        )
        found.append(done.contains(keys).reshape(len(chunk), width).all(axis=1))
    return np.concatenate(found)


def _pending_personas(
    personas: pd.DataFrame, survey: Survey, options: Any, done: parts.KeyIndex
) -> pd.DataFrame:
    """Persona rows with at least one question not yet answered."""
    if not len(done):
        return personas
    have = _fully_done(
        personas,
        done,
        PERSONA_KEY,
        {"question_id": [q.id for q in survey.questions]},
        {"simulator": options.simulator, "estimator": options.estimator},
    )
    return personas[~have].reset_index(drop=True)


# --------------------------------------------------------------------------- personas


@dataclass(frozen=True)
class PersonaJob:
    """``generate_personas`` on one batch of persons."""

    tiers: tuple[str, ...]
    generator: str
    kwargs: tuple[tuple[str, Any], ...] = ()
    """Other keyword arguments of ``generate_personas`` (seed, options, prompt files)."""

    def __call__(self, backend: Backend, batch: pd.DataFrame) -> pd.DataFrame:
        """The persona rows of ``batch``."""
        from personasim.personas.generate import generate_personas

        return generate_personas(
            batch, self.tiers, backend, generator=self.generator, **dict(self.kwargs)
        )

    def failed_rows(self, batch: pd.DataFrame, error: str) -> pd.DataFrame:
        """One row per person x tier of ``batch`` with its key and ``error``."""
        from personasim.personas.meta import META_GENERATOR

        rows = [
            {
                "person_id": p,
                "tier": t,
                "generator": META_GENERATOR if t == "meta" else self.generator,
                "error": error,
            }
            for p in batch["person_id"]
            for t in self.tiers
        ]
        return pd.DataFrame(rows)


def personas_to_parts(
    population: pd.DataFrame,
    tiers: Sequence[str],
    folder: str | Path,
    *,
    executor: ExecutorSpec | None = None,
    backend: Backend | None = None,
    recipe: BackendRecipe | None = None,
    show_progress: bool | None = None,
    generator: str | None = None,
    max_runs: int = MAX_RUNS,
    **kwargs: Any,
) -> JobRun:
    """Generate ``tiers`` for every person of ``population`` into part files under ``folder``;
    ``generator`` names the model in the rows (default: the backend's display name); ``kwargs``
    are ``generate_personas`` keyword arguments (seed, prompt_file, options).

    The one retry policy of the personas stage (the ``personas`` command and a study's run
    alike): rows whose generation failed in the backend are generated once more per call until
    ``max_runs`` calls have tried them (:func:`retry_failed_personas`)."""
    from personasim.personas.meta import META_GENERATOR

    executor = executor or ExecutorSpec()
    needs_model = any(t != "meta" for t in tiers)
    if needs_model:
        generator = generator or _name(backend, recipe)
    else:  # the meta tier calls no model: no backend, no Ray
        generator, backend, recipe = META_GENERATOR, None, None
        executor = executor.model_copy(update={"kind": "local"})
    with parts.folder_lock(folder):  # the done keys stay true until the run ends
        check_personas_folder(folder, kwargs)
        kwargs["max_runs"] = max_runs
        retried = (
            retry_failed_personas(
                population,
                tiers,
                folder,
                generator,
                max_runs,
                executor=executor,
                backend=backend,
                recipe=recipe,
                kwargs=kwargs,
            )
            if needs_model
            else []
        )
        done = parts.done_keys(folder, PERSONA_KEY)
        gens = [META_GENERATOR if t == "meta" else generator for t in tiers]
        have = _fully_done(population, done, ["person_id"], {"tier": tiers, "generator": gens}, {})
        pending = population[~have].reset_index(drop=True)
        stage = PersonaJob(tuple(tiers), generator, tuple(sorted(kwargs.items())))
        with _bar(len(pending), "personas", "person", show_progress) as bar:
            report = run_batches(
                executor,
                stage,
                person_batches(pending, executor.batch_persons),
                folder,
                backend=backend,
                recipe=recipe,
                keep=lambda rows: drop_done(rows, done),
                progress=bar.update,
            )
        parts.drop_superseded(folder, PERSONA_KEY)
    skipped = (len(population) - len(pending)) * len(tiers)
    return JobRun(_merged([*retried, report]), skipped, Path(folder), {"generator": generator})


NOT_RECORDED = ("progress", "max_runs", "prompt_file", "limit")
"""``generate_personas`` arguments that do not change a persona row (or are recorded apart)."""


def personas_record(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the rows of a personas folder depend on besides their key: the
    ``generate_personas`` options (``meta_attributes`` at its default when not given) and a
    digest of each prompt file's text."""
    from personasim.personas.meta import DEFAULT_ATTRIBUTES

    record = {k: v for k, v in kwargs.items() if k not in NOT_RECORDED}
    record.setdefault("meta_attributes", list(DEFAULT_ATTRIBUTES))
    files = kwargs.get("prompt_file")
    files = {"*": files} if isinstance(files, str | Path) else dict(files or {})
    record["prompt_file"] = sorted([t, _file_digest(Path(p))] for t, p in files.items())
    return record


def _file_digest(path: Path) -> str:
    """A short digest of a file's bytes (of its name when it cannot be read: the run then fails
    on it with its own error)."""
    try:
        return config_sha(path.read_text("utf-8"))[:16]
    except (OSError, UnicodeDecodeError):
        return str(path)


def _merged(reports: Sequence[RunReport]) -> RunReport:
    """One report of several runs (the first error of any)."""
    errors = [r.first_error for r in reports if r.first_error]
    models = [r.model for r in reports if r.model]
    return RunReport(
        *(
            sum(getattr(r, f) for r in reports)
            for f in ("batches", "parts", "rows", "failed_batches", "failed_rows")
        ),
        errors[0] if errors else None,
        sum(r.model_calls for r in reports),
        sum(r.cache_hits for r in reports),
        models[0] if models else None,
    )


def retry_failed_personas(
    population: pd.DataFrame,
    tiers: Sequence[str],
    folder: str | Path,
    generator: str,
    max_runs: int,
    *,
    executor: ExecutorSpec,
    backend: Backend | None,
    recipe: BackendRecipe | None,
    kwargs: dict[str, Any],
) -> list[RunReport]:
    """Generate once more the committed rows of ``generator`` in ``tiers`` to try again
    (:func:`failed_personas`: their generation failed in the backend and fewer than
    ``max_runs`` runs tried them; one try per call, the new rows' ``runs`` counting them). The
    new rows are committed as parts; :func:`personasim.core.parts.drop_superseded` then drops
    the failed rows they replace. Returns one report per tier retried."""
    failed = failed_personas(Path(folder), max_runs)
    failed = failed[(failed["generator"] == generator) & failed["tier"].isin(list(tiers))]
    reports = []
    for tier, rows in failed.groupby("tier", sort=False):
        earlier = dict(zip(rows["person_id"], rows["runs"], strict=True))
        persons = population[population["person_id"].astype(str).isin(earlier)]
        stage = PersonaJob((str(tier),), generator, tuple(sorted(kwargs.items())))
        reports.append(
            run_batches(
                executor,
                stage,
                person_batches(persons, executor.batch_persons),
                folder,
                backend=backend,
                recipe=recipe,
                keep=lambda new, runs=earlier: new.assign(
                    runs=new["person_id"].astype(str).map(runs).astype(int) + 1
                ),
            )
        )
    return reports


def failed_personas(folder: Path, max_runs: int) -> pd.DataFrame:
    """Key (as text) and ``runs`` of the committed persona rows to try again: the last row of
    their key failed in the backend and fewer than ``max_runs`` runs tried it. Reads only four
    columns, a batch at a time; holds only failed rows."""
    from personasim.personas.generate import retryable

    found: dict[tuple[str, ...], int] = {}
    if parts.part_paths(folder):
        table = ParquetTable.open(folder, "personas parts")
        names = table.schema.names
        for batch in table.batches([*PERSONA_KEY, "finish_reason", "runs"]):
            frame = batch.to_pandas()
            again = retryable(frame, max_runs) if "finish_reason" in names else None
            if not found and (again is None or not again.any()):
                continue  # the usual case: nothing failed, nothing to supersede
            keys = list(zip(*(frame[c].astype(str) for c in PERSONA_KEY), strict=True))
            for key in keys if found else ():  # a later row of a key supersedes the failed one
                found.pop(key, None)
            if again is not None and again.any():
                runs = frame["runs"] if "runs" in names else pd.Series(1, index=frame.index)
                for at in np.flatnonzero(again.to_numpy()):
                    found[keys[at]] = int(runs.fillna(1).iloc[at])
    table = pd.DataFrame([(*k, r) for k, r in found.items()], columns=[*PERSONA_KEY, "runs"])
    return table.astype({"runs": int})
