"""The stage contract: staleness by input and spec hashes (never mtime), zero model calls on a
rerun, one-line errors for a truncated table, and a study whose generator (llama.cpp with its own
n_ctx) and simulator (an OpenAI-compatible endpoint) are different backends."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from personasim.core.errors import DataError
from personasim.core.tables import read_table, write_atomic
from personasim.pipeline.contract import LEDGER, read_ledger
from personasim.pipeline.driver import STAGE_LIST, RunResult, run_study
from personasim.spec.study import StudySpec, study_from_dict

SMALL = {
    "name": "small",
    "population": {"states": ["VT"], "per_state": 2, "seed": 3},
    "personas": {"tiers": ["meta"], "generators": ["embedded"]},
    "simulate": {"simulators": ["embedded"]},
    "score": {"n_boot": 10},
    "backends": {"embedded": {"spec": "llamacpp", "n_ctx": 4096}},
    "surveys": [{"id": "votes", "source": "elections", "max_questions": 1}],
}


def _with(section: str, **values: object) -> StudySpec:
    raw = {**SMALL, section: {**SMALL[section], **values}}  # type: ignore[dict-item]
    return study_from_dict(raw)


def _reused(result: RunResult) -> dict[str, bool]:
    return {s.stage: s.reused for s in result.stages}


def test_truncated_parquet_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "personas.parquet"
    write_atomic(pd.DataFrame({"person_id": range(100), "text": ["x" * 40] * 100}), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError) as caught:
        read_table(path, "personas table")
    line = caught.value.one_line()
    assert line.startswith(f"{path}: cannot read personas table (") and "\n" not in line


def test_every_stage_declares_its_contract() -> None:
    spec = study_from_dict(SMALL)
    assert [s.name for s in STAGE_LIST] == [
        "population",
        "personas",
        "simulate",
        "score",
        "diagnostics",
        "testbed",
        "report",
    ]
    by_name = {s.name: s for s in STAGE_LIST}
    assert by_name["simulate"].inputs(spec) == ["personas.parquet"]
    assert by_name["simulate"].outputs(spec) == ["responses_votes.parquet"]
    assert by_name["score"].outputs(spec) == [
        "scores_votes.parquet",
        "summary_votes.parquet",
        "cross_model_votes.parquet",
        "crosstab_votes.parquet",
    ]
    assert "raking.parquet" in by_name["population"].outputs(spec)
    assert by_name["personas"].keys == ("person_id", "tier", "generator")
    assert by_name["testbed"].outputs(spec) == [] == by_name["testbed"].inputs(spec)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> RunResult:
    """A meta-tier study on the real embedded model: 2 persons x 1 question."""
    return run_study(study_from_dict(SMALL), tmp_path_factory.mktemp("stages") / "run")


@pytest.mark.slow
def test_rerun_reuses_every_stage_without_model_calls(small_run: RunResult) -> None:
    assert small_run.model_calls > 0
    again = run_study(study_from_dict(SMALL), small_run.out_dir)
    assert again.model_calls == 0
    reused = _reused(again)
    assert all(reused[s] for s in ("population", "personas", "simulate", "score", "diagnostics"))
    assert set(read_ledger(small_run.out_dir)) == {s.name for s in STAGE_LIST}


@pytest.mark.slow
def test_changed_section_recomputes_only_downstream(small_run: RunResult) -> None:
    run = small_run.out_dir
    before = read_table(run / "scores_votes.parquet")
    changed = run_study(_with("score", n_boot=4), run)
    reused = _reused(changed)
    assert changed.model_calls == 0
    assert reused["population"] and reused["personas"] and reused["simulate"]
    assert not reused["score"] and reused["diagnostics"]
    after = read_table(run / "scores_votes.parquet")
    assert len(after) == len(before)
    titled = run_study(
        _with("score", n_boot=4).model_copy(
            update={"report": _with("score").report.model_copy(update={"title": "Retitled"})}
        ),
        run,
    )
    assert all(v for k, v in _reused(titled).items() if k != "report")
    assert "Retitled" in titled.report_path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_changed_input_recomputes_downstream_and_mtime_is_ignored(
    small_run: RunResult, tmp_path: Path
) -> None:
    run = tmp_path / "copy"
    shutil.copytree(small_run.out_dir, run)
    spec = study_from_dict(SMALL)
    run_study(spec, run)  # settle the ledger on this copy
    responses = run / "responses_votes.parquet"
    os.utime(responses, (1, 1))  # an old mtime changes nothing
    os.utime(run / "scores_votes.parquet", (2_000_000_000, 2_000_000_000))
    assert all(v for k, v in _reused(run_study(spec, run)).items() if k != "report")
    population = read_table(run / "population.parquet")
    population["weight"] = population["weight"] * 2
    write_atomic(population, run / "population.parquet")  # an edited input
    result = run_study(spec, run)
    reused = _reused(result)
    assert reused["population"]  # its own inputs and section did not change
    assert not reused["personas"] and not reused["score"]
    assert result.model_calls == 0  # the same prompts: the cache answers
    assert (read_table(run / "personas.parquet")["weight"] == population["weight"].iloc[0]).all()


@pytest.mark.slow
def test_truncated_table_in_a_run_is_one_line(small_run: RunResult, tmp_path: Path) -> None:
    run = tmp_path / "broken"
    shutil.copytree(small_run.out_dir, run)
    path = run / "population.parquet"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError) as caught:
        run_study(study_from_dict(SMALL), run)
    assert caught.value.one_line().startswith(f"{path}: cannot read population table")
    assert (run / LEDGER).exists()


@pytest.mark.slow
def test_a_truncated_published_table_is_written_again_from_its_parts(
    small_run: RunResult, tmp_path: Path
) -> None:
    run = tmp_path / "broken"
    shutil.copytree(small_run.out_dir, run)
    run_study(study_from_dict(SMALL), run)  # settle the ledger on this copy
    path = run / "responses_votes.parquet"
    whole = path.read_bytes()
    path.write_bytes(whole[:100])
    again = run_study(study_from_dict(SMALL), run)
    assert again.model_calls == 0 and path.read_bytes() == whole  # the same bytes: same hashes
    assert all(v for k, v in _reused(again).items() if k != "report")


@pytest.mark.slow
def test_a_run_of_the_old_single_file_form_resumes_without_recomputing(
    small_run: RunResult, tmp_path: Path
) -> None:
    """A run directory written before stages committed parts (only ``personas.parquet`` and
    ``responses_<id>.parquet``): its tables seed the parts and are kept byte for byte."""
    run = tmp_path / "old"
    shutil.copytree(small_run.out_dir, run)
    run_study(study_from_dict(SMALL), run)  # settle the ledger on this copy
    shutil.rmtree(run / "parts")
    tables = {
        name: (run / name).read_bytes() for name in ("personas.parquet", "responses_votes.parquet")
    }
    again = run_study(study_from_dict(SMALL), run)
    assert again.model_calls == 0
    assert all(v for k, v in _reused(again).items() if k != "report")
    for name, data in tables.items():
        assert (run / name).read_bytes() == data, name
        assert len(list((run / "parts" / Path(name).stem).glob("part-*.parquet"))) == 1, name


@pytest.mark.slow
def test_llamacpp_generator_with_openai_simulator(llama_server: str, tmp_path: Path) -> None:
    """Also: a password in the endpoint URL reaches no file of the run directory."""
    secret = llama_server.replace("http://", "http://me:hunter2@")
    spec = study_from_dict(
        {
            "name": "mixed",
            "population": {"states": ["VT"], "per_state": 1},
            "personas": {"tiers": ["meta", "objective"], "generators": ["writer"]},
            "simulate": {"simulators": ["server"]},
            "score": {"n_boot": 5},
            "backends": {
                "writer": {"spec": "llamacpp", "n_ctx": 4096},
                "server": {"spec": f"openai:smollm2@{secret}"},
            },
            "surveys": [{"id": "votes", "source": "elections", "max_questions": 1}],
        },
        "mixed.toml",
    )
    result = run_study(spec, tmp_path / "mixed")
    responses = read_table(result.out_dir / "responses_votes.parquet")
    assert set(responses["simulator"]) == {"server"}
    assert set(responses["tier"]) == {"meta", "objective"}
    assert set(read_table(result.out_dir / "personas.parquet")["generator"]) == {"census", "writer"}
    assert result.manifest["models"]["server"]["spec"].startswith("openai:smollm2@")
    assert result.manifest["models"]["writer"]["spec"] == "llamacpp"
    assert run_study(spec, result.out_dir).model_calls == 0
    leaked = [p for p in result.out_dir.rglob("*") if p.is_file() and b"hunter2" in p.read_bytes()]
    assert leaked == [], leaked
    assert "me:***@" in (result.out_dir / "manifest.json").read_text(encoding="utf-8")
    assert "me:***@" in (result.out_dir / "study.toml").read_text(encoding="utf-8")


def test_run_directory_of_the_old_flat_form_is_refused(tmp_path: Path) -> None:
    from personasim.core.errors import ConfigError

    run = tmp_path / "old"
    run.mkdir()
    (run / "study.toml").write_text('name = "small"\nstates = ["VT"]\nper_state = 2\n')
    with pytest.raises(ConfigError) as caught:
        run_study(study_from_dict(SMALL), run)
    line = caught.value.one_line()
    assert "written by another personasim version" in line and "'states' moved to" in line
    assert sorted(p.name for p in run.iterdir()) == ["study.toml"]
