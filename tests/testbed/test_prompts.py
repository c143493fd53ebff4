"""Prompt sets: the built-in set, every loader (PRISM's documented conversations.jsonl schema
included), curation counted on the 115 real PRISM prompts, and the stratified split."""

from __future__ import annotations

import csv
import json

import pytest

from personasim.core.errors import DataError
from personasim.testbed.prompts import (
    builtin_prompts,
    curate,
    load_prompts,
    prompt_id,
    split_prompts,
)
from tests.conftest import require_shared_data
from tests.support.scripted import ScriptedStandIn

PRISM_TOPICS = {
    "relationships and family",
    "religion",
    "elections and parties",
    "immigration",
    "abortion",
    "gender and LGBTQ+",
    "climate",
    "inequality and taxes",
    "work",
    "AI",
    "death and ethics",
    "race",
    "war",
}


def test_builtin_set_covers_the_prism_topics_with_open_questions():
    prompts = builtin_prompts()
    assert len(prompts) >= 60
    assert set(prompts["topic"]) == PRISM_TOPICS
    assert prompts["prompt_id"].is_unique
    assert prompts["text"].str.endswith("?").all()
    assert (prompts["text"].str.split().str.len() >= 5).all()


def test_prism_conversations_jsonl_in_its_documented_schema(tmp_path):
    lines = [
        {
            "conversation_id": "c0",
            "user_id": "user0",
            "conversation_type": "controversy guided",
            "opening_prompt": "Should the death penalty be abolished everywhere?",
            "conversation_history": [{"turn": 0, "role": "user", "content": "Should ..."}],
        },
        {
            "conversation_id": "c1",
            "user_id": "user1",
            "conversation_type": "unguided",
            "opening_prompt": "hello",
            "conversation_history": [],
        },
        {
            "conversation_id": "c2",
            "user_id": "user1",
            "conversation_type": "values guided",
            "opening_prompt": "  ",
            "conversation_history": [],
        },
    ]
    path = tmp_path / "conversations.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    prompts = load_prompts(path)
    assert prompts["conversation_id"].tolist() == ["c0", "c1"]  # the blank prompt is dropped
    assert prompts["prompt_id"].tolist() == ["c0", "c1"]
    assert prompts["conversation_type"].tolist() == ["controversy guided", "unguided"]
    assert prompts["topic"].tolist() == ["controversy guided", "unguided"]
    assert set(prompts["source"]) == {"prism"}


def test_own_yaml_jsonl_csv_and_text_loaders(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "prompts:\n  work:\n    - Is overtime ever fair to ask?\n  war:\n    - Can a war be just?\n"
    )
    (tmp_path / "b.yml").write_text(
        "- Is it fine to lie to spare feelings?\n- {text: 'Should zoos exist?', topic: animals}\n"
    )
    (tmp_path / "c.jsonl").write_text('{"text": "Is fame worth it?", "prompt_id": "x1"}\n')
    (tmp_path / "d.csv").write_text("prompt,topic\nShould tipping end?,money\n")
    (tmp_path / "e.txt").write_text("Is homework useful?\n\nShould cities ban cars?\n")
    assert load_prompts(tmp_path / "a.yaml")["topic"].tolist() == ["work", "war"]
    b = load_prompts(tmp_path / "b.yml")
    assert b["topic"].tolist() == ["unlabelled", "animals"]
    assert b["prompt_id"].iloc[0] == prompt_id("Is it fine to lie to spare feelings?")
    assert load_prompts(tmp_path / "c.jsonl")["prompt_id"].tolist() == ["x1"]
    assert load_prompts(tmp_path / "d.csv")["topic"].tolist() == ["money"]
    assert len(load_prompts(tmp_path / "e.txt")) == 2


def test_an_empty_or_unknown_prompt_file_is_one_error(tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        load_prompts(tmp_path / "empty.txt")
    (tmp_path / "bad.csv").write_text("question\nWhy?\n")
    with pytest.raises(DataError, match="no prompt column"):
        load_prompts(tmp_path / "bad.csv")
    (tmp_path / "bad.jsonl").write_text('{"txt": "Why?"}\n')
    with pytest.raises(DataError, match="text"):
        load_prompts(tmp_path / "bad.jsonl")


def _real_prism_prompts() -> tuple[list[str], str]:
    path = require_shared_data() / "prism" / "prism_opening_prompt_examples.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["opening_prompt"] for row in csv.DictReader(handle)], str(path)


def test_curation_counts_on_the_115_real_prism_prompts():
    texts, path = _real_prism_prompts()
    prompts = load_prompts(path)
    curated, report = curate(prompts)
    steps = report.as_frame().set_index("step")
    with_mark = [t for t in texts if "?" in t]
    assert len(texts) == 115 and steps.loc["has a question mark", "before"] == 115
    assert steps.loc["has a question mark", "after"] == len(with_mark) == 70  # SOURCES.md
    assert steps.loc["at least 5 words", "after"] == sum(len(t.split()) >= 5 for t in with_mark)
    assert len(curated) == steps["after"].iloc[-1]
    assert "skipped" in report.summary()


@pytest.mark.slow
def test_controversy_classifier_on_the_real_prompts_with_the_embedded_model(fresh_embedded):
    _, path = _real_prism_prompts()
    # the first 12 real prompts keep the model work small (the full run: docs/testbed.md)
    curated, report = curate(load_prompts(path).head(12), fresh_embedded, threshold=0.5)
    step = report.steps[-1]
    assert step[0].startswith("divisive") and step[1] == report.steps[1][2]
    assert step[2] == len(curated)
    assert (curated["controversy"] >= 0.5).all()
    print(report.summary())  # the counts are data: shown with -s


def test_classifier_with_no_mass_drops_and_counts_the_prompt():
    prompts = builtin_prompts().head(3)
    zero = {"A": 0.0, "B": 0.0}

    def script(request, _seen):
        """Zero mass on the abortion prompt; else "divides" gets 0.9 in either order."""
        text = request.messages[-1].content
        if "abortion" in text:
            return zero
        return {"A": 0.9, "B": 0.1} if "A. Yes" in text else {"A": 0.1, "B": 0.9}

    stand_in = ScriptedStandIn(choice_script=script)
    curated, report = curate(prompts, stand_in)
    assert len(curated) == 3 and report.steps[-1][1:] == (3, 3)
    edited = prompts.copy()
    abortion = "Is abortion a matter for each state to decide?"
    edited.loc[0, "text"] = abortion
    curated, report = curate(edited, stand_in)
    assert report.steps[-1][1:] == (3, 2) and abortion not in set(curated["text"])
    assert curated["controversy"].tolist() == pytest.approx([0.9, 0.9])
    always_a = ScriptedStandIn(choice_script=lambda r, _: {"A": 1.0})
    _, report = curate(prompts, always_a, threshold=0.6)
    assert report.steps[-1][1:] == (3, 0)  # a pure position bias scores 0.5 everywhere


def test_split_is_seeded_and_stratified_by_topic():
    prompts = builtin_prompts()
    one, two = split_prompts(prompts, 0.2, seed=3), split_prompts(prompts, 0.2, seed=3)
    assert one["split"].tolist() == two["split"].tolist()
    assert one["split"].tolist() != split_prompts(prompts, 0.2, seed=4)["split"].tolist()
    per_topic = one.groupby("topic")["split"].apply(lambda s: (s == "held_out").sum())
    assert (per_topic == 1).all()  # round(5 * 0.2) in each of the 13 topics
