"""Generate persona tiers for a population: one row per person x tier x generator.

Tiers (Li et al. 2025, Section 2.1; Castricato et al. 2024, Section 3.1):

* ``meta``: census attributes only, no LLM (:mod:`personasim.personas.meta`).
* ``objective`` / ``subjective``: the LLM fills the tabular template given the meta persona,
  constrained to the JSON schema of :mod:`personasim.personas.schema`.
* ``descriptive``: a bounded narrative (JSON with one ``description`` string).
* ``persona``: PERSONA style, in the paper's order (Fig. 1): census attributes + procedural Big
  Five and trait lists; an LLM consistency check (``consistent`` / ``inconsistent``) judges that
  draft and a rejection redraws its procedural part with a new seed, at most ``max_resamples``
  times (then the person is pruned); only accepted drafts get their LLM-filled open attributes,
  which differ per persona (:func:`personasim.personas.procedural.open_keys`). The census record
  is never redrawn: it is a real PUMS record carrying its raking weight (docs/personas.md).

Every reply is validated; an invalid one is re-asked with the error appended (``max_attempts`` in
all) and, if still invalid, kept with ``valid=False`` and its raw text: that row is done. A reply
that failed in the backend (HTTP error, timeout: ``finish_reason`` ``error``) is not re-asked with
a repair prompt; its row is kept with ``valid=False`` but is *not* done: the next run of the
personas stage generates it again (:mod:`personasim.pipeline.executor`), and ``runs`` counts the
runs that tried it, at most ``max_runs``.
Rows with ``valid=False`` are never simulated or scored
(:func:`personasim.simulate.run.drop_invalid_personas`). Meta attributes the LLM
writes are compared with the census and then pinned to the census value; the rewrites are counted
in ``contradictions``. ``fields`` holds the final values and ``census`` the census values of the
same keys, so imputation drift per attribute is measurable (:func:`attribute_drift`).

This module computes rows in memory; writing them as parts, resuming and retrying is the
part-writing driver's job (:func:`personasim.pipeline.jobs.personas_to_parts`), and the LLM
cache answers repeated requests.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from personasim.core.errors import ConfigError, DataError, validation_error
from personasim.core.keys import PERSONA_KEY
from personasim.core.states import state_name
from personasim.core.validity import said_valid, valid_personas
from personasim.llm import GenerateRequest, GenerateResult, Message
from personasim.llm.base import Backend
from personasim.personas import prompts as P
from personasim.personas import schema as S
from personasim.personas.meta import (
    DEFAULT_ATTRIBUTES,
    META_GENERATOR,
    attribute_label,
    meta_persona_text,
)
from personasim.personas.procedural import (
    BigFiveSpec,
    big_five_text,
    open_keys,
    procedural_traits,
)

#: Columns of a personas table before the population's own columns.
OUTPUT_COLUMNS = [
    *PERSONA_KEY,
    "fields",
    "census",
    "text",
    "raw",
    "valid",
    "first_valid",
    "attempts",
    "finish_reason",
    "error",
    "contradictions",
    "n_contradictions",
    "checks",
    "rejections",
    "rejection_causes",
    "prompt_sha",
    "seed",
    "seconds",
    "runs",
]
TRANSIENT = "error"
"""The ``finish_reason`` of a backend failure: the row is retried by the next run."""
MAX_RUNS = 3
"""Default runs that may try a row whose generation failed in the backend (the ``personas``
command's ``--max-runs`` and a study's ``[personas] max_runs``)."""
CHECK_CHOICES = ("consistent", "inconsistent")
REJECTION_CAUSES = ("inconsistent", "pruned", "fill_invalid")
"""Why PERSONA-tier work was thrown away: a draft the consistency check judged inconsistent
(redrawn), a person pruned after ``max_resamples`` redraws (never filled), a fill still invalid
after ``max_attempts`` (row excluded)."""
DEFAULT_MAX_TOKENS = {"objective": 450, "subjective": 900, "descriptive": 300, "persona": 400}


class PersonaOptions(BaseModel):
    """Options of :func:`generate_personas`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tiers: tuple[str, ...] = S.TIERS
    """Tiers to generate, in order."""
    meta_attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES
    """Census attributes of the meta persona (given to the LLM, pinned in its output)."""
    seed: int = 0
    """Base seed of sampling and of the procedural draws."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """Sampling temperature of generation (the consistency check is always greedy)."""
    max_attempts: int = Field(default=3, ge=1, le=10)
    """Tries per reply: the first one plus repairs with the validation error appended."""
    degenerate_retries: int = Field(default=0, ge=0, le=5)
    """More tries for a valid reply whose free text is degenerate
    (:mod:`personasim.personas.quality`): the reply goes back naming the flagged fields, and a
    retry replaces it only when it is valid with fewer flagged fields, so no persona is lost."""
    max_runs: int = Field(default=MAX_RUNS, ge=1, le=20)
    """Runs that may try a row whose generation failed in the backend (``finish_reason``
    ``error``); after that the row stays invalid and done."""
    max_resamples: int = Field(default=2, ge=0, le=10)
    """PERSONA tier: new procedural draws after a draft is judged inconsistent."""
    open_categories: int = Field(default=3, ge=0, le=len(S.OPEN_CATEGORY_POOL))
    """PERSONA tier: open categories drawn per persona from
    :data:`~personasim.personas.schema.OPEN_CATEGORY_POOL`, beside the core open attributes."""
    string_length: int = Field(default=S.DEFAULT_STRING_LENGTH, ge=10, le=400)
    """``maxLength`` of the open text fields."""
    description_length: int = Field(default=S.DEFAULT_DESCRIPTION_LENGTH, ge=40, le=4000)
    """``maxLength`` of the descriptive narrative."""
    max_tokens: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MAX_TOKENS))
    """Token budget per reply, by tier (missing tiers take the defaults)."""
    big_five: BigFiveSpec = BigFiveSpec()
    """Assumed distribution of the procedural Big Five scores."""

    @field_validator("tiers")
    @classmethod
    def _known_tiers(cls, tiers: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in tiers if t not in S.TIERS]
        if unknown:
            raise ValueError(f"unknown tier {unknown[0]!r}; tiers: {', '.join(S.TIERS)}")
        return tuple(dict.fromkeys(tiers))

    def tokens(self, tier: str) -> int:
        """The token budget of one reply of ``tier``."""
        return self.max_tokens.get(tier, DEFAULT_MAX_TOKENS[tier])


def persona_options(**values: Any) -> PersonaOptions:
    """:class:`PersonaOptions` with validation errors as one-line :class:`ConfigError`."""
    try:
        return PersonaOptions(**values)
    except ValidationError as error:
        raise validation_error(
            error,
            "persona options",
            hint="see `personasim personas --help`",
            known_fields=lambda _loc: PersonaOptions.model_fields,
        ) from None


# --------------------------------------------------------------------------- model calls


@dataclass
class Job:
    """One reply to obtain: the first-attempt messages and the constraint."""

    messages: tuple[Message, ...]
    max_tokens: int
    seed: int
    schema: dict[str, Any] | None = None
    choices: tuple[str, ...] | None = None
    validate: Callable[[Any], str | None] | None = None


@dataclass
class Outcome:
    """What came back for a :class:`Job` after all attempts."""

    sha: str
    value: Any = None
    raw: str = ""
    ok: bool = False
    first_ok: bool = False
    attempts: int = 0
    finish_reason: str = ""
    error: str | None = None
    seconds: float = 0.0


def stable_seed(*parts: Any) -> int:
    """A 31-bit seed derived from ``parts`` (stable across runs and platforms)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _request(
    job: Job, messages: tuple[Message, ...], attempt: int, temperature: float
) -> GenerateRequest:
    """The request of one attempt (a new seed per attempt)."""
    return GenerateRequest(
        messages=messages,
        json_schema=job.schema,
        choices=job.choices,
        max_tokens=job.max_tokens,
        temperature=temperature,
        seed=(job.seed + attempt - 1) & 0x7FFFFFFF,
    )


def _apportion(seconds: float, results: Sequence[GenerateResult]) -> list[float]:
    """Split a batch's wall time over its results by generated tokens."""
    weights = [r.completion_tokens + 1 for r in results]
    total = sum(weights) or 1
    return [seconds * w / total for w in weights]


def _record(outcome: Outcome, job: Job, result: GenerateResult, attempt: int) -> bool:
    """Store one attempt's result; True when it is accepted."""
    error = (
        result.error if not result.ok else (job.validate(result.value) if job.validate else None)
    )
    outcome.attempts, outcome.raw = attempt, result.text
    outcome.finish_reason, outcome.error = result.finish_reason, error
    outcome.ok = error is None
    outcome.value = result.value if outcome.ok else None
    outcome.first_ok = outcome.ok and attempt == 1
    return outcome.ok


def run_jobs(
    backend: Backend,
    jobs: Sequence[Job],
    temperature: float,
    max_attempts: int,
    progress: bool | None = None,
    degenerate_retries: int = 0,
) -> list[Outcome]:
    """Answer every job, one batched ``generate`` call per attempt; rejected replies are re-asked
    with the error appended, at most ``max_attempts`` tries in all; then valid replies with
    degenerate free text get up to ``degenerate_retries`` more (:func:`_retry_degenerate`)."""
    outcomes = [Outcome(sha=P.prompt_sha(j.messages, j.schema or j.choices)) for j in jobs]
    conversations = [j.messages for j in jobs]
    pending = list(range(len(jobs)))
    for attempt in range(1, max_attempts + 1):
        if not pending:
            break
        requests = [_request(jobs[i], conversations[i], attempt, temperature) for i in pending]
        started = time.perf_counter()
        results = backend.generate(requests, progress=progress)
        shares = _apportion(time.perf_counter() - started, results)
        retry = []
        for i, result, seconds in zip(pending, results, shares, strict=True):
            outcomes[i].seconds += seconds
            if not _record(outcomes[i], jobs[i], result, attempt) and (
                result.finish_reason != TRANSIENT  # a backend failure is left to the next run
            ):
                conversations[i] = P.repair_messages(
                    jobs[i].messages, result.text, outcomes[i].error or "invalid"
                )
                retry.append(i)
        pending = retry
    for extra in range(degenerate_retries):
        if not _retry_degenerate(backend, jobs, outcomes, temperature, max_attempts + extra + 1):
            break
    return outcomes


def _flagged(value: Any) -> list[str]:
    """The flagged free-text fields of a parsed JSON reply (none for other replies)."""
    from personasim.personas.quality import flagged_fields

    return flagged_fields(value) if isinstance(value, dict) else []


def _retry_degenerate(
    backend: Backend, jobs: Sequence[Job], outcomes: list[Outcome], temperature: float, attempt: int
) -> bool:
    """One round of retries for valid replies with degenerate free text: each goes back with
    the flagged fields named; a retry is kept only when it is valid and has fewer flagged
    fields. False when no reply needed a retry."""
    flagged = {i: _flagged(o.value) for i, o in enumerate(outcomes) if o.ok}
    pending = [i for i, fields in flagged.items() if fields]
    if not pending:
        return False
    requests = [
        _request(
            jobs[i],
            P.repair_messages(jobs[i].messages, outcomes[i].raw, P.degenerate_error(flagged[i])),
            attempt,
            temperature,
        )
        for i in pending
    ]
    started = time.perf_counter()
    results = backend.generate(requests)
    shares = _apportion(time.perf_counter() - started, results)
    for i, result, seconds in zip(pending, results, shares, strict=True):
        outcome, job = outcomes[i], jobs[i]
        outcome.seconds += seconds
        outcome.attempts += 1
        valid = result.ok and (job.validate is None or job.validate(result.value) is None)
        if valid and len(_flagged(result.value)) < len(flagged[i]):
            outcome.value, outcome.raw = result.value, result.text
            outcome.finish_reason = result.finish_reason
    return True


def model_validator_for(model: type[BaseModel]) -> Callable[[Any], str | None]:
    """A check of a parsed reply against the pydantic model: None, or the first error."""

    def check(value: Any) -> str | None:
        try:
            model.model_validate(value)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(root)"
            return f"{where}: {first['msg']}"
        return None

    return check


# --------------------------------------------------------------------------- values and text


def census_value(key: str, value: Any) -> Any:
    """A population value in the form the schemas use (state name, int age/income, str)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if key == "state":
        return state_name(value)
    if key in {"age", "income"}:
        return int(value)
    return str(value)


def census_values(person: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The census values of ``keys`` that the population has, schema-formed."""
    return {k: census_value(k, person[k]) for k in keys if k in person}


def _same(a: Any, b: Any) -> bool:
    """Equal after trimming and case folding."""
    return str(a).strip().casefold() == str(b).strip().casefold()


def pin_meta(
    fields: dict[str, Any], census: Mapping[str, Any], meta: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Put the census value back in every meta attribute the LLM rewrote; returns the fields and
    ``{attribute: value the LLM wrote}`` for each rewrite."""
    rewrites = {
        k: fields[k]
        for k in meta
        if k in fields and k in census and not _same(fields[k], census[k])
    }
    return {**fields, **{k: census[k] for k in rewrites}}, rewrites


_AGE_PATTERNS = (
    re.compile(r"\b(\d{1,3})[- ]years?[- ]old\b", re.I),
    re.compile(r"\bage(?:d)?\s+(\d{1,3})\b", re.I),
)


def narrative_contradictions(text: str, census: Mapping[str, Any]) -> dict[str, Any]:
    """Ages stated in a narrative ("52-year-old", "aged 52") that differ from the census age."""
    if census.get("age") is None:
        return {}
    ages = {int(m) for p in _AGE_PATTERNS for m in p.findall(text)}
    wrong = sorted(a for a in ages if a != census["age"])
    return {"age": wrong[0]} if wrong else {}


def _show(key: str, value: Any) -> str:
    """One attribute value as the persona text shows it."""
    if isinstance(value, dict):
        return big_five_text(value)
    if key == "age":
        return f"{value} years"
    if key == "income" and isinstance(value, int | float):
        return f"${float(value):,.0f} per year"
    return str(value)


def render_fields(fields: Mapping[str, Any]) -> str:
    """``- Label: value`` lines, one per attribute (what the simulator reads)."""
    return "\n".join(
        f"- {attribute_label(k)}: {_show(k, v)}" for k, v in fields.items() if v not in (None, "")
    )


def _json(value: Any) -> str | None:
    """Compact JSON, or None."""
    return None if value is None else json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- tiers


@dataclass
class Context:
    """Everything a tier needs."""

    backend: Backend | None
    options: PersonaOptions
    generator: str
    templates: dict[str, str]
    progress: bool | None = None
    stats: dict[str, int] = field(default_factory=dict)

    def template(self, tier: str) -> str:
        """The user template of ``tier``: the user's prompt file, else the packaged one."""
        return self.templates.get(tier) or P.packaged_templates()[tier]

    def run(self, jobs: Sequence[Job], temperature: float | None = None) -> list[Outcome]:
        """Run jobs on the backend with this context's options."""
        assert self.backend is not None
        t = self.options.temperature if temperature is None else temperature
        return run_jobs(
            self.backend,
            jobs,
            t,
            self.options.max_attempts,
            self.progress,
            degenerate_retries=self.options.degenerate_retries,
        )


def _base_row(person: Mapping[str, Any], tier: str, generator: str, seed: int) -> dict[str, Any]:
    """The columns every row has, with neutral defaults."""
    return {
        "person_id": person["person_id"],
        "tier": tier,
        "generator": generator,
        "fields": None,
        "census": None,
        "text": "",
        "raw": None,
        "valid": False,
        "first_valid": False,
        "attempts": 0,
        "finish_reason": None,
        "error": None,
        "contradictions": None,
        "n_contradictions": None,
        "checks": None,
        "rejections": None,
        "rejection_causes": None,
        "prompt_sha": None,
        "seed": seed,
        "seconds": 0.0,
        "runs": 1,
    }


def _outcome_columns(outcome: Outcome) -> dict[str, Any]:
    """Row columns that come straight from an outcome."""
    return {
        "raw": outcome.raw,
        "valid": outcome.ok,
        "first_valid": outcome.first_ok,
        "attempts": outcome.attempts,
        "finish_reason": outcome.finish_reason,
        "error": outcome.error,
        "prompt_sha": outcome.sha,
        "seconds": round(outcome.seconds, 4),
    }


def meta_rows(people: list[dict[str, Any]], ctx: Context) -> list[dict[str, Any]]:
    """The meta tier: census attributes rendered as text, no model call."""
    attrs = ctx.options.meta_attributes
    rows = []
    for person in people:
        row = _base_row(person, S.TIERS[0], META_GENERATOR, ctx.options.seed)
        values = census_values(person, attrs)
        row |= {
            "fields": _json(values),
            "census": _json(values),
            "valid": True,
            "first_valid": True,
            "finish_reason": "none",
            "contradictions": "{}",
            "n_contradictions": 0,
            "text": meta_persona_text(person, attrs),
        }
        rows.append(row)
    return rows


def _tier_model(tier: str, options: PersonaOptions) -> type[BaseModel]:
    """The schema model of an LLM tier under these options."""
    return S.tier_model(tier, options.string_length, options.description_length)


def _jobs_for(people: list[dict[str, Any]], tier: str, ctx: Context) -> list[Job]:
    """One job per person: the meta persona into the tier's template."""
    model = _tier_model(tier, ctx.options)
    schema = S.json_schema(model, ctx.options.string_length)
    shown = None if tier == "descriptive" else model
    jobs = []
    for person in people:
        metadata = meta_persona_text(person, ctx.options.meta_attributes)
        messages = P.build_messages(
            ctx.template(tier), metadata, shown, ctx.options.description_length
        )
        jobs.append(
            Job(
                messages=messages,
                max_tokens=ctx.options.tokens(tier),
                seed=stable_seed(ctx.options.seed, person["person_id"], tier),
                schema=schema,
                validate=model_validator_for(model),
            )
        )
    return jobs


def tabular_rows(people: list[dict[str, Any]], ctx: Context, tier: str) -> list[dict[str, Any]]:
    """The objective or subjective tier: the LLM fills the template given the meta persona."""
    jobs = _jobs_for(people, tier, ctx)
    keys = tuple(_tier_model(tier, ctx.options).model_fields)
    rows = []
    for person, job, outcome in zip(people, jobs, ctx.run(jobs), strict=True):
        row = _base_row(person, tier, ctx.generator, job.seed) | _outcome_columns(outcome)
        census = census_values(person, keys)
        row["census"], row["text"] = _json(census), outcome.raw
        if outcome.ok:
            fields, rewrites = pin_meta(outcome.value, census, ctx.options.meta_attributes)
            row |= {
                "fields": _json(fields),
                "text": render_fields(fields),
                "contradictions": _json(rewrites),
                "n_contradictions": len(rewrites),
            }
        rows.append(row)
    return rows


def descriptive_rows(people: list[dict[str, Any]], ctx: Context) -> list[dict[str, Any]]:
    """The descriptive tier: a bounded narrative given the meta persona."""
    jobs = _jobs_for(people, "descriptive", ctx)
    rows = []
    for person, job, outcome in zip(people, jobs, ctx.run(jobs), strict=True):
        row = _base_row(person, "descriptive", ctx.generator, job.seed) | _outcome_columns(outcome)
        census = census_values(person, ctx.options.meta_attributes)
        row["census"], row["text"] = _json(census), outcome.raw
        if outcome.ok:
            text = outcome.value["description"].strip()
            found = narrative_contradictions(text, census)
            row |= {
                "fields": _json(outcome.value),
                "text": text,
                "contradictions": _json(found),
                "n_contradictions": len(found),
            }
        rows.append(row)
    return rows


# ---- PERSONA tier ------------------------------------------------------------------------


@dataclass
class Draft:
    """A PERSONA-tier profile in progress for one person."""

    person: dict[str, Any]
    census: dict[str, Any]
    open_keys: tuple[str, ...] = ()
    round: int = 0
    seed: int = 0
    traits: dict[str, Any] = field(default_factory=dict)
    fill: Outcome | None = None
    record: dict[str, Any] | None = None
    checks: int = 0
    rejections: int = 0
    accepted: bool = False
    causes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECTION_CAUSES, 0))
    seconds: float = 0.0
    done: bool = False
    error: str | None = None
    transient: bool = False


def _known_profile(draft: Draft) -> dict[str, Any]:
    """Census attributes and procedural traits, in PERSONA's order."""
    traits = {k: draft.traits[k] for k in S.PERSONA_PROCEDURAL_KEYS}
    return {**draft.census, **traits}


def _redraw(draft: Draft, ctx: Context) -> None:
    """Draw the procedural traits of the draft's current round."""
    pid = draft.person["person_id"]
    draft.seed = stable_seed(ctx.options.seed, pid, "persona", draft.round)
    draft.traits = procedural_traits(draft.seed, pid, draft.round, ctx.options.big_five)


def _fill_job(draft: Draft, ctx: Context) -> Job:
    """The fill of one accepted draft: the known profile in, its own open attributes out."""
    model = S.persona_fill_model(draft.open_keys, ctx.options.string_length)
    messages = P.build_messages(
        ctx.template("persona"),
        render_fields(_known_profile(draft)),
        model,
        extra={"ENTRIES": S.open_hints(draft.open_keys)},
    )
    return Job(
        messages=messages,
        max_tokens=ctx.options.tokens("persona"),
        seed=draft.seed,
        schema=S.json_schema(model, ctx.options.string_length),
        validate=model_validator_for(model),
    )


def _check_jobs(drafts: list[Draft]) -> list[Job]:
    """One consistency question per draft on its census and procedural part (greedy, two
    choices)."""
    template = P.packaged_templates()["check"]
    system = Message(role="system", content=P.packaged_templates()["system"].strip())
    jobs = []
    for d in drafts:
        user = P.fill(template, {"METADATA": render_fields(_known_profile(d))}).strip()
        jobs.append(
            Job(
                messages=(system, Message(role="user", content=user)),
                max_tokens=4,
                seed=d.seed,
                choices=CHECK_CHOICES,
            )
        )
    return jobs


def _check_round(drafts: list[Draft], ctx: Context) -> None:
    """Check every pending draft once; rejected drafts get a new procedural draw."""
    verdicts = ctx.run(_check_jobs(drafts), temperature=0.0)
    for d, verdict in zip(drafts, verdicts, strict=True):
        _judge(d, verdict, ctx)


def _judge(draft: Draft, verdict: Outcome, ctx: Context) -> None:
    """Apply one consistency verdict: accept, or reject and redraw (bounded); a draft rejected
    after ``max_resamples`` redraws is pruned (never filled)."""
    draft.seconds += verdict.seconds
    if verdict.finish_reason == TRANSIENT:  # no verdict: the next run tries the person again
        draft.done, draft.error, draft.transient = True, verdict.error, True
        return
    draft.checks += 1
    if verdict.value != "inconsistent":
        draft.accepted = True
        return
    draft.rejections += 1
    draft.causes["inconsistent"] += 1
    if draft.round >= ctx.options.max_resamples:
        draft.done, draft.causes["pruned"] = True, 1
        draft.error = f"judged inconsistent in {draft.rejections} of {draft.checks} checks"
        return
    draft.round += 1
    _redraw(draft, ctx)


def _fill_accepted(drafts: list[Draft], ctx: Context) -> None:
    """The LLM fills the open attributes of every accepted draft (one batch)."""
    fills = ctx.run([_fill_job(d, ctx) for d in drafts])
    for d, outcome in zip(drafts, fills, strict=True):
        d.fill, d.seconds, d.done = outcome, d.seconds + outcome.seconds, True
        if outcome.ok:
            d.record = {**_known_profile(d), **outcome.value}
            continue
        d.error, d.transient = outcome.error, outcome.finish_reason == TRANSIENT
        d.causes["fill_invalid"] = int(not d.transient)


def _persona_row(draft: Draft, ctx: Context) -> dict[str, Any]:
    """The output row of a finished draft."""
    outcome = draft.fill or Outcome(sha="")
    row = _base_row(draft.person, "persona", ctx.generator, draft.seed)
    row |= _outcome_columns(outcome)
    row |= {
        "census": _json(draft.census),
        "text": outcome.raw,
        "checks": draft.checks,
        "rejections": draft.rejections,
        "rejection_causes": _json(draft.causes),
        "first_valid": outcome.first_ok and draft.rejections == 0,
        "seconds": round(draft.seconds, 4),
        "contradictions": "{}",
        "n_contradictions": 0,
    }
    if draft.record is not None:
        row |= {"fields": _json(draft.record), "text": render_fields(draft.record)}
    row["valid"], row["error"] = draft.error is None and outcome.ok, draft.error
    if draft.transient:
        row["finish_reason"] = TRANSIENT
    return row


def persona_rows(people: list[dict[str, Any]], ctx: Context) -> list[dict[str, Any]]:
    """The PERSONA tier in the paper's order (Fig. 1): census + procedural draw, an LLM
    consistency check with bounded redraws of the procedural part, then the LLM fills the
    persona's own open attributes of the accepted drafts only."""
    missing = [k for k in S.PERSONA_CENSUS_KEYS if k not in people[0]]
    if missing:
        raise DataError(
            f"population lacks {missing[0]!r} needed by the persona tier",
            hint="use a population from `personasim population`",
        )
    opts = ctx.options
    drafts = [
        Draft(
            person=p,
            census=census_values(p, S.PERSONA_CENSUS_KEYS),
            open_keys=open_keys(opts.seed, p["person_id"], p.get("age"), opts.open_categories),
        )
        for p in people
    ]
    for d in drafts:
        _redraw(d, ctx)
    while pending := [d for d in drafts if not d.done and not d.accepted]:
        _check_round(pending, ctx)
    accepted = [d for d in drafts if d.accepted]
    if accepted:
        _fill_accepted(accepted, ctx)
    return [_persona_row(d, ctx) for d in drafts]


TIER_RUNNERS: dict[str, Callable[[list[dict[str, Any]], Context], list[dict[str, Any]]]] = {
    "meta": meta_rows,
    "objective": lambda people, ctx: tabular_rows(people, ctx, "objective"),
    "subjective": lambda people, ctx: tabular_rows(people, ctx, "subjective"),
    "descriptive": descriptive_rows,
    "persona": persona_rows,
}


# --------------------------------------------------------------------------- driver


def generator_name(backend: Backend | None) -> str:
    """The backend's readable model id (``census`` for the LLM-free meta tier)."""
    return META_GENERATOR if backend is None else backend.display_name


def _people(
    population: pd.DataFrame, options: PersonaOptions, limit: int | None
) -> list[dict[str, Any]]:
    """The persons to generate for, checked for the needed columns."""
    needed = ["person_id", *options.meta_attributes]
    missing = [c for c in needed if c not in population.columns]
    if missing:
        raise DataError(
            f"population lacks column {missing[0]!r}",
            hint=f"a population needs {', '.join(needed)} (`personasim population`)",
        )
    frame = population if limit is None else population.head(limit)
    return frame.to_dict("records")


def _to_frame(rows: list[dict[str, Any]], people: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows with the population's columns appended (person_id is the join key)."""
    out = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    persons = pd.DataFrame(people)
    extra = [c for c in persons.columns if c not in OUTPUT_COLUMNS]
    persons = persons[["person_id", *extra]].drop_duplicates("person_id")
    for column in ("n_contradictions", "checks", "rejections", "runs"):
        out[column] = out[column].astype("Int64")
    return out.merge(persons, on="person_id", how="left")


def _runs(table: pd.DataFrame) -> pd.Series:
    """Runs that tried each row (1 for tables written before the column existed)."""
    if "runs" not in table.columns:
        return pd.Series(1, index=table.index)
    return pd.to_numeric(table["runs"], errors="coerce").fillna(1).astype(int)


def retryable(table: pd.DataFrame, max_runs: int) -> pd.Series:
    """True for rows whose generation failed in the backend and may be tried again."""
    failed = (
        table["finish_reason"].astype(str).eq(TRANSIENT)
        if "finish_reason" in table
        else (pd.Series(False, index=table.index))
    )
    return failed & (_runs(table) < max_runs)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack tables, skipping empty ones."""
    frames = [f for f in frames if f is not None and not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=OUTPUT_COLUMNS)


def generate_personas(
    population: pd.DataFrame,
    tiers: Sequence[str] = S.TIERS,
    backend: Backend | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    prompt_file: str | Path | Mapping[str, str | Path] | None = None,
    generator: str | None = None,
    progress: bool | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Generate ``tiers`` for the first ``limit`` persons of ``population`` with ``backend``.

    Returns the personas table (``OUTPUT_COLUMNS`` + the population's columns), every row with
    ``runs`` 1. Other keyword arguments are :class:`PersonaOptions` fields.
    """
    opts = persona_options(tiers=tuple(tiers), seed=seed, **options)
    ctx = Context(
        backend=backend,
        options=opts,
        progress=progress,
        generator=generator or generator_name(backend),
        templates=P.parse_prompt_files(prompt_file, opts.tiers),
    )
    people = _people(population, opts, limit)
    return _concat([_run_tier(tier, people, ctx) for tier in opts.tiers] if people else [])


def _run_tier(tier: str, people: list[dict[str, Any]], ctx: Context) -> pd.DataFrame:
    """The rows of one tier for ``people``."""
    if tier != "meta" and ctx.backend is None:
        raise ConfigError(f"tier {tier!r} needs a model", hint="pass backend= (CLI: --model)")
    rows = TIER_RUNNERS[tier](people, ctx)
    for row in rows:
        row["runs"] = 1
    return _to_frame(rows, people)


# --------------------------------------------------------------------------- summaries


def summarize(personas: pd.DataFrame) -> pd.DataFrame:
    """Per tier and generator: rows, first-attempt and final validity, ``excluded`` (invalid rows,
    never simulated or scored), contradictions, and the PERSONA tier's rejections per cause:
    ``rejected_share`` (drafts judged inconsistent / checks, the paper's 8.5 % analogue),
    ``pruned_share`` (persons pruned after ``max_resamples`` redraws / persons checked) and
    ``fill_invalid_share`` (fills still invalid / fills made), and ``degenerate``: valid rows
    whose free text is flagged by :mod:`personasim.personas.quality` (0 without ``fields``)."""
    frame = personas.assign(**_cause_columns(personas), _degenerate=_degenerate(personas))
    groups = frame.groupby(["tier", "generator"], sort=False, observed=True)
    summary = groups.agg(
        rows=("person_id", "size"),
        first_valid=("first_valid", "mean"),
        valid=("valid", lambda s: float(said_valid(s, len(s)).mean())),
        excluded=("valid", lambda s: int((~said_valid(s, len(s))).sum())),
        with_contradictions=("n_contradictions", lambda s: int((s.fillna(0) > 0).sum())),
        contradictions=("n_contradictions", lambda s: int(s.fillna(0).sum())),
        checks=("checks", lambda s: int(s.fillna(0).sum())),
        rejections=("rejections", lambda s: int(s.fillna(0).sum())),
        checked=("checks", lambda s: int((s.fillna(0) > 0).sum())),
        pruned=("_pruned", "sum"),
        fills=("_filled", "sum"),
        fill_invalid=("_fill_invalid", "sum"),
        degenerate=("_degenerate", "sum"),
    ).reset_index()
    summary["rejected_share"] = _share(summary["rejections"], summary["checks"])
    summary["pruned_share"] = _share(summary["pruned"], summary["checked"])
    summary["fill_invalid_share"] = _share(summary["fill_invalid"], summary["fills"])
    return summary


def _share(part: pd.Series, whole: pd.Series) -> pd.Series:
    """``part / whole``, NaN where ``whole`` is 0."""
    return part / whole.where(whole > 0)


def _cause_columns(personas: pd.DataFrame) -> dict[str, pd.Series]:
    """Per row: pruned, filled and fill-invalid flags from ``rejection_causes`` (0 for rows
    without it: other tiers, tables written before the column existed)."""
    raw = personas.get("rejection_causes", pd.Series(None, index=personas.index))
    causes = raw.map(lambda v: json.loads(v) if isinstance(v, str) and v else {})
    pruned = causes.map(lambda c: int(c.get("pruned", 0)))
    bad = causes.map(lambda c: int(c.get("fill_invalid", 0)))
    checked = causes.map(bool)
    accepted = checked & pruned.eq(0) & personas["checks"].fillna(0).gt(0)
    return {"_pruned": pruned, "_filled": accepted.astype(int), "_fill_invalid": bad}


def _degenerate(personas: pd.DataFrame) -> pd.Series:
    """Per row: 1 when the persona is valid and its free text is flagged as degenerate (from a
    ``flagged_fields`` column when the table carries one, e.g. joined from ``text_stats``)."""
    from personasim.personas.quality import quality_table

    if "flagged_fields" in personas.columns:
        flagged = personas["flagged_fields"].fillna("").ne("")
    elif "fields" in personas.columns:
        flagged = quality_table(personas)["flagged_fields"].ne("")
    else:
        return pd.Series(0, index=personas.index)
    return (flagged & said_valid(personas["valid"], len(personas))).astype(int)


def percent(value: float) -> str:
    """``12.5%``, or ``-`` for NaN."""
    return "-" if pd.isna(value) else f"{value:.1%}"


def format_summary(summary: pd.DataFrame) -> str:
    """The per-tier summary as an aligned text table (rejection shares per cause: drafts judged
    inconsistent, persons pruned, fills invalid; valid personas with degenerate free text)."""
    lines = [
        f"{'tier':<12} {'generator':<36} {'rows':>5} {'valid@1':>8} {'valid':>7} "
        f"{'excluded':>8} {'contradict':>10} {'rejected':>9} {'pruned':>7} {'fill bad':>8} "
        f"{'degenerate':>10}"
    ]
    for r in summary.itertuples(index=False):
        lines.append(
            f"{r.tier:<12} {str(r.generator)[:36]:<36} {r.rows:>5} "
            f"{r.first_valid:>8.1%} {r.valid:>7.1%} {r.excluded:>8} "
            f"{r.with_contradictions:>4}/{r.contradictions:<5} {percent(r.rejected_share):>9} "
            f"{percent(r.pruned_share):>7} {percent(r.fill_invalid_share):>8} "
            f"{r.degenerate:>10}"
        )
    return "\n".join(lines)


def attribute_drift(
    personas: pd.DataFrame, tiers: Sequence[str] = ("objective", "subjective")
) -> pd.DataFrame:
    """Per tier x attribute: how often the LLM's value equals the same person's census value
    (valid rows; meta attributes are pinned, see ``contradictions`` for their rewrites)."""
    records = []
    rows = valid_personas(personas)
    rows = rows[rows["tier"].isin(tiers)]
    for row in rows.itertuples(index=False):
        fields, census = json.loads(row.fields), json.loads(row.census or "{}")
        for key, truth in census.items():
            if key in fields and truth is not None:
                records.append(
                    {
                        "tier": row.tier,
                        "generator": row.generator,
                        "attribute": key,
                        "agree": _same(fields[key], truth),
                    }
                )
    if not records:
        return pd.DataFrame(columns=["tier", "generator", "attribute", "n", "agree"])
    frame = pd.DataFrame(records)
    keys = ["tier", "generator", "attribute"]
    return (
        frame.groupby(keys, sort=False)
        .agg(n=("agree", "size"), agree=("agree", "mean"))
        .reset_index()
    )
