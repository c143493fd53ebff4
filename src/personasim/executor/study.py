"""The study's model-calling stages on the Ray executor (``[executor] kind = "ray"``).

With the local executor the study stages run as before. With Ray, each (generator) or (survey x
simulator) pair runs through :func:`personas_to_parts` / :func:`simulate_to_parts` into a folder
of parts under ``<run>/parts/``, the crash-safe record of what the cluster finished; the stage's
usual table (``personas.parquet``, ``responses_<id>.parquet``) is then written from the parts, so
every later stage, the stage ledger and the report read the same files either way. A table left by
an earlier local run seeds an empty parts folder, so switching executors never recomputes rows.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.executor import parts
from personasim.executor.base import BackendRecipe, ExecutorSpec
from personasim.executor.stages import StageRun, personas_to_parts, simulate_to_parts
from personasim.tables import read_table, write_atomic


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
    """Commit an existing stage table as the first part of an empty parts folder."""
    if table.exists() and not parts.part_paths(folder):
        parts.commit_part(read_table(table, "stage table"), folder)


def _publish(folder: Path, table: Path) -> None:
    """Write the stage table from the parts (atomic)."""
    if parts.part_paths(folder):
        write_atomic(parts.read_parts(folder), table)


def _check(run: StageRun, what: str) -> None:
    """Print the run's summary; failed batches stop the study with a one-line error."""
    from personasim.errors import BackendError

    print(f"{what}: {run.summary()}", file=sys.stderr)
    if run.report.failed_batches:
        raise BackendError(f"{what}: {run.report.failed_batches} batch(es) failed after their "
                           f"retries: {run.report.first_error}",
                           hint="the rows written are kept; run the study again to retry "
                                "the failed ones")  # fmt: skip


def personas_on_ray(spec: Any, run: Path, population: pd.DataFrame, executor: ExecutorSpec,
                    counters: list[int], **kwargs: Any) -> pd.DataFrame:  # fmt: skip
    """Every generator's tiers through the executor; returns the personas table. ``counters``
    (model calls, cache hits) grows by what the workers did."""
    section, table = spec.personas, run / "personas.parquet"
    needs_model = any(t != "meta" for t in section.tiers)
    folder = parts_folder(run, table.name)
    _seeded(folder, table)
    for name in section.generators if needs_model else ("census",):
        recipe = recipe_for(spec, name, run / "cache.sqlite") if needs_model else None
        done = personas_to_parts(population, section.tiers, folder, executor=executor,
                                 recipe=recipe, generator=name if needs_model else None,
                                 show_progress=True, **kwargs)  # fmt: skip
        _check(done, f"personas x {name}")
        counters[0] += done.report.model_calls
        counters[1] += done.report.cache_hits
    _publish(folder, table)
    return read_table(table, "personas table")


def simulate_on_ray(spec: Any, run: Path, personas: pd.DataFrame, survey: Any, survey_id: str,
                    simulator: str, options: Any, executor: ExecutorSpec) -> StageRun:  # fmt: skip
    """One survey x simulator through the executor into ``responses_<id>.parquet``."""
    table = run / f"responses_{survey_id}.parquet"
    folder = parts_folder(run, table.name)
    _seeded(folder, table)
    done = simulate_to_parts(personas, survey, folder, options=options, executor=executor,
                             recipe=recipe_for(spec, simulator, run / "cache.sqlite"),
                             show_progress=True)  # fmt: skip
    _check(done, f"{survey_id} x {simulator}")
    _publish(folder, table)
    return done


def executor_session(executor: ExecutorSpec) -> Any:
    """One Ray session for a whole study (its stages reuse it), or nothing for ``local``."""
    import contextlib

    if executor.kind != "ray":
        return contextlib.nullcontext()
    from personasim.executor.ray import ray_session

    return ray_session(executor)
