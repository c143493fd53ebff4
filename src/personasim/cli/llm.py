"""CLI commands of the LLM layer: ``personasim smoke`` and ``personasim llm chat|choice``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from personasim.core.errors import ConfigError
from personasim.llm.base import Backend, ChoiceRequest, GenerateRequest, Message
from personasim.llm.cache import Cache, default_cache_path
from personasim.llm.registry import get_backend

MODEL_HELP = "Backend spec: llamacpp, llamacpp:PATH.gguf, openai:MODEL[@URL]."

SMOKE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "first_name": {"type": "string", "maxLength": 24},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "state": {"type": "string", "enum": ["CA", "NY", "TX", "WY"]},
        "hobby": {"type": "string", "maxLength": 40},
    },
    "required": ["first_name", "age", "state", "hobby"],
    "additionalProperties": False,
}
"""The object the smoke run asks for: an invented adult with four fields."""


def parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("n_ctx=8192", "model_path=x.gguf")`` -> ``{"n_ctx": 8192, "model_path": "x.gguf"}``."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option {pair!r} is not KEY=VALUE", hint="e.g. -o n_ctx=8192")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw
    return options


def open_backend(model: str, cache_path: str | None, no_cache: bool, pairs: tuple[str, ...]):
    """The backend a CLI invocation asks for, with its cache unless ``--no-cache``."""
    cache = None if no_cache else Cache(Path(cache_path) if cache_path else default_cache_path())
    return get_backend(model, cache=cache, **parse_options(pairs))


def backend_options(function: Any) -> Any:
    """The options every command that talks to a model shares."""
    function = click.option(
        "--model", "-m", default="llamacpp", show_default=True, help=MODEL_HELP
    )(function)
    function = click.option(
        "--cache",
        "cache_path",
        default=None,
        help="SQLite cache file [default: $PERSONASIM_CACHE or .personasim/cache.sqlite].",
    )(function)
    function = click.option("--no-cache", is_flag=True, help="Do not read or write the cache.")(
        function
    )
    return click.option(
        "--option",
        "-o",
        "pairs",
        multiple=True,
        metavar="KEY=VALUE",
        help="Backend option, e.g. -o n_ctx=8192 (repeatable).",
    )(function)


def run_smoke(backend: Backend) -> dict[str, Any]:
    """A chat reply, a schema-constrained object and a choice distribution, with timings."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    chat = backend.generate(
        [
            GenerateRequest(
                messages=(Message(role="user", content="In one sentence, what is a census?"),),
                max_tokens=60,
            )
        ]
    )[0]
    timings["chat"] = time.perf_counter() - started
    started = time.perf_counter()
    person = backend.generate(
        [
            GenerateRequest(
                messages=(
                    Message(
                        role="user",
                        content="Invent an adult living in the United States. "
                        "Reply with a JSON object.",
                    ),
                ),
                json_schema=SMOKE_SCHEMA,
                max_tokens=120,
            )
        ]
    )[0]
    timings["json"] = time.perf_counter() - started
    started = time.perf_counter()
    choice = backend.choice_logprobs(
        [
            ChoiceRequest(
                messages=(
                    Message(
                        role="user",
                        content="Do you enjoy cooking at home?\n"
                        "A. Yes\nB. No\nC. Sometimes\nAnswer with one letter.",
                    ),
                ),
                labels=("A", "B", "C"),
            )
        ]
    )[0]
    timings["choice"] = time.perf_counter() - started
    return {"chat": chat, "json": person, "choice": choice, "timings": timings}


@click.command("smoke")
@backend_options
def smoke_command(model: str, cache_path: str | None, no_cache: bool, pairs: tuple[str, ...]):
    """End-to-end check of the LLM layer: chat, JSON-schema object, choice distribution."""
    backend = open_backend(model, cache_path, no_cache, pairs)
    report = run_smoke(backend)
    settings = "".join(f"  {key}={value}" for key, value in backend.settings.items())
    click.echo(f"model     {model}{settings}  ({backend.model_identity[:40]})")
    click.echo(f"chat      {report['chat'].text.strip()!r}")
    valid = "valid" if report["json"].ok else f"INVALID: {report['json'].error}"
    click.echo(f"json      {json.dumps(report['json'].value)}  [{valid}]")
    probs = "  ".join(f"{k}={v:.3f}" for k, v in report["choice"].probs.items())
    click.echo(f"choice    {probs}  valid_mass={report['choice'].valid_mass:.3f}")
    times = "  ".join(f"{k}={v:.2f}s" for k, v in report["timings"].items())
    stats = backend.stats
    click.echo(
        f"timings   {times}  model_calls={stats.model_calls} cache_hits={stats.cache_hits}"
        f" {stats.faults_text()}"
    )


@click.group("llm")
def llm_group() -> None:
    """Talk to a model directly (chat, choice scoring)."""


@llm_group.command("chat")
@click.argument("prompt")
@click.option("--system", default=None, help="System message.")
@click.option(
    "--schema",
    "schema_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON schema file constraining the reply.",
)
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(1, 32768))
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(0, 5))
@click.option("--seed", default=None, type=int, help="Sampling seed.")
@backend_options
def chat_command(
    prompt: str,
    system: str | None,
    schema_path: str | None,
    max_tokens: int,
    temperature: float,
    seed: int | None,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
) -> None:
    """Send one chat PROMPT and print the reply."""
    schema = _read_schema(schema_path) if schema_path else None
    messages = ((Message(role="system", content=system),) if system else ()) + (
        Message(role="user", content=prompt),
    )
    backend = open_backend(model, cache_path, no_cache, pairs)
    result = backend.generate(
        [
            GenerateRequest(
                messages=messages,
                json_schema=schema,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
            )
        ]
    )[0]
    click.echo(result.text)
    if not result.ok:
        click.echo(f"warning: {result.error}", err=True)


@llm_group.command("choice")
@click.argument("question")
@click.option(
    "--answer",
    "-a",
    "options_text",
    multiple=True,
    required=True,
    help="An answer option (repeat; labelled A, B, C... in order).",
)
@click.option("--prefix", default="Answer:", show_default=True, help="Answer prefix.")
@backend_options
def choice_command(
    question: str,
    options_text: tuple[str, ...],
    prefix: str,
    model: str,
    cache_path: str | None,
    no_cache: bool,
    pairs: tuple[str, ...],
) -> None:
    """Print the model's probability for each lettered option of QUESTION."""
    if len(options_text) < 2:
        raise ConfigError("give at least two --answer values")
    from personasim.survey.questions import letter

    labels = tuple(letter(i) for i in range(len(options_text)))  # A..Z, then AA, AB...
    lines = "\n".join(f"{label}. {text}" for label, text in zip(labels, options_text, strict=True))
    backend = open_backend(model, cache_path, no_cache, pairs)
    result = backend.choice_logprobs(
        [
            ChoiceRequest(
                messages=(Message(role="user", content=f"{question}\n{lines}"),),
                labels=labels,
                answer_prefix=prefix,
            )
        ]
    )[0]
    for label, text in zip(labels, options_text, strict=True):
        click.echo(f"{label}  {result.probs[label]:.3f}  {text}")
    click.echo(f"valid_mass {result.valid_mass:.3f}")


def _read_schema(path: str) -> dict[str, Any]:
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read schema file {path}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"schema file {path} is not JSON: {error.msg} (line {error.lineno})"
        ) from error
    if not isinstance(schema, dict):
        raise ConfigError(f"schema file {path} must hold a JSON object")
    return schema
