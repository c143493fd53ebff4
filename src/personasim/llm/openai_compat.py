"""Any OpenAI-compatible endpoint (vLLM, SGLang, Ollama, llama.cpp server, hosted APIs).

Requests go through the ``openai`` SDK with its own retries switched off; this module retries
429, 5xx, timeouts, dropped connections and a 200 whose body is not the JSON reply expected
(malformed or cut short) itself, with exponential backoff and full jitter (and honours
``Retry-After``); each failed try is counted by kind in ``stats.faults``. It runs at most
``max_concurrency`` requests at once. An endpoint that refuses the connection (or does not
accept it within ``connect_timeout_seconds``) before it has ever answered is tried once more
after a short pause, then reported as one clear
:class:`~personasim.core.errors.EndpointUnreachable`:
a wrong address fails in about a second instead of after the whole backoff schedule.

The API key is read from the environment variable named by ``api_key_env`` at call time. It is
never part of a cache key, a log line, a manifest or an error message.

Structured output
    ``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM, SGLang, llama.cpp's C++
    server). With ``structured_output="auto"`` an endpoint that rejects it (HTTP 400/422) is asked
    again with ``{"type": "json_object", "schema": ...}``, the form llama-cpp-python's server
    takes. Either way the reply is validated against the schema here. A ``choices`` request is
    sent as a JSON schema ``{"choice": {"enum": [...]}}`` and unwrapped.

Choice distributions (``choice_logprobs``), ``choice_mode``:
    ``chat``: one chat completion with ``max_tokens=1``, ``logprobs=true`` and
    ``top_logprobs`` (20 at most on OpenAI). The answer prefix is realized by ``prefix_mode``:

    * ``user`` (portable, the default): the prefix is appended to the last user message as its
      final line (``"...\\n\\nAnswer:"``), and the first token of the assistant's reply is read.
    * ``continue``: the prefix is sent as a partial assistant message and the server is asked to
      continue it (``continue_final_message=true, add_generation_prompt=false``, a vLLM/SGLang
      extension), so the label is the token right after the prefix, as in the embedded backend.

    ``completions``: the legacy ``/v1/completions`` endpoint with ``logprobs``. The conversation
    is rendered client-side with ``completion_template`` (a Jinja chat template file, or
    ``gguf:/path/model.gguf`` to read the template a GGUF file carries; without one, a plain
    ``Role: text`` layout), the answer prefix appended, and the next token's top logprobs read.
    With the model's own template this reproduces the embedded backend's numbers exactly.

    ``auto``: ``chat``, falling back to ``completions`` when the chat endpoint refuses logprobs
    or returns none.

    Only the ``top_logprobs`` most likely tokens are visible, so a label outside them counts 0
    and ``valid_mass`` is a lower bound.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from personasim.core.errors import BackendError, ConfigError, EndpointUnreachable
from personasim.core.secrets import redact_urls
from personasim.llm.base import (
    Backend,
    ChoiceRequest,
    ChoiceResult,
    GenerateRequest,
    GenerateResult,
    Message,
    finish_generation,
    label_distribution,
    label_variants,
)
from personasim.llm.cache import Cache

T = TypeVar("T")

CHOICE_WRAPPER_TOKENS = 16
"""Tokens added to ``max_tokens`` of a ``choices`` request for its ``{"choice": ...}`` wrapper."""

UNREACHABLE_RETRY_SECONDS = 0.25
"""Pause before the one extra try of an endpoint that refused the first connection."""


def check_base_url(url: str) -> str:
    """``url`` when it is an ``http(s)://host[:port][/path]`` address, else a ValueError (which
    the options model reports as one line naming the field).

    Catches ``ftp//nowhere``, a missing host and a port outside 1..65535 when the spec is read,
    not after the first request.
    """
    how = "write it as http://host:port/v1, e.g. openai:MODEL@http://localhost:8000/v1"
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint address {url!r} is not an http(s) URL with a host; {how}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"endpoint address {url!r} has a port outside 1..65535; {how}")
    return url.strip()


def _default_base_url() -> str:
    return os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")


class OpenAIOptions(BaseModel):
    """Options of the OpenAI-compatible backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    """Model name as the endpoint knows it (e.g. ``meta-llama/Llama-3.1-8B-Instruct``)."""
    base_url: str = Field(default_factory=_default_base_url)
    """Endpoint root, e.g. ``http://localhost:8000/v1``; default ``$OPENAI_BASE_URL``."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (the key itself is never stored)."""
    max_concurrency: int = Field(default=8, ge=1, le=1024)
    """Requests in flight at once."""
    max_retries: int = Field(default=5, ge=0, le=50)
    """Retries of a request after 429, 5xx, a timeout or a dropped connection."""
    backoff_seconds: float = Field(default=0.5, gt=0.0, le=60.0)
    """First backoff; doubles at each retry (full jitter), capped at ``backoff_max_seconds``."""
    backoff_max_seconds: float = Field(default=30.0, gt=0.0, le=600.0)
    """Longest wait between two tries."""
    timeout_seconds: float = Field(default=120.0, gt=0.0, le=3600.0)
    """Timeout of one HTTP request."""
    connect_timeout_seconds: float = Field(default=5.0, gt=0.0, le=600.0)
    """Timeout of opening the connection (capped at ``timeout_seconds``)."""
    structured_output: Literal["auto", "json_schema", "json_object"] = "auto"
    """How a JSON schema is sent (see the module docstring)."""
    choice_mode: Literal["auto", "chat", "completions"] = "auto"
    """Which endpoint ``choice_logprobs`` reads logprobs from (see the module docstring)."""
    prefix_mode: Literal["user", "continue"] = "user"
    """How the answer prefix is realized on chat endpoints (see the module docstring)."""
    top_logprobs: int = Field(default=20, ge=1, le=100)
    """Alternatives per position asked for; OpenAI allows at most 20."""
    completion_template: str | None = None
    """Jinja chat template file, or ``gguf:PATH``, used to render prompts for ``completions``."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_base_url(url)


class _Retryable(Exception):
    """A failure worth another try: its cause, its kind (for ``stats.faults``) and the
    server's suggested wait, if any."""

    def __init__(self, cause: Exception, kind: str, wait: float | None = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.kind = kind
        self.wait = wait


class MalformedReply(ValueError):
    """An HTTP 200 whose body is not the JSON document expected (malformed or cut short)."""


class OpenAIBackend(Backend):
    """An OpenAI-compatible HTTP endpoint through the ``openai`` SDK."""

    name = "openai"

    def __init__(self, options: OpenAIOptions, cache: Cache | None = None) -> None:
        super().__init__(cache)
        import openai

        self.options = options
        self.batch_size = max(32, 4 * options.max_concurrency)
        self._openai = openai
        connect = min(options.connect_timeout_seconds, options.timeout_seconds)
        self._client = openai.OpenAI(
            base_url=options.base_url,
            api_key=os.environ.get(options.api_key_env) or "not-needed",
            max_retries=0,
            timeout=openai.Timeout(options.timeout_seconds, connect=connect),
        )
        self._reached = False
        self._lock = threading.Lock()
        self._json_object_fallback = options.structured_output == "json_object"
        self._use_completions = options.choice_mode == "completions"
        self._template: Callable[[list[dict[str, str]]], str] | None = None

    @property
    def model_identity(self) -> str:
        """Endpoint, model name and the options that change results (no key)."""
        o = self.options
        return (
            f"{self.shown_url.rstrip('/')}|{o.model}|choice={o.choice_mode}/{o.prefix_mode}"
            f"|top={o.top_logprobs}|template={o.completion_template or 'plain'}"
        )

    @property
    def shown_url(self) -> str:
        """The endpoint as we print and write it: any password or key in the URL masked."""
        return redact_urls(self.options.base_url)

    @property
    def display_name(self) -> str:
        """``openai:`` and the model name."""
        return f"{self.name}:{self.options.model}"

    @property
    def settings(self) -> dict[str, int | str]:
        """Requests in flight at once."""
        return {"max_concurrency": self.options.max_concurrency}

    # ---- transport ---------------------------------------------------------------------

    def _parallel(self, work: Callable[[Any], T], items: list[Any]) -> list[T]:
        if len(items) <= 1 or self.options.max_concurrency == 1:
            return [work(item) for item in items]
        workers = min(self.options.max_concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="personasim-http") as pool:
            return list(pool.map(work, items))

    def _call(self, send: Callable[[], T]) -> T:
        """Run ``send`` with retries and backoff; unreachable endpoints raise one clear error."""
        attempt = 0
        while True:
            try:
                return self._classify(send)
            except _Retryable as failure:
                with self._lock:
                    self.stats.count_fault(failure.kind)
                unreachable = failure.kind == "unreachable" and not self._reached
                if attempt >= (
                    min(1, self.options.max_retries) if unreachable else self.options.max_retries
                ):
                    self._give_up(failure)
                delay = min(
                    self.options.backoff_max_seconds, self.options.backoff_seconds * 2**attempt
                )
                if unreachable:
                    delay = UNREACHABLE_RETRY_SECONDS
                elif failure.wait is not None:
                    delay = failure.wait
                else:
                    delay = random.uniform(0, delay)
                time.sleep(delay)
                attempt += 1
                with self._lock:
                    self.stats.retries += 1

    def _classify(self, send: Callable[[], T]) -> T:
        """``send()``, its retryable failures raised as :class:`_Retryable` with their kind."""
        errors = self._openai
        try:
            reply = send()
        except errors.APIConnectionError as error:  # includes APITimeoutError
            if _cannot_connect(error):
                kind = "unreachable"  # refused, or not accepted within the connect timeout
            else:
                self._reached = True
                kind = "timeout" if isinstance(error, errors.APITimeoutError) else "connection"
            raise _Retryable(error, kind) from error
        except errors.APIStatusError as error:
            self._reached = True
            if error.status_code == 429 or error.status_code >= 500:
                kind = f"http_{error.status_code}"
                raise _Retryable(error, kind, _retry_after(error)) from error
            raise
        except MalformedReply as error:
            self._reached = True
            raise _Retryable(error, "bad_body") from error
        self._reached = True
        return reply

    def _give_up(self, failure: _Retryable) -> None:
        where = self.shown_url
        if failure.kind == "unreachable":
            raise EndpointUnreachable(
                f"cannot reach the OpenAI-compatible endpoint at {where}",
                hint="start the server, or check the address and port in openai:MODEL@URL",
            ) from failure.cause
        raise BackendError(
            f"{where} kept failing after {self.options.max_retries} retries: "
            f"{_short(failure.cause)}",
            hint="lower max_concurrency, or try again later",
        ) from failure.cause

    def _fatal(self, error: Exception) -> BackendError:
        """A non-retryable HTTP error that no other request of the run would escape."""
        status = getattr(error, "status_code", "?")
        hints = {
            401: f"set the API key in ${self.options.api_key_env}",
            403: f"check the permissions of the key in ${self.options.api_key_env}",
            404: f"check the model name {self.options.model!r} and the base URL",
        }
        return BackendError(
            f"{self.shown_url} answered HTTP {status}: {_short(error)}",
            hint=hints.get(status, "check the request options for this endpoint"),
        )

    # ---- generate ----------------------------------------------------------------------

    def _run_generate(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        return self._parallel(self._generate_one, requests)

    def _generate_one(self, request: GenerateRequest) -> GenerateResult:
        try:
            reply = self._call(lambda: self._chat(request))
        except self._openai.APIStatusError as error:
            if error.status_code in (401, 403, 404):
                raise self._fatal(error) from error
            return GenerateResult(text="", finish_reason="error", ok=False, error=_short(error))
        choice = reply["choices"][0]
        text = (choice.get("message") or {}).get("content") or ""
        if request.choices is not None:
            text = _unwrap_choice(text)
        usage = reply.get("usage") or {}
        return finish_generation(
            request,
            text,
            choice.get("finish_reason"),
            usage.get("prompt_tokens") or 0,
            usage.get("completion_tokens") or 0,
        )

    def _post_chat(self, **body: Any) -> dict[str, Any]:
        """One chat completion as the endpoint's JSON (the SDK's typed parsing is skipped)."""
        raw = self._client.chat.completions.with_raw_response.create(**body)
        return _reply_document(raw.http_response.content)

    def _chat(self, request: GenerateRequest) -> dict[str, Any]:
        """One chat completion, retrying once in json_object form if json_schema is refused."""
        body: dict[str, Any] = {
            "model": self.options.model,
            "messages": [m.model_dump() for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens + (CHOICE_WRAPPER_TOKENS if request.choices else 0),
        }
        if request.seed is not None:
            body["seed"] = request.seed
        schema = _schema_of(request)
        if schema is None:
            return self._post_chat(**body)
        if not self._json_object_fallback:
            try:
                return self._post_chat(**body, response_format=_json_schema_format(schema))
            except self._openai.APIStatusError as error:
                if self.options.structured_output != "auto" or not _refuses_json_schema(error):
                    raise
                self._json_object_fallback = True
        return self._post_chat(**body, response_format={"type": "json_object", "schema": schema})

    # ---- choice_logprobs ---------------------------------------------------------------

    def _run_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        return self._parallel(self._score, requests)

    def _score(self, request: ChoiceRequest) -> ChoiceResult:
        if not self._use_completions:
            try:
                top = self._call(lambda: self._chat_top_logprobs(request))
                if top is not None:
                    return _distribution(request.labels, top)
            except self._openai.APIStatusError as error:
                if self.options.choice_mode == "chat" or error.status_code not in (400, 404, 422):
                    raise self._fatal(error) from error
            if self.options.choice_mode == "chat":
                raise BackendError(
                    f"{self.shown_url} returned no logprobs for chat completions",
                    hint="use choice_mode='completions' or the sample estimator",
                )
            self._use_completions = True
        try:
            top = self._call(lambda: self._completion_top_logprobs(request))
        except self._openai.APIStatusError as error:
            raise self._fatal(error) from error
        return _distribution(request.labels, top)

    def _chat_top_logprobs(self, request: ChoiceRequest) -> dict[str, float] | None:
        messages = [m.model_dump() for m in request.messages]
        extra: dict[str, Any] = {}
        if self.options.prefix_mode == "continue":
            messages.append({"role": "assistant", "content": request.answer_prefix})
            extra = {"continue_final_message": True, "add_generation_prompt": False}
        else:
            messages = _with_prefix_line(messages, request.answer_prefix)
        reply = self._post_chat(
            model=self.options.model,
            messages=messages,
            max_tokens=1,
            temperature=0.0,
            logprobs=True,
            top_logprobs=self.options.top_logprobs,
            extra_body=extra or None,
        )
        content = (reply["choices"][0].get("logprobs") or {}).get("content")
        if not content:
            return None
        return {item["token"]: item["logprob"] for item in content[0].get("top_logprobs") or []}

    def _completion_top_logprobs(self, request: ChoiceRequest) -> dict[str, float]:
        prompt = self.render(request.messages) + request.answer_prefix
        raw = self._client.completions.with_raw_response.create(
            model=self.options.model,
            prompt=prompt,
            max_tokens=1,
            temperature=0.0,
            logprobs=self.options.top_logprobs,
        )
        choices = _reply_document(raw.http_response.content)["choices"]
        top = (choices[0].get("logprobs") or {}).get("top_logprobs") or [None]
        if not top[0]:
            raise BackendError(
                f"{self.shown_url} returned no logprobs for completions",
                hint="this endpoint cannot score choices; use the sample estimator",
            )
        return dict(top[0])

    def render(self, messages: tuple[Message, ...]) -> str:
        """The prompt text ``completions`` sends for ``messages`` (see ``completion_template``)."""
        if self._template is None:
            self._template = _load_template(self.options.completion_template)
        return self._template([m.model_dump() for m in messages])

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


# ---- pure helpers (request building and parsing; tested offline) --------------------------


def _schema_of(request: GenerateRequest) -> dict[str, Any] | None:
    if request.json_schema is not None:
        return request.json_schema
    if request.choices is not None:
        return {
            "type": "object",
            "properties": {"choice": {"type": "string", "enum": list(request.choices)}},
            "required": ["choice"],
            "additionalProperties": False,
        }
    return None


def _refuses_json_schema(error: Exception) -> bool:
    """True when an endpoint rejected ``response_format`` of type ``json_schema``.

    Most servers answer 400 or 422; llama-cpp-python's server answers 500 with its validation
    message, which names ``response_format``.
    """
    status = getattr(error, "status_code", 0)
    return status in (400, 422) or (status == 500 and "response_format" in str(error))


def _json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}


def _unwrap_choice(text: str) -> str:
    """The ``choice`` of a ``{"choice": ...}`` reply, or the text itself when it is not that."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(document, dict) and isinstance(document.get("choice"), str):
        return document["choice"]
    return text


def _with_prefix_line(messages: list[dict[str, str]], prefix: str) -> list[dict[str, str]]:
    """Append the answer prefix as the final line of the last user message."""
    if not prefix:
        return messages
    for index in range(len(messages) - 1, -1, -1):
        if messages[index]["role"] == "user":
            changed = dict(messages[index])
            changed["content"] = changed["content"].rstrip() + "\n\n" + prefix
            return messages[:index] + [changed] + messages[index + 1 :]
    return messages + [{"role": "user", "content": prefix}]


def _distribution(labels: tuple[str, ...], top: dict[str, float]) -> ChoiceResult:
    """Label probabilities from ``token -> logprob`` (both surface forms of each label)."""
    probs = {token: math.exp(logprob) for token, logprob in top.items()}
    per_label = {
        label: sum(probs.get(form, 0.0) for form in label_variants(label)) for label in labels
    }
    best = dict(sorted(probs.items(), key=lambda item: -item[1])[:5])
    return label_distribution(per_label, {k: round(v, 6) for k, v in best.items()})


def _plain_template(messages: list[dict[str, str]]) -> str:
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(lines) + "\n\nAssistant: "


def _load_template(spec: str | None) -> Callable[[list[dict[str, str]]], str]:
    """A renderer from a Jinja template file, a GGUF file's own template, or the plain layout."""
    if spec is None:
        return _plain_template
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    if spec.startswith("gguf:"):
        template, bos, eos = _gguf_template(Path(spec[5:]))
    else:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"completion_template file not found: {path}")
        template, bos, eos = path.read_text(encoding="utf-8"), "", ""
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
    return lambda messages: formatter(messages=messages).prompt


def _gguf_template(path: Path) -> tuple[str, str, str]:
    import llama_cpp

    if not path.is_file():
        raise ConfigError(f"GGUF file not found: {path}")
    vocab = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    try:
        template = vocab.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"{path.name} carries no chat template")
        text = vocab._model.token_get_text
        return template, text(vocab.token_bos()), text(vocab.token_eos())
    finally:
        vocab.close()


def _reply_document(content: bytes) -> dict[str, Any]:
    """The JSON body of a 200 reply, which must hold a non-empty ``choices`` list of objects.

    Anything else (not JSON, cut short, another shape) raises :class:`MalformedReply`, a
    retryable fault: proxies and overloaded servers do send such bodies now and then.
    """
    try:
        document = json.loads(content)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        size = f"{len(content)} bytes"
        raise MalformedReply(f"HTTP 200 with a body that is not JSON ({size}): {error}") from None
    choices = document.get("choices") if isinstance(document, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedReply(f"HTTP 200 without a 'choices' list: {str(document)[:120]}")
    return document


def _cannot_connect(error: BaseException) -> bool:
    """True when the connection was never opened (refused, or not accepted in time).

    Told by the transport's exception names in the cause chain, so that it holds whichever
    httpx build the ``openai`` SDK ships with.
    """
    seen: BaseException | None = error
    while seen is not None:
        if type(seen).__name__ in ("ConnectError", "ConnectTimeout"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(60.0, max(0.0, float(value))) if value else None
    except ValueError:
        return None


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
