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
from personasim.core.secrets import redact_urls
from personasim.core.tables import (
    check_columns,
    check_output_dir,
    read_table,
    write_text_atomic,
)
from personasim.pipeline import contract as S
from personasim.pipeline.context import (
    Backends,
    StageContext,
    StageTiming,
    stage_timer,
)
from personasim.pipeline.contract import Stage
from personasim.pipeline.manifest import build_manifest, write_manifest
from personasim.pipeline.stages import (
    diagnostics,
    personas,
    population,
    report,
    score,
    simulate,
    testbed,
)
from personasim.spec.study import StudySpec


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


STAGE_LIST: tuple[Stage, ...] = (
    population.STAGE,
    personas.STAGE,
    simulate.STAGE,
    score.STAGE,
    diagnostics.STAGE,
    testbed.STAGE,
    report.STAGE,
)
"""Every stage of a study, in order: each is declared in its own module of
:mod:`personasim.pipeline.stages` (see :mod:`personasim.pipeline.contract` for the contract)."""


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
