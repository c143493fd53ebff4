"""kill -9 at several points of a real ``personasim simulate``, then the same command again: the
final responses equal those of an uninterrupted run (same keys, no duplicates, same
probabilities) and no temporary file is left. The real embedded model answers throughout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.core.keys import RESPONSE_KEY

pytestmark = pytest.mark.slow

ENTRY = Path(sys.executable).parent / "personasim"
POPULATION = pd.DataFrame(
    {
        "person_id": [31, 32, 33, 34],
        "state": ["TX", "VT", "OH", "CA"],
        "weight": [1.0] * 4,
        "age": [70, 25, 40, 52],
        "sex": ["Male", "Female", "Female", "Male"],
        "race": ["White", "Asian", "White", "Black or African American"],
    }
)


def _command(population: Path, out: Path, cache: Path) -> list[str]:
    return [
        str(ENTRY),
        "simulate",
        "--population",
        str(population),
        "--survey",
        "elections",
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--batch-persons",
        "1",
        "-o",
        "n_threads=1",
    ]


def _parts(out: Path) -> list[Path]:
    return sorted(out.glob("part-*.parquet")) if out.is_dir() else []


def _kill_when(command: list[str], ready: Callable[[], bool], delay: float) -> int:
    """Start ``command``, wait until ``ready()``, wait ``delay`` s more, SIGKILL it; its code."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PERSONASIM_THREADS": "1"},
    )
    deadline = time.monotonic() + 240
    try:
        while not ready() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        code = process.wait(timeout=60)
    return code


def _dead_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _finish(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PERSONASIM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _table(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out).sort_values(list(RESPONSE_KEY)).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The population file and the responses of an uninterrupted run (its own cache)."""
    folder = tmp_path_factory.mktemp("sigkill")
    population = folder / "population.parquet"
    POPULATION.to_parquet(population, index=False)
    out = folder / "reference"
    _finish(_command(population, out, folder / "reference-cache.sqlite"))
    return population, _table(out)


@pytest.mark.parametrize(
    ("point", "parts_before", "delay"),
    [
        ("while the model loads", 0, 0.5),
        ("right after the first part", 1, 0.0),
        ("in the middle of the third batch", 2, 0.7),
    ],
)
def test_kill_9_then_rerun_equals_an_uninterrupted_run(
    reference: tuple[Path, pd.DataFrame],
    tmp_path: Path,
    point: str,
    parts_before: int,
    delay: float,
) -> None:
    population, expected = reference
    out = tmp_path / "responses"
    command = _command(population, out, tmp_path / "cache.sqlite")
    code = _kill_when(command, lambda: len(_parts(out)) >= parts_before, delay)
    assert code == -signal.SIGKILL, f"the run ended before the kill ({point})"
    assert len(_parts(out)) < len(POPULATION), "the kill came after the last part"
    killed_at = len(_parts(out))
    rerun = _finish(command)
    assert f"{3 * killed_at} already present" in rerun.stdout
    got = _table(out)
    assert not got.duplicated(list(RESPONSE_KEY)).any()
    pd.testing.assert_frame_equal(got, expected)  # same keys, same probabilities, same rows
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def test_kill_9_during_personas_then_rerun_equals_an_uninterrupted_run(
    reference: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    population, _ = reference

    def command(out: Path, cache: Path) -> list[str]:
        return [
            str(ENTRY),
            "personas",
            "--population",
            str(population),
            "--tiers",
            "meta,descriptive",
            "--limit",
            "3",
            "--out",
            str(out),
            "--cache",
            str(cache),
            "--batch-persons",
            "1",
            "-o",
            "n_threads=1",
        ]

    _finish(command(tmp_path / "reference", tmp_path / "reference.sqlite"))
    out = tmp_path / "personas"
    interrupted = command(out, tmp_path / "cache.sqlite")
    assert _kill_when(interrupted, lambda: len(_parts(out)) >= 1, 0.3) == -signal.SIGKILL
    assert 1 <= len(_parts(out)) < 3, "the kill came before the first or after the last part"
    _finish(interrupted)
    key = ["person_id", "tier", "generator"]
    got, want = (
        pd.read_parquet(p).drop(columns="seconds").sort_values(key).reset_index(drop=True)
        for p in (out, tmp_path / "reference")
    )
    assert not got.duplicated(key).any() and len(got) == 6
    pd.testing.assert_frame_equal(got, want)
    assert [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []


RUN_STUDY = """
name = "killme"

[population]
states = ["VT", "TX"]
per_state = 2
seed = 1

[personas]
tiers = ["meta"]

[score]
n_boot = 10

[backends.llamacpp]
spec = "llamacpp"
n_threads = 1

[[surveys]]
id = "elections"
source = "elections"
"""


def test_kill_9_during_run_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    study = tmp_path / "study.toml"
    study.write_text(RUN_STUDY)

    def command(out: Path) -> list[str]:
        return [str(ENTRY), "run", str(study), "--out", str(out)]

    _finish(command(tmp_path / "reference"))
    out = tmp_path / "killed"
    # killed while simulate runs: the personas table is written, the responses are not yet
    ready = lambda: (out / "personas.parquet").exists()  # noqa: E731
    assert _kill_when(command(out), ready, 1.0) == -signal.SIGKILL
    assert not (out / "report.html").exists(), "the run finished before the kill"
    stale = out / f".responses_elections.parquet.{_dead_pid()}.tmp"
    stale.write_bytes(b"what a kill during a table write leaves")
    _finish(command(out))
    for name, key in (
        ("responses_elections.parquet", list(RESPONSE_KEY)),
        ("scores_elections.parquet", ["attribute", "group", "question_id", "tier", "metric"]),
    ):
        got, want = (
            pd.read_parquet(run / name).sort_values(key).reset_index(drop=True)
            for run in (out, tmp_path / "reference")
        )
        pd.testing.assert_frame_equal(got, want, obj=name)
    assert [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []


def _kill_at_first_temp(command: list[str], folder: Path, delay: float) -> bool:
    """Run ``command``, SIGKILL it ``delay`` s after a temporary file first appears in
    ``folder`` (the write of its output has begun); whether it was killed before it ended."""
    temps = lambda: any(p.name.endswith(".tmp") for p in folder.iterdir())  # noqa: E731
    return _kill_when(command, temps, delay) == -signal.SIGKILL


def test_kill_9_during_calibrate_leaves_the_old_weights_or_the_new_ones_whole(
    tmp_path: Path,
) -> None:
    n = 600_000  # a table whose write takes long enough to be killed in the middle
    rng = np.random.default_rng(0)
    pool = tmp_path / "pool.parquet"
    pd.DataFrame(
        {
            "person_id": np.arange(n),
            "weight": rng.uniform(0.5, 2.0, n),
            "sex": rng.choice(["Male", "Female"], n),
        }
    ).to_parquet(pool, index=False)
    for share in (5, 3):
        (tmp_path / f"t{share}.csv").write_text(
            f"variable,level,share\nsex,Male,0.{share}\nsex,Female,0.{10 - share}\n"
        )

    def command(share: int, out: Path) -> list[str]:
        targets = f"csv:{tmp_path}/t{share}.csv"
        return [
            str(ENTRY),
            "calibrate",
            "--personas",
            str(pool),
            "--targets",
            targets,
            "--out",
            str(out),
        ]

    out, reference = tmp_path / "out" / "w.parquet", tmp_path / "reference.parquet"
    out.parent.mkdir()
    _finish(command(5, out))
    old = out.read_bytes()
    _finish(command(3, reference))
    new = pd.read_parquet(reference)
    mid_write = 0
    for delay in (0.0, 0.0, 0.05, 0.3):
        killed = _kill_at_first_temp(command(3, out), out.parent, delay)
        left = [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
        mid_write += killed and bool(left)
        if out.read_bytes() != old:  # never half: the old file, or the new one complete
            pd.testing.assert_frame_equal(pd.read_parquet(out), new)
            out.write_bytes(old)
    assert mid_write, "no kill landed while the weights were being written"
    _finish(command(3, out))  # the rerun finishes the job and removes the dead writers' temps
    pd.testing.assert_frame_equal(pd.read_parquet(out), new)
    assert [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []


def test_kill_9_during_testbed_pairs_keeps_finished_personas_and_the_rerun_resumes(
    tmp_path: Path,
) -> None:
    from tests.testbed.conftest import persona_table

    personas = tmp_path / "personas.parquet"
    persona_table().to_parquet(personas, index=False)  # two personas, one pair each

    def command(out: Path) -> list[str]:
        tokens = ["--answer-tokens", "8", "--critique-tokens", "8", "--revision-tokens", "8"]
        return [
            *[str(ENTRY), "testbed", "pairs", "--personas", str(personas), "--no-cache"],
            *["--per-persona", "1", "--held-out", "0", *tokens, "--batch-persons", "1"],
            *["--out", str(out), "-o", "n_threads=1"],
        ]

    _finish(command(tmp_path / "reference.parquet"))
    out = tmp_path / "pairs.parquet"
    folder = tmp_path / "pairs.parts"
    assert _kill_when(command(out), lambda: len(_parts(folder)) >= 1, 0.0) == -signal.SIGKILL
    kept = len(_parts(folder))
    assert kept == 1 and not out.exists(), "the kill came after the last persona"
    rerun = _finish(command(out))
    assert "pairs 2 (1 made now" in rerun.stdout
    key = ["person_id", "prompt_id", "generator"]
    got, want = (
        pd.read_parquet(p).sort_values(key).reset_index(drop=True)
        for p in (out, tmp_path / "reference.parquet")
    )
    pd.testing.assert_frame_equal(got, want)
    assert [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")] == []
