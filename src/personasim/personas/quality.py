"""Degenerate persona text: flags for what a JSON schema lets through but no reader would accept.

A small model fills the free-text fields of a persona with text that passes every schema check
(a string of the right length) yet says nothing: ``No_mannerisms_None_None_None_...``, one value
pasted into every field (``Megadocs`` as quirks, mannerisms, personal time and lifestyle), a
placeholder left from a template (``Her name is [Name]``), a word spelled with letters of two
scripts (``Nоnnе`` with Cyrillic ``о`` and ``е``), or a long string of digits. These checks
flag such personas; they never change or drop one (the report counts them per tier and marks
them in its sample personas, so a reader sees how much of the text is filler).

Only the free-text fields are checked (those without a closed list of values): a repeated
``No`` across the difficulty fields, or ``Extremely Low`` on every Big Five domain, is a valid
profile.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from functools import cache
from typing import Any

import pandas as pd

#: A token repeated at least this many times, making up at least :data:`FILLER_SHARE` of the
#: field's tokens, is filler (``None_None_None_None``).
FILLER_REPEATS = 4
FILLER_SHARE = 0.4
#: A run of this many characters without a space is filler (``No_personal_time_None_None_N``).
LONG_RUN = 25
#: A run of this many digits is filler (``200042044831``); a year or an income is shorter.
LONG_NUMBER = 10
#: One value in this many free-text fields of a persona is a pasted value, not a description.
REPEATED_FIELDS = 3
#: ``[Name]``, ``<name>``, ``{fact}``, ``[Given Fact]``: template slots left unfilled.
PLACEHOLDER = re.compile(
    r"\[[A-Za-z][A-Za-z _-]{0,30}\]|<[A-Za-z][A-Za-z _-]{0,30}>|\{[A-Za-z_]{1,30}\}"
)
TOKEN = re.compile(r"[^\W_]+")
LONG_DIGITS = re.compile(rf"\d{{{LONG_NUMBER},}}")
WORD = re.compile(r"\w+")

FLAG_COLUMNS = ["filler_fields", "repeated_value_fields", "placeholders", "flagged_fields"]
"""Columns :func:`quality_flags` adds per persona: counts of fields with filler, of fields
sharing one value, of placeholders, and the flagged fields' names (``""`` when none)."""


@cache
def free_text_fields() -> frozenset[str]:
    """Persona fields written freely by the LLM (a string without a closed list of values),
    and ``description`` (the descriptive tier's narrative)."""
    from personasim.personas.schema import field_specs

    return frozenset(
        {name for name, (kind, _info) in field_specs().items() if kind is str} | {"description"}
    )


#: Scripts whose letters look like Latin ones: a word mixing two of them is a homoglyph mess,
#: not a language (a word mixing Hiragana and CJK ideographs is ordinary Japanese).
LOOKALIKE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK"})


def _lookalike_scripts(word: str) -> set[str]:
    """The :data:`LOOKALIKE_SCRIPTS` of a word's letters (from each letter's Unicode name)."""
    names = {unicodedata.name(c, "?").split(" ")[0] for c in word if c.isalpha()}
    return names & LOOKALIKE_SCRIPTS


def value_causes(value: str) -> list[str]:
    """Why one free-text value is degenerate: any of ``filler`` (one token repeated over and
    over, or a long run without spaces), ``long_number``, ``mixed_script`` (Latin letters mixed
    with Cyrillic or Greek look-alikes in one word), ``placeholder``;
    an empty list for a plausible value."""
    causes = []
    tokens = TOKEN.findall(value.lower())
    top = Counter(tokens).most_common(1) if len(tokens) >= FILLER_REPEATS else []
    repeated = bool(top) and top[0][1] >= FILLER_REPEATS and top[0][1] >= FILLER_SHARE * len(tokens)
    if repeated or any(len(run) >= LONG_RUN for run in value.split()):
        causes.append("filler")
    if LONG_DIGITS.search(value):
        causes.append("long_number")
    if not value.isascii() and any(
        len(_lookalike_scripts(w)) > 1 for w in WORD.findall(value) if not w.isascii()
    ):
        causes.append("mixed_script")
    if PLACEHOLDER.search(value):
        causes.append("placeholder")
    return causes


def _free_values(fields: Any) -> dict[str, str]:
    """The free-text values of a persona's ``fields`` (a JSON object, or a dict)."""
    if isinstance(fields, str):
        try:
            fields = json.loads(fields)
        except ValueError:
            return {}
    if not isinstance(fields, dict):
        return {}
    names = free_text_fields()
    return {k: v for k, v in fields.items() if k in names and isinstance(v, str) and v.strip()}


def field_causes(fields: Any) -> dict[str, list[str]]:
    """Each free-text field of a persona's ``fields`` (JSON or dict) -> why it is degenerate
    (:func:`value_causes`, plus ``repeated_value`` when the same value fills
    :data:`REPEATED_FIELDS` or more fields); an empty list for a plausible field."""
    return _causes(_free_values(fields))


def _causes(values: dict[str, str]) -> dict[str, list[str]]:
    """:func:`field_causes` of free-text values already picked out."""
    causes = {name: value_causes(value) for name, value in values.items()}
    shared = Counter(" ".join(v.lower().split()) for v in values.values())
    pasted = {v for v, n in shared.items() if n >= REPEATED_FIELDS}
    for name, value in values.items():
        if " ".join(value.lower().split()) in pasted:
            causes[name].append("repeated_value")
    return causes


def flagged_fields(fields: Any) -> list[str]:
    """The names of a persona's degenerate free-text fields, in field order."""
    return [name for name, causes in field_causes(fields).items() if causes]


def quality_flags(fields: Any) -> dict[str, Any]:
    """The :data:`FLAG_COLUMNS` of one persona from its ``fields`` (JSON or dict)."""
    values = _free_values(fields)
    causes = _causes(values)
    return {
        "filler_fields": sum("filler" in c or "long_number" in c for c in causes.values()),
        "repeated_value_fields": sum("repeated_value" in c for c in causes.values()),
        "placeholders": sum(len(PLACEHOLDER.findall(v)) for v in values.values()),
        "flagged_fields": "; ".join(f"{k} ({', '.join(c)})" for k, c in causes.items() if c),
    }


def quality_table(personas: pd.DataFrame) -> pd.DataFrame:
    """:data:`FLAG_COLUMNS` for every row of a personas table (its ``fields`` column)."""
    if "fields" not in personas.columns:
        return pd.DataFrame(
            {c: [""] * len(personas) if c == "flagged_fields" else 0 for c in FLAG_COLUMNS},
            index=personas.index,
        )
    rows = [quality_flags(f) for f in personas["fields"]]
    return pd.DataFrame(rows, columns=FLAG_COLUMNS, index=personas.index)


def quality_summary(stats: pd.DataFrame) -> pd.DataFrame:
    """Per tier x generator of LLM-written personas (a text-stats table with the flag columns):
    personas, how many have any flagged field, and how many have each kind of flag."""
    llm = stats[stats["tier"] != "meta"]
    if llm.empty or "flagged_fields" not in llm.columns:
        return pd.DataFrame()
    flagged = llm.assign(
        any_flag=llm["flagged_fields"].fillna("").ne(""),
        filler=llm["filler_fields"].gt(0),
        repeated_value=llm["repeated_value_fields"].gt(0),
        placeholder=llm["placeholders"].gt(0),
        mixed_script=llm["flagged_fields"].fillna("").str.contains("mixed_script"),
    )
    grouped = flagged.groupby(["tier", "generator"], sort=False)
    return grouped.agg(
        personas=("person_id", "size"),
        flagged=("any_flag", "sum"),
        filler=("filler", "sum"),
        repeated_value=("repeated_value", "sum"),
        placeholder=("placeholder", "sum"),
        mixed_script=("mixed_script", "sum"),
    ).reset_index()
