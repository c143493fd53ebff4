"""Backends chosen by a spec string, with "did you mean" for unknown names.

Spec strings:

* ``llamacpp`` — the embedded SmolLM2-135M-Instruct model.
* ``llamacpp:/path/model.gguf`` — another local GGUF file.
* ``openai:MODEL`` — an OpenAI-compatible endpoint at ``$OPENAI_BASE_URL`` (or OpenAI's).
* ``openai:MODEL@http://localhost:8000/v1`` — an OpenAI-compatible endpoint at that address.

Options are keyword arguments validated by the backend's pydantic options model
(``extra="forbid"``), so a misspelt option is an error that names the closest valid one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from personasim.errors import ConfigError
from personasim.llm.base import Backend
from personasim.llm.cache import Cache


def _llamacpp(target: str, options: dict[str, Any], cache: Cache | None) -> Backend:
    from personasim.llm.llamacpp import LlamaCppBackend, LlamaCppOptions

    if target:
        options = {"model_path": target, **options}
    return LlamaCppBackend(_validated(LlamaCppOptions, options, "llamacpp"), cache=cache)


def _openai(target: str, options: dict[str, Any], cache: Cache | None) -> Backend:
    from personasim.llm.openai_compat import OpenAIBackend, OpenAIOptions

    model, _, base_url = target.partition("@")
    if model:
        options = {"model": model, **options}
    if base_url:
        options = {"base_url": base_url, **options}
    if "model" not in options:
        raise ConfigError(
            "the openai backend needs a model name",
            hint="write openai:MODEL or openai:MODEL@http://host:port/v1",
        )
    return OpenAIBackend(_validated(OpenAIOptions, options, "openai"), cache=cache)


BACKENDS: dict[str, Callable[[str, dict[str, Any], Cache | None], Backend]] = {
    "llamacpp": _llamacpp,
    "openai": _openai,
}
"""Backend name -> factory(target, options, cache)."""


def did_you_mean(name: str, known: list[str]) -> str:
    """A hint naming the closest known names, or listing them all."""
    close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "choose one of " + ", ".join(sorted(known))


def _validated(model: type[BaseModel], options: dict[str, Any], backend: str) -> Any:
    try:
        return model(**options)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(options)"
        if first["type"] == "extra_forbidden":
            known = list(model.model_fields)
            raise ConfigError(
                f"unknown {backend} option {field!r}", hint=did_you_mean(field, known)
            ) from error
        raise ConfigError(
            f"invalid {backend} option {field!r}: {first['msg']}",
            hint="see `personasim llm --help` for the options",
        ) from error


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``name[:target]`` and check the name; returns ``(name, target)``."""
    name, _, target = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}", hint=did_you_mean(name, list(BACKENDS)))
    return name, target.strip()


def get_backend(spec: str = "llamacpp", cache: Cache | None = None, **options: Any) -> Backend:
    """Build the backend a spec string names (see the module docstring for the forms)."""
    name, target = parse_spec(spec)
    return BACKENDS[name](target, options, cache)
