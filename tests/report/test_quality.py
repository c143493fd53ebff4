"""Degenerate persona text (``personasim.personas.quality``): each rule on known values, the
values a valid profile repeats left alone, counts per tier by hand, and the report's sentence."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from personasim.analysis import quality_summary, text_stats
from personasim.personas.quality import quality_flags, value_causes
from personasim.report.reading import EMBEDDED_CAVEAT, headline_reading, text_quality_reading


@pytest.mark.parametrize(
    ("value", "causes"),
    [
        ("No_mannerisms_None_None_None_None_None", ["filler"]),  # one token 5 of 7, one long run
        ("None None None None maybe", ["filler"]),  # 4 of 5 tokens
        ("politico_politico_politico_politico", ["filler"]),
        ("Abcdefghijklmnopqrstuvwxyz", ["filler"]),  # 26 characters without a space
        ("Business and 200042044831 Construction", ["long_number"]),
        ("DSC_20232503-1430349677.jpg", ["filler", "long_number"]),
        ("No n\u043enn\u0435", ["mixed_script"]),  # Cyrillic o and e inside a Latin word
        ("Her name is [Name] and she is a [Given Fact].", ["placeholder"]),
        ("Hello <name>, from {city}", ["placeholder"]),
        ("Gardening, choir on Sundays, the farmers market", []),
        ("Born in 1961, earns 45000 a year", []),
        ("She likes the caf\u00e9 on Main Street", []),  # an accent is Latin
        ("\u65e5\u672c\u8a9e\u3067\u3059", []),  # Japanese mixes scripts, no look-alikes
        (
            "the the the cat sat on the big mat by the door today",
            [],
        ),  # "the" 5 of 13 tokens, under 40 %
    ],
)
def test_value_causes_known_values(value: str, causes: list[str]) -> None:
    assert value_causes(value) == causes


def test_flags_count_free_text_fields_only() -> None:
    fields = {
        "age": 40,
        "cognitive_difficulty": "No",  # closed lists: repeated 'No' is a valid profile
        "vision_difficulty": "No",
        "hearing_difficulty": "No",
        "big_five_scores": {"openness": "Extremely Low", "neuroticism": "Extremely Low"},
        "defining_quirks": "Megadocs",
        "mannerisms": "megadocs ",  # case and spacing aside, the same value
        "personal_time": "Megadocs",
        "lifestyle": "Quiet life by the lake",
        "religion": "None_None_None_None",
        "detailed_job_description": "Nurse at [Hospital]",
    }
    flags = quality_flags(json.dumps(fields))
    assert flags["filler_fields"] == 1
    assert flags["repeated_value_fields"] == 3
    assert flags["placeholders"] == 1
    assert flags["flagged_fields"] == (
        "defining_quirks (repeated_value); mannerisms (repeated_value); "
        "personal_time (repeated_value); religion (filler); detailed_job_description (placeholder)"
    )
    clean = quality_flags({"lifestyle": "Quiet", "religion": "Quiet", "cognitive_difficulty": "No"})
    assert clean == {
        "filler_fields": 0,
        "repeated_value_fields": 0,  # two fields share a value: fewer than three
        "placeholders": 0,
        "flagged_fields": "",
    }
    assert (
        quality_flags("not json")["flagged_fields"] == ""
        and quality_flags(None)["placeholders"] == 0
    )


def _personas() -> pd.DataFrame:
    """Two subjective personas (one flagged), two descriptive (one flagged), one meta."""
    rows = [
        ("subjective", 0, {"lifestyle": "x_x_x_x_x", "religion": "Catholic"}),
        ("subjective", 1, {"lifestyle": "Long walks", "religion": "Catholic"}),
        ("descriptive", 0, {"description": "Her name is [Name]."}),
        ("descriptive", 1, {"description": "A retired teacher in Ohio."}),
        ("meta", 0, None),
    ]
    return pd.DataFrame(
        {
            "person_id": [r[1] for r in rows],
            "tier": [r[0] for r in rows],
            "generator": "g",
            "valid": True,
            "text": ["some text"] * len(rows),
            "fields": [json.dumps(r[2]) if r[2] else None for r in rows],
        }
    )


def test_text_stats_carry_the_flags_and_the_summary_counts_them() -> None:
    stats = text_stats(_personas())
    assert list(stats["filler_fields"]) == [1, 0, 0, 0, 0]
    assert list(stats["placeholders"]) == [0, 0, 1, 0, 0]
    summary = quality_summary(stats).set_index("tier")
    assert list(summary.index) == ["subjective", "descriptive"]  # meta is not LLM text
    assert summary.loc["subjective", ["personas", "flagged", "filler"]].tolist() == [2, 1, 1]
    assert summary.loc["descriptive", ["flagged", "placeholder", "filler"]].tolist() == [1, 1, 0]


def test_reading_names_the_count_and_the_worst_tier_before_the_caveat() -> None:
    quality = pd.DataFrame(
        {
            "tier": ["subjective", "descriptive"],
            "generator": "g",
            "personas": [15, 10],
            "flagged": [6, 5],
        }
    )
    sentence = text_quality_reading(quality)
    assert sentence is not None
    assert sentence.startswith("11 of 25 LLM-written personas have degenerate text")
    assert "most in the descriptive tier (5 of 10)" in sentence  # 50 % beats 40 %
    assert text_quality_reading(quality.assign(flagged=0)) is None
    assert text_quality_reading(None) is None
    paragraphs = headline_reading({}, ["SmolLM2-135M"], quality)
    assert paragraphs[1] == sentence and paragraphs[2] == EMBEDDED_CAVEAT


def test_the_personas_summary_counts_valid_degenerate_rows() -> None:
    from personasim.personas.generate import format_summary, summarize

    frame = _personas().assign(
        valid=[True, True, False, True, True],  # the flagged descriptive row is invalid
        first_valid=True,
        n_contradictions=0,
        checks=0,
        rejections=0,
    )
    summary = summarize(frame).set_index("tier")
    assert summary["degenerate"].to_dict() == {"subjective": 1, "descriptive": 0, "meta": 0}
    lines = format_summary(summary.reset_index()).splitlines()
    assert lines[0].split()[-1] == "degenerate"
    assert [line.split()[-1] for line in lines[1:]] == ["1", "0", "0"]
    assert summarize(frame.drop(columns="fields"))["degenerate"].eq(0).all()  # an old table


def test_the_summary_reads_flags_already_computed() -> None:
    from personasim.personas.generate import summarize

    frame = _personas().assign(first_valid=True, n_contradictions=0, checks=0, rejections=0)
    # the flags joined from text_stats win over the fields (the report does not parse again)
    stated = frame.drop(columns="fields").assign(flagged_fields=["", "x (filler)", "", "", ""])
    summary = summarize(stated).set_index("tier")
    assert summary["degenerate"].to_dict() == {"subjective": 1, "descriptive": 0, "meta": 0}
    assert list(summarize(stated)["degenerate"]) != list(summarize(frame)["degenerate"])
