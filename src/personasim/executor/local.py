"""The local executor: every batch in this process, in order, with one backend."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pandas as pd

from personasim.executor.base import BatchResult, Stage, run_with_retries
from personasim.llm.base import Backend


def run_local(
    stage: Stage, batches: Sequence[pd.DataFrame], backend: Backend | None, retries: int = 2
) -> Iterator[BatchResult]:
    """Yield each batch's result in order, with the Ray executor's rule
    (:func:`~personasim.executor.base.run_with_retries`): a batch failing in the backend or on
    its data is retried ``retries`` times, then comes back failed (the job goes on); a bug comes
    back at once and the driver fails the run. ``backend`` is None for a stage that needs no
    model."""
    for index, batch in enumerate(batches):
        yield run_with_retries(stage, backend, batch, index, retries)
