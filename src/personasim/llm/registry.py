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


def _llamacpp_options(target: str, options: dict[str, Any]) -> Any:
    """Validated llama.cpp options; a named GGUF file must exist (checked without loading it)."""
    from personasim.llm.llamacpp import LlamaCppBackend, LlamaCppOptions

    if target:
        options = {"model_path": target, **options}
    checked = _validated(LlamaCppOptions, options, "llamacpp")
    if checked.model_path is not None:
        LlamaCppBackend.resolve_path(checked.model_path)
    return checked


def _llamacpp(target: str, options: dict[str, Any], cache: Cache | None) -> Backend:
    from personasim.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend(_llamacpp_options(target, options), cache=cache)


def _openai_options(target: str, options: dict[str, Any]) -> Any:
    """Validated endpoint options from ``MODEL[@URL]`` and keyword options (no request made)."""
    from personasim.llm.openai_compat import OpenAIOptions

    model, at, base_url = target.partition("@")
    if at and not base_url.strip():
        raise ConfigError(
            f"backend spec 'openai:{target}' has an empty address after '@'",
            hint="write openai:MODEL@http://host:port/v1, or openai:MODEL for $OPENAI_BASE_URL",
        )
    if model:
        options = {"model": model, **options}
    if base_url:
        options = {"base_url": base_url.strip(), **options}
    if "model" not in options:
        raise ConfigError(
            "the openai backend needs a model name",
            hint="write openai:MODEL or openai:MODEL@http://host:port/v1",
        )
    return _validated(OpenAIOptions, options, "openai")


def _openai(target: str, options: dict[str, Any], cache: Cache | None) -> Backend:
    from personasim.llm.openai_compat import OpenAIBackend

    return OpenAIBackend(_openai_options(target, options), cache=cache)


BACKENDS: dict[str, Callable[[str, dict[str, Any], Cache | None], Backend]] = {
    "llamacpp": _llamacpp,
    "openai": _openai,
}
"""Backend name -> factory(target, options, cache)."""

OPTION_CHECKS: dict[str, Callable[[str, dict[str, Any]], Any]] = {
    "llamacpp": _llamacpp_options,
    "openai": _openai_options,
}
"""Backend name -> check(target, options) returning the validated options model."""


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
    """Split ``name[:target]`` and check the name; returns ``(name, target)``.

    A colon with nothing after it (``llamacpp:``) is an error, not the default model.
    """
    name, colon, target = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}", hint=did_you_mean(name, list(BACKENDS)))
    if colon and not target.strip():
        what = {"llamacpp": "a GGUF path", "openai": "a model name"}[name]
        raise ConfigError(
            f"backend spec {spec.strip()!r} has nothing after ':' ({what} was expected)",
            hint=f"write {name} alone for the default, or {name}:TARGET",
        )
    return name, target.strip()


def check_spec(spec: str, **options: Any) -> None:
    """Check a backend spec and its options as :func:`get_backend` would, without loading a
    model or sending a request: name, target, option names and values, endpoint address,
    and that a named GGUF file exists. Raises :class:`ConfigError` / ``BackendError``."""
    name, target = parse_spec(spec)
    OPTION_CHECKS[name](target, options)


def get_backend(spec: str = "llamacpp", cache: Cache | None = None, **options: Any) -> Backend:
    """Build the backend a spec string names (see the module docstring for the forms)."""
    name, target = parse_spec(spec)
    return BACKENDS[name](target, options, cache)
