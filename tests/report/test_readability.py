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
