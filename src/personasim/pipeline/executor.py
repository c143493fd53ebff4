"""The study's model-calling stages through the executor (``[executor] kind = "local"|"ray"``).

Both executors take the same path: each (generator) or (survey x simulator) pair runs through
:func:`personas_to_parts` / :func:`simulate_to_parts`, which commit every finished batch as a
Parquet part under ``<run>/parts/<table stem>/`` (the crash-safe record of what is done: a rerun
after ``kill -9`` computes only the batches without a part). The stage's usual table
(``personas.parquet``, ``responses_<id>.parquet``) is then published from the parts
(:func:`personasim.core.parts.publish`: streamed, atomic, skipped when unchanged), so every
later stage, the stage ledger and the report read the same files either way. The local executor
uses the study's open backend (the model loaded once, its counters in the manifest); Ray actors
open their own from a :class:`BackendRecipe`. A table left by a run of an older version (no parts)
seeds an empty parts folder, so it is resumed, never recomputed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.core import parts
from personasim.core.keys import PERSONA_KEY
from personasim.core.tables import read_table
from personasim.executor.base import BackendRecipe, ExecutorSpec
from personasim.pipeline.jobs import JobRun, personas_to_parts, simulate_to_parts


def parts_folder(run: Path, table: str) -> Path:
    """Where the parts of a stage table live: ``<run>/parts/<table stem>/`` (removed with the
    table when its stage goes stale)."""
    return run / "parts" / Path(table).stem


def recipe_for(spec: Any, name: str, cache_path: Path) -> BackendRecipe:
    """The recipe of the study's ``[backends.NAME]`` table, with the run's cache."""
    backend = spec.backends[name]
    return BackendRecipe(
        backend.spec, tuple(backend.options.items()), str(Path(cache_path).resolve())
    )


def _seeded(folder: Path, table: Path) -> None:
    """Commit an existing stage table (of a run without parts) as the first part of an empty
    parts folder, and record the table as its publication (it is not rewritten)."""
    if table.exists() and not parts.part_paths(folder):
        parts.commit_part(read_table(table, "stage table"), folder)
        parts.mark_published(folder, table)


def _check(run: JobRun, what: str) -> None:
    """Print the run's summary; failed batches stop the study with a one-line error."""
    from personasim.core.errors import BackendError

    print(f"{what}: {run.summary()}", file=sys.stderr)
    if run.report.failed_batches:
        raise BackendError(
            f"{what}: {run.report.failed_batches} batch(es) failed after their "
            f"retries: {run.report.first_error}",
            hint="the rows written are kept; run the study again to retry the failed ones",
        )


def _backend_args(backends: Any, name: str, executor: ExecutorSpec) -> dict[str, Any]:
    """``backend=`` (local: the study's open backend) or ``recipe=`` (Ray: one per actor)."""
    if executor.kind == "local":
        return {"backend": backends.get(name)}
    return {"recipe": recipe_for(backends.spec, name, backends.cache_path)}


def _count(backends: Any, name: str, done: JobRun, executor: ExecutorSpec) -> None:
    """Add the workers' model calls and cache hits, and the model they opened, to the study's
    record of backend ``name`` (Ray only: a local run's calls are already in the open backend's
    counters, its model in the backend)."""
    if executor.kind != "local":
        backends.remote[0] += done.report.model_calls
        backends.remote[1] += done.report.cache_hits
        if done.report.model:
            backends.record_remote(name, done.report)


def personas_on_executor(
    spec: Any, run: Path, population: pd.DataFrame, backends: Any, **kwargs: Any
) -> int:
    """Every generator's tiers through ``spec.executor`` into ``personas.parquet``; returns the
    rows computed in this call. ``backends``: the study's
    :class:`personasim.pipeline.context.Backends`;
    ``kwargs``: ``generate_personas`` keyword arguments (``max_runs``: the retry policy of
    :func:`~personasim.pipeline.jobs.personas_to_parts`)."""
    section, table, executor = spec.personas, run / "personas.parquet", spec.executor
    needs_model = any(t != "meta" for t in section.tiers)
    folder = parts_folder(run, table.name)
    with parts.folder_lock(folder):  # one writer of the parts from seeding to publishing
        _seeded(folder, table)
        if executor.kind == "local":
            kwargs["progress"] = True  # per-request bars (a Ray actor has no terminal)
        written = 0
        for name in section.generators if needs_model else ("census",):
            chosen = _backend_args(backends, name, executor) if needs_model else {}
            done = personas_to_parts(
                population,
                section.tiers,
                folder,
                executor=executor,
                generator=name if needs_model else None,
                show_progress=True,
                **chosen,
                **kwargs,
            )
            _check(done, f"personas x {name}")
            _count(backends, name, done, executor)
            written += done.report.rows
        parts.publish(folder, table, PERSONA_KEY)
    return written


def simulate_on_executor(
    spec: Any,
    run: Path,
    personas: pd.DataFrame,
    survey: Any,
    survey_id: str,
    options: dict[str, Any],
    backends: Any,
) -> int:
    """One survey, answered by each simulator (``options``: its ``SimulateOptions`` by name)
    through ``spec.executor``, into ``responses_<id>.parquet``; returns the rows computed."""
    table, executor = run / f"responses_{survey_id}.parquet", spec.executor
    folder = parts_folder(run, table.name)
    with parts.folder_lock(folder):  # one writer of the parts from seeding to publishing
        _seeded(folder, table)
        written = 0
        for simulator, chosen in options.items():
            done = simulate_to_parts(
                personas,
                survey,
                folder,
                options=chosen,
                executor=executor,
                show_progress=True,
                label=f"simulate {survey_id}",
                **_backend_args(backends, simulator, executor),
            )
            _check(done, f"{survey_id} x {simulator}")
            _count(backends, simulator, done, executor)
            written += done.report.rows
        parts.publish(folder, table)
    return written


def executor_session(executor: ExecutorSpec) -> Any:
    """One Ray session for a whole study (its stages reuse it), or nothing for ``local``."""
    import contextlib

    if executor.kind != "ray":
        return contextlib.nullcontext()
    from personasim.executor.ray import ray_session

    return ray_session(executor)
