"""The ``testbed`` stage. :func:`run_testbed` runs the study's optional ``[testbed]``
section (:class:`~personasim.testbed.spec.TestbedSpec`) on the study's personas, under the run
directory: preference pairs; leave-one-out by the paper's protocol (every baseline critiqued and
revised for both versions of each persona; ``loo_protocol = "choice"`` keeps the cheaper one);
role-play agreement over items sampled from the pairs, with per-annotator human labels and the
human-vs-human baseline when ``humans`` is given, model vs model otherwise. The report reads
those tables back (:func:`personasim.report.testbed.report_section`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.core.tables import write_atomic
from personasim.llm import Backend
from personasim.pipeline.context import StageContext, read_run_table
from personasim.pipeline.contract import Stage
from personasim.pipeline.executor import parts_folder
from personasim.spec.study import StudySpec
from personasim.testbed import FOLDER, stage_outputs
from personasim.testbed import roleplay as R
from personasim.testbed.pairs import PairsOptions, make_pairs
from personasim.testbed.prompts import read_prompt_table
from personasim.testbed.spec import TestbedSpec


@dataclass
class TestbedRun:
    """Where a testbed run wrote its tables, and the notes it met."""

    __test__ = False  # not a pytest test class

    folder: Path
    """``RUN/testbed``."""
    notes: list[str] = field(default_factory=list)
    """Remarks of the steps."""


def run_testbed(
    spec: TestbedSpec,
    personas: pd.DataFrame,
    backend: Backend,
    out_dir: str | Path,
    raters: dict[str, Backend] | None = None,
) -> TestbedRun:
    """Pairs (resumed), leave-one-out and role-play agreement for ``personas``, under
    ``out_dir/testbed`` (the tables of :func:`personasim.testbed.stage_outputs`)."""
    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    options = PairsOptions(
        per_persona=spec.per_persona,
        held_out=spec.held_out,
        answer_tokens=spec.answer_tokens,
        critique_tokens=spec.critique_tokens,
        revision_tokens=spec.revision_tokens,
        seed=spec.seed,
    )
    made = make_pairs(
        personas,
        read_prompt_table(spec.prompts),
        backend,
        options,
        out=folder / "pairs.parquet",
        parts_dir=parts_folder(Path(out_dir), f"{FOLDER}/pairs.parquet"),
    )
    if spec.loo_protocol == "paper":
        loo_notes = _paper_loo(spec, personas, made.pairs, backend, options, folder)
    else:
        loo_notes = _choice_loo(spec, personas, backend, folder)
    agree_notes = _agreement(spec, made.pairs, backend, raters or {}, folder)
    return TestbedRun(folder, made.notes + loo_notes + agree_notes)


def _paper_loo(
    spec: TestbedSpec,
    personas: pd.DataFrame,
    pairs: pd.DataFrame,
    backend: Backend,
    generation: PairsOptions,
    folder: Path,
) -> list[str]:
    """The paper's leave-one-out; the pairs' first prompts and persona-free answers are the
    questions and their baselines."""
    from personasim.testbed.loo_paper import (
        PaperLooOptions,
        paper_leave_one_out,
        questions_from_pairs,
    )

    n = spec.n_questions or int(pairs["prompt_id"].nunique())
    questions = questions_from_pairs(pairs, n)
    options = PaperLooOptions(
        attributes=spec.loo_attributes,
        n_personas=spec.loo_personas,
        k=spec.loo_k,
        n_questions=len(questions),
        seed=spec.seed,
        generation=generation,
    )
    result = paper_leave_one_out(personas, questions, backend, options)
    write_atomic(result.pairs, folder / "loo.parquet")
    write_atomic(result.summary, folder / "loo_summary.parquet")
    write_atomic(result.items, folder / "loo_items.parquet")
    write_atomic(result.refinements, folder / "loo_refinements.parquet")
    return result.notes


def _choice_loo(
    spec: TestbedSpec, personas: pd.DataFrame, backend: Backend, folder: Path
) -> list[str]:
    """The cheaper leave-one-out: both versions pick among the fixed preference answers."""
    from personasim.testbed.loo import LooOptions, leave_one_out
    from personasim.testbed.questions import load_questions

    questions = load_questions(spec.questions)[: spec.n_questions]
    options = LooOptions(
        attributes=spec.loo_attributes, n_personas=spec.loo_personas, k=spec.loo_k, seed=spec.seed
    )
    loo = leave_one_out(personas, questions, backend, options)
    write_atomic(loo.pairs, folder / "loo.parquet")
    write_atomic(loo.summary, folder / "loo_summary.parquet")
    return loo.notes


def _model_labels(
    spec: TestbedSpec, items: pd.DataFrame, backend: Backend, raters: dict[str, Backend]
) -> pd.DataFrame:
    """Labels of the study's model, the other raters and, with ``reversed_rater``, the study's
    model once per display order."""
    named: list[tuple[str | None, Backend]] = [(None, backend), *raters.items()]
    frames = [R.model_labels_for(named, items)]
    if spec.reversed_rater:
        frames += [
            R.model_item_labels(backend, items, f"{backend.display_name} ({order})", order=order)
            for order in R.ORDERS
            if order != "both"
        ]
    return pd.concat(frames, ignore_index=True)


def _agreement(
    spec: TestbedSpec,
    pairs: pd.DataFrame,
    backend: Backend,
    raters: dict[str, Backend],
    folder: Path,
) -> list[str]:
    """Role-play agreement over items of the pairs: models, the human majority and, with
    humans, the human-vs-human baseline."""
    items = R.items_from_pairs(pairs, spec.agreement_items, spec.seed)
    annotations = R.read_annotations(spec.humans, items) if spec.humans is not None else None
    labels = _model_labels(spec, items, backend, raters)
    result = R.roleplay_agreement(labels, items, annotations)
    found = result.agreement
    write_atomic(items, folder / "items.parquet")
    write_atomic(found.labels, folder / "labels.parquet")
    write_atomic(found.matrix.reset_index(names="rater"), folder / "kappa_matrix.parquet")
    write_atomic(found.per_persona, folder / "per_persona.parquet")
    notes = found.notes + result.notes
    overall = {
        "fleiss_kappa": found.fleiss_kappa,
        "items": found.fleiss_items,
        "krippendorff_alpha": found.alpha,
        "notes": " | ".join(notes),
    }
    write_atomic(pd.DataFrame([overall]), folder / "agreement.parquet")
    if annotations is not None:
        write_atomic(annotations, folder / "annotations.parquet")
        human = result.human_matrix.reset_index(names="rater")
        write_atomic(human, folder / "human_kappa_matrix.parquet")
        write_atomic(result.human_per_persona, folder / "human_per_persona.parquet")
    return notes


def testbed_stage(ctx: StageContext) -> None:
    """The PERSONA testbed (``[testbed]``): pairs, leave-one-out, agreement under ``testbed/``."""
    spec = ctx.spec.testbed
    if spec is None:
        ctx.timing.reused = True  # nothing to compute
        return
    personas = read_run_table(ctx, "personas.parquet", "personas table")
    backend = ctx.backends.get(spec.backend or ctx.spec.simulate.simulators[0])
    raters = {name: ctx.backends.get(name) for name in spec.raters}
    run_testbed(spec, personas, backend, ctx.run, raters)


def testbed_outputs(spec: StudySpec) -> list[str]:
    """The tables the testbed stage writes under ``testbed/`` (none without ``[testbed]``)."""
    if spec.testbed is None:
        return []
    names = stage_outputs(spec.testbed.loo_protocol, spec.testbed.humans is not None)
    return [f"testbed/{name}" for name in names]


def testbed_config(spec: StudySpec) -> Any:
    """What the testbed stage's fingerprint holds: ``[testbed]`` and its backends' sections."""
    if spec.testbed is None:
        return None
    names = (spec.testbed.backend or spec.simulate.simulators[0], *spec.testbed.raters)
    return {"testbed": spec.section("testbed"), "backends": spec.backend_sections(names)}


STAGE = Stage(
    "testbed",
    lambda s: ["personas.parquet"] if s.testbed else [],
    testbed_outputs,
    ("person_id", "prompt_id", "generator"),
    testbed_config,
    testbed_stage,
    resumable=True,
    code=("personasim.testbed", __name__),
)
"""The PERSONA testbed: only with ``[testbed]``; its pairs are resumable."""
