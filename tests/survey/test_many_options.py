"""A question with more options than letters: labels keep going AA, AB... (docs/surveys.md).

The loader labels the 27th option ``AA``; the simulator shows it as ``AA.``, lists it among the
possible answers, parses ``Answer: AA`` and reads its probability from the real embedded model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from personasim.core.errors import ConfigError
from personasim.llm import ChoiceRequest
from personasim.simulate.prompt import build_messages, format_question, parse_answer
from personasim.survey.loaders import load_survey
from personasim.survey.questions import MAX_OPTIONS, Question, letter

N_OPTIONS = 28


def _survey_file(tmp_path: Path, count: int) -> Path:
    options = "\n".join(f"      - Occupation number {i + 1}" for i in range(count))
    path = tmp_path / "jobs.yaml"
    path.write_text(
        f"id: jobs\nquestions:\n  - id: job\n    text: What is your job?\n    options:\n{options}\n"
    )
    return path


def test_letters_keep_going_past_z() -> None:
    assert [letter(i) for i in (0, 25, 26, 27, 51, 52, 701)] == [
        "A",
        "Z",
        "AA",
        "AB",
        "AZ",
        "BA",
        "ZZ",
    ]


def test_loader_labels_the_27th_option_aa(tmp_path: Path) -> None:
    question = load_survey(str(_survey_file(tmp_path, N_OPTIONS))).question("job")
    assert question.labels[25:] == ["Z", "AA", "AB"]
    assert question.index_of("AA") == 26 and question.texts[26] == "Occupation number 27"


def test_loader_refuses_more_options_than_labels(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_survey(str(_survey_file(tmp_path, MAX_OPTIONS + 1)))
    line = error.value.one_line()
    assert "jobs.yaml" in line and f"{MAX_OPTIONS + 1} options" in line and "A..ZZ" in line


def test_prompt_shows_double_letters_and_parses_them(tmp_path: Path) -> None:
    question = load_survey(str(_survey_file(tmp_path, N_OPTIONS))).question("job")
    order = list(reversed(range(N_OPTIONS)))  # permuted: AA now shows the 2nd original option
    text = format_question(question, order)
    assert "\nAA. Occupation number 2\n" in text and "\nAB. Occupation number 1\n" in text
    assert text.endswith("Possible answers: " + ", ".join(letter(i) for i in range(28)) + ".")
    letters = [letter(i) for i in range(N_OPTIONS)]
    assert parse_answer("Answer: AB", letters) == "AB"
    assert parse_answer("Answer: AC", letters) is None
    assert question.to_original([0.0] * 27 + [1.0], order)[0] == 1.0


def test_embedded_model_reads_double_letter_labels(fresh_embedded, tmp_path: Path) -> None:
    question: Question = load_survey(str(_survey_file(tmp_path, N_OPTIONS))).question("job")
    labels = tuple(letter(i) for i in range(N_OPTIONS))
    request = ChoiceRequest(
        messages=build_messages("A nurse from Ohio, aged 41.", question), labels=labels
    )
    [result] = fresh_embedded.choice_logprobs([request])
    assert set(result.probs) == set(labels)
    assert sum(result.probs.values()) == pytest.approx(1.0)
    assert 0.0 < result.valid_mass <= 1.0
