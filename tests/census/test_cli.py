"""The ``personasim population`` command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from personasim.cli.main import main


def test_population_writes_parquet_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "population.parquet"
    code = main(
        ["population", "--states", "VT,DC", "--per-state", "50", "--seed", "7", "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 100 and set(frame["state"]) == {"VT", "DC"}
    assert "ESS" in captured.err and "national targets" in captured.err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--states", "CX"], "did you mean"),
        (["--states", "VT", "--per-state", "0"], "--per-state"),
        ([], "no states given"),
        (["--states", "VT", "--pums", "/nonexistent/psam_p50.csv"], "does not exist"),
    ],
)
def test_bad_input_is_one_line(
    args: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["population", *args, "--out", str(tmp_path / "p.parquet"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_check_prints_fidelity(capsys: pytest.CaptureFixture) -> None:
    code = main(
        [
            "population",
            "check",
            "--states",
            "VT",
            "--per-state",
            "2000",
            "--no-loso",
            "--no-throughput",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "mean TVD" in out and "paper 35.7%" in out
