"""Peak memory and seconds of ``personasim score`` on 1M and 10M simulated answers (parts).

Builds a responses folder the way ``simulate`` writes it (Parquet parts, with the ``raw`` and
``option_order`` columns a real run carries) for census-drawn persons across all states answering
the three election questions; the answer distributions are random (Dirichlet) because no model is
involved: this measures scoring only. Then runs the real CLI in a subprocess, ``--n-boot 0`` and
``--n-boot 1000``, and prints its wall time and peak RSS.

    .venv/bin/python benchmarks/score_memory.py [--answers 1000000,10000000] [--boot 0,1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHUNK = 1_000_000
QUESTIONS = ("president_2016", "president_2020", "president_2024")


def build(answers: int, folder: Path) -> None:
    """Write ``answers`` response rows as parts of about a million rows each."""
    from personasim.census import sample_population
    from personasim.core.parts import commit_part

    persons = sample_population("all", total=answers // len(QUESTIONS), seed=1)
    rng = np.random.default_rng(0)
    per_chunk = CHUNK // len(QUESTIONS)
    raw = json.dumps({"presented": [0.5, 0.5], "top_tokens": {"A": -0.7, "B": -0.7, " A": -5.0}})
    for start in range(0, len(persons), per_chunk):
        chunk = persons.iloc[start : start + per_chunk]
        n, q = len(chunk), len(QUESTIONS)
        probs = rng.dirichlet(np.ones(2), size=n * q)
        frame = pd.DataFrame(
            {
                "person_id": np.repeat(chunk["person_id"].to_numpy(), q),
                "tier": "meta",
                "generator": "census",
                "simulator": "bench",
                "question_id": np.tile(QUESTIONS, n),
                "estimator": "logprobs",
                "probs": list(probs),
                "answer": np.where(probs[:, 0] >= 0.5, "A", "B"),
                "valid_mass": 0.9,
                "invalid": 0,
                "option_order": [[0, 1]] * (n * q),
                "raw": raw,
                "weight": np.repeat(chunk["weight"].to_numpy(), q),
                "state": np.repeat(chunk["state"].astype(str).to_numpy(), q),
            }
        )
        commit_part(frame, folder)


def run_score(folder: Path, boot: int, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``personasim score`` subprocess (measured by a
    fresh parent, so an earlier run's peak does not hide this one's)."""
    command = [
        sys.executable,
        "-m",
        "personasim.cli.main",
        "score",
        "--responses",
        str(folder),
        "--truth",
        "elections",
        "--n-boot",
        str(boot),
        "--out",
        str(out),
    ]
    script = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, *command], check=True, capture_output=True, text=True
    )
    return time.perf_counter() - started, int(done.stdout.split()[-1]) / 1024


def main() -> None:
    """Build each size and score it; print seconds and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", default="1000000,10000000")
    parser.add_argument("--boot", default="0,1000")
    args = parser.parse_args()
    for answers in (int(a) for a in args.answers.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "responses"
            build(answers, folder)
            for boot in (int(b) for b in args.boot.split(",")):
                seconds, peak = run_score(folder, boot, Path(tmp) / "scores.parquet")
                print(
                    f"score {answers:>12,} answers, --n-boot {boot:>3}: {seconds:7.1f} s, "
                    f"peak RSS {peak:,.0f} MB"
                )


if __name__ == "__main__":
    main()
