"""Backends chosen by a spec string, with "did you mean" for unknown names.

Spec strings:

* ``llamacpp`` — the embedded SmolLM2-135M-Instruct model.
* ``llamacpp:/path/model.gguf`` — another local GGUF file.
* ``openai:MODEL`` — an OpenAI-compatible endpoint at ``$OPENAI_BASE_URL`` (or OpenAI's).
* ``openai:MODEL@http://localhost:8000/v1`` — an OpenAI-compatible endpoint at that address.

Options are keyword arguments validated by the backend's pydantic options model
(``extra="forbid"``), so a misspelt option is an error that names the closest valid one.
:func:`validate_backend` checks a spec and its options without loading anything: that is how a
study checks its ``[backends.NAME]`` tables at load time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from personasim.core.errors import ConfigError, did_you_mean, validation_error
from personasim.llm.base import Backend
from personasim.llm.cache import Cache

__all__ = ["BACKENDS", "did_you_mean", "get_backend", "parse_spec", "validate_backend"]


def _llamacpp_model() -> type[BaseModel]:
    from personasim.llm.llamacpp import LlamaCppOptions

    return LlamaCppOptions


def _openai_model() -> type[BaseModel]:
    from personasim.llm.openai_compat import OpenAIOptions

    return OpenAIOptions


def _llamacpp_fields(target: str, options: dict[str, Any]) -> dict[str, Any]:
    return {"model_path": target, **options} if target else options


def _openai_fields(target: str, options: dict[str, Any]) -> dict[str, Any]:
    model, at, base_url = target.partition("@")
    if at and not base_url.strip():
        raise ConfigError(
            f"backend spec 'openai:{target}' has an empty address after '@'",
            hint="write openai:MODEL@http://host:port/v1, or openai:MODEL for $OPENAI_BASE_URL",
        )
    base_url = base_url.strip()
    if model:
        options = {"model": model, **options}
    if base_url:
        options = {"base_url": base_url, **options}
    if "model" not in options:
        raise ConfigError(
            "the openai backend needs a model name",
            hint="write openai:MODEL or openai:MODEL@http://host:port/v1",
        )
    return options


def _llamacpp(options: Any, cache: Cache | None) -> Backend:
    from personasim.llm.llamacpp import LlamaCppBackend

    return LlamaCppBackend(options, cache=cache)


def _openai(options: Any, cache: Cache | None) -> Backend:
    from personasim.llm.openai_compat import OpenAIBackend

    return OpenAIBackend(options, cache=cache)


_OPTION_MODELS: dict[str, Callable[[], type[BaseModel]]] = {
    "llamacpp": _llamacpp_model,
    "openai": _openai_model,
}
_FIELDS: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "llamacpp": _llamacpp_fields,
    "openai": _openai_fields,
}
BACKENDS: dict[str, Callable[[Any, Cache | None], Backend]] = {
    "llamacpp": _llamacpp,
    "openai": _openai,
}
"""Backend name -> factory(validated options, cache)."""


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``name[:target]`` and check the name; returns ``(name, target)``.

    A colon with nothing after it (``llamacpp:``) is an error, not the default model.
    """
    name, colon, target = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}", hint=did_you_mean(name, BACKENDS))
    if colon and not target.strip():
        what = {"llamacpp": "a GGUF path", "openai": "a model name"}[name]
        raise ConfigError(
            f"backend spec {spec.strip()!r} has nothing after ':' ({what} was expected)",
            hint=f"write {name} alone for the default, or {name}:TARGET",
        )
    return name, target.strip()


def validate_backend(
    spec: str, options: Mapping[str, Any] | None = None, source: str | None = None
) -> tuple[str, BaseModel]:
    """Validate a spec string and its options without loading the model: name, target,
    option names and values, the endpoint address, that a named GGUF file exists.

    Returns ``(backend name, options model)``; errors are one line naming ``source`` (default
    ``"NAME options"``) and the field, with "did you mean" for a misspelt option.
    """
    name, target = parse_spec(spec)
    model = _OPTION_MODELS[name]()
    fields = _FIELDS[name](target, dict(options or {}))
    try:
        validated = model(**fields)
    except ValidationError as error:
        hint = "see `personasim llm --help` for the options"
        raise validation_error(
            error,
            source or f"{name} options",
            known_fields=lambda _loc: model.model_fields,
            hint=hint,
        ) from None
    if name == "llamacpp" and getattr(validated, "model_path", None):
        from personasim.llm.llamacpp import LlamaCppBackend

        LlamaCppBackend.resolve_path(validated.model_path)  # the GGUF file exists, unloaded
    return name, validated


def get_backend(spec: str = "llamacpp", cache: Cache | None = None, **options: Any) -> Backend:
    """Build the backend a spec string names (see the module docstring for the forms)."""
    name, validated = validate_backend(spec, options)
    return BACKENDS[name](validated, cache)
