"""How close simulated opinions come to real Pew answers, overall and per demographic group.

Census persons (``sample_population`` over ten states, weighted) become meta personas (their
census attributes as the profile), answer the first ``--questions`` ordinal questions of an
OpinionQA wave with the embedded model (``logprobs``), and are scored against the real,
unweighted Pew answer counts of ``../shared/data/opinionqa`` per group (Pew's groups derived
from census attributes, see ``personasim.survey.groups``).

Prints, per attribute (``overall``, AGE, SEX, RACE, EDUCATION, CREGION, RACE_SEX): the mean
alignment (1 - normalized Wasserstein distance) over groups and questions, the same for a
uniform answer (the null baseline), and how many group x question cells were scored. Then a
sensitivity check: for each question and attribute, whether the group the model puts highest on
the option scale is the group Pew's respondents put highest (the share of such questions; chance
is 1 / groups).

Run: ``.venv/bin/python benchmarks/opinionqa_alignment.py [--wave W26] [--questions 10]
[--per-state 10]`` (about 0.15 s per person and question on 2 cores; the LLM cache in
``--cache`` makes a rerun free).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.census import sample_population
from personasim.llm import Cache, get_backend
from personasim.personas.meta import meta_personas
from personasim.scoring.score import score
from personasim.simulate.plan import SimulateOptions
from personasim.simulate.run import simulate
from personasim.survey.questions import Question, Survey
from personasim.truth import Truth, load_truth

OPINIONQA = Path(__file__).resolve().parents[2] / "shared/data/opinionqa"
STATES = ["CA", "TX", "FL", "NY", "PA", "OH", "GA", "MI", "AZ", "WI"]
ATTRIBUTES = ["overall", "AGE", "SEX", "RACE", "EDUCATION", "CREGION", "RACE_SEX"]


def ordinal_questions(survey: Survey, truth_ids: set[str], count: int) -> Survey:
    """The first ``count`` ordinal questions of ``survey`` that have group truth."""
    chosen = [q for q in survey.questions if q.kind == "ordinal" and q.id in truth_ids][:count]
    return Survey(id=survey.id, questions=tuple(chosen))


def expected_position(dist: list[float], question: Question) -> float:
    """Mean option position of a distribution (refusals, when present in it, left out)."""
    p = np.asarray(dist, dtype=float)
    if len(p) == len(question.options):
        p = p[~question.refusal_mask]
    return float(np.dot(p, question.positions) / p.sum())


def top_group_agreement(scores: pd.DataFrame, survey: Survey) -> pd.Series:
    """Per attribute: share of questions where the simulated and the real top group coincide."""
    rows = scores[(scores["metric"] == "alignment") & (scores["attribute"] != "overall")]
    hits: dict[str, list[bool]] = {}
    for (attribute, qid), cell in rows.groupby(["attribute", "question_id"]):
        if len(cell) < 2:
            continue
        question = survey.question(str(qid))
        sim = cell["sim_dist"].map(lambda d, q=question: expected_position(list(d), q))
        true = cell["truth_dist"].map(lambda d, q=question: expected_position(list(d), q))
        same = cell["group"].iloc[int(np.argmax(sim))] == cell["group"].iloc[int(np.argmax(true))]
        hits.setdefault(str(attribute), []).append(bool(same))
    return pd.Series({a: float(np.mean(v)) for a, v in hits.items()})


def main() -> None:
    """Simulate, score and print the alignment table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wave", default="W26")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--per-state", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=".personasim/bench-opinionqa.sqlite")
    args = parser.parse_args()
    folder = OPINIONQA / "tatsu_opinions_qa_human_resp" / f"American_Trends_Panel_{args.wave}"
    if not folder.is_dir():
        raise SystemExit(f"{folder} is absent: this benchmark needs ../shared/data/opinionqa")
    groups, overall = (
        load_truth(f"csv:{OPINIONQA / name}", f"opinionqa:{folder}")
        for name in (
            "opinionqa_group_counts_unweighted.csv.gz",
            "opinionqa_overall_counts_unweighted.csv",
        )
    )
    truth = Truth("distribution", groups.survey, pd.concat([overall.table, groups.table]))
    survey = ordinal_questions(truth.survey, set(truth.table["question_id"]), args.questions)
    population = sample_population(states=STATES, per_state=args.per_state, seed=args.seed)
    personas = meta_personas(population)
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    backend = get_backend("llamacpp", cache=Cache(args.cache))
    started = time.perf_counter()
    report = simulate(personas, survey, backend, SimulateOptions())
    elapsed = time.perf_counter() - started
    print(
        f"{len(personas)} meta personas x {len(survey.questions)} ordinal {args.wave} questions;"
        f" {report.model_calls} model calls in {elapsed:.0f} s, mean valid_mass "
        f"{report.mean_valid_mass:.3f}"
    )
    result = score(report.responses, truth, population, n_boot=0)
    scores = result.scores[result.scores["metric"] == "alignment"]
    table = scores.groupby("attribute").agg(
        alignment=("value", "mean"), uniform=("uniform", "mean"), cells=("value", "size")
    )
    table = table.reindex([a for a in ATTRIBUTES if a in table.index])
    print(table.round(3).to_string())
    agreement = top_group_agreement(result.scores, survey)
    groups = scores[scores["attribute"] != "overall"].groupby("attribute")["group"].nunique()
    print("top group agrees with Pew (share of questions; chance = 1/groups):")
    for attribute in agreement.index:
        print(f"  {attribute:<10} {agreement[attribute]:.2f}  (chance {1 / groups[attribute]:.2f})")
    backend.close()


if __name__ == "__main__":
    main()
