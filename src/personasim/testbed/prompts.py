"""Prompt sets of the PERSONA testbed: loaders, curation with counts, a seeded stratified split.

A prompt set is a table with :data:`PROMPT_COLUMNS`: ``prompt_id``, ``text``, ``topic``,
``split`` (``train`` / ``held_out``, empty before :func:`split_prompts`), ``source``, and, for
PRISM, ``conversation_id`` and ``conversation_type``.

Sources (:func:`load_prompts`):

* ``builtin``: the project's own 65 open, value-laden questions over 13 PRISM topics.
* ``*.yaml`` / ``*.yml``: a list of prompts (or ``{prompts: ...}``), each a string or a mapping
  with ``text`` (and optional ``topic``, ``prompt_id``, ``split``); or ``{prompts: {TOPIC: [..]}}``.
* ``*.jsonl``: our own records (``text`` ...) or PRISM's ``conversations.jsonl`` (one
  conversation per line with ``opening_prompt``, ``conversation_id``, ``conversation_type``).
* ``*.csv``: a header with ``text``, ``prompt`` or ``opening_prompt`` (topic from ``topic`` or
  ``cluster_label``); ``*.txt``: one prompt per line.

Curation (:func:`curate`) follows Castricato et al. (2024, §3.2): drop prompts without a question
mark, drop prompts under five words, then keep the prompts an LLM judges would divide opinion
(the probability of "yes", averaged over both option orders; threshold configurable). Every
step is counted in a :class:`CurationReport`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from personasim.core.errors import ConfigError, DataError, did_you_mean
from personasim.llm import Backend, ChoiceRequest, Message

PROMPT_COLUMNS = [
    "prompt_id",
    "text",
    "topic",
    "split",
    "source",
    "conversation_id",
    "conversation_type",
]
SPLITS = ("train", "held_out")
TEXT_COLUMNS = ("text", "prompt", "opening_prompt")
TOPIC_COLUMNS = ("topic", "cluster_label")
UNLABELLED = "unlabelled"
SUFFIXES = (".yaml", ".yml", ".jsonl", ".json", ".csv", ".txt")

CONTROVERSY_SYSTEM = (
    "You sort questions that people ask a chatbot. A question is divisive when thoughtful "
    "people with different values, beliefs or backgrounds would want clearly different answers "
    "to it. Factual, technical and everyday practical questions are not divisive."
)
CONTROVERSY_USER = (
    "Question: {text}\n\nWould people with different values disagree about the right answer "
    "to this question?\n{options}\nReply with A or B."
)
DIVIDES, AGREED = "Yes, it divides opinion", "No, most people would want the same answer"


def prompt_id(text: str) -> str:
    """A stable id of a prompt text (``p-`` + 10 hex digits of its SHA-256)."""
    return "p-" + hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:10]


def _frame(records: list[dict[str, Any]], source: str) -> pd.DataFrame:
    """Records -> a prompt-set table with every column, ids filled, empty texts dropped."""
    frame = pd.DataFrame(records, columns=PROMPT_COLUMNS).astype(object)
    frame["text"] = frame["text"].astype("string").str.strip()
    frame = frame[frame["text"].notna() & (frame["text"] != "")].copy()
    frame["source"] = frame["source"].fillna(source)
    frame["topic"] = frame["topic"].fillna(UNLABELLED).replace("", UNLABELLED)
    missing = frame["prompt_id"].isna()
    frame.loc[missing, "prompt_id"] = frame.loc[missing, "text"].map(prompt_id)
    frame["prompt_id"] = frame["prompt_id"].astype(str)
    frame = frame.drop_duplicates("prompt_id").reset_index(drop=True)
    for column in PROMPT_COLUMNS:
        frame[column] = frame[column].astype("string")
    return frame


def builtin_prompts() -> pd.DataFrame:
    """The project's own prompt set (65 questions over 13 topics), not yet split."""
    text = resources.files("personasim.testbed").joinpath("data/prompts.yaml").read_text("utf-8")
    records = []
    for topic, items in yaml.safe_load(text)["prompts"].items():
        slug = topic.split()[0].lower().strip(",")
        records += [
            {"prompt_id": f"{slug}-{i + 1:02d}", "text": t, "topic": topic}
            for i, t in enumerate(items)
        ]
    return _frame(records, "builtin")


def _record(item: Any, where: str) -> dict[str, Any]:
    """One YAML/JSONL item (a string, our mapping, or a PRISM conversation) -> a record."""
    if isinstance(item, str):
        return {"text": item}
    if not isinstance(item, dict):
        raise DataError(f"{where}: expected a prompt text or a mapping, got {type(item).__name__}")
    if "opening_prompt" in item:  # PRISM conversations.jsonl
        return {
            "text": item["opening_prompt"],
            "topic": item.get("topic") or item.get("conversation_type"),
            "conversation_id": item.get("conversation_id"),
            "conversation_type": item.get("conversation_type"),
            "prompt_id": item.get("conversation_id"),
            "source": "prism",
        }
    if "text" not in item:
        known = ["text", "topic", "prompt_id", "split", "opening_prompt"]
        wrong = next(iter(item), "")
        raise DataError(
            f"{where}: a prompt needs a 'text' field", hint=did_you_mean(str(wrong), known)
        )
    keep = {k: item.get(k) for k in ("prompt_id", "text", "topic", "split")}
    return {k: (None if v is None else str(v)) for k, v in keep.items()}


def _read_yaml(path: Path) -> list[dict[str, Any]]:
    """Records of a YAML prompt file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("prompts", data)
    if isinstance(data, dict):  # {topic: [texts]}
        lone = [topic for topic, items in data.items() if not isinstance(items, list)]
        if lone:
            raise DataError(
                f"{path}: topic {str(lone[0])!r} is not a list of prompts",
                hint="write {topic: [prompt, ...]} or a list of prompts",
            )
        return [
            {**_record(t, str(path)), "topic": topic}
            for topic, items in data.items()
            for t in items
        ]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of prompts", hint="see docs/testbed.md")
    return [_record(item, f"{path}[{i}]") for i, item in enumerate(data)]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file: our own records or PRISM conversations."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not JSON ({error.msg})") from None
        records.append(_record(item, f"{path}:{number}"))
    return records


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """Records of a CSV file with a text column (``text``, ``prompt`` or ``opening_prompt``)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    text = next((c for c in TEXT_COLUMNS if c in frame.columns), None)
    if text is None:
        raise DataError(
            f"{path}: no prompt column",
            hint=f"name one of {', '.join(TEXT_COLUMNS)}; "
            + did_you_mean(str(frame.columns[0]), TEXT_COLUMNS),
        )
    topic = next((c for c in TOPIC_COLUMNS if c in frame.columns), None)
    ids = "prompt_id" if "prompt_id" in frame.columns else None
    return [
        {
            "text": row[text],
            "topic": row[topic] if topic else None,
            "prompt_id": row[ids] if ids else None,
        }
        for _, row in frame.iterrows()
    ]


def _read_txt(path: Path) -> list[dict[str, Any]]:
    """Records of a plain text file, one prompt per line."""
    return [{"text": line} for line in path.read_text(encoding="utf-8").splitlines()]


READERS = {
    ".yaml": _read_yaml,
    ".yml": _read_yaml,
    ".jsonl": _read_jsonl,
    ".json": _read_jsonl,
    ".csv": _read_csv,
    ".txt": _read_txt,
}


def load_prompts(source: str | Path) -> pd.DataFrame:
    """A prompt set from ``builtin`` or a file (see the module docstring); never empty."""
    if str(source) == "builtin":
        return builtin_prompts()
    path = Path(source)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(
            f"{path}: unknown prompt file type {path.suffix!r}",
            hint=f"use builtin or a {', '.join(SUFFIXES)} file",
        )
    if not path.is_file():
        raise DataError(f"{path}: file not found", hint="give builtin or an existing file")
    try:
        records = reader(path)
    except (UnicodeDecodeError, yaml.YAMLError, pd.errors.ParserError) as error:
        first = str(error).splitlines()[0]
        raise DataError(f"{path}: cannot read prompts ({first})") from None
    frame = _frame(records, path.name)
    if frame.empty:
        raise DataError(f"{path}: the prompt set is empty", hint="give at least one prompt")
    return frame


def read_prompt_table(path: str | Path) -> pd.DataFrame:
    """A prompt set: Parquet from ``testbed prompts``, or any source of :func:`load_prompts`."""
    from personasim.core.tables import read_table

    if str(path).endswith(".parquet"):
        frame = read_table(
            path,
            "prompt set",
            ["prompt_id", "text"],
            hint="write one with `personasim testbed prompts`",
        )
        frame = _frame(frame.to_dict("records"), Path(path).name)
        if frame.empty:
            raise DataError(f"{path}: the prompt set is empty", hint="give at least one prompt")
        return frame
    return load_prompts(path)


# --------------------------------------------------------------------------- curation


@dataclass
class CurationReport:
    """Counts before and after each curation step."""

    steps: list[tuple[str, int, int]] = field(default_factory=list)
    """``(step, before, after)`` in order."""
    notes: list[str] = field(default_factory=list)
    """Skipped steps and other remarks."""

    def add(self, step: str, before: int, after: int) -> None:
        """Record one step."""
        self.steps.append((step, before, after))

    def as_frame(self) -> pd.DataFrame:
        """The steps as a table (step, before, after, dropped)."""
        frame = pd.DataFrame(self.steps, columns=["step", "before", "after"])
        frame["dropped"] = frame["before"] - frame["after"]
        return frame

    def summary(self) -> str:
        """The steps as aligned text lines, then the notes."""
        lines = [f"{'step':<28} {'before':>7} {'after':>7} {'dropped':>8}"]
        lines += [f"{s:<28} {b:>7} {a:>7} {b - a:>8}" for s, b, a in self.steps]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _controversy_request(text: str, yes_first: bool) -> ChoiceRequest:
    """The classifier's question, with "yes" shown as A (``yes_first``) or as B."""
    pair = (DIVIDES, AGREED) if yes_first else (AGREED, DIVIDES)
    user = CONTROVERSY_USER.format(text=text, options=f"A. {pair[0]}\nB. {pair[1]}")
    return ChoiceRequest(
        messages=(
            Message(role="system", content=CONTROVERSY_SYSTEM),
            Message(role="user", content=user),
        ),
        labels=("A", "B"),
        answer_prefix="Answer:",
    )


def controversy_scores(
    prompts: pd.DataFrame, backend: Backend, progress: bool | None = None
) -> np.ndarray:
    """P("yes, it divides opinion") per prompt: the mean over both option orders (so a model
    that always answers A scores 0.5), NaN when no mass landed on the labels."""
    requests = [_controversy_request(t, first) for t in prompts["text"] for first in (True, False)]
    results = backend.choice_logprobs(requests, progress=progress)
    out = []
    for shown_a, shown_b in zip(results[0::2], results[1::2], strict=True):
        valid = shown_a.valid_mass > 0 and shown_b.valid_mass > 0
        out.append((shown_a.probs["A"] + shown_b.probs["B"]) / 2 if valid else np.nan)
    return np.array(out)


def curate(
    prompts: pd.DataFrame,
    backend: Backend | None = None,
    *,
    min_words: int = 5,
    threshold: float = 0.5,
    progress: bool | None = None,
) -> tuple[pd.DataFrame, CurationReport]:
    """Apply the paper's filters in order and count each; the classifier needs ``backend``.

    Adds a ``controversy`` column (NaN when the classifier did not run, or when no probability
    mass landed on its labels; such prompts are dropped by the classifier step and counted).
    """
    report = CurationReport()
    out = prompts.copy()
    keep = out["text"].str.contains("?", regex=False)
    report.add("has a question mark", len(out), int(keep.sum()))
    out = out[keep]
    keep = out["text"].str.split().str.len() >= min_words
    report.add(f"at least {min_words} words", len(out), int(keep.sum()))
    out = out[keep].copy()
    out["controversy"] = np.nan
    if backend is None:
        report.notes.append("controversy classifier skipped (no model)")
    elif len(out):
        out["controversy"] = controversy_scores(out, backend, progress)
        keep = out["controversy"] >= threshold
        report.add(f"divisive (P(yes) >= {threshold:g})", len(out), int(keep.sum()))
        out = out[keep]
    return out.reset_index(drop=True), report


def split_prompts(prompts: pd.DataFrame, held_out: float = 0.225, seed: int = 0) -> pd.DataFrame:
    """A seeded split into ``train`` / ``held_out``, stratified by topic.

    Each topic sends ``round(n * held_out)`` of its prompts to held-out (the paper: 868 of
    3,868, 22.4 %), chosen by a generator seeded with ``seed``; rows already carrying a split
    keep it.
    """
    if not 0.0 <= held_out < 1.0:
        raise ConfigError(f"held-out share {held_out} is not in [0, 1)")
    out = prompts.copy()
    rng = np.random.default_rng(seed)
    given = out["split"].isin(SPLITS)
    for _topic, index in out[~given].groupby("topic", sort=True).groups.items():
        ids = np.array(sorted(index))
        chosen = rng.permutation(ids)[: int(round(len(ids) * held_out))]
        out.loc[ids, "split"] = "train"
        out.loc[chosen, "split"] = "held_out"
    return out


def split_counts(prompts: pd.DataFrame) -> pd.DataFrame:
    """Prompts per topic and split."""
    return prompts.groupby(["topic", "split"]).size().unstack(fill_value=0)


def prompt_sets(prompts: pd.DataFrame, splits: Sequence[str]) -> pd.DataFrame:
    """The rows of the given splits (error when none)."""
    out = prompts[prompts["split"].isin(list(splits))]
    if out.empty:
        raise DataError(
            f"no prompts in split {' or '.join(splits)}",
            hint="split the set first (`personasim testbed prompts`)",
        )
    return out.reset_index(drop=True)
