"""Issue 20 §3/§5: a full disk in the middle of a command is one line, exit 2, and replaces no
existing file (``DiskFullStandIn``: the real full disk cannot be made on every CI machine)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from personasim.cli.main import main
from tests.support.disk_full import disk_full_at_write, read_only_folder

POOL = pd.DataFrame(
    {
        "person_id": [1, 2, 3, 4],
        "sex": ["Male", "Female", "Female", "Male"],
        "age": [30, 40, 50, 60],
        "state": ["VT"] * 4,
    }
)
RESPONSES = pd.DataFrame(
    {
        "person_id": [1, 2, 3, 4],
        "tier": ["meta"] * 4,
        "generator": ["template"] * 4,
        "simulator": ["llamacpp"] * 4,
        "question_id": ["president_2020"] * 4,
        "estimator": ["logprobs"] * 4,
        "probs": [[0.6, 0.4], [0.3, 0.7], [0.5, 0.5], [1.0, 0.0]],
    }
)


def _folder(tmp_path: Path) -> dict[Path, bytes]:
    POOL.to_parquet(tmp_path / "pool.parquet", index=False)
    RESPONSES.to_parquet(tmp_path / "responses.parquet", index=False)
    (tmp_path / "targets.csv").write_text("variable,level,share\nsex,Male,0.4\nsex,Female,0.6\n")
    for name in ("w.parquet", "d.parquet", "c.parquet"):
        (tmp_path / name).write_bytes(f"earlier {name}".encode())
    return {p: p.read_bytes() for p in tmp_path.iterdir()}


CALIBRATE = [
    "calibrate",
    "--personas",
    "{d}/pool.parquet",
    "--targets",
    "csv:{d}/targets.csv",
    "--out",
    "{d}/w.parquet",
    "--diagnostics",
    "{d}/d.parquet",
]
CROSSTAB = [
    "crosstab",
    "--responses",
    "{d}/responses.parquet",
    "--persons",
    "{d}/pool.parquet",
    "--by",
    "sex",
    "--n-boot",
    "0",
    "--out",
    "{d}/c.parquet",
]


@pytest.mark.parametrize(
    ("args", "at"),
    [(CALIBRATE, 1), (CALIBRATE, 2), (CROSSTAB, 1)],
    ids=["calibrate-first-write", "calibrate-second-write", "crosstab"],
)
def test_disk_full_is_one_line_and_keeps_every_file(
    args: list[str],
    at: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.delenv("PERSONASIM_TRACEBACK", raising=False)
    before = _folder(tmp_path)
    with disk_full_at_write(monkeypatch, at) as seen:
        code = main([a.format(d=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert len(seen) >= at, "the stand-in never reached its write"
    lines = [line for line in err.splitlines() if line.startswith("error:")]  # the bar aside
    assert code == 2 and len(lines) == 1 and "No space left on device" in lines[0], err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before  # no .tmp left either


SURVEY = "id: one\nquestions:\n  - id: q\n    text: Tea or coffee?\n    options: [tea, coffee]\n"
"""A one-question survey (the model work of a case stays tiny)."""

STUDY = """
name = "full"
[population]
states = ["VT", "TX"]
per_state = 2
seed = 1
[personas]
tiers = ["meta"]
[score]
n_boot = 0
[executor]
batch_persons = 1
[backends.llamacpp]
spec = "llamacpp"
n_threads = 1
[[surveys]]
id = "elections"
source = "elections"
"""
"""A tiny study: four meta personas, one committed part of answers per person."""


def _one_error_line(code: int, err: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("error:")]  # bars aside
    assert code == 2 and len(lines) == 1 and "No space left on device" in lines[0], err
    assert "Traceback" not in err


def _no_temps(folder: Path) -> None:
    assert [p for p in folder.rglob("*") if p.name.endswith(".tmp")] == []


@pytest.mark.slow
def test_disk_full_during_simulate_after_model_work_keeps_every_committed_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("PERSONASIM_TRACEBACK", raising=False)
    POOL.assign(race="White", weight=1.0).to_parquet(tmp_path / "pool.parquet", index=False)
    (tmp_path / "one.yaml").write_text(SURVEY)
    out = tmp_path / "responses"
    args = [
        *["simulate", "--population", str(tmp_path / "pool.parquet")],
        *["--survey", str(tmp_path / "one.yaml"), "--out", str(out), "--batch-persons", "1"],
        *["--no-cache", "-o", "n_threads=1"],
    ]
    with disk_full_at_write(monkeypatch, 3, match="part-") as seen:  # after two parts
        code = main(args)
    assert len(seen) == 3, "the stand-in never reached its write"
    _one_error_line(code, capsys.readouterr().err)
    kept = pd.read_parquet(out)
    assert sorted(kept["person_id"]) == [1, 2] and len(list(out.glob("part-*"))) == 2
    _no_temps(tmp_path)
    monkeypatch.undo()
    assert main(args) == 0  # the rerun makes only the two persons the full disk stopped
    assert "2 rows written, 2 already present" in capsys.readouterr().out
    assert sorted(pd.read_parquet(out)["person_id"]) == [1, 2, 3, 4]


@pytest.mark.slow
def test_disk_full_during_run_keeps_every_committed_part_and_the_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("PERSONASIM_TRACEBACK", raising=False)
    (tmp_path / "study.toml").write_text(STUDY)
    run = tmp_path / "run"
    args = ["run", str(tmp_path / "study.toml"), "--out", str(run)]
    with disk_full_at_write(monkeypatch, 2, match="responses_elections/.part-") as seen:
        code = main(args)
    assert len(seen) == 2, "the stand-in never reached its write"
    _one_error_line(code, capsys.readouterr().err)
    parts = run / "parts" / "responses_elections"
    committed = pd.read_parquet(parts)
    assert committed["person_id"].nunique() == 1 and len(list(parts.glob("part-*"))) == 1
    _no_temps(tmp_path)
    monkeypatch.undo()
    assert main(args) == 0
    responses = pd.read_parquet(run / "responses_elections.parquet")
    assert responses["person_id"].nunique() == 4
    first = responses.merge(committed, on=["person_id", "question_id"], suffixes=("", "_kept"))
    assert len(first) == len(committed)  # the rows committed before the full disk are kept
    assert (first["probs"].map(list) == first["probs_kept"].map(list)).all()


@pytest.mark.slow
def test_a_read_only_parts_folder_inside_a_run_is_one_line_and_keeps_the_earlier_stages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("PERSONASIM_TRACEBACK", raising=False)
    (tmp_path / "study.toml").write_text(STUDY)
    run = tmp_path / "run"
    with read_only_folder(monkeypatch, run / "parts" / "responses_elections") as refused:
        code = main(["run", str(tmp_path / "study.toml"), "--out", str(run)])
    assert refused, "the stand-in never refused a write"
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Read-only file system" in lines[0], err
    assert "Traceback" not in err
    assert len(pd.read_parquet(run / "personas.parquet")) == 4  # the stages before it kept
    _no_temps(tmp_path)
