"""``ScriptedStandIn``: a test double of a model backend, named as such.

The real model hits failure paths only by chance (invalid JSON, truncation, an HTTP error, zero
probability mass on the option letters). Tests that must pin those branches every run use this
stand-in: it answers each request from a *script*, a function of the request (and of how often
this stand-in has seen it), and goes through the same :class:`~personasim.llm.base.Backend`
machinery (cache, batching, stats) as the real backends. Happy paths keep running the real model.

A script returns, for a generate request, a :class:`GenerateResult`, a plain string (finished
with :func:`~personasim.llm.base.finish_generation`, so a constrained request is validated like a
real reply) or raises a :class:`~personasim.core.errors.BackendError`; for a choice request, a
:class:`ChoiceResult` or a mapping label -> raw probability (renormalized by
:func:`~personasim.llm.base.label_distribution`, so an all-zero mapping gives ``valid_mass`` 0).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from personasim.llm.base import (
    Backend,
    ChoiceRequest,
    ChoiceResult,
    GenerateRequest,
    GenerateResult,
    finish_generation,
    label_distribution,
)

GenerateScript = Callable[[GenerateRequest, int], "GenerateResult | str"]
"""``script(request, seen)`` -> a reply; ``seen`` counts earlier calls with the same request."""
ChoiceScript = Callable[[ChoiceRequest, int], "ChoiceResult | Mapping[str, float]"]
"""``script(request, seen)`` -> label probabilities; ``seen`` as for :data:`GenerateScript`."""


def _request_text(request: GenerateRequest | ChoiceRequest) -> str:
    """A stable text of a request (what ``seen`` counts by)."""
    return json.dumps(request.model_dump(mode="json"), sort_keys=True)


def truncated(request: GenerateRequest, text: str = '{"name": "unfinish') -> GenerateResult:
    """A reply cut off at ``max_tokens`` (``finish_reason`` ``length``)."""
    return finish_generation(request, text, "length")


def backend_failure(error: str = "HTTP 503 from the stand-in endpoint") -> GenerateResult:
    """A generation that failed in the backend (``finish_reason`` ``error``; never cached)."""
    return GenerateResult(text="", finish_reason="error", ok=False, error=error)


class ScriptedStandIn(Backend):
    """A stand-in backend that replies from scripts (see the module docstring). Not a model."""

    name = "scripted"

    def __init__(
        self,
        generate_script: GenerateScript | None = None,
        choice_script: ChoiceScript | None = None,
        identity: str = "scripted-stand-in",
        cache: Any = None,
    ) -> None:
        super().__init__(cache=cache)
        self.generate_script = generate_script
        self.choice_script = choice_script
        self.identity = identity
        self.seen: Counter[str] = Counter()
        """How often each request text reached the stand-in (cache hits excluded)."""
        self.calls: list[GenerateRequest | ChoiceRequest] = []
        """Every request that reached the stand-in, in order."""

    @property
    def model_identity(self) -> str:
        """The identity given at construction (part of cache keys)."""
        return self.identity

    @property
    def display_name(self) -> str:
        """``scripted:IDENTITY``."""
        return f"scripted:{self.identity}"

    def _count(self, request: GenerateRequest | ChoiceRequest) -> int:
        """Record a request; return how often it was seen before."""
        text = _request_text(request)
        seen = self.seen[text]
        self.seen[text] += 1
        self.calls.append(request)
        return seen

    def _run_generate(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        """Each request's scripted reply."""
        if self.generate_script is None:
            raise NotImplementedError("this ScriptedStandIn has no generate script")
        out = []
        for request in requests:
            reply = self.generate_script(request, self._count(request))
            if isinstance(reply, str):
                reply = finish_generation(request, reply, "stop")
            out.append(reply)
        return out

    def _run_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        """Each request's scripted label distribution."""
        if self.choice_script is None:
            raise NotImplementedError("this ScriptedStandIn has no choice script")
        out = []
        for request in requests:
            reply = self.choice_script(request, self._count(request))
            if not isinstance(reply, ChoiceResult):
                raw = {label: float(reply.get(label, 0.0)) for label in request.labels}
                reply = label_distribution(raw)
            out.append(reply)
        return out
