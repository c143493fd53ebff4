"""Local vs Ray executor on this machine with the embedded model: answers/s and Ray's fixed cost.

Simulates ``--personas`` meta personas x ``--questions`` election questions with the real
embedded model (SmolLM2-135M via llama.cpp, no cache) once with the local executor and once with
the Ray executor (a local Ray started and stopped by personasim, actors sized from the CPUs).
Ray's fixed cost is measured on its own: starting Ray, one actor pool mapping one trivial batch
with ``InstantStandIn`` (a stand-in that answers at once, named as such), and shutting down.

    .venv/bin/python benchmarks/executors.py [--personas 8] [--questions 3] [--batch-persons 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def personas(n: int) -> pd.DataFrame:
    """Meta personas of ``n`` census-drawn people."""
    from personasim.census import sample_population
    from personasim.personas.meta import meta_personas

    return meta_personas(sample_population("all", total=n, seed=3))


def timed(kind: str, frame: pd.DataFrame, survey, folder: Path, batch: int, recipe) -> float:  # noqa: ANN001
    """Seconds of one simulate run with executor ``kind``."""
    from personasim.executor.base import ExecutorSpec
    from personasim.pipeline.jobs import simulate_to_parts

    started = time.perf_counter()
    run = simulate_to_parts(
        frame,
        survey,
        folder,
        recipe=recipe,
        show_progress=False,
        executor=ExecutorSpec(kind=kind, batch_persons=batch),
    )
    seconds = time.perf_counter() - started
    assert run.report.failed_batches == 0, run.summary()
    return seconds


def ray_fixed_cost(folder: Path) -> float:
    """Seconds to start Ray, map one batch on a one-actor pool (stand-in model), shut down."""
    from simulate_overhead import InstantStandIn

    from personasim.executor.base import BackendRecipe, ExecutorSpec
    from personasim.pipeline.jobs import simulate_to_parts
    from personasim.survey.loaders import builtin_survey

    started = time.perf_counter()
    simulate_to_parts(
        personas(1),
        builtin_survey("elections"),
        folder,
        show_progress=False,
        recipe=BackendRecipe(factory=InstantStandIn),
        executor=ExecutorSpec(kind="ray", batch_persons=1),
    )
    return time.perf_counter() - started


def main() -> None:
    """Run both executors and print answers/s and Ray's fixed cost."""
    from personasim.executor.base import BackendRecipe
    from personasim.survey.loaders import builtin_survey
    from personasim.survey.questions import Survey

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=8)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--batch-persons", type=int, default=2)
    args = parser.parse_args()
    frame = personas(args.personas)
    base = builtin_survey("elections").questions
    survey = Survey(id="bench", questions=tuple(base[: args.questions]))
    answers = len(frame) * len(survey.questions)
    threads = int(os.environ.get("PERSONASIM_THREADS", "1"))
    recipe = BackendRecipe("llamacpp", options=(("n_threads", threads),))
    print(
        f"{len(frame)} personas x {len(survey.questions)} questions = {answers} answers, "
        f"embedded model, {threads} llama.cpp thread(s), {os.cpu_count()} CPUs, no cache"
    )
    with tempfile.TemporaryDirectory() as tmp:
        fixed = ray_fixed_cost(Path(tmp) / "fixed")
        print(f"Ray fixed cost (start, one actor, one trivial batch, stop): {fixed:.1f} s")
        for kind in ("local", "ray"):
            seconds = timed(kind, frame, survey, Path(tmp) / kind, args.batch_persons, recipe)
            print(
                f"{kind:5} executor: {seconds:6.1f} s = {answers / seconds:.2f} answers/s "
                "(model loads included)"
            )


if __name__ == "__main__":
    main()
