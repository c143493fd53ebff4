"""The public Python API (``personasim.load_study``, ``run_study``, ``open_run``, tables): the
README's "From Python" snippet runs as written on a one-person study, and ``import personasim``
loads nothing heavy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import personasim
from personasim.core.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"

#: One state, one person, the meta tier (no persona generation), one election question.
ONE_PERSON = """name = "api"

[population]
states = ["VT"]
per_state = 1
seed = 3

[personas]
tiers = ["meta"]

[score]
n_boot = 20

[[surveys]]
id = "elections"
source = "elections"
max_questions = 1
"""


def _snippet() -> str:
    """The README's "From Python" code block."""
    section = README.read_text(encoding="utf-8").split("## From Python", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_import_personasim_is_cheap_and_names_load_on_use() -> None:
    probe = (
        "import sys, personasim\nprint(sorted(m for m in ('pandas', 'pyarrow', 'pydantic', "
        "'numpy', 'click') if m in sys.modules))\nprint(personasim.load_study.__module__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "personasim.spec.study"]
    assert {"load_study", "run_study", "open_run", "RunResult"} <= set(dir(personasim))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        personasim.nope  # noqa: B018


@pytest.mark.slow
def test_the_readme_snippet_runs_a_study_and_reads_its_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    study = tmp_path / "api.toml"
    study.write_text(ONE_PERSON, encoding="utf-8")
    code = _snippet()
    assert code.count('"tiny"') == 1 and code.count('"runs/tiny"') == 2
    monkeypatch.chdir(tmp_path)  # the snippet's run folder lands in tmp_path
    namespace: dict[str, object] = {}
    exec(code.replace('"tiny"', repr(str(study))), namespace)  # noqa: S102 - our own README
    result, again = namespace["result"], namespace["again"]
    assert isinstance(result, personasim.RunResult) and isinstance(again, personasim.RunResult)
    assert result.out_dir == Path("runs/tiny") and (tmp_path / "runs/tiny/report.html").is_file()
    names = result.table_names()
    assert {
        "population",
        "personas",
        "responses_elections",
        "scores_elections",
        "summary_elections",
    } <= set(names)
    assert again.table_names() == names and again.spec == result.spec
    assert again.spec.name == "api" and again.manifest["models"]
    population = again.table("population")
    assert len(population) == 1 and set(population["state"]) == {"VT"}
    scores = namespace["scores"]
    assert isinstance(scores, pd.DataFrame)
    pd.testing.assert_frame_equal(scores, again.table("scores_elections"))
    assert set(scores["tier"]) == {"meta"} and set(scores["group"]) >= {"VT"}
    assert re.search(r"\n\d+ +VT +meta +0\.\d+", capsys.readouterr().out)  # the printed row
    with pytest.raises(ConfigError, match="has no table 'scores'") as error:
        again.table("scores")
    assert "scores_elections" in error.value.hint
    with pytest.raises(ConfigError, match="not a run directory"):
        personasim.open_run(tmp_path)
