"""``personasim export``: Hugging Face folders, Parquet and JSONL, loaded back with pyarrow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from personasim.census import sample_population
from personasim.cli.main import main
from personasim.core.errors import ConfigError, DataError
from personasim.export.hf import write_hf_folder
from personasim.export.tables import export
from personasim.personas.generate import generate_personas
from personasim.personas.meta import meta_personas
from personasim.simulate.plan import SimulateOptions
from personasim.simulate.run import simulate
from personasim.survey.loaders import builtin_survey

SHARD = re.compile(r"^personas-(\d{5})-of-(\d{5})\.parquet$")


@pytest.fixture(scope="module")
def personas_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Meta personas of 3 x 150 census-drawn people (no model needed), as a Parquet file."""
    population = sample_population(["VT", "TX", "OH"], per_state=150, seed=5)
    path = tmp_path_factory.mktemp("personas") / "personas.parquet"
    generate_personas(population, tiers=["meta"]).to_parquet(path, index=False)
    return path


def _norm(value: object) -> object:
    """Comparable form of a cell: arrays as lists, every missing value as None."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return None if pd.isna(value) else value


def _same_rows(exported: pd.DataFrame, source: pd.DataFrame, key: list[str]) -> None:
    """Same row count and, on a sample of rows, the same values in every column."""
    assert len(exported) == len(source)
    assert list(exported.columns) == list(source.columns)
    left = exported.sort_values(key).reset_index(drop=True)
    right = source.sort_values(key).reset_index(drop=True)
    picks = sorted({0, len(left) // 3, len(left) // 2, len(left) - 1})
    for column in source.columns:
        got = [_norm(v) for v in left.loc[picks, column]]
        want = [_norm(v) for v in right.loc[picks, column]]
        assert got == want, column


def test_hf_folder_shards_card_and_round_trip(personas_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "hf"
    report = export(personas_file, out, "hf", max_shard_bytes=60_000, batch_rows=100)
    shards = sorted(p.name for p in (out / "data").iterdir())
    assert len(shards) > 1 and all(SHARD.match(name) for name in shards)
    assert {SHARD.match(n).group(2) for n in shards} == {f"{len(shards):05d}"}
    assert [int(SHARD.match(n).group(1)) for n in shards] == list(range(len(shards)))
    for name in shards:  # bounded: a shard holds at most one batch beyond the bound
        assert pq.read_metadata(out / "data" / name).num_rows <= 2 * 100
    source = pd.read_parquet(personas_file)
    back = ds.dataset(out / "data", format="parquet").to_table().to_pandas()
    _same_rows(back, source, ["person_id", "tier"])
    assert report.rows == {"personas": 450}
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "config_name: personas" in card
    assert "path: data/personas-*.parquet" in card and "personas are synthetic" in card
    for state in ("VT", "TX", "OH"):
        assert f"| {state} | 150 |" in card
    assert "| meta / census | 450 |" in card and "| `text` |" in card
    assert "ACS" in card and "pums2018/acs2023" in card and "Seeds: 0" in card
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_single_file_formats_round_trip(personas_file: Path, tmp_path: Path, fmt: str) -> None:
    report = export(personas_file, tmp_path / "out", fmt, batch_rows=64)
    path = tmp_path / "out" / f"personas.{fmt}"
    assert report.rows == {"personas": 450}
    source = pd.read_parquet(personas_file)
    if fmt == "parquet":
        back = pd.read_parquet(path)
    else:
        lines = path.read_text().splitlines()
        back = pd.DataFrame([json.loads(line) for line in lines])[list(source.columns)]
        assert len(lines) == 450
        for column in ("n_contradictions", "checks", "rejections", "raw", "error"):
            back[column] = back[column].astype(source[column].dtype)
    _same_rows(back, source, ["person_id", "tier"])


def test_folder_of_parts_is_read_like_one_table(personas_file: Path, tmp_path: Path) -> None:
    source = pd.read_parquet(personas_file)
    parts = tmp_path / "personas"
    parts.mkdir()
    source.iloc[:200].to_parquet(parts / "part-00000.parquet", index=False)
    source.iloc[200:].to_parquet(parts / "part-00001.parquet", index=False)
    (parts / ".part-00002.parquet.123.tmp").write_bytes(b"half-written")  # ignored
    export(parts, tmp_path / "hf", "hf")
    back = pd.read_parquet(tmp_path / "hf" / "data")
    assert len(back) == len(source) and set(back["person_id"]) == set(source["person_id"])


def test_bad_inputs_and_occupied_output_are_one_line(
    personas_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(DataError, match="file not found"):
        export(tmp_path / "nope.parquet", tmp_path / "o")
    population = tmp_path / "population.parquet"
    pd.DataFrame({"person_id": [1], "age": [30]}).to_parquet(population)
    with pytest.raises(DataError, match="not a personas table"):
        export(population, tmp_path / "o")
    with pytest.raises(ConfigError, match="unknown export format"):
        export(personas_file, tmp_path / "o", "hugging")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    assert main(["export", "--personas", str(personas_file), "--out", str(occupied)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (occupied / "keep.txt").read_text() == "mine"
    assert (
        main(["export", "--personas", str(personas_file), "--out", str(occupied), "--overwrite"])
        == 0
    )
    assert not (occupied / "keep.txt").exists() and (occupied / "README.md").is_file()


def test_a_failing_stream_leaves_no_folder(tmp_path: Path) -> None:
    import pyarrow as pa

    def batches():
        yield pa.record_batch({"x": [1, 2]})
        raise DataError("the input broke")

    with pytest.raises(DataError):
        write_hf_folder({"t": batches()}, tmp_path / "out", lambda infos: "card")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_responses_exported_beside_personas(embedded, tmp_path: Path) -> None:
    population = pd.DataFrame(
        {
            "person_id": [1, 2],
            "state": ["TX", "VT"],
            "weight": [1.0, 1.0],
            "age": [70, 25],
            "sex": ["Male", "Female"],
            "race": ["White", "Asian"],
        }
    )
    personas = meta_personas(population)
    survey = builtin_survey("elections")
    responses = simulate(personas, survey, embedded, SimulateOptions()).responses
    personas.to_parquet(tmp_path / "personas.parquet", index=False)
    responses.to_parquet(tmp_path / "responses.parquet", index=False)
    assert (
        main(
            [
                "export",
                "--personas",
                str(tmp_path / "personas.parquet"),
                "--responses",
                str(tmp_path / "responses.parquet"),
                "--out",
                str(tmp_path / "hf"),
            ]
        )
        == 0
    )
    back = pd.read_parquet(tmp_path / "hf" / "data" / "responses-00000-of-00001.parquet")
    _same_rows(back, responses, ["person_id", "question_id"])
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "config_name: responses" in card and f"meta / {embedded.display_name}" in card


def test_shards_bounded_by_rows_too(tmp_path: Path) -> None:
    import pyarrow as pa

    batches = [pa.record_batch({"x": list(range(5))}), pa.record_batch({"x": [5, 6]})]
    infos = write_hf_folder(
        {"train": batches}, tmp_path / "out", lambda i: "card", max_shard_rows=3
    )
    names = [p.name for p in infos["train"].shards]
    assert names == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    back = ds.dataset(tmp_path / "out" / "data", format="parquet").to_table()
    assert sorted(back.column("x").to_pylist()) == list(range(7))
    # batches are sliced to the bound, never merged: 5 rows -> 3 + 2, then 2 more
    assert [pq.read_metadata(tmp_path / "out" / p).num_rows for p in infos["train"].shards] == [
        3,
        2,
        2,
    ]
