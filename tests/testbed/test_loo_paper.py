"""The paper's leave-one-out protocol: every baseline answer critiqued and revised for both
versions of a persona, the versions as annotators over the same items. Checked with a
ScriptedStandIn whose preferences are known (so kappa is computed by hand), then a tiny real run
on the embedded model."""

from __future__ import annotations

import math

import pytest

from personasim.report.testbed import png_bytes
from personasim.report.testbed_loo import loo_distribution
from personasim.testbed.loo_paper import (
    PaperLooOptions,
    Question,
    bootstrap_median,
    paper_leave_one_out,
)
from personasim.testbed.pairs import PairsOptions
from tests.support.scripted import ScriptedStandIn

from .conftest import PROFILES, persona_table

QUESTIONS = [
    Question("q1", "How should I spend Sunday?", "base answer one"),
    Question("news", "Where should I get my news?", "base answer two"),
    Question("q3", "Should I save or spend?", "base answer three"),
]


def writer(request, _seen):
    """Stand-in generations: a religious profile's critique asks for faith, any other for facts;
    the revision follows the critique (it never sees the profile, as in the real prompts)."""
    system, user = request.messages[0].content, request.messages[-1].content
    if "CRITIQUE:" in user:
        return "faith version" if "wants faith" in user else "facts version"
    if "role-playing" in system:
        return "wants faith" if "Religion" in system else "wants facts"
    return "a baseline"


def preferring(request, _seen):
    """Stand-in judge: a religious profile prefers a 'faith' answer, any other a 'facts' answer,
    else the baseline; on the news question everyone prefers the baseline."""
    system, user = request.messages[0].content, request.messages[-1].content
    first, second = user.split("Answer B:\n")
    wanted = "faith" if "Religion" in system else "facts"
    if "news" in user.lower():
        wanted = "base answer"
    return {"A": 1.0} if wanted in first.split("Answer A:\n")[1] else {"B": 1.0}


def stand_in() -> ScriptedStandIn:
    return ScriptedStandIn(generate_script=writer, choice_script=preferring)


def test_kappa_of_each_pair_is_the_hand_computed_value():
    options = PaperLooOptions(
        attributes=("religion", "age"), n_personas=3, k=2, n_questions=3, n_boot=200
    )
    result = paper_leave_one_out(persona_table(), QUESTIONS, stand_in(), options)
    religion = result.pairs[result.pairs["attribute"] == "religion"]
    # items (q, R-), (q, R+) for q1, news, q3. Without religion: R- = facts (refined), R+ = faith
    # (baseline); with religion the reverse; news: both baseline.
    # without: R B | B B | R B    with: B R | B B | B R   -> observed 2/6
    # both mark 'refined' on 2 of 6: chance (1/3)^2 + (2/3)^2 = 5/9
    # kappa = (1/3 - 5/9) / (1 - 5/9) = -1/2
    assert religion["agreement"].tolist() == pytest.approx([1 / 3] * 3)
    assert religion["kappa"].tolist() == pytest.approx([-0.5] * 3)
    assert (religion["n_items"] == 6).all()
    # adding the age changes no critique, so both versions label alike: kappa 1
    age = result.pairs[result.pairs["attribute"] == "age"]
    assert (age["kappa"] == 1.0).all()
    top = result.summary.iloc[0]
    assert top["attribute"] == "religion" and top["rank"] == 1
    assert top["median_kappa"] == pytest.approx(-0.5) and top["influence"] == pytest.approx(1.5)
    assert (top["ci_low"], top["ci_high"]) == pytest.approx((-0.5, -0.5))
    # every baseline was critiqued and revised for both versions of every pair
    assert len(result.refinements) == 2 * 3 * 2 * 3
    assert set(result.refinements["refined"]) == {"faith version", "facts version"}
    assert len(result.items) == 2 * 3 * 2 * 2 * 3  # attributes x pairs x annotators x items
    assert png_bytes(loo_distribution(result.pairs, result.summary))[:4] == b"\x89PNG"


def test_conditional_attribute_is_drawn_from_holders_only():
    options = PaperLooOptions(
        attributes=("vision_difficulty",), n_personas=2, k=2, n_questions=1, n_boot=0
    )
    result = paper_leave_one_out(persona_table(), QUESTIONS[:1], stand_in(), options)
    holders = {p for p, f in PROFILES.items() if "vision_difficulty" in f}
    assert set(result.pairs["person_id"]) == holders and result.pairs["conditional"].all()
    assert any("conditional" in n for n in result.notes)


def test_bootstrap_median_against_numpy():
    values = [0.1, 0.5, float("nan"), 0.3, 0.9]
    median, low, high = bootstrap_median(values, n_boot=500, seed=1)
    assert median == pytest.approx(0.4)
    assert 0.1 <= low <= median <= high <= 0.9
    assert math.isnan(bootstrap_median([0.2], n_boot=100)[1])


@pytest.mark.slow
def test_paper_protocol_on_the_embedded_model(fresh_embedded):
    generation = PairsOptions(answer_tokens=16, critique_tokens=24, revision_tokens=16)
    options = PaperLooOptions(
        attributes=("religion",), n_personas=1, k=2, n_questions=1, n_boot=0, generation=generation
    )
    from personasim.testbed.loo_paper import baseline_answers
    from personasim.testbed.prompts import builtin_prompts

    questions = baseline_answers(builtin_prompts(), fresh_embedded, options)
    result = paper_leave_one_out(persona_table(), questions, fresh_embedded, options)
    # 1 baseline + 2 critiques + 2 revisions; 2 annotators x 2 items x 2 orders
    assert fresh_embedded.stats.model_calls == 5 + 8
    assert len(result.refinements) == 2 and result.refinements["refined"].str.len().gt(0).all()
    assert result.items["valid_mass"].gt(0).all()
    assert set(result.items["label"]) <= {"refined", "baseline"}
    print(result.text())
