"""``personasim run`` with ``[executor] kind = "ray"`` on a real local Ray cluster gives the same
personas, responses and scores as the local run (embedded model, a small study)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (make test installs it)")

pytestmark = pytest.mark.slow

STUDY = """
name = "raystudy"

[population]
states = ["VT", "TX"]
per_state = 2
seed = 1

[personas]
tiers = ["meta", "descriptive"]
generators = ["embedded"]

[simulate]
simulators = ["embedded"]

[score]
n_boot = 20

[backends.embedded]
spec = "llamacpp"
n_threads = 1

[[surveys]]
id = "elections"
source = "elections"
max_questions = 2
"""


def _table(path: Path, key: list[str]) -> pd.DataFrame:
    frame = pd.read_parquet(path).drop(columns=["seconds"], errors="ignore")
    return frame.sort_values(key).reset_index(drop=True)


def test_run_on_ray_equals_the_local_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from personasim.cli import main

    study = tmp_path / "study.toml"
    study.write_text(STUDY)
    ray_study = tmp_path / "ray.toml"
    ray_study.write_text(STUDY + '\n[executor]\nkind = "ray"\nbatch_persons = 2\n')
    assert main(["run", str(study), "--out", str(tmp_path / "local")]) == 0
    capsys.readouterr()
    assert main(["run", str(ray_study), "--out", str(tmp_path / "ray")]) == 0
    calls = re.search(r"model calls (\d+), cache hits", capsys.readouterr().out)
    assert calls and int(calls.group(1)) > 0, "the Ray actors' model calls were not counted"
    keys = {
        "personas.parquet": ["person_id", "tier", "generator"],
        "responses_elections.parquet": ["person_id", "tier", "question_id"],
        "scores_elections.parquet": ["attribute", "group", "question_id", "tier", "metric"],
    }
    for name, key in keys.items():
        local, remote = (_table(tmp_path / run / name, key) for run in ("local", "ray"))
        pd.testing.assert_frame_equal(local, remote, obj=name)
    assert len(list((tmp_path / "ray" / "parts" / "responses_elections").glob("part-*"))) == 2
    # the CLI flag overrides the spec: a rerun on the local executor makes no model call
    assert main(["run", str(ray_study), "--out", str(tmp_path / "ray"), "--executor",
                 "local"]) == 0  # fmt: skip
    assert "model calls 0, cache hits" in capsys.readouterr().out
