"""The one folder reader (``personasim.core.tables.ParquetTable``): a folder of parts whose column
types differ (an all-null ``error`` column beside text, int beside float) reads as one table in
``read_table``, ``simulate --personas FOLDER`` and ``export``; a true clash is one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from personasim.census import sample_population
from personasim.cli.main import main
from personasim.core.errors import DataError
from personasim.core.tables import read_table
from personasim.personas.meta import meta_personas


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Meta personas of 2 people in two parts: the first with an all-null ``error`` column and
    an int ``income``, the second with text errors and a float ``income`` (as a batch with no
    failure and a later one with failures write them)."""
    personas = meta_personas(sample_population(["VT"], per_state=2, seed=3))
    folder = tmp_path_factory.mktemp("mixed") / "personas"
    folder.mkdir()
    first = personas.iloc[:1].assign(error=None)
    second = personas.iloc[1:].assign(error="backend timed out", income=lambda f: f["income"] + 0.5)
    first.to_parquet(folder / "part-00000.parquet", index=False)
    second.to_parquet(folder / "part-00001.parquet", index=False)
    return folder


def test_read_table_unifies_the_parts(mixed_folder: Path) -> None:
    frame = read_table(mixed_folder, "personas table")
    assert len(frame) == 2
    assert frame["error"].isna().tolist() == [True, False]
    assert frame["error"].iloc[1] == "backend timed out"
    assert frame["income"].dtype == "float64" and frame["income"].iloc[1] % 1 == 0.5
    only = read_table(mixed_folder, "personas table", columns=["person_id", "error"])
    assert list(only.columns) == ["person_id", "error"] and len(only) == 2


def test_export_reads_the_parts_as_one_table(mixed_folder: Path, tmp_path: Path) -> None:
    for fmt in ("hf", "parquet"):
        out = tmp_path / fmt
        assert (
            main(["export", "--personas", str(mixed_folder), "--format", fmt, "--out", str(out)])
            == 0
        )
        back = pd.read_parquet(out / "data" if fmt == "hf" else out / "personas.parquet")
        assert sorted(back["person_id"]) == sorted(read_table(mixed_folder)["person_id"])
        assert back["error"].tolist().count("backend timed out") == 1


@pytest.mark.slow
def test_simulate_reads_a_personas_folder(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "responses"
    assert (
        main(
            [
                "simulate",
                "--personas",
                str(mixed_folder),
                "--survey",
                "elections",
                "--no-cache",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    responses = read_table(out, "responses table")
    assert set(responses["person_id"]) == set(read_table(mixed_folder)["person_id"])


def test_clashing_types_are_one_line_naming_part_and_column(
    mixed_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "clash"
    folder.mkdir()
    frame = read_table(mixed_folder)
    frame.iloc[:1].to_parquet(folder / "part-00000.parquet", index=False)
    frame.iloc[1:].assign(error=[["a"]]).to_parquet(folder / "part-00001.parquet", index=False)
    with pytest.raises(DataError, match=r"part-00001\.parquet: column 'error' is list"):
        read_table(folder, "personas table")
    assert main(["export", "--personas", str(folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "part-00001.parquet: column 'error'" in err[0]
    assert not (tmp_path / "o").exists()


def test_a_write_removes_the_temporary_files_of_dead_writers(tmp_path: Path) -> None:
    """Issue 20 §1: a kill during a write left ``.NAME.PID.tmp`` that no rerun removed."""
    import subprocess
    import sys

    from personasim.core.tables import write_atomic

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = tmp_path / f".w.parquet.{dead}.tmp"
    stale.write_bytes(b"half a table")
    other = tmp_path / ".x.parquet.1.tmp"  # another file's temporary (pid 1 is alive): kept
    other.write_bytes(b"x")
    write_atomic(pd.DataFrame({"a": [1]}), tmp_path / "w.parquet")
    assert not stale.exists() and other.exists()
    assert pd.read_parquet(tmp_path / "w.parquet")["a"].tolist() == [1]
