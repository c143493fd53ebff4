"""Survey and ground-truth loaders, reachable by name through small registries.

Survey sources (``load_survey(spec)``):

- ``elections`` - the built-in presidential vote survey.
- ``topics`` - the built-in survey of opinions in five domains (no ground truth).
- ``yaml:PATH`` / ``json:PATH`` (or a bare ``*.yaml``/``*.yml``/``*.json`` path) - personasim's
  own format, see ``docs/surveys.md``.
- ``context:PATH`` - the paper authors' ``context.json`` (``topic_N`` -> ``topic``/``question``,
  ``candidates`` -> ``A``: ``{stance, name, background_info}``).
- ``opinionqa:PATH`` - an OpinionQA ``human_resp/<wave>`` folder (``info.csv``) or a folder of
  waves; positions come from ``option_ordinal`` and options past the ordinal ones ("Refused",
  "Not sure") become refusals.
- ``opinionqa-questions:PATH`` - one CSV with ``key, question, options, option_ordinal`` columns.

Ground truth (OpinionQA answer distributions, count CSVs, elections) lives in
:mod:`personasim.truth`.
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from personasim.core.errors import ConfigError, DataError, did_you_mean, validation_error
from personasim.survey.questions import Option, Question, Survey, letter

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it (about 3x faster), else the pure-Python one."""

DEFAULT_REFUSALS = ("refused",)


# --------------------------------------------------------------------------- helpers


def _field(loc: tuple[Any, ...], raw: Mapping[str, Any]) -> str:
    """Dotted field path of a pydantic error, with question ids instead of list indices."""
    parts: list[str] = []
    node: Any = raw
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            item = node[step]
            ident = item.get("id") if isinstance(item, dict) else None
            parts.append(f"[{ident!r}]" if ident else f"[{step}]")
            node = item
        else:
            parts.append(f".{step}" if parts else str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return "".join(parts)


def _survey_from_dict(raw: Any, path: Path) -> Survey:
    """Validate a plain mapping as a :class:`Survey`, errors naming the file and field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping with id, title, questions")
    try:
        return Survey.model_validate(raw)
    except ValidationError as error:
        raise validation_error(
            error,
            str(path),
            known_fields=_survey_fields,
            locate=lambda loc: _field(loc, raw) or "questions",
            hint="see docs/surveys.md for the survey format",
        ) from None


def _survey_fields(parent: tuple[Any, ...]) -> list[str]:
    """The valid keys of the mapping at ``parent`` (a survey, a question or an option)."""
    names = [step for step in parent if isinstance(step, str)]
    model = {"": Survey, "questions": Question, "options": Option}.get(names[-1] if names else "")
    return list(model.model_fields) if model is not None else []


MAX_SURVEY_MB = 5.0
"""Largest YAML/JSON survey file read without ``$PERSONASIM_MAX_SURVEY_MB`` raised: YAML parses
at roughly 1 MB/s here, so a much larger file would sit for minutes with no sign of life (a
6000-question survey is under 1 MB)."""


def max_survey_bytes() -> int:
    """The size limit of a survey file: ``$PERSONASIM_MAX_SURVEY_MB`` or :data:`MAX_SURVEY_MB`."""
    raw = os.environ.get("PERSONASIM_MAX_SURVEY_MB", "").strip()
    try:
        megabytes = float(raw) if raw else MAX_SURVEY_MB
    except ValueError:
        megabytes = -1.0
    if not megabytes > 0:
        raise ConfigError(
            f"PERSONASIM_MAX_SURVEY_MB must be a positive number of megabytes, got {raw!r}",
            hint=f"unset it for the default of {MAX_SURVEY_MB:g} MB",
        )
    return int(megabytes * 1e6)


def _check_size(path: Path) -> None:
    """Refuse a survey file over the size limit before reading it."""
    try:
        size = path.stat().st_size
    except OSError:
        return  # reading it reports the problem
    limit = max_survey_bytes()
    if size > limit:
        raise DataError(
            f"{path}: survey file is {size / 1e6:.1f} MB, over the limit of {limit / 1e6:g} MB",
            hint=f"is it a survey? to read it anyway set PERSONASIM_MAX_SURVEY_MB="
            f"{int(size / 1e6) + 1} (parsing takes about a second per MB)",
        )


def _read_text(path: Path) -> str:
    """File contents, or a DataError naming the file (also when it is over the size limit)."""
    _check_size(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None


# --------------------------------------------------------------------------- own format


def _normalize_option(item: Any, index: int) -> Any:
    """A bare string option becomes ``{label, text}``; a mapping gets a default label."""
    if isinstance(item, str):
        return {"label": letter(index), "text": item}
    if isinstance(item, dict) and "label" not in item:
        return {"label": letter(index), **item}
    return item


def _normalize_survey(raw: Any, path: Path) -> Any:
    """Fill default option labels and the survey id (the file stem) before validation."""
    if not isinstance(raw, dict):
        return raw
    out = {"id": path.stem, "source": str(path), **raw}
    questions = out.get("questions")
    if isinstance(questions, list):
        fixed = []
        for q in questions:
            if isinstance(q, dict) and isinstance(q.get("options"), list):
                opts = [_normalize_option(o, i) for i, o in enumerate(q["options"])]
                q = {**q, "options": opts}
            fixed.append(q)
        out["questions"] = fixed
    return out


def _parse_problem(error: Exception) -> str:
    """One line describing a YAML/JSON syntax error, with its line number when known."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} (line {error.lineno})"
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


def load_survey_file(path: str | Path) -> Survey:
    """Load personasim's own YAML or JSON survey format (see ``docs/surveys.md``)."""
    path = Path(path)
    text = _read_text(path)
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.load(text, _YAML_LOADER)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(
            f"{path}: not valid {path.suffix.lstrip('.')}: {_parse_problem(error)}"
        ) from None
    return _survey_from_dict(_normalize_survey(raw, path), path)


def builtin_survey(name: str = "elections") -> Survey:
    """A survey shipped with personasim (``elections``, ``topics``, ``anes96``)."""
    if name not in BUILTIN_SURVEYS:
        raise ConfigError(
            f"unknown built-in survey {name!r}", hint=did_you_mean(name, BUILTIN_SURVEYS)
        )
    ref = resources.files("personasim.survey") / "data" / f"{name}.yaml"
    with resources.as_file(ref) as real:
        survey = load_survey_file(real)
    return survey.model_copy(update={"source": f"builtin:{name}"})


BUILTIN_SURVEYS = ("elections", "topics", "anes96")


# --------------------------------------------------------------------------- context.json


def _context_option(label: str, body: Any, path: Path, refusals: set[str]) -> dict[str, Any]:
    """One ``candidates`` entry of a context.json as an option mapping."""
    if not isinstance(body, dict) or not any(body.get(k) for k in ("stance", "name")):
        raise ConfigError(f"{path}: field candidates.{label}: needs a 'stance' or 'name'")
    name = str(body.get("name") or "").strip()
    stance = str(body.get("stance") or "").strip()
    background = str(body.get("background_info") or "").strip()
    text = name or stance
    detail = " ".join(x for x in (background, stance if name else "") if x)
    return {
        "label": label,
        "text": text,
        "detail": detail,
        "refusal": text.casefold() in refusals,
    }


def load_context_json(
    path: str | Path,
    kind: str = "nominal",
    refusal_texts: Iterable[str] = DEFAULT_REFUSALS,
    dedupe_ids: bool = False,
) -> Survey:
    """Load the paper authors' ``context.json`` question file as a nominal survey.

    Question ids are ``question_id`` when present, else the ``topic_N`` key; the text is
    ``question`` when present, else ``topic``. Options whose text is in ``refusal_texts``
    (case-insensitive) are refusals. A repeated ``question_id`` is an error unless
    ``dedupe_ids`` is True, which renames the repeat ``<id>:<topic key>``.
    """
    path = Path(path)
    try:
        raw = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON: {error.msg} (line {error.lineno})") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: expected a mapping of topic_N -> question")
    refusals = {t.casefold() for t in refusal_texts}
    questions: list[dict[str, Any]] = []
    first_key: dict[str, str] = {}
    for key, body in raw.items():
        if not isinstance(body, dict) or not isinstance(body.get("candidates"), dict):
            raise ConfigError(f"{path}: field {key}.candidates: missing or not a mapping")
        text = body.get("question") or body.get("topic")
        if not text:
            raise ConfigError(f"{path}: field {key}.topic: missing question text")
        options = [_context_option(lab, b, path, refusals) for lab, b in body["candidates"].items()]
        qid = str(body.get("question_id") or key)
        if qid in first_key:
            if not dedupe_ids:
                raise ConfigError(
                    f"{path}: field {key}.question_id: {qid!r} repeats {first_key[qid]}",
                    hint="fix the file, or pass dedupe_ids=True to suffix repeats with the topic",
                )
            qid = f"{qid}:{key}"
        first_key.setdefault(qid, key)
        tags = {"topic": str(body["topic"])} if body.get("question") and body.get("topic") else {}
        questions.append(
            {
                "id": qid,
                "text": str(text),
                "options": options,
                "kind": kind,
                "source": str(path),
                "tags": tags,
            }
        )
    survey = {
        "id": path.parent.name or path.stem,
        "title": path.parent.name,
        "questions": questions,
        "source": str(path),
    }
    return _survey_from_dict(survey, path)


# --------------------------------------------------------------------------- OpinionQA


def _literal(value: Any, path: Path, field: str) -> Any:
    """Parse a Python/JSON literal cell such as ``"['A', 'B']"``."""
    if not isinstance(value, str):
        raise DataError(f"{path}: field {field}: expected a list literal, got {value!r}")
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise DataError(f"{path}: field {field}: cannot parse {value[:60]!r}") from None


def _codes(mapping: Any, texts: list[str]) -> dict[str, str]:
    """Map option text -> Pew answer code (``'1'``, ``'99'``) from an ``option_mapping`` dict."""
    if not isinstance(mapping, dict):
        return {}
    out = {}
    for code, text in mapping.items():
        number = float(code)
        out[str(text)] = str(int(number)) if number.is_integer() else str(code)
    return {t: out[t] for t in texts if t in out}


def _opinionqa_question(row: Mapping[str, Any], path: Path, wave: str) -> dict[str, Any]:
    """One ``info.csv`` row as a question mapping.

    Options past the ``option_ordinal`` list ("Refused", "Not sure") are refusals; a question
    whose positions are all equal is OpinionQA's way of saying "unordered" and becomes nominal.
    """
    key = str(row["key"])
    refs_col = "references" if "references" in row else "options"
    texts = [str(t) for t in _literal(row[refs_col], path, f"{key}.{refs_col}")]
    ordinal = [float(x) for x in _literal(row["option_ordinal"], path, f"{key}.option_ordinal")]
    if len(ordinal) > len(texts):
        raise DataError(f"{path}: field {key}.option_ordinal: more positions than options")
    mapping = row.get("option_mapping")
    has_map = isinstance(mapping, str) and mapping.strip()
    codes = _codes(_literal(mapping, path, f"{key}.option_mapping"), texts) if has_map else {}
    # OpinionQA marks unordered questions by giving every option the same position
    kind = "ordinal" if len(set(ordinal)) > 1 else "nominal"
    options = []
    for i, text in enumerate(texts):
        substantive = i < len(ordinal)
        position = ordinal[i] if substantive and kind == "ordinal" else None
        options.append(
            {
                "label": letter(i),
                "text": text,
                "code": codes.get(text),
                "position": position,
                "refusal": not substantive,
            }
        )
    return {
        "id": key,
        "text": str(row["question"]),
        "options": options,
        "kind": kind,
        "source": str(path),
        "tags": {"wave": wave} if wave else {},
    }


def wave_of(folder: Path) -> str:
    """``W26`` from ``American_Trends_Panel_W26`` (empty when the name has no wave)."""
    match = re.search(r"_W(\d+)$", folder.name)
    return f"W{match.group(1)}" if match else ""


def read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` with one-line errors naming the file."""
    try:
        return pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: cannot parse CSV ({first})") from None


def _questions_csv(path: Path, wave: str) -> list[dict[str, Any]]:
    """Question mappings from an ``info.csv``-like file."""
    frame = read_csv(path)
    needed = {"key", "question", "option_ordinal"}
    missing = sorted(needed - set(frame.columns))
    if missing or not {"references", "options"} & set(frame.columns):
        raise DataError(f"{path}: missing columns {missing or ['references']}")
    rows = frame.drop_duplicates("key").to_dict("records")
    return [_opinionqa_question(r, path, wave or str(r.get("wave", "") or "")) for r in rows]


def wave_dirs(path: Path) -> list[Path]:
    """``path`` itself when it holds ``info.csv``, else its subfolders that do."""
    if (path / "info.csv").is_file():
        return [path]
    found = sorted(p for p in path.glob("*") if (p / "info.csv").is_file()) if path.is_dir() else []
    if not found:
        raise DataError(
            f"{path}: no info.csv here or in its subfolders",
            hint="point at human_resp/<wave> or at human_resp",
        )
    return found


def load_opinionqa(path: str | Path) -> Survey:
    """Questions of one OpinionQA wave folder (``info.csv``) or of every wave below ``path``."""
    path = Path(path)
    questions: list[dict[str, Any]] = []
    seen: set[str] = set()
    for folder in wave_dirs(path):
        for q in _questions_csv(folder / "info.csv", wave_of(folder)):
            if q["id"] not in seen:
                seen.add(q["id"])
                questions.append(q)
    survey = {
        "id": path.name,
        "title": f"OpinionQA {path.name}",
        "questions": questions,
        "source": str(path),
    }
    return _survey_from_dict(survey, path)


def load_opinionqa_questions(path: str | Path) -> Survey:
    """Questions from one CSV with ``key, question, options|references, option_ordinal``."""
    path = Path(path)
    survey = {
        "id": path.stem,
        "title": path.stem,
        "questions": _questions_csv(path, ""),
        "source": str(path),
    }
    return _survey_from_dict(survey, path)


# --------------------------------------------------------------------------- registries


def _looks_like_context(path: Path) -> bool:
    """True when a JSON file is the authors' ``topic_N`` format rather than ours."""
    try:
        raw = json.loads(_read_text(path))
    except json.JSONDecodeError:
        return False
    return (
        isinstance(raw, dict) and "questions" not in raw and any(k.startswith("topic") for k in raw)
    )


SURVEY_SOURCES: dict[str, Callable[[str], Survey]] = {
    "elections": lambda _arg: builtin_survey("elections"),
    "topics": lambda _arg: builtin_survey("topics"),
    "anes96": lambda _arg: builtin_survey("anes96"),
    "yaml": load_survey_file,
    "json": load_survey_file,
    "context": load_context_json,
    "opinionqa": load_opinionqa,
    "opinionqa-questions": load_opinionqa_questions,
}


def _split(spec: str) -> tuple[str, str]:
    """``name:path`` -> (name, path); a Windows drive letter is not a name."""
    name, sep, arg = spec.partition(":")
    if sep and len(name) > 1:
        return name.strip(), arg
    return "", spec


def load_survey(spec: str) -> Survey:
    """Load a survey from ``elections``, ``NAME:PATH`` or a bare file path."""
    name, arg = _split(spec)
    if not name and spec in SURVEY_SOURCES and spec in BUILTIN_SURVEYS:
        return builtin_survey(spec)
    if name:
        if name not in SURVEY_SOURCES:
            raise ConfigError(
                f"unknown survey source {name!r}", hint=did_you_mean(name, SURVEY_SOURCES)
            )
        return SURVEY_SOURCES[name](arg)
    path = Path(arg)
    if path.is_dir():
        return load_opinionqa(path)
    if path.suffix.lower() in {".yaml", ".yml"}:
        return load_survey_file(path)
    if path.suffix.lower() == ".json":
        return load_context_json(path) if _looks_like_context(path) else load_survey_file(path)
    if not path.exists():
        known = list(SURVEY_SOURCES) + [str(p) for p in BUILTIN_SURVEYS]
        raise ConfigError(
            f"no survey {spec!r}: not a built-in and no such file", hint=did_you_mean(spec, known)
        )
    raise ConfigError(
        f"{path}: unknown survey file type", hint="use .yaml, .yml, .json or NAME:PATH"
    )
