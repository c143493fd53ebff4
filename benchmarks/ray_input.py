"""The driver's peak memory on the input side of ``simulate_to_parts``, local and Ray executor.

Each (executor, size) runs in its own subprocess, so the memory printed is that run's driver's
alone (Ray's raylet, object store and actors are other processes). ``table`` is the driver's
private memory (``RssAnon``) once the persona table is built, before the run; the peaks are
measured from there (the kernel's peak RSS is reset through ``/proc/self/clear_refs``, so the
cost of building the table itself is left out): ``peak RSS`` also counts the pages of the object
store's shared memory the driver wrote into; ``peak private`` is the largest ``RssAnon`` sampled
every 50 ms, the driver's own heap without those shared pages.

The model is ``InstantStandIn`` (``benchmarks/simulate_overhead.py``), a stand-in named as such
that answers at once and keeps no log of its calls (``ScriptedStandIn`` records every request,
which would dwarf the figures), so what is measured is the executor's own holding of the input
(the persona table, the batches, what goes to Ray). The persona texts are padded to
``--text-bytes`` so the pending input of the largest size is larger than the 512 MB object store
of the local Ray (which then spills to disk).

``--src`` picks the personasim source tree, to compare with another checkout:

    .venv/bin/python benchmarks/ray_input.py [--rows 100000,1000000] [--executors local,ray]
    git worktree add --detach /tmp/before main   # then:
    .venv/bin/python benchmarks/ray_input.py --src /tmp/before/src --label before
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def stand_in():  # noqa: ANN201 - a Backend; imported lazily on each Ray actor
    """The instant stand-in backend (``InstantStandIn``; not a model)."""
    from simulate_overhead import InstantStandIn

    return InstantStandIn()


class PrivatePeak:
    """Samples this process's private resident memory (``RssAnon``, MB) in a thread."""

    def __init__(self) -> None:
        self.peak, self.stop = 0.0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        """Sample until stopped."""
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, anon_mb())

    def done(self) -> float:
        """Stop sampling; the peak in MB."""
        self.stop.set()
        self.thread.join()
        return max(self.peak, anon_mb())


def anon_mb() -> float:
    """``RssAnon`` of this process in MB."""
    return status_mb("RssAnon")


def status_mb(field: str) -> float:
    """A memory field of ``/proc/self/status`` (kB there) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(executor: str, rows: int, text_bytes: int, batch: int, folder: Path) -> None:
    """Run in the subprocess: simulate one question for ``rows`` personas; print seconds, rows
    written, failed rows, the input's MB, the driver's private MB with the table built, and its
    peak RSS and peak private MB during the run."""
    from simulate_overhead import personas_table, survey_of

    from personasim.executor.base import BackendRecipe, ExecutorSpec
    from personasim.pipeline.jobs import simulate_to_parts

    personas = personas_table(rows)
    personas["text"] = personas["text"] + "\n- Notes: " + "x" * text_bytes
    size = personas.memory_usage(deep=True).sum() / 2**20
    spec = ExecutorSpec(kind=executor, batch_persons=batch, num_cpus=2)
    gc.collect()
    table = anon_mb()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    sampler, started = PrivatePeak(), time.perf_counter()
    run = simulate_to_parts(
        personas,
        survey_of(1),
        folder,
        executor=spec,
        recipe=BackendRecipe(factory=stand_in),
        show_progress=False,
    )
    seconds = time.perf_counter() - started
    print(
        seconds,
        run.report.rows,
        run.report.failed_rows,
        size,
        table,
        status_mb("VmHWM"),
        sampler.done(),
    )


def measure(src: Path, executor: str, rows: int, text_bytes: int, batch: int) -> list[float]:
    """Seconds, rows, failed rows, input MB, table MB, peak RSS and peak private MB of one child
    run."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), str(HERE)]),
        "PERSONASIM_THREADS": "1",
    }
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                executor,
                str(rows),
                str(text_bytes),
                str(batch),
                folder,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
    return [float(x) for x in done.stdout.split()[-7:]]


def main() -> None:
    """Print the driver's peak RSS per executor and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="100000,1000000", help="persona rows, comma list")
    parser.add_argument("--executors", default="local,ray")
    parser.add_argument("--text-bytes", type=int, default=600)
    parser.add_argument("--batch-persons", type=int, default=500)
    parser.add_argument("--src", type=Path, default=HERE.parent / "src")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        executor, rows, text_bytes, batch, folder = args.child
        child(executor, int(rows), int(text_bytes), int(batch), Path(folder))
        return
    print(
        f"{args.label} ({args.src}); model: InstantStandIn (a stand-in, not a model); "
        f"1 question; batches of {args.batch_persons} persons; local Ray on 2 CPUs"
    )
    for rows in (int(r) for r in args.rows.split(",")):
        for executor in args.executors.split(","):
            seconds, written, failed, size, table, peak, private = measure(
                args.src, executor, rows, args.text_bytes, args.batch_persons
            )
            print(
                f"{executor:>5} {rows:>10,} persona rows (input {size:,.0f} MB): "
                f"{seconds:6.1f} s, {int(written):,} rows written, {int(failed)} failed; "
                f"driver: table {table:,.0f} MB, peak RSS {peak:,.0f} MB, peak private "
                f"{private:,.0f} MB ({private - table:+,.0f} MB over the table)",
                flush=True,
            )


if __name__ == "__main__":
    main()
