"""The LLM interface every backend implements: requests and results are plain pydantic data.

Two operations:

* :meth:`Backend.generate` — chat messages -> text, optionally constrained to a JSON schema or to
  one of a list of strings.
* :meth:`Backend.choice_logprobs` — chat messages + an answer prefix (``"Answer:"``) + option labels
  (``"A"``, ``"B"``...) -> the next-token probability of each label, renormalized over the labels,
  and ``valid_mass``, the probability that landed on any label before renormalization.

Results are data, not exceptions: a reply that is truncated or fails validation comes back with
``ok=False`` and an ``error`` so that callers can count, retry or keep it as invalid.
"""

from __future__ import annotations

import abc
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from tqdm import tqdm

from personasim.core.errors import ConfigError
from personasim.llm.cache import Cache, cache_key

Role = Literal["system", "user", "assistant"]

#: Seconds before a progress bar first shows: quick work and quick failures print no bar.
PROGRESS_DELAY_SECONDS = 1.0

#: Default ``maxLength`` given to a free string of a JSON schema that has none (see
#: :func:`bound_strings`): an unbounded string lets a small model ramble until ``max_tokens``.
DEFAULT_MAX_STRING_LENGTH = 400


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    """Who speaks: ``system``, ``user`` or ``assistant``."""
    content: str
    """The text of the message."""


def _some_messages(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """A request's messages, refusing none at all."""
    if not messages:
        raise ValueError("a request needs at least one message")
    return messages


Messages = Annotated[tuple[Message, ...], AfterValidator(_some_messages)]
"""The chat messages of a request: at least one."""


class GenerateRequest(BaseModel):
    """Chat messages -> text, optionally constrained (JSON schema or a fixed list of choices)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: Messages
    """The conversation; the reply continues after the last message."""
    json_schema: dict[str, Any] | None = None
    """Constrain the reply to a JSON document valid against this schema."""
    choices: tuple[str, ...] | None = None
    """Constrain the reply to exactly one of these strings."""
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    """Sampling temperature; 0 means greedy (deterministic) decoding."""
    max_tokens: int = Field(default=256, ge=1, le=32768)
    """Upper bound on generated tokens; hitting it marks the result truncated."""
    seed: int | None = None
    """Sampling seed. A sampled request (temperature > 0) is cached only when it has one."""

    @model_validator(mode="after")
    def _one_constraint(self) -> GenerateRequest:
        if self.json_schema is not None and self.choices is not None:
            raise ValueError("give json_schema or choices, not both")
        if self.choices is not None and (not self.choices or any(not c for c in self.choices)):
            raise ValueError("choices must be a non-empty list of non-empty strings")
        return self

    @property
    def sampled(self) -> bool:
        """True when decoding is random (temperature > 0)."""
        return self.temperature > 0.0


class ChoiceRequest(BaseModel):
    """Chat messages + answer prefix + option labels -> a probability per label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: Messages
    """The conversation; the reply starts with ``answer_prefix``."""
    labels: tuple[str, ...]
    """Option labels whose next-token probability is read (e.g. ``("A", "B", "C")``)."""
    answer_prefix: str = "Answer:"
    """Text the assistant's reply starts with; the label is the token that follows it."""

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        stripped = [label.strip() for label in labels]
        if len(labels) < 2 or any(not s for s in stripped):
            raise ValueError("give at least two non-empty option labels")
        if len(set(stripped)) != len(stripped):
            raise ValueError(f"option labels must be distinct, got {list(labels)}")
        return tuple(stripped)


FinishReason = Literal["stop", "length", "error"]


class GenerateResult(BaseModel):
    """The reply to a :class:`GenerateRequest`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    """The raw text the model produced."""
    value: Any = None
    """The parsed JSON document (json_schema) or the chosen string (choices), when valid."""
    finish_reason: FinishReason
    """``stop`` (ended by itself), ``length`` (hit max_tokens) or ``error``."""
    ok: bool
    """True when the reply is complete and satisfies its constraint."""
    error: str | None = None
    """Why the reply is not ok: truncation, JSON or schema violation, backend failure."""
    prompt_tokens: int = 0
    """Tokens in the prompt (as the backend counts them)."""
    completion_tokens: int = 0
    """Tokens generated."""

    @property
    def truncated(self) -> bool:
        """True when generation stopped at ``max_tokens``."""
        return self.finish_reason == "length"


class ChoiceResult(BaseModel):
    """The label distribution for a :class:`ChoiceRequest`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    probs: dict[str, float]
    """Probability per label, renormalized to sum to 1 over the labels."""
    valid_mass: float = Field(ge=0.0, le=1.0)
    """Probability on any label (with or without a leading space) before renormalization."""
    top_tokens: dict[str, float] = Field(default_factory=dict)
    """The most likely next tokens with their probabilities, for diagnostics."""


Request = GenerateRequest | ChoiceRequest
Result = GenerateResult | ChoiceResult


@dataclass
class BackendStats:
    """Counters a backend keeps while it runs (not part of any cache key)."""

    model_calls: int = 0
    """Requests that reached the model (cache misses)."""
    cache_hits: int = 0
    """Requests answered from the cache."""
    prompt_tokens: int = 0
    """Prompt tokens sent to the model."""
    reused_prompt_tokens: int = 0
    """Prompt tokens whose evaluation was reused from the previous request (llama.cpp)."""
    retries: int = 0
    """Retried calls (OpenAI-compatible endpoints)."""
    faults: dict[str, int] = field(default_factory=dict)
    """Failed tries by kind (``http_503``, ``http_429``, ``timeout``, ``connection``,
    ``bad_body``): each was retried, or ended the run when retries ran out."""
    seconds: float = 0.0
    """Wall time spent in model calls."""
    extra: dict[str, int] = field(default_factory=dict)

    def count_fault(self, kind: str) -> None:
        """Count one failed try of ``kind`` (callers hold their own lock when threaded)."""
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def faults_text(self) -> str:
        """``retries=3 (http_503=2, timeout=1)``, or ``retries=0``."""
        kinds = ", ".join(f"{kind}={n}" for kind, n in sorted(self.faults.items()))
        return f"retries={self.retries}" + (f" ({kinds})" if kinds else "")

    def as_dict(self) -> dict[str, float | int]:
        """A flat dict of the counters, for printing and manifests."""
        out: dict[str, float | int] = {
            "model_calls": self.model_calls,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "reused_prompt_tokens": self.reused_prompt_tokens,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
        }
        out.update({f"fault_{kind}": n for kind, n in sorted(self.faults.items())})
        out.update(self.extra)
        return out


class Backend(abc.ABC):
    """A model behind the two operations, with caching, batching and progress built in.

    Subclasses implement :attr:`model_identity`, :meth:`_run_generate` and :meth:`_run_choices`
    (a batch of cache misses in, results in the same order out) and may override
    :meth:`_order_key` to reorder misses so that requests sharing a prompt prefix run together.
    """

    #: Registry name of the backend (``llamacpp``, ``openai``).
    name: str = ""
    #: Misses handed to the backend at once; results are cached after each batch.
    batch_size: int = 32

    def __init__(self, cache: Cache | None = None) -> None:
        self.cache = cache
        self.stats = BackendStats()

    @property
    @abc.abstractmethod
    def model_identity(self) -> str:
        """What identifies the model in a cache key: a file hash, or endpoint + model name.

        Never contains a secret (no API key).
        """

    @property
    def display_name(self) -> str:
        """A short readable model id for tables (``llamacpp:FILE-STEM``, ``openai:MODEL``)."""
        return self.name

    @property
    def progress_step(self) -> int:
        """Requests worth sending at once by a caller that shows progress as it goes: a full
        batch here (a concurrent endpoint needs one to keep busy)."""
        return self.batch_size

    @property
    def settings(self) -> dict[str, int | str]:
        """Run-time settings worth printing in a summary (``threads`` for llama.cpp)."""
        return {}

    def summary_line(self) -> str:
        """One line for a run summary: model, settings, calls, cache hits, retries and faults."""
        settings = " ".join(f"{key}={value}" for key, value in self.settings.items())
        stats = self.stats
        return (
            f"{self.display_name}"
            + (f" {settings}" if settings else "")
            + f": model_calls={stats.model_calls} cache_hits={stats.cache_hits} "
            + stats.faults_text()
        )

    def generate(
        self, requests: Sequence[GenerateRequest], progress: bool | None = None
    ) -> list[GenerateResult]:
        """Answer each request, in order; cached results are reused, new ones cached."""
        raw = self._through_cache("generate", list(requests), self._run_generate, progress)
        return [GenerateResult.model_validate(item) for item in raw]

    def choice_logprobs(
        self, requests: Sequence[ChoiceRequest], progress: bool | None = None
    ) -> list[ChoiceResult]:
        """Score each request's labels, in order; cached results are reused, new ones cached."""
        raw = self._through_cache("choice_logprobs", list(requests), self._run_choices, progress)
        return [ChoiceResult.model_validate(item) for item in raw]

    def request_key(self, operation: str, request: Request) -> str | None:
        """The cache key of a request, or None when it must not be cached (sampled, no seed)."""
        body = request.model_dump(mode="json")
        if isinstance(request, GenerateRequest):
            if request.sampled and request.seed is None:
                return None
            if not request.sampled:
                body["seed"] = None  # greedy decoding does not depend on the seed
        parts = {"op": operation, "backend": self.name, "model": self.model_identity}
        return cache_key({**parts, "request": body})

    def _order_key(self, request: Request) -> str | None:
        """Sort key for misses (None keeps the given order)."""
        return None

    def _through_cache(
        self,
        operation: str,
        requests: list[Any],
        run: Callable[[list[Any]], list[Any]],
        progress: bool | None,
    ) -> list[dict[str, Any]]:
        """Answer from the cache where possible; run the misses in batches, caching each batch."""
        # keys cost a JSON dump and a hash per request: only worth it with a cache
        keys = [
            self.request_key(operation, r) if self.cache is not None else None for r in requests
        ]
        stored = self.cache.lookup(k for k in keys if k) if self.cache is not None else {}
        results: list[dict[str, Any] | None] = [stored.get(k) if k else None for k in keys]
        self.stats.cache_hits += sum(r is not None for r in results)
        misses = [i for i, r in enumerate(results) if r is None]
        if misses and self._order_key(requests[misses[0]]) is not None:
            misses.sort(key=lambda i: self._order_key(requests[i]) or "")
        show = progress if progress is not None else len(misses) >= 20
        # delay: a run that fails at once (endpoint down) prints its error line, no bar frame
        bar = tqdm(
            total=len(misses),
            disable=not show,
            desc=operation,
            unit="req",
            file=sys.stderr,
            dynamic_ncols=True,
            delay=PROGRESS_DELAY_SECONDS,
        )
        try:
            for start in range(0, len(misses), self.batch_size):
                batch = misses[start : start + self.batch_size]
                started = time.perf_counter()
                answers = run([requests[i] for i in batch])
                self.stats.seconds += time.perf_counter() - started
                self.stats.model_calls += len(batch)
                self._keep(batch, answers, keys, results)
                bar.update(len(batch))
        except BaseException:
            bar.leave = False  # no frozen frame above the error line
            raise
        finally:
            bar.close()
        return [r for r in results if r is not None]

    def _keep(
        self,
        batch: list[int],
        answers: list[Any],
        keys: list[str | None],
        results: list[dict[str, Any] | None],
    ) -> None:
        """Place a batch's answers and cache those that are not backend failures."""
        fresh: dict[str, Any] = {}
        for index, answer in zip(batch, answers, strict=True):
            results[index] = answer.model_dump(mode="json")
            failed = isinstance(answer, GenerateResult) and answer.finish_reason == "error"
            if keys[index] and not failed:
                fresh[keys[index]] = results[index]
        if self.cache is not None:
            self.cache.store(fresh)

    @abc.abstractmethod
    def _run_generate(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        """Backend-specific generation of a batch of requests."""

    @abc.abstractmethod
    def _run_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        """Backend-specific label scoring of a batch of requests."""

    def close(self) -> None:  # noqa: B027 (optional hook: most backends hold nothing to free)
        """Release the model or client; the backend is unusable afterwards."""


# --------------------------------------------------------------------------------------------
# Helpers shared by the backends
# --------------------------------------------------------------------------------------------


def bound_strings(schema: dict[str, Any], max_length: int = DEFAULT_MAX_STRING_LENGTH) -> dict:
    """Return a copy of ``schema`` in which every free string has a ``maxLength``.

    A string with an ``enum``, ``const`` or ``pattern`` is left as it is; any other ``"type":
    "string"`` without ``maxLength`` gets ``max_length``. Small models otherwise fill a string
    until ``max_tokens`` and the JSON never closes.
    """

    def visit(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: visit(value) for key, value in node.items()}
            free = not ({"enum", "const", "pattern", "maxLength"} & out.keys())
            if out.get("type") == "string" and free:
                out["maxLength"] = max_length
            return out
        if isinstance(node, list):
            return [visit(item) for item in node]
        return node

    return visit(schema)


def check_schema(schema: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` when ``schema`` is not a valid JSON schema."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        raise ConfigError(
            f"invalid JSON schema: {error.message}",
            hint="check the schema against https://json-schema.org (draft 2020-12)",
        ) from error


def finish_generation(
    request: GenerateRequest,
    text: str,
    finish_reason: str | None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> GenerateResult:
    """Turn raw model output into a validated :class:`GenerateResult` (shared by all backends)."""
    reason: FinishReason = "length" if finish_reason == "length" else "stop"
    counts = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
    value, error = _parse_constrained(request, text)
    if reason == "length" and (request.json_schema is not None or request.choices is not None):
        error = f"truncated at max_tokens={request.max_tokens}" + (f"; {error}" if error else "")
        value = None
    elif reason == "length":
        error = f"truncated at max_tokens={request.max_tokens}"
    return GenerateResult(
        text=text, value=value, finish_reason=reason, ok=error is None, error=error, **counts
    )


def _parse_constrained(request: GenerateRequest, text: str) -> tuple[Any, str | None]:
    """Parse and validate ``text`` against the request's constraint -> (value, error)."""
    if request.choices is not None:
        choice = text.strip()
        if choice in request.choices:
            return choice, None
        return None, f"reply {choice[:80]!r} is not one of the choices"
    if request.json_schema is None:
        return text, None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"reply is not valid JSON: {error.msg} at char {error.pos}"
    try:
        jsonschema.validate(document, request.json_schema)
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return None, f"schema violation at {where}: {error.message[:200]}"
    return document, None


def label_distribution(
    label_probs: dict[str, float], top_tokens: dict[str, float] | None = None
) -> ChoiceResult:
    """Renormalize raw per-label probabilities; ``valid_mass`` is their sum before that.

    When no probability landed on any label the distribution is uniform and ``valid_mass`` 0.
    """
    mass = float(sum(label_probs.values()))
    if mass <= 0.0 or not math.isfinite(mass):
        uniform = 1.0 / len(label_probs)
        probs = {label: uniform for label in label_probs}
        mass = 0.0
    else:
        probs = {label: float(p) / mass for label, p in label_probs.items()}
    return ChoiceResult(probs=probs, valid_mass=min(1.0, mass), top_tokens=top_tokens or {})


def label_variants(label: str) -> tuple[str, str]:
    """The two surface forms of a label that count: without and with a leading space."""
    return label, " " + label
