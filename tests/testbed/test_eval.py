"""``testbed eval`` beyond its first two modes (issue 21 §5): the two-call modes, pass@k with the
unbiased estimator, and the intersectional breakdown.

The scores are pinned with the ScriptedStandIn: its critic says "fine" for a known number of
each persona's sampled answers, so every expected score, pass@k and group score below is worked
out by hand. The estimator itself is checked against brute force over all k-subsets. The real
embedded model runs the two new modes through the CLI.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from personasim.cli.main import main
from personasim.core.errors import ConfigError
from personasim.llm import Cache
from personasim.testbed.eval_groups import parse_where, select_personas
from personasim.testbed.eval_scores import pass_at_k
from personasim.testbed.evaluate import ANSWER_NOW, PREAMBLE_ASK, EvalOptions, evaluate_model
from personasim.testbed.prompts import builtin_prompts
from tests.support.scripted import ScriptedStandIn

from .conftest import PROFILES, persona_table

#: Four personas; ``FINE_DRAWS[code]`` of each one's sampled answers suit it (see ``stand_in``).
GROUPS = {
    "pa": ("Female", "White"),
    "pb": ("Female", "White"),
    "pc": ("Male", "White"),
    "pd": ("Male", "Asian"),
}
FINE_DRAWS = {"pa": 0, "pb": 1, "pc": 2, "pd": 3}
FOUR = {
    pid: {"code": f"code-{pid}", "age": 30 + i, "sex": sex, "race": race}
    for i, (pid, (sex, race)) in enumerate(GROUPS.items())
}


def one_prompt() -> pd.DataFrame:
    """One held-out prompt of the built-in set."""
    return builtin_prompts().head(1).assign(split="held_out")


def stand_in() -> ScriptedStandIn:
    """Answers ``draw N``, N counting the calls with the same messages (the samples of one item,
    whatever their seeds); the critic finds ``draw N`` fine for persona ``pX`` when
    ``N < FINE_DRAWS[pX]``, in both option orders."""
    draws: Counter[str] = Counter()

    def generate(request, _seen):
        key = repr([m.content for m in request.messages])
        draws[key] += 1
        return f"draw {draws[key] - 1}"

    def choose(request, _seen):
        system, user = request.messages[0].content, request.messages[-1].content
        code = next(pid for pid in FINE_DRAWS if f"code-{pid}" in system)
        fine = int(user.split("draw ")[1].split()[0]) < FINE_DRAWS[code]
        fine_label = "A" if "A. No" in user else "B"
        other = "B" if fine_label == "A" else "A"
        return {fine_label: 0.9, other: 0.1} if fine else {fine_label: 0.1, other: 0.9}

    return ScriptedStandIn(generate_script=generate, choice_script=choose)


def run(k: int = 3, **options) -> tuple:
    """Evaluate the four personas on one prompt, ``k`` samples each, persona mode."""
    backend = stand_in()
    opts = EvalOptions(modes=("persona",), n_prompts=1, k=k, n_boot=200, **options)
    return evaluate_model(persona_table(FOUR), one_prompt(), backend, options=opts), backend


def test_pass_at_k_against_hand_computed_values():
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - 3 / 6)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(5, 2, 3) == pytest.approx(1 - 1 / 10)  # 1 - C(3,3)/C(5,3)
    assert pass_at_k(16, 0, 16) == 0.0 and pass_at_k(16, 1, 16) == 1.0
    assert pass_at_k(3, 1, 1) == pytest.approx(1 / 3)  # pass@1 is the share fine
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_pass_at_k_is_the_mean_over_all_k_subsets(n):
    for c in range(n + 1):
        fine = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(fine, k))
            brute = sum(any(s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_scores_and_the_pass_at_k_curve_match_the_scripted_verdicts():
    result, _ = run(k=3)
    rows = result.rows
    assert len(rows) == 4 * 3 and sorted(rows["sample"].unique()) == [0, 1, 2]
    # share fine per persona: 0, 1/3, 2/3, 3/3 (three samples, FINE_DRAWS of them fine)
    assert rows.groupby("person_id")["fine"].sum().to_dict() == {
        "pa": 0,
        "pb": 1,
        "pc": 2,
        "pd": 3,
    }
    summary = result.summary.iloc[0]
    assert summary["score"] == pytest.approx((0 + 1 / 3 + 2 / 3 + 1) / 4)
    assert summary["k"] == 3 and summary["n_items"] == 4 and summary["n_personas"] == 4
    assert summary["ci_low"] <= summary["score"] <= summary["ci_high"]
    curve = result.pass_at_k.set_index("k")["pass_at_k"]
    # pass@2 per persona: 0, 1 - C(2,2)/C(3,2) = 2/3, 1, 1; pass@3: 0, 1, 1, 1
    assert curve.to_dict() == pytest.approx({1: 0.5, 2: (0 + 2 / 3 + 1 + 1) / 4, 3: 0.75})
    assert "pass@k" in result.text()


def test_k_one_sends_the_greedy_request_of_before_one_row_per_item():
    result, backend = run(k=1)
    answers = [r for r in backend.calls if hasattr(r, "max_tokens")]
    assert len(answers) == 4 and all(r.temperature == 0 and r.seed is None for r in answers)
    assert (result.rows["sample"] == 0).all() and len(result.rows) == 4
    assert result.rows["preamble"].isna().all()
    assert result.pass_at_k["k"].tolist() == [1] and "pass@k" not in result.text()


def test_samples_are_seeded_so_a_rerun_is_answered_from_the_cache(tmp_path):
    cache = Cache(tmp_path / "cache.sqlite")
    opts = EvalOptions(modes=("persona", "baseline"), n_prompts=1, k=4, n_boot=0)
    first, again = stand_in(), stand_in()
    first.cache, again.cache = cache, cache
    a = evaluate_model(persona_table(FOUR), one_prompt(), first, options=opts)
    seeds = [r.seed for r in first.calls if hasattr(r, "max_tokens")]
    # 4 personas x 4 samples tailored, 4 shared baseline samples: each its own seed
    assert len(seeds) == 20 and len(set(seeds)) == 20
    assert all(r.temperature == 0.7 for r in first.calls if hasattr(r, "max_tokens"))
    b = evaluate_model(persona_table(FOUR), one_prompt(), again, options=opts)
    assert again.calls == []
    pd.testing.assert_frame_equal(a.rows, b.rows)
    baseline = a.rows[a.rows["mode"] == "baseline"]
    assert baseline.groupby("sample")["answer"].nunique().eq(1).all()


@pytest.mark.parametrize("mode", ["chain_of_thought", "demographic_summary"])
def test_two_call_modes_judge_the_answer_alone(mode):
    backend = stand_in()
    opts = EvalOptions(modes=(mode,), n_prompts=1, n_boot=0)
    result = evaluate_model(persona_table(FOUR), one_prompt(), backend, options=opts)
    generated = [r for r in backend.calls if hasattr(r, "max_tokens")]
    first, second = generated[:4], generated[4:]
    question = one_prompt()["text"].iloc[0]
    for request in first:
        assert request.messages[1].content == f"{question}\n\n{PREAMBLE_ASK[mode]}"
        assert request.max_tokens == opts.preamble_tokens
    for request in second:
        roles = [m.role for m in request.messages]
        assert roles == ["system", "user", "assistant", "user"]
        assert request.messages[2].content == "draw 0" and request.messages[3].content == ANSWER_NOW
        assert "code-" in request.messages[0].content  # the persona is in the system message
    assert (result.rows["preamble"] == "draw 0").all()
    # the answer is the second call's text: a new conversation, so again "draw 0"
    critic_texts = [r.messages[-1].content for r in backend.calls if hasattr(r, "labels")]
    assert len(critic_texts) == 8 and all(ANSWER_NOW not in t for t in critic_texts)
    assert all(PREAMBLE_ASK[mode] not in t for t in critic_texts)


def test_groups_share_attribute_values_and_one_persona_has_no_interval():
    result, _ = run(k=3, by=("sex", "race"))
    groups = result.by_group.set_index(["sex", "race"])
    # share fine: pa 0, pb 1/3 (Female White); pc 2/3 (Male White); pd 1 (Male Asian)
    assert groups["score"].to_dict() == pytest.approx(
        {("Female", "White"): 1 / 6, ("Male", "White"): 2 / 3, ("Male", "Asian"): 1.0}
    )
    assert groups["n_personas"].to_dict() == {
        ("Female", "White"): 2,
        ("Male", "Asian"): 1,
        ("Male", "White"): 1,
    }
    assert np.isnan(groups.loc[("Male", "Asian"), "ci_low"])
    assert not np.isnan(groups.loc[("Female", "White"), "ci_low"])
    assert "score by sex, race" in result.text()
    by_sex, _ = run(k=3, by=("sex",))
    assert by_sex.by_group.set_index("sex")["score"].to_dict() == pytest.approx(
        {"Female": 1 / 6, "Male": 5 / 6}
    )


def test_an_attribute_named_like_a_result_column_keeps_both():
    named = {pid: {**fields, "score": fields["sex"], "model": "m"} for pid, fields in FOUR.items()}
    backend = stand_in()
    opts = EvalOptions(modes=("persona",), n_prompts=1, k=3, n_boot=200, by=("score", "model"))
    result = evaluate_model(persona_table(named), one_prompt(), backend, options=opts)
    groups = result.by_group.set_index("attribute:score")
    assert {"model", "score", "attribute:model"} <= set(result.by_group.columns)
    assert groups["score"].to_dict() == pytest.approx({"Female": 1 / 6, "Male": 5 / 6})
    assert (groups["attribute:model"] == "m").all()
    assert "Female & m" in result.text() and "score by score, model" in result.text()


def test_where_restricts_every_table_to_the_intersection():
    result, backend = run(k=3, where=(("sex", "Male"),))
    assert set(result.rows["person_id"]) == {"pc", "pd"}
    assert result.summary["score"].iloc[0] == pytest.approx((2 / 3 + 1) / 2)
    assert result.pass_at_k.set_index("k")["pass_at_k"].to_dict() == pytest.approx(
        {1: 5 / 6, 2: 1.0, 3: 1.0}
    )
    assert result.text().startswith("personas: sex=Male")
    both, _ = run(k=1, where=(("sex", "Male"), ("race", "White")))
    assert set(both.rows["person_id"]) == {"pc"}
    # values are compared as text: age 32 is "32"
    assert list(select_personas(persona_table(FOUR), [("age", "32")])["person_id"]) == ["pc"]


def test_unknown_attributes_and_values_name_what_exists():
    pool = persona_table(PROFILES)
    with pytest.raises(ConfigError, match="--by religon") as error:
        select_personas(pool, by=["religon"])
    assert "did you mean 'religion'" in error.value.hint and "attributes: age" in error.value.hint
    with pytest.raises(ConfigError, match="no persona has this value") as error:
        select_personas(pool, [("sex", "female")])
    assert error.value.hint == "sex values: Female, Male"
    with pytest.raises(ConfigError, match="no persona matches all"):
        select_personas(pool, [("sex", "Female"), ("race", "Asian")])
    for bad in ("sex", "=Male", "sex="):
        with pytest.raises(ConfigError, match="not ATTR=VALUE"):
            parse_where([bad])
    assert parse_where(["race = White"]) == (("race", "White"),)


@pytest.mark.slow
def test_two_call_modes_through_the_cli_on_the_embedded_model(tmp_path, capsys):
    personas = tmp_path / "personas.parquet"
    persona_table().to_parquet(personas)
    out = tmp_path / "eval.parquet"
    args = [
        *["testbed", "eval", "--personas", str(personas), "--n-prompts", "1"],
        *["--modes", "chain_of_thought,demographic_summary", "--by", "sex"],
        *["--answer-tokens", "24", "--preamble-tokens", "24", "--n-boot", "20"],
        *["--out", str(out), "--cache", str(tmp_path / "cache.sqlite"), "-o", "n_ctx=2048"],
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "chain_of_thought" in printed and "demographic_summary" in printed
    rows = pd.read_parquet(out)
    assert len(rows) == 2 * 2 and (rows["sample"] == 0).all()
    assert rows["preamble"].map(lambda t: isinstance(t, str)).all()
    assert rows["p_fine"].between(0, 1).all()
    summary = pd.read_csv(tmp_path / "eval_summary.csv")
    assert list(summary["mode"]) == ["chain_of_thought", "demographic_summary"]
    for mode, group in rows.groupby("mode"):
        shares = group.groupby("person_id")["fine"].mean()
        score = summary.set_index("mode").loc[mode, "score"]
        assert score == pytest.approx(shares.mean())
    groups = pd.read_csv(tmp_path / "eval_by_group.csv")
    assert set(groups["sex"]) == {"Female", "Male"} and (groups["n_personas"] == 1).all()
    assert groups["ci_low"].isna().all()
    assert pd.read_csv(tmp_path / "eval_pass_at_k.csv")["k"].tolist() == [1, 1]
    print(printed)
