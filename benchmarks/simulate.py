"""Seconds per simulated answer on the embedded model: the paper's method vs personasim's.

- paper: question-major (one question for every persona, then the next question), free
  generation of a reply with the authors' published sampling settings (temperature 0.95,
  ``max_tokens`` 512: ``Gen_Sim/configs/simulation_config.json`` of their repository; their
  top_p 0.9 is not applied here, which only makes replies cheaper to sample), parsed as
  ``Answer: X``. Consecutive requests share only the instructions (as with the authors' vLLM
  prefix caching), never a persona. Its per-answer cost does not depend on the number of
  personas, so it is measured on the first ``--paper-personas`` of them to bound the run time.
- ours: persona-major ``choice_logprobs`` (one forward pass over the prompt + ``Answer:``, the
  persona prefix reused from the KV cache across that persona's questions).

Both run without the LLM cache (``cache=None``): every figure is a real model call. Prints seconds
per answer, the ratio (goal: ours <= 1/10 of the paper's), the prompt tokens reused from the KV
cache, the tokens evaluated per answer, and how often the paper's replies fail to parse: strictly
(personasim's parser) and with the authors' rule (the first character after ``answer:``, or of the
whole reply when it has no ``answer:``; "A person like me..." counts as A).

Personas are real census draws (``sample_population``), as the meta tier (default) or as an
LLM-written tier (``--tier objective|subjective|descriptive|persona``, generated first with the
embedded model; not timed). The longer the persona, the more the paper's method pays for
evaluating it again at every question, while persona-major scoring evaluates it once.

The paper's replies are generated one at a time here (no batching across personas, as vLLM would
do), which makes its figure as slow as it can honestly be; a batched baseline would be faster.

The last lines print the floor of any exact scorer on this machine: even with the persona prefix
for free, each answer must evaluate its own question (its tokens after the shared persona prefix),
at the measured seconds per evaluated prompt token. On a CPU, prompt tokens cost about a third of
a generated token, so the floor, not the scheduling, decides whether the 1/10 goal is reachable.

Run: ``.venv/bin/python benchmarks/simulate.py [--personas 20] [--questions 10]
[--paper-personas 5] [--max-tokens 512] [--tier meta|subjective|...] [--model SPEC]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.census import sample_population
from personasim.llm import Cache, GenerateRequest, get_backend
from personasim.llm.base import Backend, BackendStats
from personasim.personas.generate import generate_personas
from personasim.personas.meta import meta_personas
from personasim.simulate.plan import SimulateOptions
from personasim.simulate.prompt import build_messages, parse_answer
from personasim.simulate.run import simulate
from personasim.survey.loaders import builtin_survey, load_context_json
from personasim.survey.questions import Question, Survey, letter

TOPICS = Path(__file__).resolve().parents[2] / "shared/data/opinionqa/authors_simulation_questions"
TOPIC_FILES = ("Climate", "Technology", "Education", "Customer", "Entertainment")
STATES = ["CA", "TX", "FL", "NY", "PA", "OH", "GA", "MI", "AZ", "WI"]


def make_personas(n: int, tier: str, seed: int = 0) -> pd.DataFrame:
    """``n`` real census draws over ten states, as meta or descriptive personas."""
    per_state = -(-n // len(STATES))
    population = sample_population(states=STATES, per_state=per_state, seed=seed).head(n)
    if tier == "meta":
        return meta_personas(population)
    with tempfile.TemporaryDirectory() as folder:
        writer = get_backend("llamacpp", cache=Cache(Path(folder) / "cache.sqlite"))
        table = generate_personas(population, tiers=[tier], backend=writer, progress=False)
        writer.close()
    return table[table["tier"] == tier].reset_index(drop=True)


def make_survey(count: int) -> Survey:
    """The elections questions, then the authors' topic questions (when ../shared is present)."""
    questions: list[Question] = list(builtin_survey("elections").questions)
    for name in TOPIC_FILES:
        path = TOPICS / name / "context.json"
        if len(questions) >= count or not path.is_file():
            continue
        loaded = load_context_json(path, dedupe_ids=True).questions
        questions += [q.model_copy(update={"id": f"{name}:{q.id}"}) for q in loaded]
    if len(questions) < count:
        print(f"note: only {len(questions)} questions available ({TOPICS} absent?)")
    return Survey(id="bench", questions=tuple(questions[:count]))


def paper_method(
    backend: Backend, personas: pd.DataFrame, survey: Survey, max_tokens: int
) -> tuple[float, list[tuple[str, list[str]]], float]:
    """Question-major free generation -> wall seconds, (reply, letters) pairs, mean reply tokens."""
    replies: list[tuple[str, list[str]]] = []
    tokens = []
    started = time.perf_counter()
    for k, question in enumerate(survey.questions):
        letters = [letter(i) for i in range(len(question.options))]
        requests = [
            GenerateRequest(
                messages=build_messages(text, question),
                temperature=0.95,
                max_tokens=max_tokens,
                seed=1000 * k + i,
            )
            for i, text in enumerate(personas["text"])
        ]
        for result in backend.generate(requests, progress=False):
            replies.append((result.text, letters))
            tokens.append(result.completion_tokens)
    return time.perf_counter() - started, replies, float(np.mean(tokens))


def authors_rule(reply: str) -> str:
    """The authors' parse: first character after ``answer:``, else of the whole reply."""
    parts = reply.lower().split("answer:")
    decision = parts[1].strip() if len(parts) > 1 else reply.strip()
    return decision[0].upper() if decision else ""


def parse_rates(replies: list[tuple[str, list[str]]]) -> tuple[float, float, float]:
    """Failure rates: strict ``Answer: X``; the authors' rule; and replies the authors' rule
    counts as an option although they hold no strict answer."""
    strict = [parse_answer(text, letters) for text, letters in replies]
    authors = [authors_rule(text) in letters for text, letters in replies]
    n = len(replies)
    forced = sum(a and s is None for a, s in zip(authors, strict, strict=True))
    return sum(s is None for s in strict) / n, authors.count(False) / n, forced / n


def evaluated(stats: BackendStats, answers: int) -> str:
    """Prompt tokens evaluated per answer and the share reused from the KV cache."""
    if stats.prompt_tokens == 0:
        return "prompt tokens not reported by this backend"
    fresh = (stats.prompt_tokens - stats.reused_prompt_tokens) / answers
    return (
        f"{fresh:.0f} prompt tokens evaluated/answer "
        f"({stats.reused_prompt_tokens / max(stats.prompt_tokens, 1):.0%} reused)"
    )


def question_tokens(backend: Backend, persona_text: str, survey: Survey) -> float | None:
    """Mean tokens of a question after the prompt prefix all questions of a persona share, or
    None when the backend cannot tokenize here (an HTTP endpoint)."""
    if not hasattr(backend, "tokenize"):
        return None
    prompts = [
        backend.tokenize(backend.render(build_messages(persona_text, q), "Answer:"))
        for q in survey.questions
    ]
    shared = len(os.path.commonprefix(prompts))
    return float(np.mean([len(p) - shared for p in prompts]))


def print_floor(
    backend: Backend,
    personas: pd.DataFrame,
    survey: Survey,
    stats: BackendStats,
    ours_s: float,
    paper_per: float,
) -> None:
    """The lowest ratio any scorer that evaluates each question once per persona can reach."""
    suffix = question_tokens(backend, personas["text"].iloc[0], survey)
    evaluated_tokens = stats.prompt_tokens - stats.reused_prompt_tokens
    if suffix is None or evaluated_tokens <= 0:
        return
    per_token = ours_s / evaluated_tokens
    floor = suffix * per_token
    bare = np.mean(
        [
            len(backend.tokenize(q.text + "\n" + "\n".join(o.text for o in q.options)))
            for q in survey.questions
        ]
    )
    print(
        f"floor: {per_token * 1000:.2f} ms per evaluated prompt token (measured, ours) x "
        f"{suffix:.1f} question tokens per answer = {floor:.4f} s/answer, ratio "
        f"{floor / paper_per:.3f}; the 1/10 goal allows "
        f"{paper_per / 10 / per_token:.1f} tokens per answer on this machine; the question "
        f"text and its options alone, unformatted, take {bare:.1f}"
    )


def main() -> None:
    """Run both methods and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument(
        "--paper-personas",
        type=int,
        default=5,
        help="personas the paper's method is timed on (cost per answer)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=512,
        help="reply cap of the paper's method (the authors' config: 512)",
    )
    parser.add_argument(
        "--tier",
        default="meta",
        choices=["meta", "objective", "subjective", "descriptive", "persona"],
    )
    parser.add_argument(
        "--model",
        default="llamacpp",
        help="backend spec both methods run on (default: the embedded model)",
    )
    args = parser.parse_args()
    personas, survey = make_personas(args.personas, args.tier), make_survey(args.questions)
    answers = len(personas) * len(survey.questions)
    paper_personas = personas.head(args.paper_personas)
    paper_answers = len(paper_personas) * len(survey.questions)
    backend = get_backend(args.model, cache=None)
    mean_chars = personas["text"].str.len().mean()
    print(
        f"{len(personas)} {args.tier} personas (mean {mean_chars:.0f} chars) x "
        f"{len(survey.questions)} questions = {answers} answers (paper method: {paper_answers}), "
        f"model {backend.display_name}, no cache"
    )

    backend.stats = BackendStats()
    paper_s, replies, reply_tokens = paper_method(backend, paper_personas, survey, args.max_tokens)
    paper_tokens = evaluated(backend.stats, paper_answers)
    strict_fail, authors_fail, forced = parse_rates(replies)

    backend.stats = BackendStats()
    started = time.perf_counter()
    report = simulate(personas, survey, backend, SimulateOptions())
    ours_s = time.perf_counter() - started
    ours_tokens = evaluated(backend.stats, answers)
    ours_stats = backend.stats

    paper_per, ours_per = paper_s / paper_answers, ours_s / answers
    print(
        f"paper (question-major, generate <= {args.max_tokens} tok, parse): "
        f"{paper_per:.4f} s/answer; {paper_tokens}; {reply_tokens:.1f} reply tokens/answer"
    )
    print(
        f"ours  (persona-major, logprobs): {ours_per:.4f} s/answer; {ours_tokens}; "
        f"mean valid_mass {report.mean_valid_mass:.3f}"
    )
    verdict = "met" if ours_per <= paper_per / 10 else "NOT met"
    print(f"ratio ours/paper per answer: {ours_per / paper_per:.3f} (goal <= 0.100: {verdict})")
    print(
        f"paper-method parse failures: strict 'Answer: X' {strict_fail:.1%}; authors' rule "
        f"{authors_fail:.1%}; replies the authors' rule turns into an option without a strict "
        f"answer: {forced:.1%}"
    )
    print_floor(backend, personas, survey, ours_stats, ours_s, paper_per)
    backend.close()


if __name__ == "__main__":
    main()
