"""The ``testbed`` stage. :func:`run_testbed` runs the study's optional ``[testbed]``
section (:class:`~personasim.testbed.spec.TestbedSpec`): pairs, leave-one-out and agreement for
the study's personas, written under the run directory. The report reads those tables back
(:func:`personasim.report.testbed.report_section`)."""

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
from personasim.testbed import FOLDER, OUTPUTS
from personasim.testbed.agreement import agreement, model_labels
from personasim.testbed.loo import LooOptions, leave_one_out
from personasim.testbed.pairs import PairsOptions, make_pairs
from personasim.testbed.prompts import read_prompt_table
from personasim.testbed.questions import load_questions
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
    """Pairs (resumed), leave-one-out and agreement for ``personas``, under ``out_dir/testbed``."""
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
    questions = load_questions(spec.questions)[: spec.n_questions]
    loo = leave_one_out(
        personas,
        questions,
        backend,
        LooOptions(
            attributes=spec.loo_attributes,
            n_personas=spec.loo_personas,
            k=spec.loo_k,
            seed=spec.seed,
        ),
    )
    write_atomic(loo.pairs, folder / "loo.parquet")
    write_atomic(loo.summary, folder / "loo_summary.parquet")
    frames = [model_labels(backend, personas, questions)]
    frames += [model_labels(b, personas, questions, name) for name, b in (raters or {}).items()]
    if spec.reversed_rater:
        frames.append(
            model_labels(
                backend, personas, questions, f"{backend.display_name} (reversed)", reverse=True
            )
        )
    humans = _humans(spec, personas, questions)
    result = agreement(pd.concat(frames, ignore_index=True), humans)
    write_atomic(result.matrix.reset_index(names="rater"), folder / "kappa_matrix.parquet")
    write_atomic(result.per_persona, folder / "per_persona.parquet")
    overall = pd.DataFrame(
        [
            {
                "fleiss_kappa": result.fleiss_kappa,
                "items": result.fleiss_items,
                "krippendorff_alpha": result.alpha,
                "notes": " | ".join(result.notes),
            }
        ]
    )
    write_atomic(overall, folder / "agreement.parquet")
    return TestbedRun(folder, made.notes + loo.notes + result.notes)


def _humans(spec: TestbedSpec, personas: pd.DataFrame, questions: list) -> pd.DataFrame | None:
    """The human labels of the spec, checked (None when there are none)."""
    if spec.humans is None:
        return None
    from personasim.testbed.agreement import read_human_labels

    return read_human_labels(spec.humans, personas["person_id"].astype(str).tolist(), questions)


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
    return [f"testbed/{name}" for name in OUTPUTS] if spec.testbed is not None else []


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
