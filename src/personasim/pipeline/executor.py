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
    return BackendRecipe(backend.spec, tuple(backend.options.items()),
                         str(Path(cache_path).resolve()))  # fmt: skip


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
        raise BackendError(f"{what}: {run.report.failed_batches} batch(es) failed after their "
                           f"retries: {run.report.first_error}",
                           hint="the rows written are kept; run the study again to retry "
                                "the failed ones")  # fmt: skip


def _backend_args(backends: Any, name: str, executor: ExecutorSpec) -> dict[str, Any]:
    """``backend=`` (local: the study's open backend) or ``recipe=`` (Ray: one per actor)."""
    if executor.kind == "local":
        return {"backend": backends.get(name)}
    return {"recipe": recipe_for(backends.spec, name, backends.cache_path)}


def _count(backends: Any, done: JobRun, executor: ExecutorSpec) -> None:
    """Add the workers' model calls and cache hits to the study's counters (Ray only: a local
    run's calls are already in the open backend's counters)."""
    if executor.kind != "local":
        backends.remote[0] += done.report.model_calls
        backends.remote[1] += done.report.cache_hits


def personas_on_executor(spec: Any, run: Path, population: pd.DataFrame, backends: Any,
                         **kwargs: Any) -> int:  # fmt: skip
    """Every generator's tiers through ``spec.executor`` into ``personas.parquet``; returns the
    rows computed in this call. ``backends``: the study's
    :class:`personasim.pipeline.driver.Backends`;
    ``kwargs``: ``generate_personas`` keyword arguments."""
    section, table, executor = spec.personas, run / "personas.parquet", spec.executor
    needs_model = any(t != "meta" for t in section.tiers)
    folder = parts_folder(run, table.name)
    _seeded(folder, table)
    if executor.kind == "local":
        kwargs["progress"] = True  # per-request bars (a Ray actor has no terminal)
    written = 0
    failed = failed_personas(folder, section.max_runs) if needs_model else None  # read once
    for name in section.generators if needs_model else ("census",):
        chosen = _backend_args(backends, name, executor) if needs_model else {}
        if failed is not None:
            written += _retry_failed(spec, folder, population, failed[failed["generator"] == name],
                                     name, chosen, backends, kwargs)  # fmt: skip
        done = personas_to_parts(population, section.tiers, folder, executor=executor,
                                 generator=name if needs_model else None, show_progress=True,
                                 **chosen, **kwargs)  # fmt: skip
        _check(done, f"personas x {name}")
        _count(backends, done, executor)
        written += done.report.rows
    parts.publish(folder, table, PERSONA_KEY)
    return written


def _retry_failed(
    spec: Any, folder: Path, population: pd.DataFrame, failed: pd.DataFrame, generator: str,
    chosen: dict[str, Any], backends: Any, kwargs: dict[str, Any],
) -> int:  # fmt: skip
    """Generate once more ``failed`` (:func:`failed_personas` rows of ``generator``: their
    generation failed in the backend and fewer than ``[personas] max_runs`` runs have tried
    them; one try per run, ``runs`` counting them). The new rows are committed as parts;
    publishing keeps a key's last row, so they replace the failed ones. Returns the rows
    committed."""
    from personasim.executor.run import run_batches
    from personasim.pipeline.jobs import PersonaJob, person_batches

    written = 0
    for tier, rows in failed.groupby("tier", sort=False):
        earlier = dict(zip(rows["person_id"], rows["runs"], strict=True))
        persons = population[population["person_id"].astype(str).isin(earlier)]
        stage = PersonaJob((str(tier),), generator, tuple(sorted(kwargs.items())))
        report = run_batches(
            spec.executor, stage, person_batches(persons, spec.executor.batch_persons), folder,
            keep=lambda new, runs=earlier: new.assign(
                runs=new["person_id"].astype(str).map(runs).astype(int) + 1), **chosen,
        )  # fmt: skip
        retried = JobRun(report, 0, folder, {"generator": generator})
        _check(retried, f"personas x {generator}: {tier} retried")
        _count(backends, retried, spec.executor)
        written += report.rows
    return written


def failed_personas(folder: Path, max_runs: int) -> pd.DataFrame:
    """Key (as text) and ``runs`` of the committed persona rows to try again: the last row of
    their key failed in the backend and fewer than ``max_runs`` runs tried it. Reads only four
    columns, part by part; holds only failed rows."""
    import pyarrow.parquet as pq

    from personasim.personas.generate import retryable

    found: dict[tuple[str, ...], int] = {}
    for path in parts.part_paths(folder):
        names = set(pq.read_schema(path).names)
        columns = [c for c in (*PERSONA_KEY, "finish_reason", "runs") if c in names]
        frame = pd.read_parquet(path, columns=columns)
        again = retryable(frame, max_runs) if "finish_reason" in names else None
        if not found and (again is None or not again.any()):
            continue  # the usual case: nothing failed, nothing to supersede
        keys = list(zip(*(frame[c].astype(str) for c in PERSONA_KEY), strict=True))
        for key in keys if found else ():  # a later row of a key supersedes the failed one
            found.pop(key, None)
        if again is not None and again.any():
            runs = frame["runs"] if "runs" in names else pd.Series(1, index=frame.index)
            for at in again[again].index:
                found[keys[at]] = int(runs.fillna(1).iloc[at])
    table = pd.DataFrame([(*k, r) for k, r in found.items()], columns=[*PERSONA_KEY, "runs"])
    return table.astype({"runs": int})


def simulate_on_executor(spec: Any, run: Path, personas: pd.DataFrame, survey: Any,
                         survey_id: str, options: dict[str, Any],
                         backends: Any) -> int:  # fmt: skip
    """One survey, answered by each simulator (``options``: its ``SimulateOptions`` by name)
    through ``spec.executor``, into ``responses_<id>.parquet``; returns the rows computed."""
    table, executor = run / f"responses_{survey_id}.parquet", spec.executor
    folder = parts_folder(run, table.name)
    _seeded(folder, table)
    written = 0
    for simulator, chosen in options.items():
        done = simulate_to_parts(personas, survey, folder, options=chosen, executor=executor,
                                 show_progress=True, label=f"simulate {survey_id}",
                                 **_backend_args(backends, simulator, executor))  # fmt: skip
        _check(done, f"{survey_id} x {simulator}")
        _count(backends, done, executor)
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
