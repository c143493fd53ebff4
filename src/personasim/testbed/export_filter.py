"""Which pairs an export keeps, and why the others were dropped.

A pair is dropped, for the first reason that applies, when:

1. ``failed``: its generation failed (``ok`` is false);
2. ``unverified``: the persona judge did not prefer ``chosen`` (only unless unverified pairs are
   asked for);
3. ``truncated``: ``rejected`` or ``chosen`` was cut off at its token cap (a half sentence
   teaches a trainer to stop mid-thought);
4. ``template leak``: ``rejected`` or ``chosen`` repeats our prompt text, i.e. a section label
   of the critique or revision prompts (``EVALUATION:``, ``CRITIQUE:`` ...) or six consecutive
   words of a template or of the role-play instruction (the model echoed its instructions).

Drops 3 and 4 are quality filters and always apply in the CLI; the Python API can turn them off
(``drop_flawed=False``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from personasim.testbed import common as C
from personasim.testbed.pairs import PairsTemplates

MARKERS = ("EVALUATION:", "SUGGESTION:", "CRITIQUE:", "QUESTION:", "ANSWER:", "Profile:")
SHINGLE = 6
REASONS = ("failed", "unverified", "truncated", "template leak")


def _words(text: str) -> list[str]:
    """Lower-case words without punctuation and placeholders."""
    return re.findall(r"[a-z']+", re.sub(r"\{[a-z_]+\}", " ", text.lower()))


def template_shingles(templates: PairsTemplates | None = None) -> set[tuple[str, ...]]:
    """Every run of :data:`SHINGLE` consecutive words of the prompts a pair was made with."""
    t = templates or PairsTemplates()
    texts = [t.answer_system, t.critique, t.revision_system, t.revision, C.ROLEPLAY]
    out = set()
    for text in texts:
        words = _words(text)
        out |= {tuple(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}
    return out


def leaks(text: str, shingles: set[tuple[str, ...]]) -> bool:
    """True when ``text`` holds a section label or a template run of words."""
    if any(m in text for m in MARKERS):
        return True
    words = _words(text)
    return any(tuple(words[i : i + SHINGLE]) in shingles for i in range(len(words) - SHINGLE + 1))


@dataclass
class Selection:
    """The pairs an export keeps and the counts of the dropped ones by reason."""

    kept: pd.DataFrame
    """The pairs to export."""
    dropped: Counter = field(default_factory=Counter)
    """reason -> pairs dropped for it (first reason only)."""

    def summary(self) -> str:
        """One line: kept, dropped by reason."""
        parts = [f"{self.dropped[r]} {r}" for r in REASONS if self.dropped[r]]
        total = sum(self.dropped.values())
        why = f" ({', '.join(parts)})" if parts else ""
        return f"kept {len(self.kept)} pairs, dropped {total}{why}"


def _flag(pairs: pd.DataFrame, column: str) -> pd.Series:
    """A boolean column, False when absent or missing."""
    if column not in pairs.columns:
        return pd.Series(False, index=pairs.index)
    return pairs[column].fillna(False).astype(bool)


def reasons(
    pairs: pd.DataFrame,
    include_unverified: bool = False,
    drop_flawed: bool = True,
    templates: PairsTemplates | None = None,
) -> pd.Series:
    """The first drop reason of each pair, None for a kept pair."""
    shingles = template_shingles(templates)
    leaked = (
        pairs.apply(
            lambda r: leaks(str(r["chosen"]), shingles) or leaks(str(r["rejected"]), shingles),
            axis=1,
        )
        if len(pairs)
        else pd.Series(False, index=pairs.index)
    )
    ok = _flag(pairs, "ok") if "ok" in pairs.columns else pd.Series(True, index=pairs.index)
    checks = [
        ("failed", ~ok),
        ("unverified", ~_flag(pairs, "verified") & ~include_unverified),
        (
            "truncated",
            (_flag(pairs, "rejected_truncated") | _flag(pairs, "chosen_truncated")) & drop_flawed,
        ),
        ("template leak", leaked.astype(bool) & drop_flawed),
    ]
    out = pd.Series([None] * len(pairs), index=pairs.index, dtype=object)
    for name, mask in reversed(checks):  # the first reason wins: written last
        out[mask] = name
    return out


def select_pairs(
    pairs: pd.DataFrame,
    include_unverified: bool = False,
    drop_flawed: bool = True,
    templates: PairsTemplates | None = None,
) -> Selection:
    """The pairs to export (see the module docstring) with the drop counts."""
    why = reasons(pairs, include_unverified, drop_flawed, templates)
    return Selection(pairs[why.isna()], Counter(why.dropna().tolist()))
