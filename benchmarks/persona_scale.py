"""How long the PERSONA testbed takes at the paper's scale on a backend, from measured per-call
costs (no LLM cache: every call is a real model call).

It times ``--calls`` of each kind of testbed call with the token caps of ``testbed pairs``
(answer 128, critique 160, revision 128): the persona-free answer, the persona's critique, the
revision, and the judge's two-label choice. It then multiplies each mean by the number of such
calls the paper's scale needs (below) and prints the total at the measured rate. A served model
that answers several requests at once is measured with them in flight (``--clients``).

Call counts at the paper's scale (Castricato et al. 2024), as personasim makes them:

* pairs: 1,586 personas x 200 prompts = 317,200 pairs; per pair one critique, one revision and
  two judge choices (verification, both orders); one persona-free answer per prompt (3,868);
* leave-one-out (§4.1): 33 attributes x 40 pairs x 20 questions; per pair and question 2
  critiques, 2 revisions and 8 judge choices (2 versions x 2 refinements x 2 orders), plus the
  20 baselines;
* role-play agreement (§4.2): 20 personas x 20 questions made into pairs (as above), then 10
  items per persona labelled by the model (2 choices each).

    PYTHONPATH=src .venv/bin/python benchmarks/persona_scale.py [--model SPEC] [--calls 4]
    PYTHONPATH=src .venv/bin/python benchmarks/persona_scale.py --local-server [--clients 8]

``--local-server`` starts a llama.cpp server with the embedded model on 127.0.0.1 and measures
through the ``openai`` backend with ``--clients`` requests in flight, so the figures are those of
an OpenAI-compatible endpoint on this machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from personasim.llm import Backend, get_backend
from personasim.testbed.common import judge_requests
from personasim.testbed.pairs import (
    PairsOptions,
    answer_request,
    critique_request,
    revision_request,
)
from personasim.testbed.prompts import builtin_prompts

PROFILE = (
    "Age: 58\nSex: Female\nState: Ohio\nEducation: Associate's degree\nReligion: Methodist\n"
    "Ideology: Moderate\nCore values: thrift, loyalty, fairness\nDefining quirks: hums while "
    "cooking"
)
ANSWER = (
    "There are good arguments on several sides. Many people weigh cost, fairness and personal "
    "freedom differently, so the best choice depends on what matters most to you."
)


def paper_counts() -> dict[str, tuple[int, int]]:
    """(generations, choices) per step at the paper's scale (see the module docstring)."""
    pairs, prompts = 1586 * 200, 3868
    loo = 33 * 40 * 20
    roleplay_pairs = 20 * 20
    return {
        "pairs": (prompts + 2 * pairs, 2 * pairs),
        "leave-one-out": (20 + 4 * loo, 8 * loo),
        "role-play agreement": (20 + 2 * roleplay_pairs, 2 * roleplay_pairs + 2 * 20 * 10),
    }


def timed(run: Callable[[], object], n: int) -> float:
    """Mean seconds per call of ``n`` calls made by ``run``."""
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) / n


def per_call(backend: Backend, n: int) -> dict[str, float]:
    """Mean seconds of each kind of call over ``n`` different prompts."""
    options = PairsOptions(seed=0)
    questions = builtin_prompts()["text"].tolist()[:n]
    keys = [(f"p{i}", "bench") for i in range(n)]
    return {
        "answer": timed(
            lambda: backend.generate(
                [answer_request(q, k[0], options) for q, k in zip(questions, keys, strict=True)]
            ),
            n,
        ),
        "critique": timed(
            lambda: backend.generate(
                [
                    critique_request(PROFILE, q, ANSWER, k, options)
                    for q, k in zip(questions, keys, strict=True)
                ]
            ),
            n,
        ),
        "revision": timed(
            lambda: backend.generate(
                [
                    revision_request(q, ANSWER, "Too vague; say what to do.", k, options)
                    for q, k in zip(questions, keys, strict=True)
                ]
            ),
            n,
        ),
        "choice": timed(
            lambda: backend.choice_logprobs(
                [judge_requests(PROFILE, q, ANSWER, "A shorter answer.")[0] for q in questions]
            ),
            n,
        ),
    }


def measure(spec: str, calls: int, **options: object) -> dict[str, float]:
    """Per-call costs of a backend spec, after one warm-up call of each kind."""
    backend = get_backend(spec, **options)
    try:
        per_call(backend, 1)  # load the model and warm up before timing
        return per_call(backend, calls)
    finally:
        backend.close()


def main() -> None:
    """Measure the per-call costs and print the paper-scale estimate."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="llamacpp", help="backend spec (no cache is used)")
    parser.add_argument("--calls", type=int, default=4, help="calls of each kind to time")
    parser.add_argument("--local-server", action="store_true", help="a local llama.cpp server")
    parser.add_argument("--clients", type=int, default=1, help="requests in flight (server)")
    args = parser.parse_args()
    if args.local_server:
        import tempfile
        from pathlib import Path

        from personasim.llm.llamacpp import default_threads, embedded_model_path
        from tests.support.local_server import LocalLlamaServer

        with tempfile.TemporaryDirectory() as folder:
            log = Path(folder) / "server.log"
            with LocalLlamaServer(embedded_model_path(), log, threads=default_threads()) as url:
                args.model = f"openai:smollm2@{url}"
                cost = measure(args.model, args.calls, max_concurrency=args.clients)
    else:
        cost = measure(args.model, args.calls)
    generation = (cost["answer"] + cost["critique"] + cost["revision"]) / 3
    print(f"backend {args.model}: seconds per call (mean of {args.calls})")
    for kind, seconds in cost.items():
        print(f"  {kind:<10} {seconds:7.2f}")
    print(f"  {'gen mean':<10} {generation:7.2f}  (answer, critique and revision alike)")
    total = 0.0
    print(
        f"paper scale at the measured rate ({args.clients if args.local_server else 1} in flight):"
    )
    for step, (gens, choices) in paper_counts().items():
        seconds = gens * generation + choices * cost["choice"]
        total += seconds
        print(f"  {step:<20} {gens:>8} generations {choices:>8} choices  {seconds / 3600:9.1f} h")
    print(f"  {'total':<20} {'':>29} {total / 3600:9.1f} h = {total / 86400:.1f} days")


if __name__ == "__main__":
    main()
