"""Study specs: what a ``personasim run`` does, as a frozen, documented pydantic model.

A study is written in TOML (see ``personasim/studies/default.toml``)::

    name = "default"
    states = ["CA", "TX", "FL"]
    per_state = 3
    tiers = ["meta", "objective", "descriptive"]
    surveys = ["elections", "topics"]

    [report]
    sample_personas = 2

Unknown keys and wrong types fail with one line naming the file and the field.
"""

from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from personasim.errors import ConfigError

#: Built-in studies shipped in ``personasim/studies``.
BUILTIN_STUDIES = ("default", "tiny")


class ReportOptions(BaseModel):
    """What the HTML report shows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = "personasim study report"
    """Title at the top of the report."""
    sample_personas: int = Field(default=3, ge=0, le=50)
    """Sample personas shown per tier."""
    wordcloud_words: int = Field(default=80, ge=10, le=500)
    """Most frequent words drawn in each word cloud."""


class StudySpec(BaseModel):
    """A whole study: population, personas, surveys, models and report."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "study"
    """Short name of the study (shown in the report)."""
    states: tuple[str, ...] = ("CA", "TX", "FL", "NY", "PA")
    """USPS state codes the population is drawn from."""
    per_state: int = Field(default=3, ge=1, le=100_000)
    """Persons drawn per state."""
    seed: int = Field(default=0, ge=0)
    """Seed of the population draw, persona generation, option permutation and bootstrap."""
    tiers: tuple[str, ...] = ("meta", "objective", "subjective", "descriptive")
    """Persona tiers to generate and simulate (meta, objective, subjective, descriptive,
    persona)."""
    generators: tuple[str, ...] = ("llamacpp",)
    """Backend specs that write the personas (see docs/llm.md), e.g. ``llamacpp``."""
    simulators: tuple[str, ...] = ("llamacpp",)
    """Backend specs that answer the surveys; every generator's personas meet every simulator."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword options for every backend (e.g. ``n_ctx = 4096``)."""
    surveys: tuple[str, ...] = ("elections", "topics")
    """Survey specs to simulate: ``elections``, ``topics``, a file, or ``NAME:PATH``."""
    max_questions: int | None = Field(default=None, ge=1)
    """Only the first N questions of each survey (None: all)."""
    truth: dict[str, str] = Field(default_factory=dict)
    """Ground truth per survey spec; ``elections`` and ``opinionqa:PATH`` surveys need none."""
    estimator: Literal["logprobs", "sample"] = "logprobs"
    """How an answer distribution is read: letter probabilities, or sampled replies."""
    samples: int = Field(default=1, ge=1, le=1000)
    """Replies per persona and question with the ``sample`` estimator."""
    permute: bool = False
    """Show options in a seeded random order per person."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """Sampling temperature of persona generation."""
    n_boot: int = Field(default=200, ge=0, le=100_000)
    """Bootstrap replicates for confidence intervals."""
    out_dir: Path | None = None
    """Run directory (the CLI's ``--out`` wins); default ``runs/<name>``."""
    report: ReportOptions = ReportOptions()
    """Report options."""

    @field_validator("states")
    @classmethod
    def _upper_states(cls, states: tuple[str, ...]) -> tuple[str, ...]:
        if not states:
            raise ValueError("give at least one state")
        return tuple(s.strip().upper() for s in states)

    @field_validator("tiers")
    @classmethod
    def _known_tiers(cls, tiers: tuple[str, ...]) -> tuple[str, ...]:
        from personasim.personas.schema import TIERS

        unknown = [t for t in tiers if t not in TIERS]
        if unknown:
            raise ValueError(f"unknown tier {unknown[0]!r}; tiers: {', '.join(TIERS)}")
        if not tiers:
            raise ValueError("give at least one tier")
        return tuple(dict.fromkeys(tiers))

    @field_validator("surveys", "simulators")
    @classmethod
    def _non_empty(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if not values:
            raise ValueError("give at least one")
        return values

    def truth_for(self, survey: str) -> str | None:
        """The ground-truth spec of one survey spec, or None when it has none."""
        if survey in self.truth:
            return self.truth[survey]
        if survey == "elections" or survey.startswith("opinionqa:"):
            return survey
        return None

    def to_toml(self) -> str:
        """The resolved spec as TOML text (written to ``study.toml`` in the run directory)."""
        data = self.model_dump(mode="json", exclude_none=True)
        report = data.pop("report")
        tables = {k: data.pop(k) for k in ("backend_options", "truth")}
        lines = [f"{k} = {_toml_value(v)}" for k, v in data.items()]
        for name, table in (*tables.items(), ("report", report)):
            lines += ["", f"[{name}]"] + [f"{_toml_value(k)} = {_toml_value(v)}"
                                          for k, v in table.items()]  # fmt: skip
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    """A scalar or list as TOML (strings JSON-quoted, which TOML accepts)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names valid at the place ``loc`` points to (for "did you mean")."""
    if len(loc) > 1 and loc[0] == "report":
        return list(ReportOptions.model_fields)
    return list(model.model_fields)


def _error_line(error: ValidationError, source: str) -> ConfigError:
    """The first pydantic error as a one-line ConfigError naming file and field."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    where = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        known = _field_names(StudySpec, loc)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
        return ConfigError(f"{source}: unknown field {where!r}", hint=hint)
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"{source}: field {where}: {message}",
                       hint="see personasim/studies/default.toml for an example")  # fmt: skip


def study_from_dict(raw: dict[str, Any], source: str = "study") -> StudySpec:
    """Validate a mapping as a :class:`StudySpec`; errors are one-line ConfigErrors."""
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as error:
        raise _error_line(error, source) from None


def load_study(path: str | Path) -> StudySpec:
    """Load a study from a TOML file, or a built-in study by name (``default``, ``tiny``)."""
    if str(path) in BUILTIN_STUDIES:
        return builtin_study(str(path))
    path = Path(path)
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
        close = difflib.get_close_matches(name, BUILTIN_STUDIES, n=1)
        raise ConfigError(f"unknown built-in study {name!r}",
                          hint=f"did you mean {close[0]!r}?" if close
                          else f"known: {', '.join(BUILTIN_STUDIES)}")  # fmt: skip
    text = (resources.files("personasim") / "studies" / f"{name}.toml").read_text("utf-8")
    return study_from_dict(tomllib.loads(text), f"builtin:{name}")
