"""llama.cpp threads: answers/s of the embedded model with 1 and 2 threads, idle and under load.

"Under load" means one other process holds one core with a busy loop, as another job on a
shared 2-core machine does; the script starts that process and stops it (by its own handle)
around each loaded measurement. Each measurement answers a fresh set of survey questions for
fresh personas (persona-major, as ``simulate`` sends them), so every persona prompt is cold and
later questions reuse its prefix. Conditions are interleaved over ``--rounds`` rounds and the
median is printed, with the 1-minute load average seen at the start of each measurement (the
machine may be shared: read the figures beside it).

    .venv/bin/python benchmarks/threads.py [--personas 4] [--questions 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from itertools import count

from personasim.core.errors import PersonasimError
from personasim.llm.base import ChoiceRequest
from personasim.llm.llamacpp import LlamaCppBackend, LlamaCppOptions
from personasim.simulate.prompt import build_messages
from personasim.survey.loaders import builtin_survey
from personasim.survey.questions import letter

STATES = ("Texas", "Ohio", "Maine", "Oregon", "Georgia", "Iowa", "Utah", "Nevada")
JOBS = ("nurse", "welder", "teacher", "farmer", "cashier", "lawyer", "driver", "chef")


def _busy_loop() -> None:
    """Hold one core until terminated."""
    while True:
        pass


def _requests(serial: count, personas: int, questions: int) -> list[ChoiceRequest]:
    """Fresh persona x question requests (each persona new to the model's KV cache)."""
    survey = builtin_survey("topics")
    out = []
    for _ in range(personas):
        n = next(serial)
        text = (
            f"A {25 + n % 50}-year-old {JOBS[n % len(JOBS)]} from "
            f"{STATES[(n // len(JOBS)) % len(STATES)]}, person number {n}."
        )
        for question in survey.questions[:questions]:
            labels = tuple(letter(i) for i in range(len(question.options)))
            out.append(ChoiceRequest(messages=build_messages(text, question), labels=labels))
    return out


def _measure(backend: LlamaCppBackend, requests: list[ChoiceRequest], loaded: bool) -> tuple:
    """Answers/s for ``requests``, with a busy-loop process running when ``loaded``."""
    busy = multiprocessing.get_context("spawn").Process(target=_busy_loop, daemon=True)
    if loaded:
        busy.start()
        time.sleep(0.5)  # let it take its core
    try:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        backend.choice_logprobs(requests, progress=False)
        seconds = time.perf_counter() - started
    finally:
        if loaded:
            busy.terminate()
            busy.join()
    return len(requests) / seconds, load


def main() -> int:
    """Parse arguments, measure every condition, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=4)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    serial = count()
    try:
        backends = {
            t: LlamaCppBackend(LlamaCppOptions(n_threads=int(t))) for t in args.threads.split(",")
        }
    except PersonasimError as error:
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 2
    for backend in backends.values():  # warm up: load pages, build the label tables
        backend.choice_logprobs(_requests(serial, 1, 1), progress=False)
    figures: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for condition in ("idle", "load"):
            for threads, backend in backends.items():
                work = _requests(serial, args.personas, args.questions)
                figures.setdefault((threads, condition), []).append(
                    _measure(backend, work, condition == "load")
                )
    cores = len(os.sched_getaffinity(0))
    print(
        f"cores usable: {cores}; {args.personas} personas x {args.questions} questions per "
        f"measurement, median of {args.rounds} rounds"
    )
    print(f"{'threads':>7}  {'condition':<9}  {'answers/s':>9}  {'load avg at start':>17}")
    for (threads, condition), runs in sorted(figures.items()):
        rate = statistics.median(r for r, _ in runs)
        loads = " ".join(f"{load:.1f}" for _, load in runs)
        print(f"{threads:>7}  {condition:<9}  {rate:9.2f}  {loads:>17}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
