"""The OpenAI-compatible backend against a real llama.cpp server started on 127.0.0.1.

``FaultInjectingProxy`` is the one stand-in here, and it stands in for a failing network, not for
the model: a real HTTP server in front of the real llama.cpp server that answers the first
requests with 503/429 and forwards the rest, because the real server cannot be made to fail on
demand.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jsonschema
import pytest

from personasim.core.errors import BackendError, EndpointUnreachable
from personasim.llm import Cache, ChoiceRequest, GenerateRequest, Message, get_backend
from personasim.llm.llamacpp import LlamaCppBackend
from tests.support.local_server import free_port

pytestmark = pytest.mark.slow

SECRET = "sk-personasim-test-0123456789abcdef-NEVER-STORE"
QUESTION = (
    Message(role="system", content="You are a 30-year-old carpenter from Maine."),
    Message(role="user", content="Do you own a pickup truck?\nA. Yes\nB. No\nC. Not sure"),
)
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 24}, "year": {"type": "integer"}},
    "required": ["city", "year"],
}


def backend(url: str, **options):
    return get_backend(f"openai:smollm2@{url}", **options)


def test_chat_reply(llama_server: str) -> None:
    [reply] = backend(llama_server).generate(
        [GenerateRequest(messages=(Message(role="user", content="Say hello."),), max_tokens=12)]
    )
    assert reply.text.strip() and reply.completion_tokens > 0


def test_json_schema_reply_validates(llama_server: str) -> None:
    request = GenerateRequest(
        messages=(Message(role="user", content="Name a city and a year, as JSON."),),
        json_schema=SCHEMA,
        max_tokens=60,
    )
    [result] = backend(llama_server).generate([request])
    assert result.ok, result.error
    jsonschema.validate(result.value, SCHEMA)


def test_choices_reply(llama_server: str) -> None:
    request = GenerateRequest(
        messages=(Message(role="user", content="Pick a season."),),
        choices=("winter", "summer"),
        max_tokens=20,
    )
    [result] = backend(llama_server).generate([request])
    assert result.ok and result.value in ("winter", "summer")


@pytest.mark.parametrize("mode", ["chat", "completions"])
def test_choice_distribution(llama_server: str, embedded_model_path: Path, mode: str) -> None:
    scorer = backend(
        llama_server, choice_mode=mode, completion_template=f"gguf:{embedded_model_path}"
    )
    [result] = scorer.choice_logprobs([ChoiceRequest(messages=QUESTION, labels=("A", "B", "C"))])
    assert sum(result.probs.values()) == pytest.approx(1.0)
    assert 0.0 < result.valid_mass <= 1.0


def test_completions_with_the_model_template_match_the_embedded_backend(
    llama_server: str, embedded_model_path: Path, fresh_embedded: LlamaCppBackend
) -> None:
    request = ChoiceRequest(messages=QUESTION, labels=("A", "B", "C"))
    remote = backend(
        llama_server, choice_mode="completions", completion_template=f"gguf:{embedded_model_path}"
    )
    [over_http] = remote.choice_logprobs([request])
    [local] = fresh_embedded.choice_logprobs([request])
    for label in ("A", "B", "C"):
        assert over_http.probs[label] == pytest.approx(local.probs[label], abs=0.01)
    assert over_http.valid_mass == pytest.approx(local.valid_mass, abs=0.01)


def test_concurrent_requests_keep_their_order(llama_server: str) -> None:
    requests = [
        GenerateRequest(
            messages=(Message(role="user", content=f"Repeat the number {n}."),),
            choices=(str(n), str(n + 100)),
            max_tokens=8,
        )
        for n in range(8)
    ]
    results = backend(llama_server, max_concurrency=4).generate(requests)
    for n, result in enumerate(results):
        assert result.ok and result.value in (str(n), str(n + 100))


def test_api_key_never_reaches_the_cache(
    llama_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONASIM_TEST_KEY", SECRET)
    cache = Cache(tmp_path / "cache.sqlite")
    keyed = get_backend(
        f"openai:smollm2@{llama_server}", cache=cache, api_key_env="PERSONASIM_TEST_KEY"
    )
    keyed.generate([GenerateRequest(messages=(Message(role="user", content="Hi"),), max_tokens=4)])
    keyed.choice_logprobs([ChoiceRequest(messages=QUESTION, labels=("A", "B", "C"))])
    assert len(cache) == 2
    cache.close()
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes(), f"the API key is in {path.name}"
    assert SECRET not in keyed.model_identity


def test_rerun_makes_no_requests(llama_server: str, tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache.sqlite")
    requests = [ChoiceRequest(messages=QUESTION, labels=("A", "B", "C"))]
    first = get_backend(f"openai:smollm2@{llama_server}", cache=cache)
    first.choice_logprobs(requests)
    second = get_backend(f"openai:smollm2@{llama_server}", cache=cache)
    second.choice_logprobs(requests)
    assert first.stats.model_calls == 1 and second.stats.model_calls == 0


def test_unreachable_endpoint_is_one_clear_error() -> None:
    """A refused connection is tried once more, not through the whole backoff schedule."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    scorer = backend(url, max_retries=5)
    with pytest.raises(EndpointUnreachable) as error:
        scorer.generate([GenerateRequest(messages=(Message(role="user", content="hi"),))])
    assert url in error.value.one_line() and "start the server" in error.value.one_line()
    assert scorer.stats.faults == {"unreachable": 2} and scorer.stats.retries == 1


def test_not_found_stops_the_run(llama_server: str) -> None:
    """A 404 (unknown model or path) is fatal: no other request of the run would succeed.

    llama-cpp-python's server answers any model name, so the 404 comes from the proxy.
    """
    request = GenerateRequest(messages=(Message(role="user", content="x"),))
    with (
        FaultInjectingProxy(llama_server, failures=10**6, status=404) as url,
        pytest.raises(BackendError, match="HTTP 404") as error,
    ):
        backend(url).generate([request])
    assert "check the model name" in error.value.one_line()


@pytest.mark.parametrize("status", [503, 429])
def test_transient_failures_are_retried(llama_server: str, status: int) -> None:
    with FaultInjectingProxy(llama_server, failures=2, status=status) as url:
        scorer = backend(url, max_retries=3, backoff_seconds=0.01)
        [result] = scorer.choice_logprobs([ChoiceRequest(messages=QUESTION, labels=("A", "B"))])
    assert scorer.stats.retries == 2
    assert sum(result.probs.values()) == pytest.approx(1.0)


def test_retries_give_up_with_a_clear_error(llama_server: str) -> None:
    with FaultInjectingProxy(llama_server, failures=10, status=503) as url:
        scorer = backend(url, max_retries=2, backoff_seconds=0.01)
        with pytest.raises(BackendError, match="kept failing after 2 retries"):
            scorer.generate([GenerateRequest(messages=(Message(role="user", content="x"),))])


FAULT_KINDS = ("500", "503", "429", "429-retry-after", "slow", "malformed", "truncated")
"""What the flaky network stand-in injects: three statuses, 429 with a Retry-After header, a reply
slower than the client's timeout, a 200 whose body is not JSON, and a 200 cut off mid-body."""

COUNTED_AS = {
    "500": "http_500",
    "503": "http_503",
    "429": "http_429",
    "429-retry-after": "http_429",
    "slow": "timeout",
    "malformed": "bad_body",
    "truncated": "connection",
}
"""The ``stats.faults`` kind the backend counts each injected fault under."""

#: A plausible chat completion, the start of which a "truncated" fault sends.
_REPLY = json.dumps(
    {
        "id": "chatcmpl-0",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1},
    }
).encode()


class FaultInjectingProxy:
    """A real HTTP server on 127.0.0.1 in front of the real llama.cpp server: a stand-in for a
    flaky network (the real server cannot be made to fail on demand).

    Either the first ``failures`` POSTs get ``status`` (then all are forwarded), or, with
    ``rate``, each POST fails with that probability from a generator seeded with ``seed``; the
    k-th such fault is ``kinds[k % len(kinds)]``, so a short run meets every kind. Faulty replies
    are made here and never reach the server, so the server sees exactly the requests a run
    without faults sends. ``injected`` counts the faults by kind.
    """

    def __init__(
        self,
        upstream: str,
        failures: int = 0,
        status: int = 503,
        rate: float = 0.0,
        seed: int = 0,
        kinds: tuple[str, ...] = FAULT_KINDS,
        delay: float = 1.0,
    ) -> None:
        self.upstream, self.failures, self.status = upstream.removesuffix("/v1"), failures, status
        self.rate, self.kinds, self.delay = rate, kinds, delay
        self.random = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.malformed = b'{"choices": [{"message": {"content": "A"}},,]'
        self.lock = threading.Lock()

    def _next_fault(self) -> str | None:
        """The fault to inject into the next POST, or None to forward it."""
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                return "status"
            if self.rate and self.random.random() < self.rate:
                kind = self.kinds[sum(self.injected.values()) % len(self.kinds)]
                self.injected[kind] += 1
                return kind
        return None

    def __enter__(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                fault = proxy._next_fault()
                if fault is None:
                    reply = httpx.post(
                        proxy.upstream + self.path,
                        content=body,
                        timeout=120,
                        headers={"content-type": "application/json"},
                    )
                    self._send(reply.status_code, reply.content)
                elif fault == "status":
                    self._send(
                        proxy.status,
                        b'{"error": {"message": "injected fault"}}',
                        {"retry-after": "0"},
                    )
                elif fault in ("500", "503", "429"):
                    self._send(int(fault), b'{"error": {"message": "injected fault"}}')
                elif fault == "429-retry-after":
                    self._send(429, b'{"error": {"message": "slow down"}}', {"retry-after": "1"})
                elif fault == "slow":
                    time.sleep(proxy.delay)  # past the client's timeout: it has hung up
                elif fault == "malformed":
                    self._send(200, proxy.malformed)
                else:  # truncated: the full length announced, half of it sent, then hung up
                    self._send(200, _REPLY[: len(_REPLY) // 2], length=len(_REPLY))

            def _send(
                self,
                status: int,
                content: bytes,
                headers: dict[str, str] | None = None,
                length: int | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(length or len(content)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True  # a "slow" handler must not hold up the shutdown
        self.server.block_on_close = False
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


#: Client timeout of the flaky-network test: above a real reply of the small model (under 2 s on
#: a busy machine; a real timeout is only one more retry, the test allows for it), below the
#: "slow" fault's delay. Each injected "slow" fault costs this long.
FLAKY_TIMEOUT = 4.0


def _same_server_state(url: str) -> None:
    """Leave the server's prompt cache holding a prompt no test request shares a prefix with, so
    that two runs start from the same state (llama.cpp reuses the longest cached prefix)."""
    httpx.post(url + "/completions", json={"prompt": "Reset.", "max_tokens": 1}, timeout=120)


def _flaky_run(url: str, server: str):
    _same_server_state(server)
    scorer = backend(
        url, max_concurrency=1, timeout_seconds=FLAKY_TIMEOUT, max_retries=8, backoff_seconds=0.01
    )
    choices = [
        ChoiceRequest(
            messages=(
                QUESTION[0],
                Message(
                    role="user",
                    content=(
                        f"Question {n}: would you pay {n + 1} dollars for a coffee?\n"
                        "A. Yes\nB. No\nC. Not sure"
                    ),
                ),
            ),
            labels=("A", "B", "C"),
        )
        for n in range(20)
    ]
    prompts = [f"Name a colour that starts with the letter {c}." for c in "BGR"]
    generations = [
        GenerateRequest(messages=(Message(role="user", content=p),), max_tokens=10) for p in prompts
    ]
    generations.append(
        GenerateRequest(
            messages=(Message(role="user", content="Pick a season."),),
            choices=("winter", "summer"),
            max_tokens=20,
        )
    )
    dumped = [r.model_dump() for r in scorer.choice_logprobs(choices)]
    dumped += [r.model_dump() for r in scorer.generate(generations)]
    return scorer, dumped


def test_a_flaky_network_changes_nothing(llama_server: str) -> None:
    """Through a seeded 20 % of 500, 503, 429 (with and without Retry-After), replies slower than
    the client's timeout, malformed and truncated 200 bodies, the run completes in one go and
    equals a direct run exactly; every fault is counted by kind."""
    direct, expected = _flaky_run(llama_server, llama_server)
    assert not direct.stats.faults
    proxy = FaultInjectingProxy(llama_server, rate=0.2, seed=12, delay=FLAKY_TIMEOUT + 0.5)
    with proxy as url:
        flaky, got = _flaky_run(url, llama_server)
    assert got == expected
    assert set(proxy.injected) == set(FAULT_KINDS), proxy.injected
    expected_faults: Counter[str] = Counter()
    for kind, count in proxy.injected.items():
        expected_faults[COUNTED_AS[kind]] += count
    for kind, count in expected_faults.items():  # ">=": a busy machine may add real timeouts
        assert flaky.stats.faults.get(kind, 0) >= count, (kind, flaky.stats.faults)
    assert flaky.stats.retries == sum(flaky.stats.faults.values())
    assert "retries=" in flaky.summary_line() and "bad_body=" in flaky.summary_line()


@pytest.mark.parametrize("body", [b'{"choices": [', b"<html>bad gateway</html>", b'{"id": 1}'])
def test_a_garbage_reply_that_persists_names_the_endpoint(llama_server: str, body: bytes) -> None:
    proxy = FaultInjectingProxy(llama_server, rate=1.0, kinds=("malformed",))
    proxy.malformed = body
    with proxy as url:
        scorer = backend(url, max_retries=2, backoff_seconds=0.01)
        with pytest.raises(BackendError) as error:
            scorer.generate([GenerateRequest(messages=(Message(role="user", content="x"),))])
    line = error.value.one_line()
    assert url in line and "kept failing after 2 retries: HTTP 200" in line
    assert scorer.stats.faults == {"bad_body": 3}


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep a developer's real OPENAI_API_KEY away from the local test server."""
    if "OPENAI_API_KEY" in os.environ:
        monkeypatch.delenv("OPENAI_API_KEY")
    yield
