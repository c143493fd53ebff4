"""What every executor shares: its spec, the backend recipe, a batch and its result.

An executor maps a *stage function* over batches of persons and hands the results back to the
driver in batch order; the driver (:mod:`personasim.executor.run`) commits each batch as one
Parquet part. The stage function is the existing stage code (``simulate``,
``generate_personas``) applied to one batch with one backend, so the local and the Ray executor
compute the same rows.
"""

from __future__ import annotations

import pickle
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from personasim.llm.base import Backend


class ExecutorSpec(BaseModel):
    """Where the model-calling stages run (the ``[executor]`` section of a study spec)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["local", "ray"] = "local"
    """``local``: in this process (default); ``ray``: on Ray Data, one backend per actor."""
    address: str | None = None
    """Ray cluster: None starts a local Ray for the run and stops it after; ``auto`` or
    ``ray://host:port`` joins an existing cluster (left running)."""
    actors: int | None = Field(default=None, ge=1)
    """Actors in the pool; None sizes it from the cluster's CPUs, leaving room for reads."""
    cpus_per_actor: float = Field(default=1.0, gt=0)
    """CPUs reserved per actor (also the llama.cpp threads of an embedded model)."""
    memory_per_actor_mb: int = Field(default=1024, ge=64)
    """Memory reserved per actor in MB (the embedded model needs ~300 MB)."""
    batch_persons: int = Field(default=32, ge=1)
    """Persons per batch: the unit of work, of retry and of one committed part."""
    retries: int = Field(default=2, ge=0, le=20)
    """Retries of a batch whose stage fails in the backend or on its data (a bug fails the run
    at once), in its process or actor (a dead actor is restarted and its batch retried by Ray
    Data itself)."""
    num_cpus: int | None = Field(default=None, ge=1)
    """CPUs of a local Ray started by personasim (None: the cores this process may use)."""


@dataclass(frozen=True)
class BackendRecipe:
    """How to open a backend in another process: the spec string, options and cache file."""

    model: str = "llamacpp"
    """Backend spec string (``llamacpp``, ``openai:MODEL@URL``...)."""
    options: tuple[tuple[str, Any], ...] = ()
    """Backend options as (name, value) pairs."""
    cache_path: str | None = None
    """SQLite cache file (each node's local path; None: no cache)."""
    factory: Callable[[], Backend] | None = None
    """Instead of ``model``: a picklable function that builds the backend (e.g. a test's
    :class:`~tests.support.scripted.ScriptedStandIn`)."""

    def open(self, threads: int | None = None) -> Backend:
        """Open the backend; ``threads``: llama.cpp threads unless the options set them."""
        from personasim.llm import Cache, get_backend

        if self.factory is not None:
            return self.factory()
        options = dict(self.options)
        if threads and self.model.strip().lower().startswith("llamacpp"):
            options.setdefault("n_threads", threads)
        cache = Cache(self.cache_path) if self.cache_path else None
        return get_backend(self.model, cache=cache, **options)


class Stage(Protocol):
    """A stage function: one batch of input rows and one backend in, output rows out."""

    def __call__(self, backend: Backend, batch: pd.DataFrame) -> pd.DataFrame:
        """The output rows of ``batch``."""
        ...

    def failed_rows(self, batch: pd.DataFrame, error: str) -> pd.DataFrame:
        """Key columns (and ``error``) of the rows ``batch`` should have produced."""
        ...


class BatchPlan(Sequence[pd.DataFrame]):
    """Batches of a frame, built on demand: ``plan[i]`` is batch ``i``.

    The plan holds the frame (not a copy), one stable row order and the batch offsets into it,
    so the batches cost no memory until one is asked for; each ``plan[i]`` is a fresh frame with
    a new index. Batch ``i`` is ``frame.take(order[offsets[i]:offsets[i + 1]])``."""

    def __init__(self, frame: pd.DataFrame, order: np.ndarray, offsets: np.ndarray) -> None:
        self.frame, self.order, self.offsets = frame, order, offsets

    @classmethod
    def of_persons(cls, frame: pd.DataFrame, batch_persons: int) -> BatchPlan:
        """``frame`` in batches of ``batch_persons`` persons: all rows of a person together,
        persons in order of first appearance, rows within a batch in table order."""
        if frame.empty:
            return cls(frame, np.zeros(0, np.int64), np.zeros(1, np.int64))
        codes, _ = pd.factorize(frame["person_id"])
        groups = codes // batch_persons
        order = np.argsort(groups, kind="stable")
        counts = np.bincount(groups, minlength=int(groups.max()) + 1)
        return cls(frame, order, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, index: int) -> pd.DataFrame: ...
    @overload
    def __getitem__(self, index: slice) -> list[pd.DataFrame]: ...
    def __getitem__(self, index: int | slice) -> pd.DataFrame | list[pd.DataFrame]:
        """Batch ``index`` (a new frame), or a list of batches for a slice."""
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch {index} of a plan of {len(self)}")
        return self.span(index % len(self), index % len(self) + 1)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return (self.span(i, i + 1) for i in range(len(self)))

    def rows(self, index: int) -> int:
        """Rows of batch ``index`` (without building it)."""
        return int(self.offsets[index + 1] - self.offsets[index])

    def span(self, start: int, stop: int) -> pd.DataFrame:
        """The rows of batches ``start`` to ``stop - 1`` in plan order, as one new frame."""
        rows = self.order[self.offsets[start] : self.offsets[stop]]
        return self.frame.take(rows).reset_index(drop=True)


def batch_rows(batches: Sequence[pd.DataFrame], index: int) -> int:
    """Input rows of batch ``index`` (a :class:`BatchPlan` answers without building it)."""
    return batches.rows(index) if isinstance(batches, BatchPlan) else len(batches[index])


@dataclass
class BatchResult:
    """What came back for one batch."""

    index: int
    """Position of the batch in the plan."""
    rows: pd.DataFrame | None
    """Output rows (None when the batch failed after its retries)."""
    error: str | None = None
    """Why it failed (last attempt), else None."""
    attempts: int = 1
    """Attempts made."""
    seconds: float = 0.0
    """Wall time of the batch on its worker."""
    model_calls: int = 0
    """Requests of this batch that reached the model."""
    cache_hits: int = 0
    """Requests of this batch answered by the LLM cache."""
    model: dict[str, Any] | None = None
    """Provenance of the backend that ran the batch on a worker (:func:`model_provenance`);
    None in this process, whose open backend the caller knows."""
    fatal: Exception | None = None
    """A personasim error that is not a batch failure (it fails the run as itself)."""
    bug: str = ""
    """The traceback of any other exception (a bug: it fails the run), else empty."""


def model_provenance(backend: Backend) -> dict[str, Any]:
    """What a run's manifest records of a backend opened on a worker: display name, identity
    and settings (its counters travel with each batch)."""
    return {
        "display_name": backend.display_name,
        "identity": backend.model_identity,
        "settings": dict(backend.settings),
    }


def raise_stop(result: BatchResult) -> None:
    """Raise what stops the run: a result's ``fatal`` error, or the
    :class:`~personasim.core.errors.InternalError` of its bug (from the traceback where it
    happened); nothing for any other result."""
    from personasim.core.errors import InternalError, RemoteTraceback

    if result.fatal is not None:
        raise result.fatal
    if result.bug:
        raise InternalError(
            f"a bug stopped the run in batch {result.index}: {result.error}",
            hint="set PERSONASIM_TRACEBACK=1 to see the traceback, and report "
            "it; the batches committed so far are kept",
        ) from RemoteTraceback(result.bug)


def stage_result(
    stage: Stage, backend: Backend | None, batch: pd.DataFrame, index: int
) -> BatchResult:
    """Run ``stage`` on ``batch`` once, with the backend's model calls and cache hits counted."""
    started = time.perf_counter()
    if backend is None:  # a stage that needs no model (e.g. the meta tier)
        return BatchResult(index, stage(backend, batch), None, 1, time.perf_counter() - started)
    calls, hits = backend.stats.model_calls, backend.stats.cache_hits
    rows = stage(backend, batch)
    return BatchResult(
        index,
        rows,
        None,
        1,
        time.perf_counter() - started,
        backend.stats.model_calls - calls,
        backend.stats.cache_hits - hits,
    )


def run_with_retries(
    stage: Stage, backend: Backend | None, batch: pd.DataFrame, index: int, retries: int
) -> BatchResult:
    """Run ``stage`` on ``batch``; a batch failure (:func:`~personasim.core.errors.fails_batch`:
    the backend or the data) is retried ``retries`` times, then returned as a failed result, so
    one bad batch does not stop the job. Any other exception comes back at once, never raised
    here (so it can travel back from an actor): a personasim error in ``fatal``, anything else
    (a bug) as its traceback in ``bug``; the driver then fails the run (:func:`raise_stop`)."""
    from personasim.core.errors import PersonasimError, fails_batch

    started, error, last = time.perf_counter(), "", ""
    for attempt in range(1, retries + 2):
        try:
            result = stage_result(stage, backend, batch, index)
            result.attempts, result.seconds = attempt, time.perf_counter() - started
            return result
        except Exception as exc:  # noqa: BLE001 - sorted here, raised by the driver
            error = f"{type(exc).__name__}: {exc}".strip()
            if not fails_batch(exc):
                fatal = exc if isinstance(exc, PersonasimError) else None
                return BatchResult(
                    index,
                    None,
                    error,
                    attempt,
                    time.perf_counter() - started,
                    fatal=fatal,
                    bug="" if fatal else traceback.format_exc(),
                )
            last = traceback.format_exc(limit=3)
    return BatchResult(index, None, f"{error}\n{last}", retries + 1, time.perf_counter() - started)


def dumps(frame: pd.DataFrame) -> bytes:
    """A frame as bytes for the trip between driver and actor (exact pandas types)."""
    return pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> pd.DataFrame:
    """The inverse of :func:`dumps` (only ever given bytes this process or its actors made)."""
    return pickle.loads(data)  # noqa: S301 - our own actors' output, never user input
