"""One writer at a time (personasim.core.lock), tested with real processes.

Every second writer here is a separate Python process (or the real ``personasim`` entry point);
a holder is a real process that keeps the lock until the test closes its stdin or kills it.
Waits are bounded by deadlines and never asserted on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import personasim
from personasim.core import parts
from personasim.core.errors import LockedError
from personasim.core.lock import LOCK_FILE, directory_lock, holds, read_holder, run_directory_lock

SRC = str(Path(personasim.__file__).resolve().parents[1])
PERSONASIM = [
    sys.executable,
    "-c",
    "import sys; from personasim.cli.main import main; sys.exit(main(sys.argv[1:]))",
]
"""The ``personasim`` command of this checkout (what the installed entry point runs; the shared
environment's script may point at another checkout's layout)."""
ENV = {**os.environ, "PYTHONPATH": SRC, "PERSONASIM_THREADS": "1"}
DEADLINE = 120.0
"""Longest wait for any process of these tests (a bound, never a measured figure)."""

HOLD = """
import sys
from personasim.core.lock import directory_lock
with directory_lock(sys.argv[1], what=sys.argv[2]):
    sys.stdin.read()  # keep the lock until the test closes stdin (or kills this process)
"""

PROBE = """
import sys
from personasim.core.errors import LockedError
from personasim.core.lock import directory_lock, read_holder
try:
    with directory_lock(sys.argv[1], wait=float(sys.argv[2])):
        print(read_holder(sys.argv[1]).pid)
except LockedError as error:
    print(error.one_line(), file=sys.stderr)
    sys.exit(2)
"""

COMMIT = """
import sys
import pandas as pd
from personasim.core import parts
folder, tag, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # start together
for i in range(count):
    keys = [f"{tag}-{i}-{j}" for j in range(3)]
    parts.commit_part(pd.DataFrame({"key": keys, "writer": tag}), folder)
"""

PUBLISH = """
import json, sys, time
from pathlib import Path
import pandas as pd
from personasim.core import parts
folder, table, total = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # start together
wrong, records, deadline, last = [], set(), time.monotonic() + 120, False
while not last:  # publish while the parts are being committed, then once more at the end
    last = len(parts.part_paths(folder)) >= total or time.monotonic() > deadline
    parts.publish(folder, table)
    names = [row[0] for row in json.loads((folder / parts.PUBLISHED).read_text())["parts"]]
    records.add(tuple(names))
    recorded = sorted(k for n in names for k in pd.read_parquet(folder / n)["key"])
    if sorted(pd.read_parquet(table)["key"]) != recorded:
        wrong.append(names)
print(json.dumps({"wrong": wrong, "records": len(records), "parts": len(names)}))
"""

FORK_AND_DIE = """
import os, sys
from personasim.core.lock import directory_lock
directory_lock(sys.argv[1]).__enter__()
child = os.fork()
if child == 0:
    sys.stdin.read()  # the forked child lives on until the test closes stdin
    os._exit(0)
print(child, flush=True)
os._exit(0)  # the parent dies holding the lock, without releasing it
"""


def _python(script: str, *args: object, stdin: int | None = None) -> subprocess.Popen:
    """A real Python process running ``script`` with this worktree's package."""
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        env=ENV,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _holding(folder: Path, what: str = "folder") -> subprocess.Popen:
    """A process that holds ``folder``'s lock, returned once its holder record is written."""
    holder = _python(HOLD, folder, what, stdin=subprocess.PIPE)
    _wait_for_holder(folder, holder)
    return holder


def _wait_for_holder(folder: Path, process: subprocess.Popen) -> None:
    """Wait (bounded) until ``process`` has written its holder record into ``folder``."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        record = read_holder(folder)
        if record is not None and record.pid == process.pid:
            return
        assert process.poll() is None, f"{process.args} exited before locking {folder}"
        time.sleep(0.02)
    raise AssertionError(f"{process.pid} did not lock {folder} within {DEADLINE} s")


def _release(holder: subprocess.Popen) -> None:
    """Let a holder end normally (close its stdin) and reap it."""
    holder.stdin.close()  # type: ignore[union-attr]
    assert holder.wait(timeout=DEADLINE) == 0, holder.stderr.read()  # type: ignore[union-attr]


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL a process (stopped or not) and reap it."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=DEADLINE)


def _probe(folder: Path, wait: float = 0.0) -> tuple[int, str, str]:
    """Another process trying to lock ``folder``: exit code, stdout, stderr."""
    done = _python(PROBE, folder, wait)
    out, err = done.communicate(timeout=DEADLINE)
    return done.returncode, out, err


def _start_together(processes: list[subprocess.Popen]) -> None:
    """Once every process is ready (imports done), send each the line that starts it."""
    for process in processes:
        assert process.stdout.readline() == "ready\n", process.args  # type: ignore[union-attr]
    for process in processes:
        process.stdin.write("go\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]


def _one_error_line(stderr: str) -> str:
    """The single ``error:`` line of a refused command (and nothing else on stderr)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (the lock files' holder records aside)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


# --------------------------------------------------------------------------- the lock itself


def test_a_second_process_is_refused_with_one_line_naming_the_holder(tmp_path: Path) -> None:
    holder = _holding(tmp_path / "out")
    try:
        code, _, err = _probe(tmp_path / "out")
        # this process is another writer too
        with pytest.raises(LockedError) as refused, directory_lock(tmp_path / "out"):
            pass
    finally:
        _release(holder)
    assert code == 2
    line = err.strip()
    assert "\n" not in line
    assert (
        f"{tmp_path / 'out'} is being written by pid {holder.pid} on host "
        f"{socket.gethostname()} since " in line
    )
    assert "wait for it or stop it" in line and "(hint: " in line
    assert f"pid {holder.pid}" in refused.value.message and refused.value.hint
    assert not (tmp_path / "out" / LOCK_FILE).exists()  # removed by the holder on release


def test_the_holder_record_names_this_process(tmp_path: Path) -> None:
    before = time.time()
    with directory_lock(tmp_path / "new" / "folder") as lock_file:
        record = read_holder(tmp_path / "new" / "folder")
        assert lock_file == tmp_path / "new" / "folder" / LOCK_FILE
    assert record is not None and record.pid == os.getpid()
    assert record.host == socket.gethostname() and record.since >= before - 1
    assert record.command  # the command line of this pytest process
    assert not lock_file.exists()  # a finished writer leaves nothing behind
    assert not (tmp_path / "new" / "folder").exists()  # not even the folder it created
    assert (tmp_path / "new").is_dir()  # (only the folder itself is removed, when empty)


def test_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    holder = _holding(folder)
    _kill(holder)  # SIGKILL: no cleanup ran; its record is still in the file
    stale = read_holder(folder)
    assert stale is not None and stale.pid == holder.pid
    code, out, err = _probe(folder)
    assert code == 0, err
    assert int(out) != holder.pid  # the new writer rewrote the record with its own pid
    with directory_lock(folder):
        assert read_holder(folder).pid == os.getpid()  # type: ignore[union-attr]


def test_a_waiting_writer_gets_the_lock_when_the_holder_ends(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    holder = _holding(folder)
    waiter = _python(PROBE, folder, DEADLINE)  # waits instead of refusing
    try:
        assert waiter.poll() is None
    finally:
        _release(holder)
    out, err = waiter.communicate(timeout=DEADLINE)
    assert waiter.returncode == 0, err
    assert int(out) == waiter.pid


def test_a_waiting_writer_gives_up_after_its_timeout(tmp_path: Path) -> None:
    holder = _holding(tmp_path / "out")
    try:
        code, _, err = _probe(tmp_path / "out", wait=0.3)
    finally:
        _release(holder)
    assert code == 2 and "(waited 0.3 s)" in err and f"pid {holder.pid}" in err


def test_reentrant_in_one_process(tmp_path: Path) -> None:
    folder, alias = tmp_path / "run", tmp_path / "alias"
    alias.symlink_to(folder, target_is_directory=True)
    with run_directory_lock(folder):
        # a second code path of the same process, then the same folder under another name
        with directory_lock(folder), parts.folder_lock(alias):
            assert holds(folder)
        assert holds(folder)
        code, _, err = _probe(folder)  # still held after the inner ones ended
        assert code == 2 and f"pid {os.getpid()}" in err
    assert not holds(folder)
    code, _, err = _probe(folder)
    assert code == 0, err


def test_a_forked_child_does_not_keep_a_dead_parents_lock(tmp_path: Path) -> None:
    parent = _python(FORK_AND_DIE, tmp_path, stdin=subprocess.PIPE)
    child = int(parent.stdout.readline())  # type: ignore[union-attr]
    parent.wait(timeout=DEADLINE)
    try:
        os.kill(child, 0)  # the child still runs
        code, _, err = _probe(tmp_path)
    finally:
        parent.stdin.close()  # type: ignore[union-attr]
    assert code == 0, err


# --------------------------------------------------------------------------- parts folders


def test_two_processes_committing_parts_lose_nothing(tmp_path: Path) -> None:
    folder, count = tmp_path / "responses", 30
    writers = [_python(COMMIT, folder, tag, count, stdin=subprocess.PIPE) for tag in "ab"]
    _start_together(writers)
    for writer in writers:
        _, err = writer.communicate(timeout=DEADLINE)
        assert writer.returncode == 0, err
    names = [p.name for p in parts.part_paths(folder)]
    assert names == [parts.part_name(n) for n in range(2 * count)]  # no number reused or skipped
    rows = parts.read_parts(folder)
    expected = {f"{tag}-{i}-{j}" for tag in "ab" for i in range(count) for j in range(3)}
    assert len(rows) == len(expected) and set(rows["key"]) == expected


def test_publish_racing_with_commits_records_only_published_parts(tmp_path: Path) -> None:
    folder, table = tmp_path / "parts", tmp_path / "responses.parquet"
    parts.commit_part(pd.DataFrame({"key": ["seed"], "writer": "seed"}), folder)
    committer = _python(COMMIT, folder, "c", 40, stdin=subprocess.PIPE)
    publisher = _python(PUBLISH, folder, table, 1 + 40, stdin=subprocess.PIPE)
    _start_together([committer, publisher])
    out, err = publisher.communicate(timeout=DEADLINE)
    assert publisher.returncode == 0, err
    _, err = committer.communicate(timeout=DEADLINE)
    assert committer.returncode == 0, err
    seen = json.loads(out)
    assert seen["wrong"] == []  # every record named exactly the parts in the table
    assert seen["parts"] == 1 + 40  # the last publish, after the last commit, has them all
    assert len(pd.read_parquet(table)) == 1 + 40 * 3
    assert not parts.publish(folder, table)  # and later publishes have nothing left to add


def test_a_writer_holding_the_folder_refuses_a_second_run_batches(tmp_path: Path) -> None:
    from personasim.executor.base import ExecutorSpec
    from personasim.executor.run import run_batches

    holder = _holding(tmp_path / "responses", what="parts folder")
    try:
        with pytest.raises(LockedError, match=f"parts folder .* pid {holder.pid} "):
            run_batches(ExecutorSpec(), _NeverCalled(), [], tmp_path / "responses")
    finally:
        _release(holder)


class _NeverCalled:
    """A stand-in stage for a run that must be refused before any batch (it has none)."""

    def __call__(self, backend: object, batch: pd.DataFrame) -> pd.DataFrame:
        raise AssertionError("no batch runs")

    def failed_rows(self, batch: pd.DataFrame, error: str) -> pd.DataFrame:
        raise AssertionError("no batch runs")


# --------------------------------------------------------------------------- the real commands


@pytest.mark.slow
def test_a_second_personasim_run_on_one_directory_exits_2_naming_the_first(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    command = [*PERSONASIM, "run", "tiny", "--out", str(run)]
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_holder(run, first)
        os.kill(first.pid, signal.SIGSTOP)  # frozen while it holds the lock: a sure overlap
        before = _snapshot(run)
        second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=DEADLINE)
        after = _snapshot(run)
    finally:
        _kill(first)
    assert second.returncode == 2
    line = _one_error_line(second.stderr)
    assert f"run directory {run} is being written by pid {first.pid} on host " in line
    assert after == before  # nothing the first run wrote was touched


POPULATION = pd.DataFrame(
    {
        "person_id": [41, 42],
        "state": ["TX", "VT"],
        "weight": [1.0, 1.0],
        "age": [70, 25],
        "sex": ["Male", "Female"],
        "race": ["White", "Asian"],
    }
)


def _simulate(population: Path, out: Path, cache: Path) -> list[str]:
    return [
        *PERSONASIM,
        "simulate",
        "--population",
        str(population),
        "--survey",
        "elections",
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--limit-persons",
        "1",
        "-o",
        "n_threads=1",
    ]


def test_a_second_simulate_into_one_folder_refuses_with_one_line(tmp_path: Path) -> None:
    population, out = tmp_path / "population.parquet", tmp_path / "responses"
    POPULATION.to_parquet(population, index=False)
    parts.commit_part(pd.DataFrame({"key": ["earlier"]}), out)  # an earlier batch to keep
    before = _snapshot(out)
    holder = _holding(out, what="parts folder")  # the first writer, without a model
    try:
        refused = subprocess.run(
            _simulate(population, out, tmp_path / "cache.sqlite"),
            env=ENV,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
        held = _snapshot(out)
    finally:
        _release(holder)
    assert refused.returncode == 2
    line = _one_error_line(refused.stderr)
    assert f"parts folder {out} is being written by pid {holder.pid} on host " in line
    assert held == before  # the second wrote nothing
    assert not (tmp_path / "cache.sqlite").exists()  # refused before any model was opened


def test_a_second_personas_into_one_folder_refuses_with_one_line(tmp_path: Path) -> None:
    population, out = tmp_path / "population.parquet", tmp_path / "personas"
    POPULATION.to_parquet(population, index=False)
    holder = _holding(out, what="parts folder")
    try:
        refused = subprocess.run(
            [
                *PERSONASIM,
                "personas",
                "--population",
                str(population),
                "--tiers",
                "meta",
                "--out",
                str(out),
            ],
            env=ENV,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
    finally:
        _release(holder)
    assert refused.returncode == 2
    line = _one_error_line(refused.stderr)
    assert f"parts folder {out} is being written by pid {holder.pid} on host " in line
    assert parts.part_paths(out) == []


@pytest.mark.slow
def test_simulate_takes_over_the_lock_of_a_killed_simulate(tmp_path: Path) -> None:
    population, out = tmp_path / "population.parquet", tmp_path / "responses"
    POPULATION.to_parquet(population, index=False)
    command = _simulate(population, out, tmp_path / "cache.sqlite")
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_holder(out, first)
    finally:
        _kill(first)  # SIGKILL while it holds the folder
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = parts.read_parts(out)
    assert len(rows) == 3 and set(rows["person_id"].astype(str)) == {"41"}  # 1 person x 3
    assert read_holder(out) is None  # released at the end, nothing left to clean up
