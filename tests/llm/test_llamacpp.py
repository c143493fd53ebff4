"""The embedded backend on the real SmolLM2-135M-Instruct model (loaded once per session)."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from personasim.core.errors import BackendError, ConfigError
from personasim.llm import Cache, ChoiceRequest, GenerateRequest, Message
from personasim.llm.llamacpp import LlamaCppBackend, LlamaCppOptions, default_threads

PERSONA = Message(
    role="system",
    content="You are answering a survey as this person: a 52-year-old woman from Ohio, a "
    "retired teacher, married, who volunteers at her church and gardens on weekends.",
)
QUESTIONS = [
    "How often do you read a newspaper?\nA. Daily\nB. Weekly\nC. Rarely\nD. Never",
    "Should the city build more bike lanes?\nA. Yes\nB. No\nC. Not sure",
    "How much do you trust scientists?\nA. A lot\nB. Some\nC. Not much\nD. Not at all",
]
PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 18, "maximum": 90},
        "employed": {"type": "boolean"},
        "state": {"type": "string", "enum": ["OH", "TX", "CA"]},
    },
    "required": ["name", "age", "employed", "state"],
    "additionalProperties": False,
}

pytestmark = pytest.mark.slow


def choice(question: str) -> ChoiceRequest:
    labels = tuple(line[0] for line in question.splitlines()[1:])
    return ChoiceRequest(messages=(PERSONA, Message(role="user", content=question)), labels=labels)


def test_chat_reply(fresh_embedded: LlamaCppBackend) -> None:
    [reply] = fresh_embedded.generate(
        [GenerateRequest(messages=(Message(role="user", content="Name a fruit."),), max_tokens=30)]
    )
    assert reply.text.strip() and reply.finish_reason in ("stop", "length")
    assert reply.completion_tokens > 0 and reply.prompt_tokens > 0


def test_json_schema_output_validates(fresh_embedded: LlamaCppBackend) -> None:
    request = GenerateRequest(
        messages=(Message(role="user", content="Invent a person. Reply in JSON."),),
        json_schema=PERSON_SCHEMA,
        max_tokens=120,
    )
    [result] = fresh_embedded.generate([request])
    assert result.ok, result.error
    jsonschema.validate(result.value, PERSON_SCHEMA)


def test_truncated_json_is_reported_not_hidden(fresh_embedded: LlamaCppBackend) -> None:
    request = GenerateRequest(
        messages=(Message(role="user", content="Invent a person. Reply in JSON."),),
        json_schema=PERSON_SCHEMA,
        max_tokens=4,
    )
    [result] = fresh_embedded.generate([request])
    assert result.truncated and not result.ok and result.value is None
    assert "truncated at max_tokens=4" in result.error


def test_choices_constrain_the_reply(fresh_embedded: LlamaCppBackend) -> None:
    request = GenerateRequest(
        messages=(Message(role="user", content="Which is a color?"),),
        choices=("purple", "table", "seven"),
        max_tokens=8,
    )
    [result] = fresh_embedded.generate([request])
    assert result.ok and result.value in ("purple", "table", "seven")


def test_choice_probabilities_sum_to_one(fresh_embedded: LlamaCppBackend) -> None:
    results = fresh_embedded.choice_logprobs([choice(q) for q in QUESTIONS])
    for question, result in zip(QUESTIONS, results, strict=True):
        assert set(result.probs) == {line[0] for line in question.splitlines()[1:]}
        assert sum(result.probs.values()) == pytest.approx(1.0, abs=1e-9)
        assert 0.0 < result.valid_mass <= 1.0
        assert all(0.0 <= p <= 1.0 for p in result.probs.values())


def test_prefix_reuse_gives_the_cold_result(fresh_embedded: LlamaCppBackend) -> None:
    warm = fresh_embedded.choice_logprobs([choice(q) for q in QUESTIONS])
    assert fresh_embedded.stats.reused_prompt_tokens > 0, "the persona prefix was not reused"
    for question, warm_result in zip(QUESTIONS, warm, strict=True):
        fresh_embedded._llm.reset()  # forget the KV cache: the next call is cold
        [cold] = fresh_embedded.choice_logprobs([choice(question)])
        assert warm_result == cold  # bit for bit


def test_a_result_does_not_depend_on_what_ran_before(fresh_embedded: LlamaCppBackend) -> None:
    request, other = choice(QUESTIONS[0]), choice(QUESTIONS[1])
    fresh_embedded._llm.reset()
    [cold] = fresh_embedded.choice_logprobs([request])
    # the same prompt again (all but its last token cached), after another question, and after
    # a generation whose reply tokens were decoded one at a time
    [repeated] = fresh_embedded.choice_logprobs([request])
    fresh_embedded.choice_logprobs([other])
    [after_other] = fresh_embedded.choice_logprobs([request])
    fresh_embedded.generate([GenerateRequest(messages=request.messages, max_tokens=6)])
    [after_generation] = fresh_embedded.choice_logprobs([request])
    assert cold == repeated == after_other == after_generation


def test_seeded_generation_does_not_depend_on_what_ran_before(
    fresh_embedded: LlamaCppBackend,
) -> None:
    ask = (PERSONA, Message(role="user", content="Describe your weekend in one sentence."))
    request = GenerateRequest(messages=ask, temperature=1.0, seed=7, max_tokens=24)
    fresh_embedded._llm.reset()
    texts = [fresh_embedded.generate([request])[0].text]
    texts.append(fresh_embedded.generate([request])[0].text)  # the same prompt just ran
    fresh_embedded.choice_logprobs([choice(QUESTIONS[2])])
    texts.append(fresh_embedded.generate([request])[0].text)  # the persona prefix is cached
    assert texts[0] and texts.count(texts[0]) == 3, texts


def test_rerun_is_served_by_the_cache(fresh_embedded: LlamaCppBackend, tmp_path: Path) -> None:
    fresh_embedded.cache = Cache(tmp_path / "cache.sqlite")
    requests = [choice(q) for q in QUESTIONS]
    generate = [GenerateRequest(messages=(PERSONA,), max_tokens=10)]
    first = fresh_embedded.choice_logprobs(requests) + fresh_embedded.generate(generate)
    calls = fresh_embedded.stats.model_calls
    second = fresh_embedded.choice_logprobs(requests) + fresh_embedded.generate(generate)
    assert calls == 4 and fresh_embedded.stats.model_calls == calls, "the rerun called the model"
    assert fresh_embedded.stats.cache_hits == 4
    assert first == second


def test_sampled_generation_is_cached_only_with_its_seed(
    fresh_embedded: LlamaCppBackend, tmp_path: Path
) -> None:
    fresh_embedded.cache = Cache(tmp_path / "cache.sqlite")
    ask = (Message(role="user", content="Tell me a word."),)
    seeded = GenerateRequest(messages=ask, temperature=1.0, seed=11, max_tokens=8)
    unseeded = GenerateRequest(messages=ask, temperature=1.0, max_tokens=8)
    fresh_embedded.generate([seeded, unseeded])
    fresh_embedded.generate([seeded, unseeded])
    assert fresh_embedded.stats.cache_hits == 1 and fresh_embedded.stats.model_calls == 3
    assert len(fresh_embedded.cache) == 1


def test_seeded_sampling_is_reproducible(fresh_embedded: LlamaCppBackend) -> None:
    ask = (Message(role="user", content="Write a short sentence about rain."),)
    request = GenerateRequest(messages=ask, temperature=1.2, seed=5, max_tokens=16)
    assert fresh_embedded.generate([request])[0].text == fresh_embedded.generate([request])[0].text


def test_order_of_results_follows_requests(fresh_embedded: LlamaCppBackend) -> None:
    requests = [choice(q) for q in reversed(QUESTIONS)]
    results = fresh_embedded.choice_logprobs(requests)
    assert [set(r.probs) for r in results] == [set(r.labels) for r in requests]


def test_too_long_prompt_is_a_clear_error(fresh_embedded: LlamaCppBackend) -> None:
    long_text = "word " * 5000
    with pytest.raises(BackendError, match="exceeds the context window"):
        fresh_embedded.choice_logprobs(
            [ChoiceRequest(messages=(Message(role="user", content=long_text),), labels=("A", "B"))]
        )


def test_multi_token_label_is_rejected(fresh_embedded: LlamaCppBackend) -> None:
    with pytest.raises(ConfigError, match="not a single token"):
        fresh_embedded.choice_logprobs(
            [ChoiceRequest(messages=(PERSONA,), labels=("Strongly agree", "Strongly disagree"))]
        )


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="model file not found"):
        LlamaCppBackend(LlamaCppOptions(model_path=str(tmp_path / "nope.gguf")))


def test_thread_count_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONASIM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("PERSONASIM_THREADS", "many")
    with pytest.raises(ConfigError, match="PERSONASIM_THREADS"):
        default_threads()
    monkeypatch.delenv("PERSONASIM_THREADS")
    assert 1 <= default_threads() <= 8
