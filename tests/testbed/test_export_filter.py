"""Persona splits beside prompt splits, and what an export keeps: verified pairs only by
default, never a truncated answer or one that repeats prompt text, with the drops counted."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from personasim.cli.main import main
from personasim.export.trl import trl_rows
from personasim.testbed.export_filter import leaks, select_pairs, template_shingles
from personasim.testbed.pairs import PairsOptions, make_pairs
from personasim.testbed.persona_split import split_personas
from tests.support.scripted import ScriptedStandIn

from .conftest import persona_table
from .test_pairs import two_prompts

GOOD = "Start with a weekly budget and a small emergency fund."


def pair(i: int, **changes) -> dict:
    row = {
        "person_id": f"p{i}",
        "prompt_id": f"q{i}",
        "generator": "g",
        "split": "train",
        "persona_split": "train",
        "topic": "t",
        "prompt": "How should I save?",
        "persona": "- Age: 40",
        "rejected": "Save some money.",
        "chosen": GOOD,
        "ok": True,
        "verified": True,
        "p_chosen": 0.8,
        "rejected_truncated": False,
        "chosen_truncated": False,
    }
    return {**row, **changes}


PAIRS = pd.DataFrame(
    [
        pair(0),
        pair(1),
        pair(2, ok=False, verified=False),  # failed
        pair(3, verified=False, p_chosen=0.3),  # unverified
        pair(4, chosen_truncated=True),  # truncated
        pair(5, verified=False, rejected_truncated=True),  # unverified first
        pair(6, chosen="EVALUATION: it is fine. " + GOOD),  # a section label
        pair(7, chosen="Rewrite the answer so that it follows the critique while still."),
    ]
)


def test_drops_are_counted_by_their_first_reason():
    kept = select_pairs(PAIRS)
    assert kept.kept["person_id"].tolist() == ["p0", "p1"]
    assert dict(kept.dropped) == {"failed": 1, "unverified": 2, "truncated": 1, "template leak": 2}
    assert kept.summary() == (
        "kept 2 pairs, dropped 6 (1 failed, 2 unverified, 1 truncated, 2 template leak)"
    )
    loose = select_pairs(PAIRS, include_unverified=True)
    assert loose.kept["person_id"].tolist() == ["p0", "p1", "p3"]
    assert dict(loose.dropped) == {"failed": 1, "truncated": 2, "template leak": 2}
    assert len(select_pairs(PAIRS, include_unverified=True, drop_flawed=False).kept) == 7
    assert [r["person_id"] for r in trl_rows(PAIRS)] == ["p0", "p1"]


def test_leak_detection_needs_a_label_or_six_template_words():
    shingles = template_shingles()
    assert leaks("QUESTION: how? ANSWER: so.", shingles)
    assert leaks("You are role-playing the person described below and more", shingles)
    assert not leaks(GOOD, shingles)
    assert not leaks("Think about what you value and answer the question honestly.", shingles)


def test_persona_split_is_seeded_exact_and_order_free():
    ids = [f"p{i}" for i in range(10)]
    split = split_personas(ids, 0.3, seed=1)
    assert sum(v == "test" for v in split.values()) == 3
    assert split == split_personas(ids[::-1], 0.3, seed=1)
    by_seed = {tuple(sorted(split_personas(ids, 0.3, seed=s).items())) for s in range(5)}
    assert len(by_seed) > 1  # the seed moves the split
    assert set(split_personas(ids, 0.0).values()) == {"train"}


def test_pairs_carry_both_splits_and_the_export_keeps_them(tmp_path, capsys):
    stand_in = ScriptedStandIn(
        generate_script=lambda r, _: "A plain answer.",
        choice_script=lambda r, _: {"A": 0.9, "B": 0.1},
    )
    options = PairsOptions(per_persona=1, held_out=1, test_share=0.0, persona_test_share=0.5)
    pairs = make_pairs(persona_table(), two_prompts(), stand_in, options).pairs
    assert sorted(pairs.groupby("person_id")["persona_split"].first()) == ["test", "train"]
    assert set(pairs["split"]) == {"train", "held_out"}
    path = tmp_path / "pairs.parquet"
    pairs.to_parquet(path)
    # the stand-in judge always says A: P(chosen) = 0.5 over both orders, never verified
    assert main(["testbed", "export", "--pairs", str(path), "--out", str(tmp_path / "e")]) == 2
    assert "--include-unverified" in capsys.readouterr().err
    assert (
        main(
            [
                "testbed",
                "export",
                "--pairs",
                str(path),
                "--include-unverified",
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    assert "kept 4 pairs, dropped 0" in capsys.readouterr().out
    row = json.loads((tmp_path / "e" / "train.jsonl").read_text().splitlines()[0])
    assert row["persona_split"] in ("train", "test") and row["split"] == "train"


@pytest.mark.parametrize("share", [-0.1, 1.0])
def test_bad_persona_share_is_refused(share):
    with pytest.raises(ValueError):
        split_personas(["a"], share)
