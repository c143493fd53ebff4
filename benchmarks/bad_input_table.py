"""Issue 20's table: how the bad inputs of ``tests/test_bad_input.py`` end (prints counts).

Each case runs in-process in a fresh temporary folder and is classed by its first failure:
``file lost`` (a file that existed before changed or vanished), ``silent wrong`` (exit 0),
``traceback`` (an exception escaped, or "Traceback" on stderr), ``multi-line`` (more than one
stderr line or not ``error: ``), else ``clean``.

    PYTHONPATH=src .venv/bin/python benchmarks/bad_input_table.py [--all] [-v]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from personasim.cli.main import main  # noqa: E402
from tests.support.local_server import free_port  # noqa: E402
from tests.test_bad_input import CASES, CASES_20, ENV, _argv, _prepared, _snapshot  # noqa: E402

KINDS = ("clean", "multi-line", "traceback", "silent wrong", "file lost")


def classify(args: list[str]) -> tuple[str, str]:
    """Run one case in a fresh folder; its kind and its stderr."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        _prepared(folder)
        before = _snapshot(folder)
        err = io.StringIO()
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(_argv(args, folder, free_port()))
        except BaseException as error:  # noqa: BLE001 - an escaped exception is the finding
            code, err = -1, io.StringIO(f"Traceback: {type(error).__name__}: {error}")
        finally:
            os.chdir(cwd)
        text = err.getvalue()
        lines = text.strip().splitlines()
        after = _snapshot(folder)
        guard = folder / "out.parquet"  # the output a case that ends in exit 0 may rewrite
        changed = [p for p, data in before.items() if after.get(p) != data]
        if [p for p in changed if code != 0 or p != guard]:
            return "file lost", text
        if code == 0:
            return "silent wrong", text
        if code == -1 or "Traceback" in text:
            return "traceback", text
        if code != 2 or len(lines) != 1 or not lines[0].startswith("error: "):
            return "multi-line", text
        return "clean", text


def main_table() -> None:
    """Print one line per case (with -v) and the counts."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--all", action="store_true", help="every case, not only issue 20's")
    parser.add_argument("-v", action="store_true", help="one line per case")
    options = parser.parse_args()
    os.environ.update(ENV)
    counts: Counter = Counter()
    for case, args in CASES if options.all else CASES_20:
        kind, text = classify(args)
        counts[kind] += 1
        if options.v:
            last = text.strip().splitlines()[-1:] or [""]
            print(f"{kind:12} {case:40} {last[0][:110]}")
    print(
        f"{len(CASES if options.all else CASES_20)} cases: "
        + " / ".join(f"{k} {counts[k]}" for k in KINDS)
    )


if __name__ == "__main__":
    main_table()
