"""The LLM layer: one small interface (``generate``, ``choice_logprobs``), several backends, one
content-addressed cache.

>>> from personasim.llm import get_backend, Cache, ChoiceRequest, Message
>>> backend = get_backend("llamacpp", cache=Cache(".personasim/cache.sqlite"))  # doctest: +SKIP
>>> backend.choice_logprobs([ChoiceRequest(
...     messages=(Message(role="user", content="Is the sky blue?\\nA. Yes\\nB. No"),),
...     labels=("A", "B"))])  # doctest: +SKIP
"""

from personasim.llm.base import (
    Backend,
    BackendStats,
    ChoiceRequest,
    ChoiceResult,
    GenerateRequest,
    GenerateResult,
    Message,
    bound_strings,
)
from personasim.llm.cache import Cache, default_cache_path
from personasim.llm.registry import BACKENDS, get_backend, parse_spec, validate_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendStats",
    "Cache",
    "ChoiceRequest",
    "ChoiceResult",
    "GenerateRequest",
    "GenerateResult",
    "Message",
    "bound_strings",
    "default_cache_path",
    "get_backend",
    "parse_spec",
    "validate_backend",
]
