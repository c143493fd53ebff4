"""Study specs: built-in studies, TOML round trip, one-line errors for bad files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from personasim.cli import main
from personasim.errors import ConfigError
from personasim.spec import builtin_study, load_study, study_from_dict


@pytest.mark.parametrize("name", ["default", "tiny"])
def test_builtin_studies_load_and_round_trip(name: str) -> None:
    spec = builtin_study(name)
    assert spec.states and spec.tiers[0] == "meta"
    assert study_from_dict(tomllib.loads(spec.to_toml())) == spec


def test_default_study_covers_the_papers_tiers_and_surveys() -> None:
    spec = builtin_study("default")
    assert {"meta", "objective", "subjective", "descriptive"} <= set(spec.tiers)
    assert set(spec.surveys) == {"elections", "topics"}
    assert spec.truth_for("elections") == "elections" and spec.truth_for("topics") is None


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_key_names_file_field_and_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, 'states = ["VT"]\nper_stat = 2\n')
    with pytest.raises(ConfigError) as caught:
        load_study(path)
    line = caught.value.one_line()
    assert str(path) in line and "per_stat" in line and "did you mean 'per_state'" in line
    assert "\n" not in line


def test_wrong_type_and_nested_unknown_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="field per_state"):
        load_study(_write(tmp_path, 'per_state = "many"\n'))
    with pytest.raises(ConfigError, match="report.sample_persona") as caught:
        load_study(_write(tmp_path, "[report]\nsample_persona = 2\n"))
    assert "did you mean 'sample_personas'" in caught.value.one_line()
    with pytest.raises(ConfigError, match="unknown tier 'vibes'"):
        load_study(_write(tmp_path, 'tiers = ["meta", "vibes"]\n'))


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(_write(tmp_path, "states = [\n"))
    with pytest.raises(ConfigError, match="study file not found"):
        load_study(tmp_path / "nope.toml")


def test_cli_run_with_bad_study_prints_one_line(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, "per_state = 0\n")
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "per_state" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
