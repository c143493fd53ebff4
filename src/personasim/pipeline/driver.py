"""Run a whole study: population -> personas -> simulation -> scores -> diagnostics -> report.

Every stage is declared once in :data:`STAGE_LIST` (inputs, outputs, key columns, spec sections,
run function; the contract is :mod:`personasim.pipeline.contract`) and the driver resumes from that
declaration: a stage whose input hashes and spec sections are unchanged is reused, personas and
responses already committed are not generated again, and the LLM cache (``cache.sqlite``)
answers any repeated request. Rerunning a finished study therefore makes zero model calls. The
model-calling stages run through the executor (``[executor]``, local or Ray) and commit each batch
as a Parquet part, so a run killed at any moment (``kill -9``) resumes after its last part.

Run directory::

    study.toml          the resolved spec
    stages.json         each finished stage's input and spec hashes (what resume compares)
    population.parquet  census-sampled persons; raking.parquet: each state's raking report
    personas.parquet    one row per person x tier x generator
    responses_<id>.parquet                  one per [[surveys]] entry
    parts/personas/, parts/responses_<id>/  the committed batches the two tables above are
                        published from (part-NNNNN.parquet, _published.json, _failed.parquet)
    scores_<id>, summary_<id>, cross_model_<id>.parquet   surveys with ground truth
    crosstab_<id>.parquet   surveys with ground truth: weighted answer shares per group and tier
    weights.parquet, calibration.parquet, scores_<id>_calibrated, summary_<id>_calibrated
                        with a [calibration] section: weights, their diagnostics, weighted scores
    text_stats.parquet, drift.parquet   persona diagnostics
    manifest.json       versions, model ids and hashes, seeds, prompt hashes, stage input
                        hashes, timings, calls
    cache.sqlite        the LLM cache
    report.html         the self-contained report
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from personasim.core.errors import ConfigError, Interrupted, did_you_mean
from personasim.core.keys import PERSONA_KEY, RESPONSE_KEY, SCORE_KEY
from personasim.core.secrets import redact_urls
from personasim.core.tables import (
    check_columns,
    check_output_dir,
    read_table,
    write_atomic,
    write_text_atomic,
)
from personasim.core.validity import (
    answers_of_invalid_personas,
    empty_probs,
    invalid_answer_rows,
)
from personasim.pipeline import contract as S
from personasim.pipeline.context import (
    Backends,
    StageContext,
    StageTiming,
    read_run_table,
    stage_timer,
)
from personasim.pipeline.contract import Stage
from personasim.pipeline.manifest import build_manifest, write_manifest
from personasim.spec.study import CalibrationSection, StudySpec


@dataclass
class RunResult:
    """The outcome of :func:`run_study`."""

    spec: StudySpec
    out_dir: Path
    report_path: Path
    stages: list[StageTiming] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    backend_lines: list[str] = field(default_factory=list)
    """Per backend used: model, threads, calls, cache hits, retries and faults by kind."""

    @property
    def model_calls(self) -> int:
        """Model calls of this run, all stages together."""
        return sum(s.model_calls for s in self.stages)

    @property
    def cache_hits(self) -> int:
        """Cache hits of this run, all stages together."""
        return sum(s.cache_hits for s in self.stages)

    def table_names(self) -> list[str]:
        """The names of the run's tables (``population``, ``scores_elections``, ...), sorted: the
        ones its study declares (the ledger's outputs) that exist."""
        from personasim.core.ledger import declared_outputs

        declared = declared_outputs(self.out_dir)
        return sorted(
            path.stem
            for path in self.out_dir.glob("*.parquet")
            if declared is None or path.name in declared
        )

    def table(self, name: str) -> pd.DataFrame:
        """The run's table ``name`` (one of :meth:`table_names`) as a DataFrame."""
        names = self.table_names()
        if name not in names:
            raise ConfigError(
                f"run {self.out_dir} has no table {name!r}", hint=did_you_mean(name, names)
            )
        return read_table(self.out_dir / f"{name}.parquet", f"{name} table")

    def format_timings(self) -> str:
        """The per-stage timing summary printed at the end of a run."""
        lines = [f"{'stage':<12} {'seconds':>8} {'calls':>7} {'hits':>7}  note"]
        for s in self.stages:
            note = "reused" if s.reused else (f"ran: {s.reason}" if s.reason else "")
            lines.append(
                f"{s.stage:<12} {s.seconds:>8.1f} {s.model_calls:>7} {s.cache_hits:>7}  {note}"
            )
        total = sum(s.seconds for s in self.stages)
        lines.append(f"{'total':<12} {total:>8.1f} {self.model_calls:>7} {self.cache_hits:>7}")
        return "\n".join(lines)


def population_stage(ctx: StageContext) -> None:
    """Draw the population into ``population.parquet``; each state's raking report into
    ``raking.parquet``."""
    from personasim.census.sample import PopulationSpec, build_population

    section = ctx.spec.population
    spec = PopulationSpec(
        states=section.states,
        per_state=section.per_state,
        seed=section.seed,
        min_age=section.min_age,
        pums=section.pums,
    )
    population = build_population(spec)
    write_atomic(population.frame, ctx.run / "population.parquet")
    write_atomic(raking_table(population.reports), ctx.run / "raking.parquet")


def raking_table(reports: list[Any]) -> pd.DataFrame:
    """One row per state x control: iterations, convergence, max relative error, ESS, unmet."""
    rows = [
        {
            "state": r.state,
            "control": control,
            "max_rel_error": float(error),
            "iterations": r.iterations,
            "converged": r.converged,
            "status": r.status,
            "offending": r.offending,
            "ess": r.ess,
            "n_seed": r.n_seed,
            "unmet": ", ".join(r.unmet),
            "note": r.note,
        }
        for r in reports
        for control, error in (r.max_rel_error or {"(none)": 0.0}).items()
    ]
    return pd.DataFrame(rows, columns=RAKING_COLUMNS)


RAKING_COLUMNS = [
    "state",
    "control",
    "max_rel_error",
    "iterations",
    "converged",
    "status",
    "offending",
    "ess",
    "n_seed",
    "unmet",
    "note",
]


def personas_stage(ctx: StageContext) -> None:
    """Generate every tier with every generator into ``personas.parquet`` through the executor
    (committed batch by batch as parts under ``parts/personas/``; resumed from them)."""
    from personasim.pipeline.executor import personas_on_executor

    section = ctx.spec.personas
    population = read_run_table(ctx, "population.parquet", "population table")
    written = personas_on_executor(
        ctx.spec,
        ctx.run,
        population,
        ctx.backends,
        seed=ctx.spec.seed,
        temperature=section.temperature,
        max_attempts=section.max_attempts,
        prompt_file={t: str(p) for t, p in section.prompt_files.items()} or None,
        max_runs=section.max_runs,
    )
    ctx.timing.reused = written == 0


def simulate_options(spec: StudySpec, simulator: str) -> Any:
    """The :class:`~personasim.simulate.plan.SimulateOptions` of ``[simulate]``."""
    from personasim.simulate.plan import SimulateOptions

    section = spec.simulate
    return SimulateOptions(
        estimator=section.estimator,
        samples=section.samples,
        permute=section.permute,
        temperature=section.temperature,
        seed=spec.seed,
        simulator=simulator,
        min_valid_mass=section.min_valid_mass,
    )


def simulate_stage(ctx: StageContext) -> None:
    """Answer every survey with every simulator into ``responses_<id>.parquet`` through the
    executor (committed batch by batch as parts under ``parts/responses_<id>/``; resumed from
    them)."""
    from personasim.pipeline.executor import simulate_on_executor

    personas = read_run_table(ctx, "personas.parquet", "personas table")
    options = {name: simulate_options(ctx.spec, name) for name in ctx.spec.simulate.simulators}
    written = 0
    for entry in ctx.spec.surveys:
        written += simulate_on_executor(
            ctx.spec, ctx.run, personas, entry.load(), entry.id, options, ctx.backends
        )
    ctx.timing.reused = written == 0


def score_stage(ctx: StageContext) -> None:
    """Score each survey with ground truth: ``scores_<id>``, ``summary_<id>``,
    ``cross_model_<id>`` and ``crosstab_<id>`` tables (the report reads these, it computes no
    score). Responses of
    invalid personas and answers at or below ``min_valid_mass`` are excluded and counted."""

    from personasim.scoring.score import score
    from personasim.scoring.stream import ResponseSource
    from personasim.truth import load_truth

    population = read_run_table(ctx, "population.parquet", "population table")
    personas = read_run_table(ctx, "personas.parquet", "personas table")
    for entry in scored_surveys(ctx.spec):
        responses = ResponseSource(
            ctx.run / f"responses_{entry.id}.parquet",
            "delete the run directory's file to recompute",
        )  # streamed
        result = score(
            responses,
            load_truth(str(entry.truth_spec), entry.load()),
            population,
            n_boot=ctx.spec.score.n_boot,
            seed=ctx.spec.seed,
            personas=personas,
            min_valid_mass=ctx.spec.simulate.min_valid_mass,
        )
        write_atomic(result.scores, ctx.run / f"scores_{entry.id}.parquet")
        write_atomic(result.summary, ctx.run / f"summary_{entry.id}.parquet")
        write_atomic(result.cross_model.reset_index(), ctx.run / f"cross_model_{entry.id}.parquet")
    weights = None
    if ctx.spec.calibration is not None:
        weights = calibrated_scores(ctx, ctx.spec.calibration, population, personas)
    crosstab_tables(ctx, population, personas, weights)


def crosstab_tables(
    ctx: StageContext,
    population: pd.DataFrame,
    personas: pd.DataFrame,
    weights: pd.DataFrame | None,
) -> None:
    """``crosstab_<id>`` per scored survey: weighted answer shares per group and tier with
    bootstrap CIs, counts and the small-n flag, the real group shares beside them where the
    truth has the group (:func:`personasim.scoring.crosstab.crosstab`). Weights: the
    calibrated ones where ``[calibration]`` made them, else the persons' census weights; the
    rows scoring excludes are left out here too."""
    from personasim.scoring.crosstab import CROSSTAB_COLUMNS, MIN_N, crosstab, study_attributes
    from personasim.scoring.score import UNSCORED_COLUMNS
    from personasim.truth import load_truth

    for entry in scored_surveys(ctx.spec):
        responses = read_table(
            ctx.run / f"responses_{entry.id}.parquet",
            "responses table",
            hint="delete the run directory's file to recompute",
            exclude=UNSCORED_COLUMNS,
        )
        bad = invalid_answer_rows(responses, ctx.spec.simulate.min_valid_mass)
        responses = responses[~(bad | answers_of_invalid_personas(responses, personas))]
        usable = ~empty_probs(responses["probs"])
        table = pd.DataFrame(columns=CROSSTAB_COLUMNS)
        if usable.any():
            truth = load_truth(str(entry.truth_spec), entry.load())
            table = crosstab(
                responses,
                study_attributes(truth, population),
                population,
                weights,
                n_boot=ctx.spec.score.n_boot,
                min_n=MIN_N,
                seed=ctx.spec.seed,
                truth=truth,
            )
        write_atomic(table, ctx.run / f"crosstab_{entry.id}.parquet")


def calibrated_scores(
    ctx: StageContext, section: CalibrationSection, population: pd.DataFrame, personas: pd.DataFrame
) -> pd.DataFrame:
    """``[calibration]``: weights fitted on the personas that are scored (``weights.parquet``,
    diagnostics in ``calibration.parquet``) and every scored survey again with them
    (``scores_<id>_calibrated``, ``summary_...``); returns the weights."""
    from personasim.pipeline.calibration import run_calibration, scored_personas
    from personasim.scoring.score import score
    from personasim.scoring.stream import ResponseSource
    from personasim.truth import load_truth

    responses = [
        read_table(
            ctx.run / f"responses_{entry.id}.parquet",
            "responses table",
            hint="delete the run directory's file to recompute",
            columns=["person_id", "tier", "generator", "valid", "valid_mass"],
        )
        for entry in scored_surveys(ctx.spec)
    ]
    pool = scored_personas(personas, responses, ctx.spec.simulate.min_valid_mass)
    result = run_calibration(section, pool)
    write_atomic(result.weights, ctx.run / "weights.parquet")
    write_atomic(result.diagnostics, ctx.run / "calibration.parquet")
    for note in result.notes:
        print(f"calibration: {note}", file=sys.stderr)
    for entry in scored_surveys(ctx.spec):
        responses = ResponseSource(
            ctx.run / f"responses_{entry.id}.parquet",
            "delete the run directory's file to recompute",
        )  # streamed
        out = score(
            responses,
            load_truth(str(entry.truth_spec), entry.load()),
            population,
            n_boot=ctx.spec.score.n_boot,
            seed=ctx.spec.seed,
            personas=personas,
            min_valid_mass=ctx.spec.simulate.min_valid_mass,
            weights=result.weights,
        )
        write_atomic(out.scores, ctx.run / f"scores_{entry.id}_calibrated.parquet")
        write_atomic(out.summary, ctx.run / f"summary_{entry.id}_calibrated.parquet")
    return result.weights


def scored_surveys(spec: StudySpec) -> list[Any]:
    """The ``[[surveys]]`` entries that have ground truth."""
    return [entry for entry in spec.surveys if entry.truth_spec is not None]


def diagnostics_stage(ctx: StageContext) -> None:
    """Text statistics and imputation drift of the personas (no model calls)."""
    from personasim.analysis import imputation_drift, text_stats

    personas = read_run_table(ctx, "personas.parquet", "personas table")
    write_atomic(text_stats(personas), ctx.run / "text_stats.parquet")
    write_atomic(imputation_drift(personas), ctx.run / "drift.parquet")


def testbed_stage(ctx: StageContext) -> None:
    """The PERSONA testbed (``[testbed]``): pairs, leave-one-out, agreement under ``testbed/``."""
    spec = ctx.spec.testbed
    if spec is None:
        ctx.timing.reused = True  # nothing to compute
        return
    from personasim.pipeline.testbed import run_testbed

    personas = read_run_table(ctx, "personas.parquet", "personas table")
    backend = ctx.backends.get(spec.backend or ctx.spec.simulate.simulators[0])
    raters = {name: ctx.backends.get(name) for name in spec.raters}
    run_testbed(spec, personas, backend, ctx.run, raters)


def _testbed_outputs(spec: StudySpec) -> list[str]:
    from personasim.testbed import OUTPUTS

    return [f"testbed/{name}" for name in OUTPUTS] if spec.testbed is not None else []


def _testbed_config(spec: StudySpec) -> Any:
    if spec.testbed is None:
        return None
    names = (spec.testbed.backend or spec.simulate.simulators[0], *spec.testbed.raters)
    return {"testbed": spec.section("testbed"), "backends": spec.backend_sections(names)}


def report_stage(ctx: StageContext) -> None:
    """Write ``report.html`` from the run directory's tables."""
    from personasim.report import build_report

    build_report(ctx.run)


def _responses(spec: StudySpec) -> list[str]:
    return [f"responses_{e.id}.parquet" for e in spec.surveys]


def _truth_data(spec: StudySpec) -> list[str]:
    """Files the surveys' truth specs read beyond the files they name (a microdata mapping's
    respondent file), so that the score stage's hash covers them."""
    from personasim.truth.microdata import data_files

    return [path for entry in spec.surveys for path in data_files(entry.truth_spec)]


def _score_outputs(spec: StudySpec) -> list[str]:
    out = [
        f"{kind}_{e.id}.parquet"
        for e in scored_surveys(spec)
        for kind in ("scores", "summary", "cross_model", "crosstab")
    ]
    if spec.calibration is not None:
        out += ["weights.parquet", "calibration.parquet"]
        out += [
            f"{kind}_{e.id}_calibrated.parquet"
            for e in scored_surveys(spec)
            for kind in ("scores", "summary")
        ]
    return out


TABLES = [
    "population.parquet",
    "raking.parquet",
    "personas.parquet",
    "text_stats.parquet",
    "drift.parquet",
]


CODE: dict[str, tuple[str, ...]] = {
    "population": ("personasim.census", "personasim.core.states"),
    "personas": ("personasim.personas", "personasim.census.mapping", "personasim.pipeline.jobs"),
    "simulate": ("personasim.simulate", "personasim.survey", "personasim.pipeline.jobs"),
    "score": (
        "personasim.scoring",
        "personasim.truth",
        "personasim.survey",
        "personasim.calibrate",
        "personasim.pipeline.calibration",
    ),
    "diagnostics": ("personasim.analysis",),
    "testbed": ("personasim.testbed", "personasim.pipeline.testbed"),
}
"""Per stage, the modules whose source computes its outputs: changing them makes the stage stale.
The LLM layer is left out on purpose: a model's answers are keyed by the request in the cache,
and a backend change that alters requests shows up as cache misses, not as stale tables."""


STAGE_LIST: tuple[Stage, ...] = (
    Stage(
        "population",
        lambda s: [],
        lambda s: ["population.parquet", "raking.parquet"],
        ("person_id",),
        lambda s: s.section("population"),
        population_stage,
        code=CODE["population"],
    ),
    Stage(
        "personas",
        lambda s: ["population.parquet"],
        lambda s: ["personas.parquet"],
        PERSONA_KEY,
        lambda s: {
            "personas": s.section("personas"),
            "seed": s.seed,
            "backends": s.backend_sections(s.personas.generators),
        },
        personas_stage,
        resumable=True,
        code=CODE["personas"],
    ),
    Stage(
        "simulate",
        lambda s: ["personas.parquet"],
        _responses,
        RESPONSE_KEY,
        lambda s: {
            "simulate": s.section("simulate"),
            "seed": s.seed,
            "backends": s.backend_sections(s.simulate.simulators),
            "surveys": [(e.id, e.source, e.max_questions) for e in s.surveys],
        },
        simulate_stage,
        resumable=True,
        code=CODE["simulate"],
    ),
    Stage(
        "score",
        lambda s: ["population.parquet", "personas.parquet", *_responses(s)],
        _score_outputs,
        SCORE_KEY,
        lambda s: {
            "score": s.section("score"),
            "seed": s.seed,
            "min_valid_mass": s.simulate.min_valid_mass,
            "calibration": s.calibration and s.section("calibration"),
            "surveys": [(e.id, e.source, e.max_questions, e.truth_spec) for e in s.surveys],
            "truth_data": _truth_data(s),
        },
        score_stage,
        code=CODE["score"],
    ),
    Stage(
        "diagnostics",
        lambda s: ["personas.parquet"],
        lambda s: ["text_stats.parquet", "drift.parquet"],
        (),
        lambda s: {},
        diagnostics_stage,
        code=CODE["diagnostics"],
    ),
    Stage(
        "testbed",
        lambda s: ["personas.parquet"] if s.testbed else [],
        _testbed_outputs,
        ("person_id", "prompt_id", "generator"),
        _testbed_config,
        testbed_stage,
        resumable=True,
        code=CODE["testbed"],
    ),
    Stage(
        "report",
        lambda s: [*TABLES, *_responses(s), *_score_outputs(s), *_testbed_outputs(s)],
        lambda s: ["report.html"],
        (),
        lambda s: s.section("report"),
        report_stage,
        always=True,
    ),
)
"""Every stage of a study, in order (see :mod:`personasim.pipeline.contract` for the contract)."""


def resolve_out_dir(spec: StudySpec, out_dir: str | Path | None) -> Path:
    """The run directory: ``out_dir``, else the spec's, else ``runs/<name>``."""
    chosen = out_dir or spec.out_dir or Path("runs") / spec.name
    return Path(chosen)


def _check_run_dir(run: Path, spec: StudySpec) -> None:
    """Refuse a run directory that holds another study (by name); write the resolved spec.

    A changed section of the same study is fine: the stages it feeds are recomputed. A path that
    is a file, or a folder that cannot be written, is refused before anything is written.
    """
    from personasim.spec.study import load_study

    check_output_dir(run)
    existing = run / "study.toml"
    if existing.exists():
        try:
            old = load_study(existing)
        except ConfigError as error:
            raise ConfigError(
                f"{run} was written by another personasim version ({error.message})",
                hint="give another --out, or delete that directory",
            ) from None
        if old.name != spec.name:
            raise ConfigError(
                f"{run} holds another study ({old.name!r}, not {spec.name!r})",
                hint="give another --out, or delete that directory",
            )
    run.mkdir(parents=True, exist_ok=True)
    write_text_atomic(redact_urls(spec.model_copy(update={"out_dir": None}).to_toml()), existing)


def _run_stage(stage: Stage, ctx: StageContext, ledger: dict[str, Any]) -> None:
    """Run one stage as its declaration says (skip when fresh, clear when stale), and record in
    ``ctx.timing.reason`` what made it run."""
    spec, run = ctx.spec, ctx.run
    status, reasons = S.state(stage, spec, run, ledger)
    ctx.timing.reason = "; ".join(reasons)
    if status == "fresh" and not (stage.resumable or stage.always):
        ctx.timing.reused = True
        return
    if status == "stale":
        if not stage.always:
            print(f"   {stage.name} is stale: {ctx.timing.reason}", file=sys.stderr, flush=True)
        S.remove_outputs(stage, spec, run)
    ledger.pop(stage.name, None)
    S.write_ledger(run, ledger)
    stage.run(ctx)
    main = stage.outputs(spec)[:1]
    if stage.keys and main and (run / main[0]).exists():
        check_columns(run / main[0], f"{stage.name} table", stage.keys)  # the schema only
    ledger[stage.name] = S.record(stage, spec, run)
    S.write_ledger(run, ledger)


def run_study(
    spec: StudySpec, out_dir: str | Path | None = None, source: str = "study"
) -> RunResult:
    """Check, then run (or resume) ``spec`` in ``out_dir`` and return where everything went.

    ``source`` names the study file in pre-flight error messages.
    """
    from personasim.core.lock import run_directory_lock
    from personasim.core.parts import remove_stale_temps
    from personasim.pipeline.executor import executor_session
    from personasim.spec.study import check_study

    check_study(spec, source)
    run = resolve_out_dir(spec, out_dir)
    check_output_dir(run)  # before the lock creates the directory
    with run_directory_lock(run):  # one writer of the run directory, for the whole run
        _check_run_dir(run, spec)
        remove_stale_temps(run)  # half-written tables of a run that was killed (kill -9)
        stages: list[StageTiming] = []
        ledger = S.read_ledger(run)
        for name in S.remove_undeclared(STAGE_LIST, spec, run, ledger):
            print(f"   removed {name}: the study no longer declares it", file=sys.stderr)
        backends = Backends(spec, run / "cache.sqlite")
        try:
            with executor_session(spec.executor):  # one Ray for every stage (nothing when local)
                for stage in STAGE_LIST:
                    with stage_timer(stage.name, stages, backends) as timing:
                        if stage.name == "report":
                            write_manifest(run, build_manifest(spec, run, backends, stages, ledger))
                        _run_stage(stage, StageContext(spec, run, backends, timing), ledger)
            manifest = build_manifest(spec, run, backends, stages, ledger)
            write_manifest(run, manifest)
        except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: each stage kept its finished rows
            raise Interrupted(
                getattr(stop, "signum", signal.SIGINT),
                f"finished stages, rows and cached model answers are kept in "
                f"{run}; run the same command again to "
                "resume",
            ) from stop
        finally:
            backends.close()
    return RunResult(
        spec,
        run,
        run / "report.html",
        stages,
        manifest,
        [b.summary_line() for b in backends.loaded.values()],
    )


def open_run(out_dir: str | Path) -> RunResult:
    """A finished (or partly finished) run directory, to read its tables with
    :meth:`RunResult.table`; its spec comes from the run's ``study.toml``, its manifest from
    ``manifest.json`` (``stages`` is empty: nothing ran)."""
    from personasim.spec.study import load_study

    run = Path(out_dir)
    if not (run / "study.toml").is_file():
        raise ConfigError(
            f"{run}: not a run directory (no study.toml)",
            hint="give the folder `personasim run` or run_study wrote",
        )
    manifest_path = run / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8")) if manifest_path.is_file() else {}
    return RunResult(load_study(run / "study.toml"), run, run / "report.html", manifest=manifest)
