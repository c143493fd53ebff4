"""The OpenAI-compatible backend against a real llama.cpp server started on 127.0.0.1.

``FaultInjectingProxy`` is the one stand-in here, and it stands in for a failing network, not for
the model: a real HTTP server in front of the real llama.cpp server that answers the first
requests with 503/429 and forwards the rest, because the real server cannot be made to fail on
demand.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import jsonschema
import pytest

from personasim.errors import BackendError, EndpointUnreachable
from personasim.llm import Cache, ChoiceRequest, GenerateRequest, Message, get_backend
from personasim.llm.llamacpp import LlamaCppBackend
from personasim.llm.local_server import free_port

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
        json_schema=SCHEMA, max_tokens=60,
    )
    [result] = backend(llama_server).generate([request])
    assert result.ok, result.error
    jsonschema.validate(result.value, SCHEMA)


def test_choices_reply(llama_server: str) -> None:
    request = GenerateRequest(
        messages=(Message(role="user", content="Pick a season."),),
        choices=("winter", "summer"), max_tokens=20,
    )
    [result] = backend(llama_server).generate([request])
    assert result.ok and result.value in ("winter", "summer")


@pytest.mark.parametrize("mode", ["chat", "completions"])
def test_choice_distribution(llama_server: str, embedded_model_path: Path, mode: str) -> None:
    scorer = backend(llama_server, choice_mode=mode,
                     completion_template=f"gguf:{embedded_model_path}")
    [result] = scorer.choice_logprobs([ChoiceRequest(messages=QUESTION, labels=("A", "B", "C"))])
    assert sum(result.probs.values()) == pytest.approx(1.0)
    assert 0.0 < result.valid_mass <= 1.0


def test_completions_with_the_model_template_match_the_embedded_backend(
    llama_server: str, embedded_model_path: Path, fresh_embedded: LlamaCppBackend
) -> None:
    request = ChoiceRequest(messages=QUESTION, labels=("A", "B", "C"))
    remote = backend(llama_server, choice_mode="completions",
                     completion_template=f"gguf:{embedded_model_path}")
    [over_http] = remote.choice_logprobs([request])
    [local] = fresh_embedded.choice_logprobs([request])
    for label in ("A", "B", "C"):
        assert over_http.probs[label] == pytest.approx(local.probs[label], abs=0.01)
    assert over_http.valid_mass == pytest.approx(local.valid_mass, abs=0.01)


def test_concurrent_requests_keep_their_order(llama_server: str) -> None:
    requests = [
        GenerateRequest(messages=(Message(role="user", content=f"Repeat the number {n}."),),
                        choices=(str(n), str(n + 100)), max_tokens=8)
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
    keyed = get_backend(f"openai:smollm2@{llama_server}", cache=cache,
                        api_key_env="PERSONASIM_TEST_KEY")
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
    url = f"http://127.0.0.1:{free_port()}/v1"
    scorer = backend(url, max_retries=1, backoff_seconds=0.01)
    with pytest.raises(EndpointUnreachable) as error:
        scorer.generate([GenerateRequest(messages=(Message(role="user", content="hi"),))])
    assert url in error.value.one_line() and "start the server" in error.value.one_line()


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


class FaultInjectingProxy:
    """A real HTTP server: the first ``failures`` POSTs get ``status``, the rest are forwarded."""

    def __init__(self, upstream: str, failures: int, status: int) -> None:
        self.upstream, self.failures, self.status = upstream.removesuffix("/v1"), failures, status
        self.lock = threading.Lock()

    def __enter__(self) -> str:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with proxy.lock:
                    fail = proxy.failures > 0
                    proxy.failures -= 1
                if fail:
                    self.send_response(proxy.status)
                    self.send_header("retry-after", "0")
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "injected fault"}}')
                    return
                reply = httpx.post(proxy.upstream + self.path, content=body, timeout=120,
                                   headers={"content-type": "application/json"})
                self.send_response(reply.status_code)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(reply.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep a developer's real OPENAI_API_KEY away from the local test server."""
    if "OPENAI_API_KEY" in os.environ:
        monkeypatch.delenv("OPENAI_API_KEY")
    yield
