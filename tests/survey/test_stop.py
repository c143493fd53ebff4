"""A clean stop: SIGTERM (Ctrl-C takes the same path, :class:`personasim.core.errors.Interrupted`)
keeps every finished row, says how to resume, exits 143, and the resumed run equals an
uninterrupted one. Real embedded model, real subprocess."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from personasim.cli.main import main
from personasim.core.keys import RESPONSE_KEY
from personasim.personas.meta import meta_personas

ENTRY = Path(sys.executable).parent / "personasim"

POPULATION = pd.DataFrame(
    {
        "person_id": [21, 22, 23],
        "state": ["TX", "NY", "OH"],
        "weight": [1.0, 1.0, 1.0],
        "age": [33, 58, 71],
        "sex": ["Female", "Male", "Female"],
        "race": ["White", "Asian", "Black or African American"],
    }
)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in key order with string keys (resume order is not run order)."""
    keyed = frame.assign(**{c: frame[c].astype(str) for c in RESPONSE_KEY})
    return keyed.sort_values(list(RESPONSE_KEY), ignore_index=True)


def _wait_for_answers(process: subprocess.Popen, answers: int, seen: list[str]) -> None:
    """Read the progress bar on stderr until it shows ``answers`` done (or the process ends)."""
    buffer = ""
    while True:
        char = process.stderr.read(1)
        if not char:
            return
        buffer += char
        done = [int(n) for n in re.findall(r"\| *(\d+)/\d+ \[", buffer[-200:])]
        if done and max(done) >= answers:
            seen.append(buffer)
            return


@pytest.mark.slow
def test_sigterm_stops_a_real_simulate_cleanly_and_resumes_exactly(tmp_path: Path) -> None:
    meta_personas(POPULATION).to_parquet(tmp_path / "personas.parquet", index=False)
    # one person per batch: each batch (3 answers) is committed as a part when it finishes, and
    # the next batch starts only after that commit, so a bar at 4 answers means >= 3 are saved
    args = [
        "simulate",
        "--personas",
        str(tmp_path / "personas.parquet"),
        "--survey",
        "elections",
        "--no-cache",
        "--batch-persons",
        "1",
    ]
    out = tmp_path / "responses.parquet"
    process = subprocess.Popen(
        [str(ENTRY), *args, "--out", str(out)],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen: list[str] = []
    reader = threading.Thread(target=_wait_for_answers, args=(process, 4, seen), daemon=True)
    reader.start()
    reader.join(timeout=240)
    assert seen, "the progress bar never reached 4 answers"
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=120)
    assert process.returncode == 143
    last = rest.strip().splitlines()[-1]
    kept = len(pd.read_parquet(out))
    assert 3 <= kept < 9
    assert last == (
        f"stopped by SIGTERM: {kept} responses are saved in {out}; run the same "
        "command again to resume"
    )
    assert "Traceback" not in rest

    assert main([*args, "--out", str(out)]) == 0  # resume
    assert main([*args, "--out", str(tmp_path / "straight.parquet")]) == 0
    resumed, straight = pd.read_parquet(out), pd.read_parquet(tmp_path / "straight.parquet")
    assert len(resumed) == 9
    pd.testing.assert_frame_equal(_sorted(resumed), _sorted(straight))
