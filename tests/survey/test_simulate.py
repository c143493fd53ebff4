"""Survey simulation: prompts, the strict parser, and end-to-end runs on the real embedded model."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.cli.main import main
from personasim.core.errors import ConfigError, DataError
from personasim.core.keys import RESPONSE_KEY
from personasim.core.parts import read_parts
from personasim.llm import Cache, ChoiceRequest, GenerateResult
from personasim.llm.base import BackendStats
from personasim.personas.meta import meta_persona_text, meta_personas
from personasim.pipeline.jobs import simulate_to_parts
from personasim.scoring.score import score
from personasim.simulate.estimators import _sample_row
from personasim.simulate.personas import check_personas, select_personas
from personasim.simulate.plan import SimulateOptions, Task, option_order, plan_tasks
from personasim.simulate.prompt import INSTRUCTIONS, build_messages, parse_answer
from personasim.simulate.run import RESPONSE_COLUMNS, simulate
from personasim.survey.loaders import builtin_survey
from personasim.survey.questions import Option, Question, Survey, letter
from personasim.truth import load_truth

POPULATION = pd.DataFrame(
    {
        "person_id": [11, 12, 13],
        "state": ["TX", "NY", "OH"],
        "weight": [1.5, 2.0, 0.5],
        "age": [68, 24, 45],
        "sex": ["Male", "Female", "Female"],
        "race": ["White", "Black or African American", "Asian"],
    }
)


@pytest.fixture()
def personas() -> pd.DataFrame:
    """Meta personas of three people (with weights and states)."""
    return meta_personas(POPULATION)


@pytest.fixture()
def cached_embedded(embedded, tmp_path: Path) -> Iterator:
    """The session's embedded model with a fresh cache file and zeroed counters (restored)."""
    saved_cache, saved_stats = embedded.cache, embedded.stats
    embedded.cache, embedded.stats = Cache(tmp_path / "cache.sqlite"), BackendStats()
    yield embedded
    embedded.cache.close()
    embedded.cache, embedded.stats = saved_cache, saved_stats


# --------------------------------------------------------------------------- offline


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Answer: B", "B"),
        ("  answer: a", "A"),
        ("Answer: B. Donald Trump", "B"),
        ("Answer: (C)", "C"),
        ("Answer: [A]", "A"),
        ("Answer: B\nBecause...", "B"),
        ("A person like me would vote for A", None),
        ("Answer: A person like me would...", None),
        ("Answer: Biden", None),
        ("Answer: D", None),
        ("B", None),
        ("The answer is B", None),
        ("", None),
    ],
)
def test_strict_parser(reply: str, expected: str | None) -> None:
    assert parse_answer(reply, ["A", "B", "C"]) == expected


def test_invalid_replies_never_become_an_option() -> None:
    question = builtin_survey("elections").questions[0]
    task = Task({"person_id": 1, "tier": "t", "generator": "g", "text": "x"}, question, (1, 0))
    replies = ["A person like me...", "Answer: B", "Answer: A person", "Answer: C", "Answer: A"]
    results = [GenerateResult(text=r, finish_reason="stop", ok=True) for r in replies]
    row = _sample_row(task, results, SimulateOptions(estimator="sample", constrained=False), "s")
    assert row["invalid"] == 3 and row["valid_mass"] == pytest.approx(2 / 5)
    # presented A = original 1, presented B = original 0: one valid reply each
    assert row["probs"] == [0.5, 0.5]
    bad = [GenerateResult(text="A person like me", finish_reason="stop", ok=True)] * 2
    none = _sample_row(task, bad, SimulateOptions(estimator="sample", constrained=False), "s")
    assert none["probs"] is None and none["answer"] is None and none["invalid"] == 2


def test_prompt_layout_shares_the_persona_prefix() -> None:
    question = builtin_survey("elections").questions[1]
    system, user = build_messages("- Age: 30 years", question, (1, 0))
    assert system.role == "system" and system.content.startswith(INSTRUCTIONS)
    assert system.content.endswith("- Age: 30 years") and "Question" not in system.content
    assert "A. Donald Trump" in user.content and "B. Joe Biden" in user.content
    other, _ = build_messages("- Age: 30 years", builtin_survey("elections").questions[2])
    assert other == system


def test_tasks_are_persona_major_and_permutations_seeded(personas: pd.DataFrame) -> None:
    survey = builtin_survey("elections")
    opts = SimulateOptions(permute=True, seed=3)
    tasks = plan_tasks(personas, survey, opts)
    assert [t.persona["person_id"] for t in tasks] == [11] * 3 + [12] * 3 + [13] * 3
    assert [t.question.id for t in tasks[:3]] == survey.ids
    q = survey.questions[0]
    assert option_order(q, 11, 3, True) == option_order(q, 11, 3, True)
    orders = {option_order(q, pid, 3, True) for pid in range(40)}
    assert orders == {(0, 1), (1, 0)}


def test_meta_persona_text_and_errors() -> None:
    text = meta_persona_text(POPULATION.iloc[0].to_dict())
    assert text.splitlines() == [
        "- Age: 68 years",
        "- Sex: Male",
        "- Race: White",
        "- State of residence: Texas",
    ]
    with pytest.raises(DataError, match="population.parquet: missing column 'education'"):
        meta_personas(POPULATION, ("age", "education"), "population.parquet")
    with pytest.raises(DataError, match="x.parquet: missing column 'text'"):
        check_personas(POPULATION.assign(tier="meta", generator="g"), "x.parquet")
    with pytest.raises(ConfigError, match="no personas of tier 'descriptive'"):
        select_personas(meta_personas(POPULATION), ["descriptive"])
    assert len(select_personas(meta_personas(POPULATION), ["meta"], 2)) == 2


def test_wrong_or_blank_text_is_found_in_any_slice_of_the_check(monkeypatch) -> None:
    import personasim.simulate.personas as S

    monkeypatch.setattr(S, "CHECK_ROWS", 2)  # texts are checked two at a time
    personas = pd.DataFrame(
        {
            "person_id": [1, 2, 3, 4, 5],
            "tier": "meta",
            "generator": "g",
            "text": ["a", "b", "c", " \t\n", None],
        }
    )
    with pytest.raises(DataError, match="x.parquet: column 'text' is empty for person_id 4"):
        check_personas(personas, "x.parquet")
    with pytest.raises(DataError, match="is empty for person_id 5"):
        check_personas(personas.iloc[[0, 1, 2, 4]], "x.parquet")
    assert len(check_personas(personas.iloc[:3], "x.parquet")) == 3
    mixed = personas.assign(text=pd.Series(["a", "b", None, 7, "e"], dtype=object))
    with pytest.raises(DataError, match="must hold text, but person_id 4 has int 7"):
        check_personas(mixed, "x.parquet")
    missing = personas.assign(text=pd.Series(["a", "b", pd.NA, "d", "e"], dtype=object))
    with pytest.raises(DataError, match="is empty for person_id 3"):  # pd.NA: empty, no crash
        check_personas(missing, "x.parquet")


def test_malformed_personas_file_is_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "personas.parquet"
    pd.DataFrame({"person_id": [1], "tier": ["meta"], "text": ["x"]}).to_parquet(bad)
    code = main(
        [
            "simulate",
            "--personas",
            str(bad),
            "--survey",
            "elections",
            "--out",
            str(tmp_path / "r.parquet"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{bad}: missing column 'generator'" in err
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("not parquet")
    assert main(["simulate", "--personas", str(garbage), "--survey", "elections"]) == 2
    assert f"{garbage}: cannot read table" in capsys.readouterr().err


# --------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_logprobs_end_to_end_resume_and_score(
    cached_embedded, personas: pd.DataFrame, tmp_path: Path
) -> None:
    survey, out = builtin_survey("elections"), tmp_path / "parts"
    first = simulate_to_parts(
        personas.iloc[:2], survey, out, backend=cached_embedded, show_progress=False
    )
    assert first.report.rows == 6 and first.report.model_calls == 6
    frame = read_parts(out)
    assert set(RESPONSE_COLUMNS) <= set(frame.columns) and len(frame) == 6
    for probs in frame["probs"]:
        assert len(probs) == 2 and sum(probs) == pytest.approx(1.0)
    assert ((frame["valid_mass"] > 0) & (frame["valid_mass"] <= 1)).all()
    assert frame["weight"].tolist()[:3] == [1.5] * 3 and set(frame["state"]) == {"TX", "NY"}
    assert set(frame["answer"]) <= {"A", "B"} and (frame["invalid"] == 0).all()

    # rerun: nothing new, no model call; a third persona added: only its 3 rows are computed
    again = simulate_to_parts(
        personas.iloc[:2], survey, out, backend=cached_embedded, show_progress=False
    )
    assert again.report.rows == 0 and again.report.model_calls == 0 and again.skipped == 6
    more = simulate_to_parts(personas, survey, out, backend=cached_embedded, show_progress=False)
    assert more.report.rows == 3 and more.report.model_calls == 3 and more.skipped == 6
    before_calls = cached_embedded.stats.model_calls
    frame = read_parts(out)
    assert len(frame) == 9 and not frame.duplicated(list(RESPONSE_KEY)).any()

    # a persona whose text changed under the same key: refused, its old answers not kept as new
    edited = personas.copy()
    edited.loc[1, "text"] = edited.loc[1, "text"] + " She keeps bees."
    key = "|".join(str(edited.loc[1, c]) for c in ("person_id", "tier", "generator"))
    with pytest.raises(ConfigError, match=f"another persona '{key}'.*changed since"):
        simulate_to_parts(edited, survey, out, backend=cached_embedded, show_progress=False)
    assert read_parts(out).equals(frame) and cached_embedded.stats.model_calls == before_calls

    # lost parts: the cache answers everything
    shutil.rmtree(out)
    cached = simulate_to_parts(personas, survey, out, backend=cached_embedded, show_progress=False)
    assert cached.report.rows == 9 and cached.report.model_calls == 0
    assert cached.report.cache_hits == 9

    result = score(read_parts(out), load_truth("elections"), n_boot=20)
    states = result.scores[result.scores["attribute"] == "state"]
    assert set(states["group"]) == {"TX", "NY", "OH"}
    assert result.summary["metric"].str.contains("alignment").any()


@pytest.mark.slow
def test_permutation_maps_back_to_original_options(cached_embedded) -> None:
    survey = builtin_survey("elections")
    person = meta_personas(POPULATION.iloc[:1])
    plain = simulate(person, survey, cached_embedded).responses
    opts = SimulateOptions(permute=True, seed=1)
    permuted = simulate(person, survey, cached_embedded, opts).responses
    assert plain["option_order"].map(list).tolist() == [[0, 1]] * 3
    flipped = permuted[permuted["option_order"].map(lambda o: list(o) == [1, 0])]
    assert not flipped.empty
    for row in flipped.itertuples():
        question = survey.question(row.question_id)
        order = list(row.option_order)
        messages = build_messages(person["text"].iloc[0], question, order)
        # the letter that showed an option on screen carries that option's text...
        for slot, original in enumerate(order):
            assert f"{letter(slot)}. {question.options[original].text}" in messages[1].content
        # ...and the probability stored for the original option is that letter's probability
        [direct] = cached_embedded.choice_logprobs(
            [ChoiceRequest(messages=messages, labels=("A", "B"))]
        )
        for slot, original in enumerate(order):
            assert row.probs[original] == pytest.approx(direct.probs[letter(slot)])
        assert json.loads(row.raw)["presented"] == pytest.approx([row.probs[i] for i in order])


@pytest.mark.slow
def test_sample_estimator_constrained_and_strict(cached_embedded, personas: pd.DataFrame) -> None:
    survey = Survey(id="one", questions=(builtin_survey("elections").questions[2],))
    opts = SimulateOptions(estimator="sample", samples=3, seed=5)
    rows = simulate(personas.iloc[:2], survey, cached_embedded, opts).responses
    for row in rows.itertuples():
        replies = json.loads(row.raw)
        assert len(replies) == 3 and row.invalid == 0 and row.valid_mass == 1.0
        assert all(parse_answer(r, ["A", "B"]) for r in replies)
        assert sum(row.probs) == pytest.approx(1.0)
    free = SimulateOptions(estimator="sample", samples=2, constrained=False, max_tokens=6)
    rows = simulate(personas.iloc[:1], survey, cached_embedded, free).responses
    for row in rows.itertuples():
        parsed = [parse_answer(r, ["A", "B"]) for r in json.loads(row.raw)]
        valid = sum(p is not None for p in parsed)
        assert row.invalid == 2 - valid
        if valid:
            counts = np.array([parsed.count("A"), parsed.count("B")]) / valid
            assert list(row.probs) == pytest.approx(counts.tolist())
        else:
            assert row.probs is None


@pytest.mark.slow
def test_cli_simulate_population_then_score(tmp_path: Path, capsys) -> None:
    population = tmp_path / "population.parquet"
    POPULATION.to_parquet(population)
    out, cache = tmp_path / "responses.parquet", tmp_path / "cache.sqlite"
    args = [
        "simulate",
        "--population",
        str(population),
        "--survey",
        "elections",
        "--limit-persons",
        "2",
        "--permute",
        "--seed",
        "4",
        "--out",
        str(out),
        "--cache",
        str(cache),
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "6 rows written" in first and "model calls 6" in first
    assert main(args) == 0
    assert "0 rows written, 6 already present; model calls 0" in capsys.readouterr().out
    frame = pd.read_parquet(out)
    assert len(frame) == 6 and set(frame["tier"]) == {"meta"}
    assert set(frame["generator"]) == {"census"}
    scores = tmp_path / "scores.parquet"
    code = main(
        [
            "score",
            "--responses",
            str(out),
            "--truth",
            "elections",
            "--n-boot",
            "0",
            "--out",
            str(scores),
        ]
    )
    assert code == 0 and scores.is_file()


def test_options_are_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        SimulateOptions(estimatr="sample")  # type: ignore[call-arg]
    q = Question(
        id="q", text="?", options=(Option(label="A", text="x"), Option(label="B", text="y"))
    )
    assert option_order(q, 1, 0, False) == (0, 1)
