"""Persona schemas, prompts, prompt files and procedural traits (no model calls)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from personasim.census import mapping
from personasim.core.errors import ConfigError
from personasim.personas import procedural as proc
from personasim.personas import prompts as P
from personasim.personas import schema as S

LLM_TIERS = ("objective", "subjective", "descriptive", "persona")


def _walk(node):
    """Every dict inside a JSON schema."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


@pytest.mark.parametrize("tier", LLM_TIERS)
def test_schema_is_flat_closed_and_bounded(tier):
    schema = S.json_schema(S.tier_model(tier))
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text
    for node in _walk(schema):
        if node.get("type") == "string":
            assert "enum" in node or node.get("maxLength", 0) <= 600
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert set(node["required"]) == set(node["properties"])


@pytest.mark.parametrize("tier", LLM_TIERS)
def test_llama_cpp_accepts_every_tier_schema(tier):
    from llama_cpp import LlamaGrammar

    schema = S.json_schema(S.tier_model(tier))
    grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    assert grammar is not None


def test_categorical_values_are_the_census_vocabulary():
    props = S.json_schema(S.subjective_model())["properties"]
    for key in (
        "education",
        "employment_status",
        "industry_category",
        "citizenship",
        "fertility",
        "ability_to_speak_english",
    ):
        assert tuple(props[key]["enum"]) == mapping.VOCAB[key]
    assert props["ideology"]["enum"][0] == "Very Liberal"
    assert props["big_five_scores"]["properties"]["openness"]["enum"] == list(S.BIG_FIVE_LEVELS)
    assert "Vermont" in props["state"]["enum"] and len(props["state"]["enum"]) == 51
    assert props["income"]["maximum"] == 1_000_000
    assert len(S.SUBJECTIVE_KEYS) == 34  # PERSONA's 33 attributes + state (Li et al.)


def test_models_forbid_extra_keys_and_enforce_lengths():
    model = S.persona_open_model(20)
    good = {
        "detailed_job_description": "Nurse",
        "lifestyle": "Busy",
        "ideology": "Moderate",
        "political_views": "Other",
        "religion": "None",
    }
    model.model_validate(good)
    with pytest.raises(ValueError):
        model.model_validate({**good, "hobby": "x"})
    with pytest.raises(ValueError):
        model.model_validate({**good, "lifestyle": "x" * 21})
    with pytest.raises(ValueError):
        model.model_validate({**good, "ideology": "Centrist"})


def test_prompts_list_value_ranges_and_template():
    messages = P.build_messages(
        P.packaged_templates()["objective"], "- Age: 40 years", S.objective_model()
    )
    user = messages[-1].content
    assert "Less than HS, HS Graduate" in user and '"household_language": ""' in user
    assert user.rstrip().endswith("- Age: 40 years")
    assert "{" + "METADATA}" not in user


def test_prompt_file_missing_placeholder_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Make a persona from {METADATA}.")
    with pytest.raises(ConfigError) as error:
        P.parse_prompt_files(bad, ("meta", "objective"))
    line = error.value.one_line()
    assert "\n" not in line and str(bad) in line and "{TEMPLATE}" in line
    # a descriptive prompt needs only {METADATA}
    assert "descriptive" in P.parse_prompt_files(bad, ("descriptive",))


def test_unreadable_prompt_file_is_one_line_error(tmp_path):
    for path in (tmp_path / "absent.txt", tmp_path):
        with pytest.raises(ConfigError) as error:
            P.parse_prompt_files(path, ("objective",))
        assert "\n" not in error.value.one_line() and str(path) in error.value.one_line()


def test_user_prompt_file_is_used(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("FACTS\n{METADATA}\nFORM\n{TEMPLATE}\n")
    templates = P.parse_prompt_files({"objective": good}, ("objective", "subjective"))
    messages = P.build_messages(templates["objective"], "- Sex: Male", S.objective_model())
    assert messages[-1].content.startswith("FACTS\n- Sex: Male\nFORM\n{")


def test_cli_prompt_file_error_is_one_line(tmp_path, capsys):
    from personasim.cli.main import main

    bad = tmp_path / "bad.txt"
    bad.write_text("nothing here")
    code = main(
        [
            "personas",
            "--population",
            str(tmp_path / "pop.parquet"),
            "--tiers",
            "objective",
            "--prompt-file",
            str(bad),
            "--out",
            str(tmp_path / "o.parquet"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(bad) in err


def test_big_five_is_seeded_and_bounded():
    a = proc.procedural_traits(seed=3, person_id=7)
    assert a == proc.procedural_traits(seed=3, person_id=7)
    assert a != proc.procedural_traits(seed=4, person_id=7)
    assert a != proc.procedural_traits(seed=3, person_id=7, round_=1)
    rng = np.random.default_rng(0)
    scores = np.array([list(proc.big_five_scores(rng).values()) for _ in range(3000)])
    assert scores.min() >= 1.0 and scores.max() <= 5.0
    assert abs(scores.mean() - 3.0) < 0.05 and abs(scores.std() - 0.7) < 0.05
    levels = [proc.big_five_level(s) for s in scores[:, 0]]
    share = levels.count("Average") / len(levels)
    assert 0.38 < share < 0.48  # N(3, 0.7) between 2.6 and 3.4: about 43 %


def test_big_five_spec_is_configurable_and_checked():
    spec = proc.BigFiveSpec(mean=4.5, sd=0.1)
    scores = proc.big_five_scores(np.random.default_rng(1), spec)
    assert all(4.0 <= s <= 5.0 for s in scores.values())
    assert proc.big_five_level(4.5) == "Extremely High" and proc.big_five_level(1.0) == (
        "Extremely Low"
    )
    with pytest.raises(ValueError):
        proc.BigFiveSpec(cuts=(3.0, 2.0, 4.0, 4.5))
    with pytest.raises(ValueError):
        proc.BigFiveSpec(sd=1.0, skew=2)  # type: ignore[call-arg]


def test_procedural_traits_validate_in_the_persona_model():
    traits = proc.procedural_traits(seed=0, person_id=1)
    assert set(S.PERSONA_PROCEDURAL_KEYS) <= set(traits)
    assert traits["defining_quirks"] in proc.QUIRKS
    assert all(v.strip() in proc.CORE_VALUES for v in traits["core_values"].split(","))
