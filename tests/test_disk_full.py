"""Issue 20 §3/§5: a full disk in the middle of a command is one line, exit 2, and replaces no
existing file (``DiskFullStandIn``: the real full disk cannot be made on every CI machine)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from personasim.cli.main import main
from tests.support.disk_full import disk_full_at_write

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
