"""What a stage's run function gets (:class:`StageContext`): the spec, the run directory, the
study's backends loaded on first use (:class:`Backends`) and its timing (:class:`StageTiming`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.core.tables import (
    read_table,
)
from personasim.llm.base import Backend
from personasim.spec.study import StudySpec


@dataclass
class StageTiming:
    """What one stage cost in this run."""

    stage: str
    """Stage name (one of :data:`personasim.pipeline.driver.STAGE_LIST`)."""
    seconds: float = 0.0
    """Wall time of the stage."""
    model_calls: int = 0
    """Model calls made (cache misses)."""
    cache_hits: int = 0
    """Requests answered by the cache."""
    reused: bool = False
    """True when the stage's output was already complete and nothing was computed."""
    reason: str = ""
    """Why the stage ran: what changed since it last finished here (empty when it was fresh)."""


class Backends:
    """The study's ``[backends.NAME]`` tables, loaded on first use, sharing the run's cache."""

    def __init__(self, spec: StudySpec, cache_path: Path) -> None:
        self.spec = spec
        self.cache_path = cache_path
        self.loaded: dict[str, Backend] = {}
        self.remote = [0, 0]
        """Model calls and cache hits made by backends on executor workers (Ray actors)."""
        self.remote_models: dict[str, dict[str, Any]] = {}
        """Backend name -> the model its workers opened (display name, identity, settings)
        and their ``stats`` (model calls, cache hits), for the manifest."""

    def record_remote(self, name: str, report: Any) -> None:
        """Record the model and counters of a run of backend ``name`` on workers (a
        :class:`~personasim.executor.run.RunReport` with a ``model``)."""
        entry = self.remote_models.setdefault(
            name, {**report.model, "stats": {"model_calls": 0, "cache_hits": 0}}
        )
        entry["stats"]["model_calls"] += report.model_calls
        entry["stats"]["cache_hits"] += report.cache_hits

    def get(self, name: str) -> Backend:
        """The backend named ``name`` in the spec (loaded once, with its own options)."""
        if name not in self.loaded:
            from personasim.llm import Cache, get_backend

            backend = self.spec.backends[name]
            self.loaded[name] = get_backend(
                backend.spec, cache=Cache(self.cache_path), **backend.options
            )
        return self.loaded[name]

    def counters(self) -> tuple[int, int]:
        """Model calls and cache hits summed over the loaded backends."""
        calls = sum(b.stats.model_calls for b in self.loaded.values()) + self.remote[0]
        hits = sum(b.stats.cache_hits for b in self.loaded.values()) + self.remote[1]
        return calls, hits

    def close(self) -> None:
        """Release every loaded backend."""
        for backend in self.loaded.values():
            backend.close()


@dataclass
class StageContext:
    """What a stage's run function gets: the spec, the run directory, backends, its timing."""

    spec: StudySpec
    run: Path
    backends: Backends
    timing: StageTiming


@contextmanager
def stage_timer(name: str, stages: list[StageTiming], backends: Backends) -> Iterator[StageTiming]:
    """Time a stage and count the model calls and cache hits it made."""
    timing = StageTiming(name)
    start, (calls, hits) = time.perf_counter(), backends.counters()
    print(f"== {name}", file=sys.stderr, flush=True)
    try:
        yield timing
    finally:
        after = backends.counters()
        timing.seconds = time.perf_counter() - start
        timing.model_calls, timing.cache_hits = after[0] - calls, after[1] - hits
        stages.append(timing)


def read_run_table(ctx: StageContext, name: str, what: str) -> pd.DataFrame:
    """A run-directory table through the one reader."""
    return read_table(ctx.run / name, what, hint="delete the run directory's file to recompute")
