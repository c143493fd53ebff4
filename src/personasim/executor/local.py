"""The local executor: every batch in this process, in order, with one backend."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd

from personasim.executor.base import BatchResult, Stage, stage_result
from personasim.llm.base import Backend


def run_local(
    stage: Stage, batches: Sequence[pd.DataFrame], backend: Backend | None
) -> Iterator[BatchResult]:
    """Yield each batch's result in order. An error propagates at once (today's behaviour of a
    single process: the parts committed so far are kept and a rerun resumes after them).
    ``backend`` is None for a stage that needs no model."""
    for index, batch in enumerate(batches):
        yield stage_result(stage, backend, batch, index)
