"""Study specs: what a ``personasim run`` does, as a tree of frozen, documented pydantic models.

A study is written in TOML (see ``personasim/studies/default.toml`` and docs/study.md)::

    name = "default"

    [population]
    states = ["CA", "TX", "FL"]
    per_state = 3

    [personas]
    tiers = ["meta", "objective", "descriptive"]
    generators = ["writer"]

    [simulate]
    simulators = ["writer"]

    [backends.writer]
    spec = "llamacpp"
    n_ctx = 4096

    [[surveys]]
    id = "elections"
    source = "elections"

Each stage has its own section, each backend its own table with its own options (checked
against that backend's option model at load time, without loading a model), and each survey an
``id`` that names its files in the run directory. Unknown keys, wrong types and keys of the old
flat form fail with one line naming the file and the field.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from personasim.calibrate.options import CalibrateOptions
from personasim.core.errors import ConfigError, PersonasimError, did_you_mean, validation_error
from personasim.executor.base import ExecutorSpec
from personasim.personas.generate import MAX_RUNS
from personasim.testbed.spec import TestbedSpec

if TYPE_CHECKING:
    from personasim.survey.questions import Survey

#: Built-in studies shipped in ``personasim/studies``.
BUILTIN_STUDIES = ("default", "tiny", "anes96", "persona")

Tier = Literal["meta", "objective", "subjective", "descriptive", "persona"]
"""The persona tiers (a closed set; see :data:`personasim.personas.schema.TIERS`)."""

#: Keys of the old flat study form -> the section they moved to.
MOVED = {
    "states": "[population]",
    "per_state": "[population]",
    "seed": "[population]",
    "min_age": "[population]",
    "pums": "[population]",
    "tiers": "[personas]",
    "generators": "[personas]",
    "temperature": "[personas] or [simulate]",
    "simulators": "[simulate]",
    "estimator": "[simulate]",
    "samples": "[simulate]",
    "permute": "[simulate]",
    "min_valid_mass": "[simulate]",
    "n_boot": "[score]",
    "backend_options": "[backends.NAME] (one table per backend, options beside its spec)",
    "truth": "[[surveys]] (truth = ... in the survey's entry)",
    "max_questions": "[[surveys]] (max_questions = ... in the survey's entry)",
}

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HINT = "see docs/study.md or personasim/studies/default.toml for the form"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PopulationSection(_Section):
    """``[population]``: who is drawn from the census."""

    states: tuple[str, ...] = ("CA", "TX", "FL", "NY", "PA")
    """USPS state codes the population is drawn from."""
    per_state: int = Field(default=3, ge=1, le=100_000)
    """Persons drawn per state."""
    seed: int = Field(default=0, ge=0)
    """Seed of the population draw, persona generation, option permutation and bootstrap."""
    min_age: int = Field(default=18, ge=0, le=100)
    """Youngest age drawn."""
    pums: tuple[Path, ...] = ()
    """PUMS person CSVs to use as the seed instead of the shipped one."""

    @field_validator("states")
    @classmethod
    def _upper_states(cls, states: tuple[str, ...]) -> tuple[str, ...]:
        if not states:
            raise ValueError("give at least one state")
        return tuple(s.strip().upper() for s in states)


class PersonasSection(_Section):
    """``[personas]``: which persona tiers are written, by which backends, how."""

    tiers: tuple[Tier, ...] = ("meta", "objective", "subjective", "descriptive")
    """Persona tiers to generate and simulate (meta, objective, subjective, descriptive,
    persona)."""
    generators: tuple[str, ...] = ("llamacpp",)
    """Names of ``[backends.NAME]`` tables that write the personas (each its own rows)."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """Sampling temperature of persona generation."""
    prompt_files: dict[Tier, Path] = Field(default_factory=dict)
    """Prompt template file per LLM tier (docs/personas.md); tiers not named use the built-in."""
    max_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts per persona request (the repair loop) before the row is recorded invalid."""
    degenerate_retries: int = Field(default=0, ge=0, le=5)
    """More tries for a valid persona whose free text is degenerate (docs/personas.md); a retry
    is kept only when it is valid and less degenerate."""
    max_runs: int = Field(default=MAX_RUNS, ge=1, le=20)
    """Runs that may retry a persona whose generation failed in the backend (a transient
    failure is not done: the next ``personasim run`` tries it again, this many times at most)."""

    @field_validator("tiers")
    @classmethod
    def _some_tiers(cls, tiers: tuple[str, ...]) -> tuple[str, ...]:
        if not tiers:
            raise ValueError("give at least one tier")
        return tuple(dict.fromkeys(tiers))

    @field_validator("generators")
    @classmethod
    def _some_generators(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("give at least one generator")
        return tuple(dict.fromkeys(names))


class SimulateSection(_Section):
    """``[simulate]``: how the surveys are answered."""

    simulators: tuple[str, ...] = ("llamacpp",)
    """Names of ``[backends.NAME]`` tables that answer; every generator meets every simulator."""
    estimator: Literal["logprobs", "sample"] = "logprobs"
    """How an answer distribution is read: letter probabilities, or sampled replies."""
    samples: int = Field(default=1, ge=1, le=1000)
    """Replies per persona and question with the ``sample`` estimator."""
    permute: bool = False
    """Show options in a seeded random order per person."""
    temperature: float = Field(default=1.0, ge=0.0, le=5.0)
    """Sampling temperature of the ``sample`` estimator."""
    min_valid_mass: float = Field(default=0.0, ge=0.0, lt=1.0)
    """An answer counts only when more than this probability lands on the option letters
    (0: anything above 0); the rest are recorded invalid and counted beside the scores."""

    @field_validator("simulators")
    @classmethod
    def _some_simulators(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("give at least one simulator")
        return tuple(dict.fromkeys(names))


class ScoreSection(_Section):
    """``[score]``: how scores and their intervals are computed."""

    n_boot: int = Field(default=1000, ge=0, le=100_000)
    """Bootstrap replicates for confidence intervals (0: none)."""


class CalibrationSection(_Section, CalibrateOptions):
    """``[calibration]``: weights that make persona tiers match real targets (docs/calibration.md);
    the score stage then scores every survey unweighted and calibrated, side by side. The method
    options (``method``, ``trim``, ``trim_percentile``, ``trim_rounds``, ``max_iter``, ``tol``)
    are :class:`~personasim.calibrate.options.CalibrateOptions`'s, the ones of
    ``personasim calibrate``."""

    targets: str = "party"
    """Target sources, comma-separated: ``census``, ``party`` (Pew by state), ``csv:PATH``."""
    by: str = "state"
    """Calibrate per value of this column (``""``: one group per tier)."""
    tiers: tuple[Tier, ...] = ("subjective", "persona")
    """Tiers to calibrate (the others keep their census weight)."""


class ReportOptions(_Section):
    """``[report]``: what the HTML report shows."""

    title: str = "personasim study report"
    """Title at the top of the report."""
    sample_personas: int = Field(default=3, ge=0, le=50)
    """Sample personas shown per tier."""
    wordcloud_words: int = Field(default=80, ge=10, le=500)
    """Most frequent words drawn in each word cloud."""


class BackendSpec(_Section):
    """``[backends.NAME]``: one model backend: its spec string and its own options.

    In TOML the options sit beside ``spec`` (``spec = "llamacpp"`` then ``n_ctx = 4096``).
    """

    spec: str = "llamacpp"
    """Backend spec string: ``llamacpp``, ``llamacpp:PATH.gguf`` or ``openai:MODEL@URL``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The backend's options (validated against its option model, see docs/llm.md)."""

    @model_validator(mode="before")
    @classmethod
    def _options_beside_spec(cls, data: Any) -> Any:
        if isinstance(data, dict) and "options" not in data:
            return {
                "spec": data.get("spec", "llamacpp"),
                "options": {k: v for k, v in data.items() if k != "spec"},
            }
        return data


class SurveyEntry(_Section):
    """``[[surveys]]``: one survey to simulate (and score when it has ground truth)."""

    id: str
    """Unique id (lower case, digits, ``_``, ``-``): names ``responses_<id>.parquet`` etc."""
    source: str
    """Survey spec: ``elections``, ``topics``, ``anes96``, a survey file, ``context:PATH``,
    ``opinionqa:PATH``."""
    truth: str | None = None
    """Ground truth (``elections``, ``opinionqa:PATH``, ``csv:PATH``, ``microdata:MAPPING``:
    respondent microdata described by a mapping YAML, see docs/study.md); ``elections`` and
    ``opinionqa:`` surveys bring their own."""
    max_questions: int | None = Field(default=None, ge=1)
    """Only the first N questions (None: all)."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"id": _slug(data), "source": data}
        return data

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"id {value!r} must be lower case letters, digits, '_' or '-'")
        return value

    @property
    def truth_spec(self) -> str | None:
        """The ground-truth spec of this survey, or None when it has none."""
        if self.truth is not None:
            return self.truth
        if self.source == "elections" or self.source.startswith("opinionqa:"):
            return self.source
        return None

    def load(self) -> Survey:
        """The survey, cut to ``max_questions``."""
        from personasim.survey.loaders import load_survey

        survey = load_survey(self.source)
        if self.max_questions is not None:
            survey = survey.model_copy(update={"questions": survey.questions[: self.max_questions]})
        return survey


def _slug(source: str) -> str:
    """An id for a survey given only by its source: the file or folder stem, lower case."""
    _, sep, path = source.partition(":")
    stem = Path(path if sep and len(_) > 1 else source).stem.lower()
    return re.sub(r"[^a-z0-9_-]+", "_", stem).strip("_-") or "survey"


DEFAULT_SURVEYS = (
    SurveyEntry(id="elections", source="elections"),
    SurveyEntry(id="topics", source="topics"),
)


class StudySpec(_Section):
    """A whole study: population, personas, simulation, scores, report, backends, surveys."""

    name: str = "study"
    """Short name of the study (shown in the report; default run directory ``runs/<name>``)."""
    out_dir: Path | None = None
    """Run directory (the CLI's ``--out`` wins); default ``runs/<name>``."""
    population: PopulationSection = PopulationSection()
    """``[population]``: who is drawn."""
    personas: PersonasSection = PersonasSection()
    """``[personas]``: which tiers, written by which backends."""
    simulate: SimulateSection = SimulateSection()
    """``[simulate]``: how the surveys are answered."""
    score: ScoreSection = ScoreSection()
    """``[score]``: bootstrap replicates."""
    report: ReportOptions = ReportOptions()
    """``[report]``: what the report shows."""
    executor: ExecutorSpec = ExecutorSpec()
    """``[executor]``: where the model-calling stages run (``local`` or ``ray``; see
    docs/scale.md). Results do not depend on it, so it is not part of any stage's hash."""
    calibration: CalibrationSection | None = None
    """``[calibration]``: calibrate persona tiers and score them weighted too (absent: no)."""
    backends: dict[str, BackendSpec] = Field(default_factory=dict)
    """``[backends.NAME]``: the backends generators and simulators name. The name ``llamacpp``
    means the embedded model unless the study defines it itself."""
    surveys: tuple[SurveyEntry, ...] = DEFAULT_SURVEYS
    """``[[surveys]]``: the surveys, each with a unique id."""
    testbed: TestbedSpec | None = None
    """``[testbed]`` (optional): the PERSONA testbed (preference pairs, leave-one-out, agreement)
    on the study's ``persona``-tier personas; see docs/testbed.md."""

    @model_validator(mode="before")
    @classmethod
    def _implicit_embedded(cls, data: Any) -> Any:
        """Define ``[backends.llamacpp]`` (the embedded model) when it is named but not given."""
        if not isinstance(data, dict) or not isinstance(data.get("backends", {}), dict):
            return data
        used = []
        for section, field in (("personas", "generators"), ("simulate", "simulators")):
            table = data.get(section, {})
            names = table.get(field, ("llamacpp",)) if isinstance(table, dict) else ()
            used += list(names) if isinstance(names, list | tuple) else []
        backends = dict(data.get("backends", {}))
        if "llamacpp" in used and "llamacpp" not in backends:
            backends["llamacpp"] = {"spec": "llamacpp"}
        return {**data, "backends": backends}

    @field_validator("surveys")
    @classmethod
    def _unique_ids(cls, surveys: tuple[SurveyEntry, ...]) -> tuple[SurveyEntry, ...]:
        if not surveys:
            raise ValueError("give at least one survey")
        seen: set[str] = set()
        for entry in surveys:
            if entry.id in seen:
                raise ValueError(f"survey id {entry.id!r} is used twice; ids name the files")
            seen.add(entry.id)
        return surveys

    # convenience views used by the stages and the report
    @property
    def seed(self) -> int:
        """The study's one seed (``[population] seed``)."""
        return self.population.seed

    @property
    def states(self) -> tuple[str, ...]:
        """``[population] states``."""
        return self.population.states

    @property
    def tiers(self) -> tuple[str, ...]:
        """``[personas] tiers``."""
        return self.personas.tiers

    def survey(self, survey_id: str) -> SurveyEntry:
        """The ``[[surveys]]`` entry with this id."""
        for entry in self.surveys:
            if entry.id == survey_id:
                return entry
        raise ConfigError(
            f"no survey {survey_id!r} in this study",
            hint=did_you_mean(survey_id, [s.id for s in self.surveys]),
        )

    def section(self, name: str) -> dict[str, Any]:
        """One section as plain data (``population``, ``personas``, ...); stage hashes use it."""
        return getattr(self, name).model_dump(mode="json")

    def backend_sections(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The ``[backends.NAME]`` tables of ``names`` as plain data."""
        return {n: self.backends[n].model_dump(mode="json") for n in names}

    def to_toml(self) -> str:
        """The resolved spec as TOML text (written to ``study.toml`` in the run directory)."""
        data = self.model_dump(mode="json", exclude_none=True)
        lines = [f"{k} = {_toml_value(data[k])}" for k in ("name", "out_dir") if k in data]
        sections = (
            "population",
            "personas",
            "simulate",
            "score",
            "report",
            "executor",
            "calibration",
        )
        for section in sections:
            if section in data:
                lines += ["", f"[{section}]", *_table_lines(data[section])]
        for name, backend in data["backends"].items():
            flat = {"spec": backend["spec"], **backend["options"]}
            lines += ["", f"[backends.{_toml_key(name)}]", *_table_lines(flat)]
        for entry in data["surveys"]:
            lines += ["", "[[surveys]]", *_table_lines(entry)]
        if "testbed" in data:
            lines += ["", "[testbed]", *_table_lines(data["testbed"])]
        return "\n".join(lines) + "\n"


def _table_lines(table: dict[str, Any]) -> list[str]:
    """``key = value`` lines; a nested mapping becomes an inline table."""
    return [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]


def _toml_key(key: str) -> str:
    """A bare key when TOML allows it, else a quoted one."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    """A scalar, list or mapping as TOML (strings JSON-quoted, which TOML accepts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


# --------------------------------------------------------------------------- loading


def _known_fields(loc: tuple[object, ...]) -> list[str]:
    """Field names valid at the place ``loc`` points to (for "did you mean")."""
    model: type[BaseModel] = StudySpec
    for part in loc:  # a list index (``surveys``, 0) keeps the model its list holds
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        nested = [
            a
            for a in (annotation, *get_args(annotation))  # X | None, tuple[X, ...]: X
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested:
            model = nested[0]
    return list(model.model_fields)


def _moved_key(raw: dict[str, Any], source: str) -> None:
    """Raise the one-line "moved to [section]" error for a key of the old flat form."""
    for key in raw:
        if key in MOVED:
            hint = f"the study format has one section per stage; {_HINT}"
            raise ConfigError(f"{source}: {key!r} moved to {MOVED[key]}", hint=hint)


def _check_references(spec: StudySpec, source: str) -> None:
    """Generators and simulators must name backends; each backend's options must validate."""
    from personasim.llm.registry import validate_backend

    refs = (
        ("personas", "generators", spec.personas.generators),
        ("simulate", "simulators", spec.simulate.simulators),
    )
    if spec.testbed is not None:
        refs += (
            ("testbed", "backend", (spec.testbed.backend or spec.simulate.simulators[0],)),
            ("testbed", "raters", spec.testbed.raters),
        )
        if not (spec.testbed.raters or spec.testbed.reversed_rater or spec.testbed.humans):
            raise ConfigError(
                f"{source}: [testbed] agreement needs at least two raters",
                hint="add raters, humans, or set reversed_rater = true",
            )
        if "persona" not in spec.personas.tiers:
            raise ConfigError(
                f"{source}: [testbed] needs personas of the persona tier",
                hint="add 'persona' to [personas] tiers",
            )
    for section, field, names in refs:
        for i, name in enumerate(names):
            if name not in spec.backends:
                raise ConfigError(
                    f"{source}: {section}.{field}[{i}]: unknown backend {name!r}",
                    hint=did_you_mean(name, spec.backends) or "define it as [backends.NAME]",
                )
    for name, backend in spec.backends.items():
        where = f"{source}: backends.{name}"
        try:
            validate_backend(backend.spec, backend.options, source=where)
        except PersonasimError as error:
            if error.message.startswith(where):
                raise
            raise ConfigError(f"{where}.spec: {error.message}", hint=error.hint) from None


def study_from_dict(raw: dict[str, Any], source: str = "study") -> StudySpec:
    """Validate a mapping as a :class:`StudySpec`; errors are one-line ConfigErrors."""
    _moved_key(raw, source)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as error:
        raise validation_error(error, source, known_fields=_known_fields, hint=_HINT) from None
    _check_references(spec, source)
    return spec


def load_study(path: str | Path) -> StudySpec:
    """Load a study from a TOML file, or a built-in study by name (``default``, ``tiny``)."""
    if str(path) in BUILTIN_STUDIES:
        return builtin_study(str(path))
    path = Path(path)
    if path.suffix != ".toml" and not path.exists() and "/" not in str(path):
        raise ConfigError(
            f"unknown built-in study {str(path)!r}",
            hint=did_you_mean(str(path), BUILTIN_STUDIES) + " (or give a STUDY.toml file)",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: study file not found",
            hint=f"give a TOML file or one of {', '.join(BUILTIN_STUDIES)}",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read ({error})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return study_from_dict(raw, str(path))


def builtin_study(name: str = "default") -> StudySpec:
    """A study shipped with personasim (``default``: about 10 minutes on 2 cores)."""
    if name not in BUILTIN_STUDIES:
        raise ConfigError(
            f"unknown built-in study {name!r}", hint=did_you_mean(name, BUILTIN_STUDIES)
        )
    text = (resources.files("personasim") / "studies" / f"{name}.toml").read_text("utf-8")
    return study_from_dict(tomllib.loads(text), f"builtin:{name}")


# --------------------------------------------------------------------------- pre-flight


def _named(where: str, check: Any) -> Any:
    """Run ``check()``; a PersonasimError comes back as one ConfigError prefixed by ``where``."""
    try:
        return check()
    except PersonasimError as error:
        raise ConfigError(f"{where}: {error.message}", hint=error.hint) from None


def check_study(spec: StudySpec, source: str = "study") -> None:
    """Check everything a run needs that is checkable without a model call.

    State codes, PUMS and prompt files, every survey source and truth source, every backend spec
    and its options (the model is not loaded). Errors name ``source`` and the field.
    """
    from personasim.census.sample import resolve_states
    from personasim.personas.prompts import parse_prompt_files
    from personasim.scoring.score import load_truth

    _named(f"{source}: population.states", lambda: resolve_states(spec.population.states))
    for i, path in enumerate(spec.population.pums):
        if not Path(path).is_file():
            raise ConfigError(f"{source}: population.pums[{i}]: {path}: file not found")
    files = dict(spec.personas.prompt_files)
    for tier in files:
        _named(
            f"{source}: personas.prompt_files.{tier}",
            lambda t=tier: parse_prompt_files(files, (t,)),
        )
    _check_references(spec, source)
    for i, entry in enumerate(spec.surveys):
        survey = _named(f"{source}: surveys[{i}].source", entry.load)
        if entry.truth_spec is not None:
            truth = _named(
                f"{source}: surveys[{i}].truth",
                lambda e=entry, s=survey: load_truth(e.truth_spec, s),
            )
            _named(f"{source}: surveys[{i}].truth", lambda t=truth: _check_truth_options(t))
    if spec.executor.kind == "ray":
        from personasim.executor.ray import check_ray_address

        check_ray_address(spec.executor.address, f"{source}: executor.address")
    if spec.calibration is not None:
        _check_calibration(spec.calibration, source)
    if spec.testbed is not None:
        _check_testbed_files(spec.testbed, source)


def _check_truth_options(truth: Any) -> None:
    """Every option a truth table names is an option of its survey's question."""
    table = truth.table
    asked = table[table["question_id"].isin(truth.survey.ids)]
    for (question_id, option), _ in asked.groupby(["question_id", "option"], sort=True):
        truth.survey.question(str(question_id)).index_of(str(option))


def _check_calibration(section: CalibrationSection, source: str) -> None:
    """``[calibration]`` targets load (sources known, CSV files readable and well-formed)."""
    from personasim.calibrate.targets import load_targets

    _named(f"{source}: calibration.targets", lambda: load_targets(section.targets))


def _check_testbed_files(section: TestbedSpec, source: str) -> None:
    """``[testbed]`` prompt set, preference questions (choice protocol) and human labels
    (columns, answer letters, annotators: the items they label are drawn from the pairs later)
    are readable, and each leave-one-out attribute is a persona attribute."""
    from personasim.testbed.prompts import read_prompt_table
    from personasim.testbed.questions import load_questions
    from personasim.testbed.roleplay import read_annotations

    _named(f"{source}: testbed.prompts", lambda: read_prompt_table(section.prompts))
    if section.loo_protocol == "choice":
        _named(f"{source}: testbed.questions", lambda: load_questions(section.questions))
    if section.humans is not None:
        if not Path(section.humans).exists():
            raise ConfigError(
                f"{source}: testbed.humans: {section.humans}: no such file or folder",
                hint="a labels CSV or the annotation page's labels folder",
            )
        _named(f"{source}: testbed.humans", lambda: read_annotations(section.humans, None))
    _check_loo_attributes(section.loo_attributes or (), source)


def _check_loo_attributes(attributes: tuple[str, ...], source: str) -> None:
    """Leave-one-out attributes are attributes of the persona tier."""
    from personasim.personas import schema as S

    known = (*S.PERSONA_CENSUS_KEYS, *S.PERSONA_PROCEDURAL_KEYS, *S.PERSONA_OPEN_KEYS)
    for i, name in enumerate(attributes):
        if name not in known:
            raise ConfigError(
                f"{source}: testbed.loo_attributes[{i}]: {name!r} is not a persona attribute",
                hint=did_you_mean(name, known),
            )
