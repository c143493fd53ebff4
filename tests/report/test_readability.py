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
    people = [{"age": 20 + i, "sex": "Female" if i % 2 else "Male", "race": "White",
               "state": state} for i, state in enumerate(["TX", "OH", "ME", "CA", "NY"] * 2)]
    counts = word_counts(meta_persona_text(p) for p in people)
    assert "years" not in counts and "white" not in counts  # in all ten texts
    assert counts["female"] == 5 and counts["texas"] == 2


def _scores(metric: str, rows: list[tuple[str, float, float, float]], simulator: str = "sim"):
    """A scores table: per (tier, value, ci_low, ci_high) two questions with those numbers."""
    import pandas as pd

    records = [
        {"attribute": "overall", "group": "all", "question_id": q, "tier": tier,
         "generator": "gen", "simulator": simulator, "estimator": "logprobs", "metric": metric,
         "value": value, "summary_ci_low": low, "summary_ci_high": high, "uniform": 0.05,
         "meta": 0.07}
        for tier, value, low, high in rows for q in ("president_2016", "president_2020")
    ]
    return pd.DataFrame(records)


def test_reading_names_the_closest_tier_its_gap_and_interval() -> None:
    from personasim.report.reading import EMBEDDED_CAVEAT, headline_reading

    scores = _scores("national_abs_error", [("meta", 0.07, 0.05, 0.09),
                                            ("persona", 0.02, 0.01, 0.03),
                                            ("objective", 0.04, 0.035, 0.06)])
    first, caveat = headline_reading({"elections": scores}, ["llamacpp:SmolLM2-135M-Instruct"])
    assert "the persona tier came closest to the real vote" in first
    assert "off by 2.0 points averaged over 2 elections (95% interval 1.0 to 3.0)" in first
    assert "The next closest, the objective tier, was off by 4.0 points" in first
    assert "do not overlap" in first and "50/50 guess would have been off by 5.0" in first
    assert caveat == EMBEDDED_CAVEAT


def test_reading_of_alignment_and_overlap_without_caveat() -> None:
    from personasim.report.reading import headline_reading

    scores = _scores("alignment", [("meta", 0.80, 0.75, 0.85), ("subjective", 0.82, 0.78, 0.86)],
                     simulator="openai:llama-3.1-70b")
    [text] = headline_reading({"opinionqa": scores}, ["openai:llama-3.1-70b"])
    assert text.startswith("On opinionqa (2 questions), the subjective tier answered most like")
    assert "alignment 0.82 (95% interval 0.78 to 0.86" in text
    assert "Its interval overlaps that of the meta tier." in text
    assert headline_reading({}, ["x"])[0].startswith("This run holds no scores against real")
