"""What a reader who did not run the study sees: option texts on the topic bars, word clouds
without template words."""

from __future__ import annotations

from personasim.analysis.text import template_words, word_counts
from personasim.personas.meta import meta_persona_text
from personasim.report.figures import option_caption


def test_option_captions_fit_or_vanish() -> None:
    assert option_caption("Strongly  support", 30) == "Strongly support"
    assert option_caption("It will make little difference", 12) == "It will mak…"
    assert option_caption("Somewhat oppose", 3) == ""


def test_template_words_come_from_the_schemas() -> None:
    found = template_words()
    assert {"occupations", "applicable", "employment", "status", "related"} <= found
    assert not {"nurse", "teacher", "texas", "garden"} & found


def test_tabular_clouds_drop_template_words_prose_keeps_them() -> None:
    tabular = [
        "- Occupation category: Healthcare practitioner and technical occupations\n"
        "- Industry category: Not applicable\n- Employment status: Employed",
        "- Occupation category: Service occupations\n- Industry category: Not applicable",
    ]
    counts = word_counts(tabular)
    assert "occupations" not in counts and "applicable" not in counts
    assert counts["healthcare"] == 1 and counts["service"] == 1
    prose = ["My family runs a bakery; health matters to all of us in the family."]
    assert word_counts(prose)["family"] == 2 and word_counts(prose)["health"] == 1


def test_words_in_nearly_every_text_are_template() -> None:
    people = [
        {"age": 20 + i, "sex": "Female" if i % 2 else "Male", "race": "White", "state": state}
        for i, state in enumerate(["TX", "OH", "ME", "CA", "NY"] * 2)
    ]
    counts = word_counts(meta_persona_text(p) for p in people)
    assert "years" not in counts and "white" not in counts  # in all ten texts
    assert counts["female"] == 5 and counts["texas"] == 2


def _scores(metric: str, rows: list[tuple[str, float, float, float]], simulator: str = "sim"):
    """A scores table: per (tier, value, ci_low, ci_high) two questions with those numbers."""
    import pandas as pd

    records = [
        {
            "attribute": "overall",
            "group": "all",
            "question_id": q,
            "tier": tier,
            "generator": "gen",
            "simulator": simulator,
            "estimator": "logprobs",
            "metric": metric,
            "value": value,
            "summary_ci_low": low,
            "summary_ci_high": high,
            "uniform": 0.05,
            "meta": 0.07,
        }
        for tier, value, low, high in rows
        for q in ("president_2016", "president_2020")
    ]
    return pd.DataFrame(records)


def test_reading_names_the_closest_tier_its_gap_and_interval() -> None:
    from personasim.report.reading import EMBEDDED_CAVEAT, headline_reading

    scores = _scores(
        "national_abs_error",
        [
            ("meta", 0.07, 0.05, 0.09),
            ("persona", 0.02, 0.01, 0.03),
            ("objective", 0.04, 0.035, 0.06),
        ],
    )
    first, caveat = headline_reading({"elections": scores}, ["llamacpp:SmolLM2-135M-Instruct"])
    assert "the persona tier came closest to the real vote" in first
    assert "off by 2.0 points averaged over 2 elections (95% interval 1.0 to 3.0)" in first
    assert "The next closest, the objective tier, was off by 4.0 points" in first
    assert "do not overlap" in first and "50/50 guess would have been off by 5.0" in first
    assert caveat == EMBEDDED_CAVEAT


def test_reading_of_alignment_and_overlap_without_caveat() -> None:
    from personasim.report.reading import headline_reading

    scores = _scores(
        "alignment",
        [("meta", 0.80, 0.75, 0.85), ("subjective", 0.82, 0.78, 0.86)],
        simulator="openai:llama-3.1-70b",
    )
    [text] = headline_reading({"opinionqa": scores}, ["openai:llama-3.1-70b"])
    assert text.startswith("On opinionqa (2 questions), the subjective tier answered most like")
    assert "alignment 0.82 (95% interval 0.78 to 0.86" in text
    assert "Its interval overlaps that of the meta tier." in text
    assert headline_reading({}, ["x"])[0].startswith("This run holds no scores against real")


def _summary(metric: str, rows: list[tuple], tested: bool = True):
    """A hand-made summary table: per (tier, value, ci_low, ci_high, p_equal, detectable) one
    row over three questions; without ``tested``, the columns of a summary written before the
    equality test (no ``corrected``, ``p_equal``, ``detectable``)."""
    import pandas as pd

    frame = pd.DataFrame(
        [
            {
                "tier": tier,
                "generator": "gen",
                "simulator": "openai:llama-3.1-70b",
                "estimator": "logprobs",
                "metric": metric,
                "value": value,
                "ci_low": low,
                "ci_high": high,
                "uniform": 0.2,
                "meta": 0.1,
                "questions": 3,
                "excluded": 0,
                "excluded_share": 0.0,
                "corrected": value,
                "p_equal": p,
                "detectable": detectable,
            }
            for tier, value, low, high, p, detectable in rows
        ]
    )
    return frame if tested else frame.drop(columns=["corrected", "p_equal", "detectable"])


def test_reading_says_indistinguishable_when_the_test_cannot_tell() -> None:
    from personasim.report.reading import headline_reading

    votes = _summary(
        "national_abs_error",
        [("meta", 0.03, 0.0, 0.09, 0.41, 0.062), ("objective", 0.08, 0.01, 0.15, 0.04, 0.07)],
    )
    answers = _summary("alignment", [("meta", 0.93, 0.88, 1.0, 0.27, 0.081)])
    first, second = headline_reading({"votes": votes, "w26": answers}, ["openai:llama"])
    assert "off by 3.0 points averaged over 3 elections (95% interval 0.0 to 9.0)." in first
    assert "At this sample size that share is indistinguishable from the real one" in first
    assert "(p = 0.41 for no difference)" in first
    assert "only a gap of about 6.2 points or more could have been detected" in first
    assert "larger than chance" not in first
    assert "At this sample size its answers are indistinguishable from the real ones" in second
    assert "only a distance of about 0.08 or more could have been detected" in second


def test_reading_states_the_gap_with_its_interval_when_the_test_tells() -> None:
    from personasim.report.reading import headline_reading

    votes = _summary("national_abs_error", [("descriptive", 0.12, 0.08, 0.16, 0.0004, 0.05)])
    answers = _summary("alignment", [("subjective", 0.70, 0.64, 0.75, 0.003, 0.06)])
    first, second = headline_reading({"votes": votes, "w26": answers}, ["openai:llama"])
    assert "off by 12.0 points averaged over 3 elections (95% interval 8.0 to 16.0)" in first
    assert "That gap is larger than chance alone would give at this sample size" in first
    assert "(p < 0.001 for no difference)" in first
    assert "indistinguishable" not in first + second
    assert "a distance of 0.30 (95% interval 0.25 to 0.36), p = 0.003 for no difference" in second


def test_reading_of_an_old_summary_says_nothing_about_the_test() -> None:
    from personasim.report.reading import headline_reading

    votes = _summary("national_abs_error", [("meta", 0.03, 0.0, 0.09, 0.41, 0.062)], False)
    answers = _summary("alignment", [("meta", 0.93, 0.88, 1.0, 0.27, 0.081)], False)
    first, second = headline_reading({"votes": votes, "w26": answers}, ["openai:llama"])
    assert "off by 3.0 points averaged over 3 elections (95% interval 0.0 to 9.0)." in first
    assert "alignment 0.93 (95% interval 0.88 to 1.00" in second
    for text in (first, second):
        assert "indistinguishable" not in text and "chance" not in text and "p = " not in text
