"""The README's first example runs as written (issue 20 §6): its ``bash`` block that sets
``P=.../personasim`` is extracted and every ``$P ...`` line runs in process through
:func:`personasim.cli.main.main`, in order, in a fresh folder, on the embedded model.

So the README cannot drift from the CLI: a renamed option, a removed command or a first example
that fails shows here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from personasim.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands(text: str) -> list[list[str]]:
    """The ``$P`` command lines of the README's bash blocks that define ``P`` (continuation
    lines joined), each as its arguments after ``$P``."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        if not re.search(r"^P=\S*personasim$", block, flags=re.M):
            continue
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["$P"]:
                commands.append(words[1:])
    return commands


def test_the_readme_has_a_first_example() -> None:
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert [c[0] for c in commands] == ["population", "personas", "simulate", "score", "export"]


@pytest.mark.slow
def test_the_readme_first_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERSONASIM_CACHE", str(tmp_path / "cache.sqlite"))  # a new user's cache
    for args in readme_commands(README.read_text(encoding="utf-8")):
        code = main(args)
        err = capsys.readouterr().err
        assert code == 0, f"$P {shlex.join(args)} failed: {err[-500:]}"
    assert (tmp_path / "scores.parquet").is_file()
    assert (tmp_path / "dataset" / "README.md").is_file()
