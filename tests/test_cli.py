"""The ``personasim`` command line: entry point, one-line errors, the smoke run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from personasim import __version__
from personasim.cli.main import main

ENTRY = Path(sys.executable).parent / "personasim"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ENTRY), *args], capture_output=True, text=True, timeout=300, env=env)


def test_help_and_version() -> None:
    helped = run_cli("--help")
    assert helped.returncode == 0 and "smoke" in helped.stdout and "llm" in helped.stdout
    versioned = run_cli("--version")
    assert versioned.returncode == 0 and __version__ in versioned.stdout


#: Modules a command that needs no model, statistics or figures must not import.
HEAVY = ("scipy", "matplotlib", "llama_cpp")


@pytest.mark.parametrize(
    "args", [["--help"], ["population", "--help"], ["population", "check", "--help"]]
)
def test_light_commands_import_no_heavy_module(args: list[str]) -> None:
    probe = (
        "import sys\nfrom personasim.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
        f"finally:\n    print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: " in done.stdout  # the help really ran before the modules were listed
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_help_lists_every_command_as_the_command_describes_itself() -> None:
    from personasim.cli.main import SUBCOMMANDS, cli

    for name, (_, _, summary) in SUBCOMMANDS.items():
        command = cli.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=10**6) == summary, name
    helped = run_cli("--help").stdout
    listed = [
        line.split()[0]
        for line in helped.split("Commands:")[1].splitlines()
        if line.startswith("  ") and not line.startswith("   ")
    ]
    assert listed == sorted(SUBCOMMANDS)
    assert cli.get_command(None, "nope") is None  # type: ignore[arg-type]
    unknown = run_cli("populaton")
    assert unknown.returncode == 2 and "No such command 'populaton'" in unknown.stderr


def test_unknown_backend_is_one_line_and_exit_2() -> None:
    failed = run_cli("smoke", "--model", "lamacpp", "--no-cache")
    assert failed.returncode == 2
    assert failed.stderr.strip() == (
        "error: unknown backend 'lamacpp' (hint: did you mean 'llamacpp'?)"
    )
    assert "Traceback" not in failed.stderr


def test_bad_schema_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text("{not json")
    assert main(["llm", "chat", "hi", "--schema", str(schema), "--no-cache"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not JSON" in err[0] and str(schema) in err[0]


def test_traceback_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from personasim.core.errors import ConfigError

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
    code = main(
        [
            "llm",
            "choice",
            "Do you like tea?",
            "-a",
            "Yes",
            "-a",
            "No",
            "--cache",
            str(tmp_path / "c.sqlite"),
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[0].startswith("A  ") and lines[-1].startswith("valid_mass")
    assert sum(float(line.split()[1]) for line in lines[:2]) == pytest.approx(1.0, abs=0.002)


# --------------------------------------------------------------------------- bad input, one line


def _one_error_line(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run the CLI in process; assert exit 2 and one ``error:`` line, and return it."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _responses(tmp_path: Path) -> Path:
    from personasim.core.tables import write_atomic

    path = tmp_path / "responses.parquet"
    write_atomic(
        pd.DataFrame(
            {
                "person_id": [0],
                "question_id": ["president_2020"],
                "probs": [[0.5, 0.5, 0.0]],
                "tier": ["meta"],
                "generator": ["census"],
                "simulator": ["x"],
                "estimator": ["logprobs"],
            }
        ),
        path,
    )
    return path


def test_score_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = str(tmp_path / "scores.parquet")
    missing = tmp_path / "none.parquet"
    line = _one_error_line(
        capsys, ["score", "--responses", str(missing), "--truth", "elections", "--out", out]
    )
    assert f"{missing}: file not found" in line
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    line = _one_error_line(
        capsys, ["score", "--responses", str(broken), "--truth", "elections", "--out", out]
    )
    assert f"{broken}: cannot read responses table" in line
    line = _one_error_line(
        capsys,
        ["score", "--responses", str(_responses(tmp_path)), "--truth", "electons", "--out", out],
    )
    assert "unknown truth source 'electons'" in line and "did you mean 'elections'" in line
    assert not Path(out).exists()


def test_llm_choice_bad_input(capsys: pytest.CaptureFixture) -> None:
    line = _one_error_line(capsys, ["llm", "choice", "Tea?", "-a", "Yes", "--no-cache"])
    assert "at least two --answer" in line
    line = _one_error_line(
        capsys, ["llm", "choice", "Tea?", "-a", "Yes", "-a", "No", "-m", "openai", "--no-cache"]
    )
    assert "needs a model name" in line


def test_population_check_bad_input(capsys: pytest.CaptureFixture) -> None:
    line = _one_error_line(
        capsys, ["population", "check", "--states", "VT,XQ", "--no-loso", "--no-throughput"]
    )
    assert "unknown state code 'XQ'" in line


@pytest.mark.parametrize("which", ["both", "neither"])
def test_simulate_needs_exactly_one_of_personas_or_population(
    tmp_path: Path, capsys: pytest.CaptureFixture, which: str
) -> None:
    table = str(_responses(tmp_path))
    given = ["--personas", table, "--population", table] if which == "both" else []
    line = _one_error_line(
        capsys,
        [
            "simulate",
            *given,
            "--survey",
            "elections",
            "--no-cache",
            "--out",
            str(tmp_path / "r.parquet"),
        ],
    )
    assert "exactly one of --personas and --population" in line


def test_malformed_backend_option(capsys: pytest.CaptureFixture) -> None:
    line = _one_error_line(
        capsys, ["llm", "choice", "Tea?", "-a", "Yes", "-a", "No", "--no-cache", "-o", "n_ctx"]
    )
    assert "n_ctx" in line
    line = _one_error_line(
        capsys,
        ["llm", "choice", "Tea?", "-a", "Yes", "-a", "No", "--no-cache", "-o", "n_ctxx=4096"],
    )
    assert "did you mean 'n_ctx'" in line


def test_unknown_builtin_study(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = _one_error_line(capsys, ["run", "defualt", "--out", str(tmp_path / "run")])
    assert "unknown built-in study 'defualt'" in line and "did you mean 'default'" in line
    assert not (tmp_path / "run").exists()


def test_split_list_is_the_one_comma_parser() -> None:
    from personasim.cli.main import split_list

    assert split_list("a, b,,c ") == ["a", "b", "c"]
    assert split_list("a,b", "c", None, "") == ["a", "b", "c"]
    assert split_list(None) == []
