"""``personasim testbed``: bad input is one line and exit 2 before any model work; prompts and
export run as written; pairs then export on the embedded model through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from personasim.cli.main import main
from personasim.testbed.export_filter import select_pairs
from personasim.testbed.pairs import PairsOptions, make_pairs, read_pairs
from personasim.testbed.prompts import builtin_prompts
from tests.support.scripted import ScriptedStandIn

from .conftest import persona_table


def one_error(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    """Run the CLI, expect exit 2 and one ``error:`` line; return it."""
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture()
def personas_file(tmp_path: Path) -> Path:
    path = tmp_path / "personas.parquet"
    persona_table().to_parquet(path)
    return path


def test_empty_prompt_set_is_one_line(tmp_path, capsys, personas_file):
    empty = tmp_path / "prompts.txt"
    empty.write_text("\n")
    line = one_error(
        capsys,
        [
            "testbed",
            "pairs",
            "--personas",
            str(personas_file),
            "--prompts",
            str(empty),
            "--no-cache",
        ],
    )
    assert "prompt set is empty" in line
    assert "empty" in one_error(capsys, ["testbed", "prompts", "--prompts", str(empty)])


def test_personas_without_the_persona_tier_is_one_line(tmp_path, capsys):
    path = tmp_path / "meta.parquet"
    persona_table(tier="meta").to_parquet(path)
    for command in ("pairs", "loo", "agreement", "eval"):
        line = one_error(capsys, ["testbed", command, "--personas", str(path), "--no-cache"])
        assert "no personas of the 'persona' tier" in line and "--tiers persona" in line


def test_human_labels_are_checked_before_any_model_work(tmp_path, capsys, personas_file):
    humans = tmp_path / "humans.csv"
    humans.write_text("annotator,persona_id,question_id,choice\nh1,p1,weekend,banana\n")
    args = [
        "testbed",
        "agreement",
        "--personas",
        str(personas_file),
        "--humans",
        str(humans),
        "--no-cache",
        "--out",
        str(tmp_path / "agreement"),
    ]
    assert "--humans needs the items the humans saw" in one_error(capsys, args)
    pairs = tmp_path / "pairs.parquet"
    pd.DataFrame(
        [
            {
                "person_id": "p1",
                "prompt_id": "weekend",
                "persona": "- Age: 71",
                "prompt": "Plans?",
                "rejected": "Rest.",
                "chosen": "Church, then rest.",
                "split": "train",
                "ok": True,
            }
        ]
    ).to_parquet(pairs)
    line = one_error(capsys, args + ["--items", f"pairs:{pairs}"])
    assert f"{humans}: row 2: choice 'banana' is not an answer letter" in line
    humans.write_text("annotator,persona_id,question_id,choice\nh1,p7,weekend,A\n")
    assert "unknown persona_id 'p7'" in one_error(capsys, args + ["--items", f"pairs:{pairs}"])
    assert not (tmp_path / "agreement").exists()


def test_prompts_command_curates_and_splits_the_builtin_set(tmp_path, capsys):
    out = tmp_path / "prompts.parquet"
    assert main(["testbed", "prompts", "--out", str(out), "--held-out-share", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "has a question mark" in printed and "skipped" in printed
    table = pq.read_table(out).to_pandas()
    assert len(table) == 65 and (table["split"] == "held_out").sum() == 13


def test_export_command_writes_trl_and_hf(tmp_path, capsys):
    stand_in = ScriptedStandIn(
        generate_script=lambda r, _: "Some words here.",
        choice_script=lambda r, _: {"A": 0.8, "B": 0.2},
    )
    prompts = builtin_prompts().head(2).assign(split=["train", "held_out"])
    pairs = tmp_path / "pairs.parquet"
    make_pairs(
        persona_table(), prompts, stand_in, PairsOptions(per_persona=1, held_out=1), out=pairs
    )
    # the stand-in judge says A in both orders: P(chosen) = 0.5, so no pair is verified
    assert (
        main(
            [
                "testbed",
                "export",
                "--pairs",
                str(pairs),
                "--format",
                "trl",
                "--out",
                str(tmp_path / "trl"),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "testbed",
                "export",
                "--pairs",
                str(pairs),
                "--format",
                "trl",
                "--include-unverified",
                "--persona-in-prompt",
                "none",
                "--out",
                str(tmp_path / "trl"),
            ]
        )
        == 0
    )
    row = json.loads((tmp_path / "trl" / "train.jsonl").read_text().splitlines()[0])
    assert set(row) >= {"prompt", "chosen", "rejected"} and len(row["prompt"]) == 1
    assert (
        main(
            [
                "testbed",
                "export",
                "--pairs",
                str(pairs),
                "--format",
                "hf",
                "--include-unverified",
                "--out",
                str(tmp_path / "hf"),
            ]
        )
        == 0
    )
    assert (tmp_path / "hf" / "data" / "train-00000-of-00001.parquet").exists()
    header = (tmp_path / "hf" / "README.md").read_text().split("---\n")[1]
    card = yaml.safe_load(header)
    assert card["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    assert {s["name"]: s["num_examples"] for s in card["dataset_info"]["splits"]} == {
        "train": 2,
        "held_out": 2,
    }
    assert [f["name"] for f in card["dataset_info"]["features"]][:3] == [
        "prompt",
        "chosen",
        "rejected",
    ]
    capsys.readouterr()


@pytest.mark.slow
def test_pairs_then_export_on_the_embedded_model(tmp_path, capsys, personas_file):
    out = tmp_path / "pairs.parquet"
    args = [
        "testbed",
        "pairs",
        "--personas",
        str(personas_file),
        "--prompts",
        "builtin",
        "--per-persona",
        "1",
        "--held-out",
        "0",
        "--test-share",
        "0",
        "--answer-tokens",
        "32",
        "--critique-tokens",
        "40",
        "--revision-tokens",
        "32",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache.sqlite"),
        "-o",
        "n_ctx=2048",
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "verification_rate" in printed and "position_consistency" in printed
    export = [
        "testbed",
        "export",
        "--pairs",
        str(out),
        "--format",
        "trl",
        "--file-format",
        "parquet",
        "--include-unverified",
        "--out",
        str(tmp_path / "trl"),
    ]
    # the small model often runs into the token caps: those pairs are dropped, and counted
    kept = select_pairs(read_pairs(out), include_unverified=True)
    if kept.kept.empty:
        assert "no pairs to export" in one_error(capsys, export)
        return
    assert main(export) == 0
    assert kept.summary() in capsys.readouterr().out
    table = pq.read_table(tmp_path / "trl" / "train.parquet")
    assert table.num_rows == len(kept.kept)
    assert {"prompt", "chosen", "rejected", "persona_split"} <= set(table.column_names)


def test_an_unknown_eval_mode_is_one_line(capsys, personas_file):
    line = one_error(
        capsys,
        [
            "testbed",
            "eval",
            "--personas",
            str(personas_file),
            "--modes",
            "persona,basline",
            "--no-cache",
        ],
    )
    assert "eval options" in line and "modes" in line


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--by", "sex,religon"], "--by religon: no persona has this attribute"),
        (["--where", "sex"], "--where 'sex': not ATTR=VALUE"),
        (["--where", "sex=Other"], "no persona has this value (hint: sex values: Female, Male)"),
        (["--where", "religon=None"], "did you mean 'religion'"),
        (["--k", "0"], "'--k': 0 is not in the range"),
    ],
)
def test_eval_groups_and_samples_are_checked_before_any_model_work(
    capsys, personas_file, extra, expected
):
    line = one_error(capsys, ["testbed", "eval", "--personas", str(personas_file), *extra])
    assert expected in line


def test_eval_summaries_never_overwrite_an_input(tmp_path, capsys, personas_file):
    prompts = tmp_path / "ev_summary.csv"
    prompts.write_text("text\nWhy do people disagree so much about taxes these days?\n")
    args = ["testbed", "eval", "--personas", str(personas_file), "--prompts", str(prompts)]
    line = one_error(capsys, [*args, "--out", str(tmp_path / "ev.parquet")])
    assert f"{prompts} is the --prompts file" in line
