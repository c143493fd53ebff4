"""Prompts of the persona tiers: packaged templates (``prompts/templates.yaml``), user templates
(``--prompt-file``), and their rendering into chat messages.

A template is plain text with placeholders, replaced literally (JSON braces elsewhere are safe):
``{METADATA}`` the person's known facts, ``{TEMPLATE}`` the blank JSON profile, and the optional
``{VALUE_RANGES}``, ``{DESCRIPTION_LENGTH}`` and, in the persona tier, ``{ENTRIES}`` (what each of
the persona's own open entries describes). A user template must contain ``{METADATA}``, and
``{TEMPLATE}`` too for the tabular tiers (objective, subjective, persona).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from personasim.core.errors import ConfigError
from personasim.llm import Message
from personasim.personas.schema import LLM_TIERS, template_skeleton, value_ranges

PLACEHOLDERS_NEEDED: dict[str, tuple[str, ...]] = {
    "objective": ("{METADATA}", "{TEMPLATE}"),
    "subjective": ("{METADATA}", "{TEMPLATE}"),
    "persona": ("{METADATA}", "{TEMPLATE}"),
    "descriptive": ("{METADATA}",),
}
#: Categorical keys left out of the ALLOWED VALUES list: the meta persona always gives them.
_UNLISTED = {"state"}


@cache
def packaged_templates() -> dict[str, str]:
    """The packaged templates by name (system, objective, ..., check, repair)."""
    text = resources.files("personasim.personas").joinpath("prompts/templates.yaml").read_text()
    return dict(yaml.safe_load(text))


def load_prompt_file(path: str | Path, tier: str) -> str:
    """Read a user template for ``tier``; a missing placeholder or an unreadable file is a
    one-line :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigError(
            f"prompt file {path}: cannot read it ({reason})", hint="give a readable UTF-8 text file"
        ) from None
    needed = PLACEHOLDERS_NEEDED.get(tier, ("{METADATA}",))
    missing = [p for p in needed if p not in text]
    if missing:
        raise ConfigError(
            f"prompt file {path}: no {' or '.join(missing)} placeholder (tier {tier})",
            hint=f"a {tier} prompt needs {' and '.join(needed)} where the person's facts "
            "and the blank profile go",
        )
    return text


def parse_prompt_files(
    specs: str | Path | Mapping[str, str | Path] | None, tiers: tuple[str, ...]
) -> dict[str, str]:
    """User templates per tier: one path for every LLM tier requested (except ``meta``), or
    ``{tier: path}``; each file is read and checked now."""
    if specs is None:
        return {}
    if isinstance(specs, Mapping):
        unknown = [t for t in specs if t not in LLM_TIERS]
        if unknown:
            raise ConfigError(
                f"prompt file for unknown tier {unknown[0]!r}",
                hint=f"tiers with prompts: {', '.join(LLM_TIERS)}",
            )
        return {t: load_prompt_file(p, t) for t, p in specs.items() if t in tiers}
    return {t: load_prompt_file(specs, t) for t in tiers if t in LLM_TIERS}


def value_ranges_text(model: type[BaseModel]) -> str:
    """``KEY: [a, b, c]`` lines for the categorical keys of ``model`` (Big Five on one line)."""
    lines, seen_big_five = [], False
    for key, values in value_ranges(model).items():
        if key in _UNLISTED:
            continue
        if key.startswith("big_five_scores."):
            if seen_big_five:
                continue
            seen_big_five, key = True, "big_five_scores (each domain)"
        lines.append(f"{key}: [{', '.join(values)}]")
    return "\n".join(lines) or "(none)"


def template_text(model: type[BaseModel]) -> str:
    """The blank profile shown in the prompt (indented JSON with empty values)."""
    return json.dumps(template_skeleton(model), indent=1)


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{NAME}`` placeholders literally (no other brace is touched)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def build_messages(
    template: str,
    metadata: str,
    model: type[BaseModel] | None,
    description_length: int = 0,
    extra: Mapping[str, str] | None = None,
) -> tuple[Message, ...]:
    """System + user messages for one person (``model`` = the JSON the reply must follow;
    ``extra`` = further placeholders, e.g. ``ENTRIES``)."""
    values = {"METADATA": metadata.strip(), "DESCRIPTION_LENGTH": str(description_length)}
    values |= dict(extra or {})
    if model is not None:
        values |= {"TEMPLATE": template_text(model), "VALUE_RANGES": value_ranges_text(model)}
    system = packaged_templates()["system"].strip()
    return (
        Message(role="system", content=system),
        Message(role="user", content=fill(template, values).strip()),
    )


def repair_messages(messages: tuple[Message, ...], reply: str, error: str) -> tuple[Message, ...]:
    """The conversation of a retry: the rejected reply and why it was rejected, appended."""
    text = fill(packaged_templates()["repair"], {"ERROR": error}).strip()
    return (
        *messages,
        Message(role="assistant", content=reply[:1500] or "(empty)"),
        Message(role="user", content=text),
    )


def degenerate_error(fields: list[str]) -> str:
    """The rejection reason of a valid reply whose free text says nothing (the ``{ERROR}`` of
    the repair template)."""
    return (
        "these entries say nothing (repeated words, codes, placeholders or one text copied "
        f"into several entries): {', '.join(fields)}; write each as a short plain description "
        "in ordinary words"
    )


def prompt_sha(messages: tuple[Message, ...], constraint: Any = None) -> str:
    """SHA-256 of the exact prompt: the messages and the schema / choices it is held to."""
    body = {"messages": [m.model_dump() for m in messages], "constraint": constraint}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
