"""Pure parts of the LLM layer: request validation, result parsing, cache, registry, helpers."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from pydantic import ValidationError

from personasim.cli.llm import parse_options
from personasim.core.errors import ConfigError
from personasim.llm import Cache, ChoiceRequest, GenerateRequest, Message, bound_strings, parse_spec
from personasim.llm.base import finish_generation, label_distribution
from personasim.llm.cache import cache_key
from personasim.llm.openai_compat import (
    _distribution,
    _refuses_json_schema,
    _schema_of,
    _unwrap_choice,
    _with_prefix_line,
)
from personasim.llm.registry import did_you_mean, get_backend

USER = (Message(role="user", content="hi"),)
SCHEMA = {
    "type": "object",
    "properties": {"age": {"type": "integer", "maximum": 120}, "name": {"type": "string"}},
    "required": ["age"],
}


def test_request_rejects_two_constraints_and_empty_messages() -> None:
    with pytest.raises(ValidationError, match="not both"):
        GenerateRequest(messages=USER, json_schema=SCHEMA, choices=("a", "b"))
    with pytest.raises(ValidationError, match="at least one message"):
        GenerateRequest(messages=())
    with pytest.raises(ValidationError, match="extra"):
        GenerateRequest(messages=USER, temprature=0.5)


def test_choice_request_labels_are_stripped_and_distinct() -> None:
    assert ChoiceRequest(messages=USER, labels=(" A", "B ")).labels == ("A", "B")
    with pytest.raises(ValidationError, match="distinct"):
        ChoiceRequest(messages=USER, labels=("A", " A"))
    with pytest.raises(ValidationError, match="at least two"):
        ChoiceRequest(messages=USER, labels=("A",))


def test_bound_strings_adds_max_length_only_to_free_strings() -> None:
    schema = {
        "type": "object",
        "properties": {
            "free": {"type": "string"},
            "kept": {"type": "string", "maxLength": 5},
            "enum": {"type": "string", "enum": ["x", "y"]},
            "items": {"type": "array", "items": {"type": "string"}},
        },
    }
    bounded = bound_strings(schema, max_length=77)
    props = bounded["properties"]
    assert props["free"]["maxLength"] == 77
    assert props["kept"]["maxLength"] == 5
    assert "maxLength" not in props["enum"]
    assert props["items"]["items"]["maxLength"] == 77
    assert "maxLength" not in schema["properties"]["free"], "the input is not modified"


def test_finish_generation_validates_json_and_reports_truncation() -> None:
    request = GenerateRequest(messages=USER, json_schema=SCHEMA, max_tokens=10)
    good = finish_generation(request, '{"age": 30, "name": "Ann"}', "stop")
    assert good.ok and good.value == {"age": 30, "name": "Ann"}
    bad_json = finish_generation(request, '{"age": 3', "stop")
    assert not bad_json.ok and "not valid JSON" in bad_json.error
    violation = finish_generation(request, '{"age": 300}', "stop")
    assert not violation.ok and "schema violation at age" in violation.error
    truncated = finish_generation(request, '{"age": 3', "length")
    assert truncated.truncated and not truncated.ok
    assert "truncated at max_tokens=10" in truncated.error
    assert truncated.value is None


def test_finish_generation_checks_choices() -> None:
    request = GenerateRequest(messages=USER, choices=("red", "green"))
    assert finish_generation(request, " red\n", "stop").value == "red"
    wrong = finish_generation(request, "blue", "stop")
    assert not wrong.ok and "not one of the choices" in wrong.error


def test_label_distribution_renormalizes_and_keeps_mass() -> None:
    result = label_distribution({"A": 0.3, "B": 0.1})
    assert result.probs == pytest.approx({"A": 0.75, "B": 0.25})
    assert result.valid_mass == pytest.approx(0.4)
    nothing = label_distribution({"A": 0.0, "B": 0.0})
    assert nothing.valid_mass == 0.0 and nothing.probs == {"A": 0.5, "B": 0.5}


def test_cache_key_is_canonical() -> None:
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_cache_get_computes_once(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    calls = []
    value, cached = cache.get("k", lambda: calls.append(1) or {"x": 1})
    again, cached_again = cache.get("k", lambda: calls.append(1) or {"x": 2})
    assert (value, cached) == ({"x": 1}, False)
    assert (again, cached_again) == ({"x": 1}, True)
    assert calls == [1] and len(cache) == 1


def _write_many(path: str, worker: int) -> None:
    cache = Cache(path)
    for batch in range(20):
        cache.store({f"shared-{i}": {"i": i} for i in range(batch, batch + 10)})
        cache.store({f"w{worker}-{batch}": {"worker": worker}})


def test_cache_survives_concurrent_writer_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    Cache(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(path, w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    cache = Cache(path)
    assert len(cache) == 29 + 4 * 20
    assert cache.lookup(["shared-5"]) == {"shared-5": {"i": 5}}


def test_unwritable_cache_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot open the cache"):
        Cache(blocker / "sub" / "c.sqlite")


def test_registry_did_you_mean() -> None:
    with pytest.raises(ConfigError) as error:
        parse_spec("lamacpp")
    assert "did you mean 'llamacpp'" in error.value.one_line()
    assert parse_spec("openai:m@http://h:1/v1") == ("openai", "m@http://h:1/v1")
    assert did_you_mean("zzz", ["a", "b"]) == "known: a, b"
    with pytest.raises(ConfigError, match="needs a model name"):
        get_backend("openai")


def test_openai_options_are_validated_with_suggestions() -> None:
    with pytest.raises(ConfigError) as error:
        get_backend("openai:m@http://127.0.0.1:9/v1", max_concurency=3)
    assert "did you mean 'max_concurrency'" in error.value.one_line()
    with pytest.raises(ConfigError, match="openai options: top_logprobs"):
        get_backend("openai:m@http://127.0.0.1:9/v1", top_logprobs=0)


def test_parse_cli_options() -> None:
    assert parse_options(("n_ctx=8192", "model_path=x.gguf", "flag=true")) == {
        "n_ctx": 8192,
        "model_path": "x.gguf",
        "flag": True,
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_options(("oops",))


def test_openai_request_building_helpers() -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "Q?\n"}]
    changed = _with_prefix_line(messages, "Answer:")
    assert changed[-1]["content"] == "Q?\n\nAnswer:" and messages[-1]["content"] == "Q?\n"
    wrapped = _schema_of(GenerateRequest(messages=USER, choices=("x", "y")))
    assert wrapped["properties"]["choice"]["enum"] == ["x", "y"]
    assert _unwrap_choice(json.dumps({"choice": "y"})) == "y"
    assert _unwrap_choice("plain") == "plain"


def test_openai_top_logprobs_count_both_label_forms() -> None:
    import math

    top = {"A": math.log(0.2), " A": math.log(0.1), " B": math.log(0.3), "Answer": math.log(0.4)}
    result = _distribution(("A", "B"), top)
    assert result.valid_mass == pytest.approx(0.6)
    assert result.probs == pytest.approx({"A": 0.5, "B": 0.5})


def test_json_schema_refusal_detection() -> None:
    class Refusal(Exception):
        def __init__(self, status: int, text: str) -> None:
            super().__init__(text)
            self.status_code = status

    assert _refuses_json_schema(Refusal(400, "bad"))
    assert _refuses_json_schema(Refusal(500, "body.response_format.type: literal_error"))
    assert not _refuses_json_schema(Refusal(500, "out of memory"))
