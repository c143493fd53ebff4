"""The ``personasim`` command line: entry point, one-line errors, the smoke run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from personasim import __version__
from personasim.cli import main

ENTRY = Path(sys.executable).parent / "personasim"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENTRY), *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_help_and_version() -> None:
    helped = run_cli("--help")
    assert helped.returncode == 0 and "smoke" in helped.stdout and "llm" in helped.stdout
    versioned = run_cli("--version")
    assert versioned.returncode == 0 and __version__ in versioned.stdout


def test_unknown_backend_is_one_line_and_exit_2() -> None:
    failed = run_cli("smoke", "--model", "lamacpp", "--no-cache")
    assert failed.returncode == 2
    assert failed.stderr.strip() == (
        "error: unknown backend 'lamacpp' (hint: did you mean 'llamacpp'?)")
    assert "Traceback" not in failed.stderr


def test_bad_schema_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text("{not json")
    assert main(["llm", "chat", "hi", "--schema", str(schema), "--no-cache"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not JSON" in err[0] and str(schema) in err[0]


def test_traceback_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from personasim.errors import ConfigError

    monkeypatch.setenv("PERSONASIM_TRACEBACK", "1")
    with pytest.raises(ConfigError):
        main(["smoke", "--model", "nope", "--no-cache"])


@pytest.mark.slow
def test_smoke_runs_then_reruns_from_cache(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache = str(tmp_path / "cache.sqlite")
    assert main(["smoke", "--cache", cache]) == 0
    first = capsys.readouterr().out
    assert "[valid]" in first and "valid_mass=" in first and "model_calls=3" in first
    assert main(["smoke", "--cache", cache]) == 0
    second = capsys.readouterr().out
    assert "model_calls=0 cache_hits=3" in second
    assert first.splitlines()[1:4] == second.splitlines()[1:4]


@pytest.mark.slow
def test_choice_command(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code = main(["llm", "choice", "Do you like tea?", "-a", "Yes", "-a", "No",
                 "--cache", str(tmp_path / "c.sqlite")])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[0].startswith("A  ") and lines[-1].startswith("valid_mass")
    assert sum(float(line.split()[1]) for line in lines[:2]) == pytest.approx(1.0, abs=0.002)
