"""What LLM calls cost, measured in one run on the embedded model and a local llama.cpp server.

Prints three tables:

1. seconds per question with the persona prefix evaluated cold vs reused from the KV cache;
2. ``choice_logprobs`` vs generating ``Answer: X`` and parsing it (time and parse rate);
3. requests/s of personasim's ``openai`` backend vs the same HTTP requests (byte-identical
   bodies) sent with plain ``httpx``, at 1 and 8 concurrent clients, against a llama.cpp server
   on 127.0.0.1 (median of three interleaved runs each).

No cache is used anywhere: every figure is a real model call.
Run: ``.venv/bin/python benchmarks/llm_costs.py [--questions 12] [--requests 48]``
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from personasim.llm import ChoiceRequest, GenerateRequest, Message, get_backend
from personasim.llm.llamacpp import LlamaCppBackend, default_threads, embedded_model_path
from personasim.llm.openai_compat import _with_prefix_line
from tests.support.local_server import LocalLlamaServer

PERSONA = (
    "You are taking part in a survey. Answer every question as the following person would. "
    "Profile: age 47; sex female; race White; state Ohio; education Bachelor's degree; "
    "employment employed full time as a registered nurse in a county hospital; household income "
    "$84,000; married with two teenage children; born in Ohio; US citizen; not a veteran; "
    "health insurance through her employer; no disability. She grew up in a small town, moved "
    "to Columbus for college, and still drives back most weekends to help her parents on their "
    "farm. She is practical, patient and a little skeptical of big promises; she reads the local "
    "paper on her phone, attends a Methodist church twice a month, gardens, follows college "
    "football, and worries about the cost of her children's education and about staffing "
    "shortages at work. She describes her politics as moderate and votes in most elections."
)
TOPICS = [
    "How often do you use public transportation?",
    "Should your state raise the minimum wage?",
    "How much do you trust national news organizations?",
    "Would you buy an electric car in the next five years?",
    "Should schools teach personal finance as a required course?",
    "How worried are you about climate change?",
    "Do you use streaming services more than cable TV?",
    "Should social media companies verify the age of users?",
    "How satisfied are you with your local schools?",
    "Would you support a new tax to repair roads?",
    "Do you think artificial intelligence will create more jobs than it removes?",
    "How often do you attend live sports events?",
    "Should the federal government cap prescription drug prices?",
    "Do you prefer shopping online or in stores?",
    "How likely are you to move to another state in the next five years?",
    "Should public universities be tuition-free?",
]
OPTIONS = ["A. Strongly agree / very often", "B. Somewhat", "C. Not much", "D. Not at all"]
LABELS = ("A", "B", "C", "D")
ANSWER = re.compile(r"Answer:\s*([ABCD])\b")


def messages(question: str, instruction: str = "") -> tuple[Message, ...]:
    """Persona as the system message, the lettered question as the user message."""
    body = question + "\n" + "\n".join(OPTIONS) + instruction
    return (Message(role="system", content=PERSONA), Message(role="user", content=body))


def per_question(
    run: Callable[[str], object], questions: list[str], cold: Callable[[], None]
) -> list[float]:
    """Seconds per question; ``cold`` runs (untimed) before each question."""
    seconds = []
    for question in questions:
        cold()
        started = time.perf_counter()
        run(question)
        seconds.append(time.perf_counter() - started)
    return seconds


def bench_embedded(questions: list[str]) -> list[tuple[str, float, str]]:
    """Cold vs reused prefix, and logprobs vs generate-and-parse, on the embedded model."""
    backend = get_backend("llamacpp")
    assert isinstance(backend, LlamaCppBackend)
    llm = backend._llm

    def score(question: str) -> object:
        return backend.choice_logprobs([ChoiceRequest(messages=messages(question), labels=LABELS)])

    parsed: list[bool] = []

    def generate(question: str) -> object:
        request = GenerateRequest(
            messages=messages(question, "\nReply as 'Answer: X'."), max_tokens=8
        )
        reply = backend.generate([request])[0].text
        parsed.append(bool(ANSWER.search(reply)))
        return reply

    prompt_tokens = len(backend.tokenize(backend.render(messages(questions[0]), "Answer:")))
    score(questions[0])  # warm the weights; not timed
    rows = []
    cold = per_question(score, questions, llm.reset)
    rows.append(
        (
            "choice_logprobs, persona prefix cold",
            statistics.mean(cold),
            f"{prompt_tokens} prompt tokens",
        )
    )
    warm = per_question(score, questions, lambda: None)
    rows.append(
        (
            "choice_logprobs, persona prefix reused",
            statistics.mean(warm),
            f"{statistics.mean(cold) / statistics.mean(warm):.1f}x faster",
        )
    )
    gen_cold = per_question(generate, questions, llm.reset)
    rows.append(
        (
            "generate 'Answer: X' + parse, cold",
            statistics.mean(gen_cold),
            f"parsed {sum(parsed)}/{len(parsed)}",
        )
    )
    parsed.clear()
    gen_warm = per_question(generate, questions, lambda: None)
    rows.append(
        (
            "generate 'Answer: X' + parse, reused",
            statistics.mean(gen_warm),
            f"parsed {sum(parsed)}/{len(parsed)}",
        )
    )
    backend.close()
    return rows


def chat_body(question: str) -> dict:
    """The JSON body our backend sends for a choice request, built by hand for raw httpx."""
    return {
        "model": "smollm2",
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": True,
        "top_logprobs": 20,
        "messages": _with_prefix_line([m.model_dump() for m in messages(question)], "Answer:"),
    }


def raw_httpx(url: str, questions: list[str], clients: int) -> float:
    """Requests/s of plain httpx posting the chat bodies."""
    with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=clients)) as client:

        def send(question: str) -> None:
            client.post(f"{url}/chat/completions", json=chat_body(question)).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(send, questions))
        return len(questions) / (time.perf_counter() - started)


def ours(url: str, questions: list[str], clients: int) -> float:
    """Requests/s of personasim's openai backend scoring the same questions (no cache)."""
    backend = get_backend(f"openai:smollm2@{url}", max_concurrency=clients, choice_mode="chat")
    requests = [ChoiceRequest(messages=messages(q), labels=LABELS) for q in questions]
    started = time.perf_counter()
    backend.choice_logprobs(requests, progress=False)
    rate = len(questions) / (time.perf_counter() - started)
    backend.close()
    return rate


def bench_http(request_count: int) -> list[tuple[str, float, float, float]]:
    """Ours vs raw httpx at 1 and 8 clients against one local server."""
    questions = [f"{TOPICS[i % len(TOPICS)]} (item {i})" for i in range(request_count)]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        server = LocalLlamaServer(
            embedded_model_path(), Path(folder) / "server.log", threads=default_threads()
        )
        with server as url:
            raw_httpx(url, questions[:4], 1)  # warm up the server; not timed
            for clients in (1, 8):
                # interleave the two clients so drift on a shared machine hits both alike
                raw, mine = [], []
                for _ in range(3):
                    raw.append(raw_httpx(url, questions, clients))
                    mine.append(ours(url, questions, clients))
                raw_rate, our_rate = statistics.median(raw), statistics.median(mine)
                rows.append((f"{clients} client(s)", raw_rate, our_rate, our_rate / raw_rate))
    return rows


def main() -> None:
    """Run every measurement and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--requests", type=int, default=48)
    args = parser.parse_args()
    questions = TOPICS[: args.questions]
    print(f"embedded model: {embedded_model_path().name}, threads={default_threads()}")
    print(f"\n{'per question (embedded, no cache)':<44}{'seconds':>9}  note")
    for name, seconds, note in bench_embedded(questions):
        print(f"{name:<44}{seconds:>9.3f}  {note}")
    print(
        f"\n{'openai backend vs raw httpx (local server)':<44}{'raw r/s':>9}{'ours r/s':>10}"
        f"{'ratio':>7}"
    )
    for name, raw, mine, ratio in bench_http(args.requests):
        print(f"{name:<44}{raw:>9.2f}{mine:>10.2f}{ratio:>7.2f}")


if __name__ == "__main__":
    main()
