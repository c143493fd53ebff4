"""Pydantic models of the persona tiers and the flat JSON schemas the LLM is constrained to.

Keys and value ranges follow the persona templates of Li et al. (2025, Appendix B) and the
33-attribute list of Castricato et al. (2024, Appendix A). Keys are the population's column names
(``household_language``, not ``HOUSEHOLD_LANGUAGE``) and every categorical attribute the census
also has uses the census vocabulary of :mod:`personasim.census.mapping`, so that a value an LLM
chooses can be compared with the census value of the same person.

Differences from the papers' ranges, all taken from the census vocabulary: ``class_of_worker``,
``industry_category`` and ``occupation_category`` also allow ``Not applicable`` (and a military
group); ``ancestry`` adds ``Other`` and ``Not reported``; ``household_type`` adds ``Group
quarters``. ``place_of_birth`` ("US state or foreign country" in the paper) is a short free string.
Big Five scores are levels (``Extremely Low`` ... ``Extremely High``) as in PERSONA's example.

Every free string has ``max_length``; :func:`json_schema` inlines references and adds
``maxLength`` where missing, so llama.cpp gets a self-contained schema.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from personasim.census import mapping as m
from personasim.core.errors import ConfigError
from personasim.core.states import STATE_NAMES
from personasim.llm import bound_strings

#: Tier names, in the order of growing LLM-written content.
TIERS: tuple[str, ...] = ("meta", "objective", "subjective", "descriptive", "persona")
#: Tiers whose content comes from an LLM.
LLM_TIERS: tuple[str, ...] = TIERS[1:]

#: Levels of a Big Five domain, lowest first (PERSONA's rendering of BFI-2 domain scores).
BIG_FIVE_LEVELS: tuple[str, ...] = ("Extremely Low", "Low", "Average", "High", "Extremely High")
BIG_FIVE_DOMAINS: tuple[str, ...] = (
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
)
IDEOLOGY: tuple[str, ...] = (
    "Very Liberal",
    "Liberal",
    "Moderate",
    "Conservative",
    "Very Conservative",
)
POLITICAL_VIEWS: tuple[str, ...] = ("Democrat", "Republican", "Independent", "Other")

#: Objective keys (Li et al., Appendix B.2), in template order.
OBJECTIVE_KEYS: tuple[str, ...] = (
    "age",
    "sex",
    "race",
    "state",
    "ancestry",
    "household_language",
    "education",
    "employment_status",
    "class_of_worker",
    "industry_category",
    "occupation_category",
    "income",
    "marital_status",
    "household_type",
    "family_presence_and_age",
    "place_of_birth",
    "citizenship",
    "veteran_status",
    "disability",
    "health_insurance",
)
#: Subjective template keys (Appendix B.3: PERSONA's 33 attributes + state), in template order.
SUBJECTIVE_KEYS: tuple[str, ...] = (
    *OBJECTIVE_KEYS[:11],
    "detailed_job_description",
    *OBJECTIVE_KEYS[11:],
    "big_five_scores",
    "defining_quirks",
    "mannerisms",
    "personal_time",
    "lifestyle",
    "ideology",
    "political_views",
    "religion",
    "cognitive_difficulty",
    "ability_to_speak_english",
    "vision_difficulty",
    "fertility",
    "hearing_difficulty",
)
#: Census attributes a PERSONA-tier profile takes from the population as they are.
PERSONA_CENSUS_KEYS: tuple[str, ...] = (
    *OBJECTIVE_KEYS,
    "cognitive_difficulty",
    "ability_to_speak_english",
    "vision_difficulty",
    "fertility",
    "hearing_difficulty",
)
#: Attributes the PERSONA tier draws procedurally (see :mod:`personasim.personas.procedural`).
PERSONA_PROCEDURAL_KEYS: tuple[str, ...] = (
    "big_five_scores",
    "defining_quirks",
    "mannerisms",
    "core_values",
    "personal_time",
)
#: Open attributes of the paper's attribute list (Appendix A) that the LLM fills in the PERSONA
#: tier, each with the youngest age it is asked for: a child gets no job description (PUMS asks
#: about work from 16) and no ideology or party (voting age). Both of the paper's Appendix C
#: examples have all five, so every persona old enough gets them.
PERSONA_CORE_OPEN: dict[str, int] = {
    "detailed_job_description": 16,
    "lifestyle": 0,
    "ideology": 18,
    "political_views": 18,
    "religion": 0,
}
PERSONA_OPEN_KEYS: tuple[str, ...] = tuple(PERSONA_CORE_OPEN)
"""The core open attributes, in template order."""


class OpenCategory(NamedTuple):
    """A further open category the PERSONA tier may ask the LLM to fill."""

    hint: str
    """What the entry describes (shown in the fill prompt)."""
    min_age: int = 0
    """Youngest age the category is asked for."""
    max_age: int = 120
    """Oldest age the category is asked for."""


#: Further open categories, written for personasim after the paper's high-level categories
#: ("Lifestyle", "Personality", ...; Section 3.1); a few are picked per persona
#: (:func:`personasim.personas.procedural.open_keys`).
OPEN_CATEGORY_POOL: dict[str, OpenCategory] = {
    "daily_routine": OpenCategory("a typical weekday, from morning to evening"),
    "social_circle": OpenCategory("the people the person spends most time with"),
    "media_habits": OpenCategory("what the person reads, watches or listens to", 4),
    "money_habits": OpenCategory("how the person earns, spends or saves money", 16),
    "health_habits": OpenCategory("how the person looks after food, sleep and exercise"),
    "aspirations": OpenCategory("what the person hopes for in the coming years", 6),
    "worries": OpenCategory("what worries the person most these days", 6),
    "community_ties": OpenCategory("groups, clubs or congregations the person belongs to"),
    "formative_experience": OpenCategory("an experience that shaped who the person is", 8),
    "technology_use": OpenCategory("how the person uses phones, computers and the internet", 4),
    "school_life": OpenCategory("school or day care, grade and favourite activity there", 3, 17),
    "household_role": OpenCategory("what the person does at home and for the household"),
    "places": OpenCategory("places the person has lived in or travelled to"),
}
#: What each core open entry describes (shown in the fill prompt beside the pool's hints).
CORE_OPEN_HINTS: dict[str, str] = {
    "detailed_job_description": "the job, or what the person does instead of one",
    "lifestyle": "the person's way of life, in a phrase",
    "ideology": "political leaning, one value from ALLOWED VALUES",
    "political_views": "party leaning, one value from ALLOWED VALUES",
    "religion": "religion or none (for a child: the family's)",
}

_FORBID = ConfigDict(extra="forbid")
DEFAULT_STRING_LENGTH = 80
DEFAULT_DESCRIPTION_LENGTH = 600


def _choice(values: tuple[str, ...]) -> Any:
    """A ``Literal`` over ``values`` (pydantic renders it as an inline ``enum``)."""
    return Literal[values]  # type: ignore[valid-type]


class BigFive(BaseModel):
    """Big Five domain levels."""

    model_config = _FORBID

    openness: _choice(BIG_FIVE_LEVELS)  # type: ignore[valid-type]
    """Openness to experience."""
    conscientiousness: _choice(BIG_FIVE_LEVELS)  # type: ignore[valid-type]
    """Conscientiousness."""
    extraversion: _choice(BIG_FIVE_LEVELS)  # type: ignore[valid-type]
    """Extraversion."""
    agreeableness: _choice(BIG_FIVE_LEVELS)  # type: ignore[valid-type]
    """Agreeableness."""
    neuroticism: _choice(BIG_FIVE_LEVELS)  # type: ignore[valid-type]
    """Neuroticism (negative emotionality)."""


def _text(length: int) -> Any:
    """A free string of at most ``length`` characters."""
    return (str, Field(min_length=1, max_length=length))


def field_specs(string_length: int = DEFAULT_STRING_LENGTH) -> dict[str, Any]:
    """Every attribute the tiers use -> its pydantic ``(type, Field)`` definition."""
    vocab = {key: (_choice(values), ...) for key, values in m.VOCAB.items()}
    return {
        **vocab,
        "age": (int, Field(ge=0, le=120)),
        "state": (_choice(tuple(sorted(STATE_NAMES.values()))), ...),
        "income": (int, Field(ge=0, le=m.INCOME_MAX)),
        "place_of_birth": _text(40),
        "detailed_job_description": _text(string_length),
        "big_five_scores": (BigFive, ...),
        "defining_quirks": _text(string_length),
        "mannerisms": _text(string_length),
        "personal_time": _text(string_length),
        "lifestyle": _text(string_length),
        "core_values": _text(string_length),
        "ideology": (_choice(IDEOLOGY), ...),
        "political_views": (_choice(POLITICAL_VIEWS), ...),
        "religion": _text(40),
        **{key: _text(string_length) for key in OPEN_CATEGORY_POOL},
    }


def _model(name: str, keys: tuple[str, ...], string_length: int) -> type[BaseModel]:
    """A pydantic model with the given keys, in order, and ``extra="forbid"``."""
    specs = field_specs(string_length)
    return create_model(name, __config__=_FORBID, **{k: specs[k] for k in keys})  # type: ignore[call-overload]


@cache
def objective_model(string_length: int = DEFAULT_STRING_LENGTH) -> type[BaseModel]:
    """The objective tabular persona (Li et al. B.2)."""
    return _model("ObjectivePersona", OBJECTIVE_KEYS, string_length)


@cache
def subjective_model(string_length: int = DEFAULT_STRING_LENGTH) -> type[BaseModel]:
    """The subjective tabular persona (Li et al. B.3; PERSONA's 33 attributes)."""
    return _model("SubjectivePersona", SUBJECTIVE_KEYS, string_length)


@cache
def persona_open_model(string_length: int = DEFAULT_STRING_LENGTH) -> type[BaseModel]:
    """The open attributes an LLM fills in a PERSONA-tier profile."""
    return _model("PersonaOpenFields", PERSONA_OPEN_KEYS, string_length)


def _optional(spec: tuple[Any, Any]) -> tuple[Any, Any]:
    """A field definition made optional (default None), its constraints kept."""
    kind, info = spec
    if isinstance(info, FieldInfo):
        return kind | None, FieldInfo.merge_field_infos(info, default=None)
    return kind | None, None


@cache
def persona_fill_model(
    keys: tuple[str, ...], string_length: int = DEFAULT_STRING_LENGTH
) -> type[BaseModel]:
    """The open attributes one persona's fill asks for (``keys``: core and picked categories)."""
    return _model("PersonaOpenFields", keys, string_length)


def open_hints(keys: tuple[str, ...]) -> str:
    """``- key: what it describes`` lines for the fill prompt."""
    hints = {**CORE_OPEN_HINTS, **{k: c.hint for k, c in OPEN_CATEGORY_POOL.items()}}
    return "\n".join(f"- {k}: {hints[k]}" for k in keys)


@cache
def persona_model(string_length: int = DEFAULT_STRING_LENGTH) -> type[BaseModel]:
    """A complete PERSONA-tier profile: census + procedural attributes, and whichever open
    attributes the persona's fill asked for (each optional)."""
    specs = field_specs(max(string_length, 160))
    optional = {k: _optional(specs[k]) for k in (*PERSONA_OPEN_KEYS, *OPEN_CATEGORY_POOL)}
    known = {k: specs[k] for k in (*PERSONA_CENSUS_KEYS, *PERSONA_PROCEDURAL_KEYS)}
    return create_model("PersonaProfile", __config__=_FORBID, **known, **optional)  # type: ignore[call-overload]


@cache
def descriptive_model(description_length: int = DEFAULT_DESCRIPTION_LENGTH) -> type[BaseModel]:
    """A descriptive persona: one bounded narrative."""
    field = (str, Field(min_length=1, max_length=description_length))
    return create_model("DescriptivePersona", __config__=_FORBID, description=field)  # type: ignore[call-overload]


def tier_model(
    tier: str,
    string_length: int = DEFAULT_STRING_LENGTH,
    description_length: int = DEFAULT_DESCRIPTION_LENGTH,
) -> type[BaseModel]:
    """The model whose JSON the LLM writes for ``tier`` (persona: the open fields only)."""
    makers = {
        "objective": lambda: objective_model(string_length),
        "subjective": lambda: subjective_model(string_length),
        "descriptive": lambda: descriptive_model(description_length),
        "persona": lambda: persona_open_model(string_length),
    }
    if tier not in makers:
        raise ConfigError(f"tier {tier!r} has no LLM schema", hint=f"one of {', '.join(makers)}")
    return makers[tier]()


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/X"}`` replaced by X and annotation titles dropped."""
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        return _inline({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
    return {
        key: _inline(value, defs)
        for key, value in node.items()
        if key != "$defs" and not (key in {"title", "description"} and isinstance(value, str))
    }


def json_schema(model: type[BaseModel], max_length: int = DEFAULT_STRING_LENGTH) -> dict[str, Any]:
    """The self-contained JSON schema of ``model``: no ``$ref``/``$defs``, no titles, every free
    string bounded (``maxLength``), objects closed (``additionalProperties: false``)."""
    raw = model.model_json_schema()
    flat = _inline(copy.deepcopy(raw), raw.get("$defs", {}))
    return bound_strings(flat, max_length)


def template_skeleton(model: type[BaseModel]) -> dict[str, Any]:
    """The blank template shown in prompts: each key with ``""`` (nested models as objects)."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        out[name] = template_skeleton(annotation) if is_model else ""  # type: ignore[arg-type]
    return out


def value_ranges(model: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    """Key -> allowed values, for every categorical key of ``model`` (nested keys included)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, node in json_schema(model)["properties"].items():
        if "enum" in node:
            out[name] = tuple(node["enum"])
        for inner, sub in node.get("properties", {}).items():
            if "enum" in sub:
                out[f"{name}.{inner}"] = tuple(sub["enum"])
    return out
