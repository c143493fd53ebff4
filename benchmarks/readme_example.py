"""Seconds per command of the README's first example, as written, in a fresh folder with a new
cache (prints them; asserts nothing). Issue 20 §6 wants the whole example in about a minute.

    PYTHONPATH=src .venv/bin/python benchmarks/readme_example.py
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from personasim.cli.main import main  # noqa: E402
from tests.test_readme import readme_commands  # noqa: E402


def run() -> None:
    """Run every command, print its seconds and the total."""
    total = 0.0
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        os.environ["PERSONASIM_CACHE"] = str(Path(folder) / "cache.sqlite")
        for args in readme_commands((ROOT / "README.md").read_text(encoding="utf-8")):
            start = time.perf_counter()
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                code = main(args)
            seconds = time.perf_counter() - start
            total += seconds
            print(f"{seconds:7.1f} s  exit {code}  $P {shlex.join(args)}")
    print(
        f"{total:7.1f} s  in all (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    run()
