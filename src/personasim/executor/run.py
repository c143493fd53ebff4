"""The driver every executor shares: run a stage over batches, commit each batch as one part.

Results arrive in batch order (local: computed in order; Ray: ``preserve_order``); each batch's
rows are committed as the next Parquet part of the stage folder (atomic, numbered in commit
order). A batch that failed after its retries (in the backend or on its data) is recorded in
``_failed.parquet`` (keys and the error), never committed, so a rerun — which reads the done
keys from the parts — computes it again. Any other error fails the run, on either executor (a
bug as :class:`~personasim.core.errors.InternalError`). Nothing holds more than one batch's
rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.core import parts
from personasim.executor.base import (
    BackendRecipe,
    BatchResult,
    ExecutorSpec,
    Stage,
    batch_rows,
    raise_stop,
)
from personasim.llm.base import Backend


@dataclass
class RunReport:
    """What :func:`run_batches` did."""

    batches: int
    """Batches planned."""
    parts: int
    """Parts committed (batches with new rows)."""
    rows: int
    """Rows committed."""
    failed_batches: int
    """Batches that failed after their retries (recorded in ``_failed.parquet``)."""
    failed_rows: int
    """Rows those batches should have produced."""
    first_error: str | None
    """The first failed batch's error (first line)."""
    model_calls: int = 0
    """Requests that reached a model (all workers)."""
    cache_hits: int = 0
    """Requests answered by the LLM cache (all workers)."""
    model: dict[str, Any] | None = None
    """Provenance of the backend the workers opened (display name, identity, settings; Ray
    only: locally the caller holds the backend)."""


def results_of(
    spec: ExecutorSpec,
    stage: Stage,
    batches: Sequence[pd.DataFrame],
    backend: Backend | None,
    recipe: BackendRecipe | None,
) -> Iterator[BatchResult]:
    """Each batch's result from the executor ``spec`` names (in batch order). Locally, a backend
    this function opens from ``recipe`` is closed when the batches are done."""
    if spec.kind == "ray":
        from personasim.executor.ray import run_ray

        if recipe is None:
            raise ValueError("the ray executor needs a BackendRecipe to open backends on actors")
        yield from run_ray(spec, stage, batches, recipe)
        return
    from personasim.executor.local import run_local

    if backend is not None or recipe is None:
        yield from run_local(stage, batches, backend, spec.retries)
        return
    opened = recipe.open()
    try:
        yield from run_local(stage, batches, opened, spec.retries)
    finally:
        opened.close()


def run_batches(
    spec: ExecutorSpec,
    stage: Stage,
    batches: Sequence[pd.DataFrame],
    folder: str | Path,
    *,
    backend: Backend | None = None,
    recipe: BackendRecipe | None = None,
    keep: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    progress: Callable[[int], object] | None = None,
) -> RunReport:
    """Run ``stage`` over ``batches`` with the executor of ``spec`` and commit the rows as parts
    of ``folder``. ``keep`` filters a batch's rows before commit (e.g. drops keys already done);
    ``progress(n)`` is called with the input rows of each finished batch. Holds the folder's lock
    throughout (:func:`personasim.core.parts.folder_lock`): a second writer is refused."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with parts.folder_lock(folder):  # one writer at a time, for the whole run
        parts.remove_stale_temps(folder)
        number, committed, rows, failed = parts.next_part_number(folder), 0, 0, []
        calls = hits = 0
        model = None
        for result in results_of(spec, stage, batches, backend, recipe):
            calls, hits = calls + result.model_calls, hits + result.cache_hits
            model = model or result.model
            if result.bug or result.fatal is not None:
                parts.write_failed(
                    folder, pd.concat(failed, ignore_index=True) if failed else pd.DataFrame()
                )
                raise_stop(result)
            if result.rows is None:
                failed.append(stage.failed_rows(batches[result.index], result.error or "failed"))
            else:
                new = keep(result.rows) if keep else result.rows
                if not new.empty:
                    parts.commit_part(new, folder, number)
                    number, committed, rows = number + 1, committed + 1, rows + len(new)
            if progress:
                progress(batch_rows(batches, result.index))
        lost = pd.concat(failed, ignore_index=True) if failed else pd.DataFrame()
        parts.write_failed(folder, lost)
    first = str(lost["error"].iloc[0]).splitlines()[0] if len(lost) else None
    return RunReport(
        len(batches), committed, rows, len(failed), len(lost), first, calls, hits, model
    )
