"""The report's opening paragraph: a plain-language reading of the headline numbers.

Written from the score tables by a fixed template (no LLM): which persona tier came closest to
the real vote, by how much and with what interval, whether the runner-up's interval overlaps,
how the best tier compares with the no-information baselines, whether the test of "simulated
equals real" (the summary's ``p_equal`` and ``detectable`` columns) can tell the best tier from
the real result at this sample size, and, when the answers come from the small embedded model,
the caveat that they test the pipeline rather than the tiers. Summaries written before that test
lack the columns; their reading simply says nothing about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

#: Below this p-value of "simulated equals real", the gap is read as one the sample can see.
ALPHA = 0.05

#: Simulator names that mean "the small model embedded for tests and demos".
EMBEDDED_MARKERS = ("smollm2", "135m")

EMBEDDED_CAVEAT = (
    "All answers were simulated by SmolLM2-135M, the small model embedded so that personasim "
    "runs anywhere without a GPU. It barely follows a persona, so read these numbers as a check "
    "that the pipeline works end to end, not as evidence about the persona tiers."
)


def _ranked(scores: pd.DataFrame, metric: str, ascending: bool) -> pd.DataFrame:
    """Per tier x models, the question-averaged ``metric``, best first. ``scores`` is a scores
    table, or already its summary (the score stage's ``summary_<id>`` table)."""
    from personasim.scoring.score import summarize

    table = summarize(scores) if "attribute" in scores.columns else scores
    table = table[table["metric"] == metric].dropna(subset=["value"])
    return table.sort_values("value", ascending=ascending, ignore_index=True)


def _who(row: pd.Series, many_models: bool) -> str:
    """The tier, with its generator and simulator when several were run."""
    if not many_models:
        return f"the {row['tier']} tier"
    return f"the {row['tier']} tier ({row['generator']} -> {row['simulator']})"


def _overlaps(a: pd.Series, b: pd.Series) -> bool | None:
    """True when the two rows' intervals overlap; None when either has none."""
    if any(pd.isna(row[c]) for row in (a, b) for c in ("ci_low", "ci_high")):
        return None
    return bool(a["ci_low"] <= b["ci_high"] and b["ci_low"] <= a["ci_high"])


def _interval(row: pd.Series, scale: float, digits: int) -> str:
    """`` (95% interval LOW to HIGH`` for the row, or "" when it has no interval."""
    if pd.isna(row["ci_low"]) or pd.isna(row["ci_high"]):
        return ""
    low, high = scale * row["ci_low"], scale * row["ci_high"]
    return f" (95% interval {low:.{digits}f} to {high:.{digits}f}"


def _test(row: pd.Series) -> tuple[float, float] | None:
    """``(p_equal, detectable)`` of a summary row, or None when the row has no equality test
    (a summary written before it, or a cell the test could not run on)."""
    p, detectable = row.get("p_equal"), row.get("detectable")
    if p is None or detectable is None or pd.isna(p) or pd.isna(detectable):
        return None
    return float(p), float(detectable)


def election_test_reading(row: pd.Series) -> str:
    """Whether the best tier's national share can be told from the real one at this sample
    size ("" without a test). The gap and its interval are in the sentence before."""
    test = _test(row)
    if test is None:
        return ""
    p, detectable = test
    if p >= ALPHA:
        return (
            f" At this sample size that share is indistinguishable from the real one "
            f"({_p_text(p)} for no difference): with these persons only a gap of about "
            f"{100 * detectable:.1f} points or more could have been detected."
        )
    return (
        f" That gap is larger than chance alone would give at this sample size "
        f"({_p_text(p)} for no difference)."
    )


def alignment_test_reading(row: pd.Series) -> str:
    """Whether the best tier's answers can be told from the real ones at this sample size,
    and if so the distance with its interval ("" without a test)."""
    test = _test(row)
    if test is None:
        return ""
    p, detectable = test
    if p >= ALPHA:
        return (
            f" At this sample size its answers are indistinguishable from the real ones "
            f"({_p_text(p)} for no difference): with these persons only a distance of "
            f"about {detectable:.2f} or more could have been detected."
        )
    distance = f"{1 - row['value']:.2f}"
    if not (pd.isna(row["ci_low"]) or pd.isna(row["ci_high"])):
        distance += f" (95% interval {1 - row['ci_high']:.2f} to {1 - row['ci_low']:.2f})"
    return (
        f" Its answers differ from the real ones by more than chance would give at this "
        f"sample size: a distance of {distance}, {_p_text(p)} for no "
        f"difference."
    )


def _p_text(p: float) -> str:
    """A p-value as text: ``p = 0.41``, ``p = 0.003``, ``p < 0.001``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def election_reading(scores: pd.DataFrame) -> str | None:
    """Which tier's national vote share came closest to the real one, by how much."""
    ranked = _ranked(scores, "national_abs_error", ascending=True)
    if ranked.empty:
        return None
    many = bool(ranked["tier"].duplicated().any())  # name the models only when a tier repeats
    best = ranked.iloc[0]
    years = int(best["questions"])
    span = "in one election" if years == 1 else f"averaged over {years} elections"
    text = (
        f"Of {len(ranked)} simulated persona set{'s' if len(ranked) > 1 else ''}, "
        f"{_who(best, many)} came closest to the real vote: its national Democratic two-party "
        f"share was off by {100 * best['value']:.1f} points {span}"
        + (_interval(best, 100, 1) + ")." if _interval(best, 100, 1) else ".")
        + election_test_reading(best)
    )
    if len(ranked) > 1:
        second = ranked.iloc[1]
        overlap = _overlaps(best, second)
        ending = {
            True: "; the two intervals overlap, so this order may be chance.",
            False: ", and the intervals do not overlap.",
            None: ".",
        }[overlap]
        text += (
            f" The next closest, {_who(second, many)}, was off by "
            f"{100 * second['value']:.1f} points{ending}"
        )
    if pd.notna(best.get("uniform")):
        text += f" A 50/50 guess would have been off by {100 * best['uniform']:.1f} points"
        if pd.notna(best.get("meta")) and best["tier"] != "meta":
            text += f", the census-only meta tier by {100 * best['meta']:.1f}"
        text += ", closer than any tier." if best["uniform"] < best["value"] else "."
    return text


def alignment_reading(survey: str, scores: pd.DataFrame) -> str | None:
    """Which tier's answer distributions were most like the real ones on ``survey``."""
    ranked = _ranked(scores, "alignment", ascending=False)
    if ranked.empty:
        return None
    many = bool(ranked["tier"].duplicated().any())  # name the models only when a tier repeats
    best = ranked.iloc[0]
    text = (
        f"On {survey} ({int(best['questions'])} questions), {_who(best, many)} answered most "
        f"like the real respondents: alignment {best['value']:.2f}"
        + (_interval(best, 1, 2) + "; " if _interval(best, 1, 2) else " (")
        + "1 means identical answer shares)"
    )
    if pd.notna(best.get("uniform")):
        text += f", against {best['uniform']:.2f} for spreading answers evenly over the options"
    text += "." + alignment_test_reading(best)
    if len(ranked) > 1 and _overlaps(best, ranked.iloc[1]):
        text += f" Its interval overlaps that of {_who(ranked.iloc[1], many)}."
    return text


def uses_embedded_model(simulators: Iterable[str]) -> bool:
    """True when any simulator is the small embedded model."""
    return any(m in str(s).lower() for s in simulators for m in EMBEDDED_MARKERS)


def text_quality_reading(quality: pd.DataFrame | None) -> str | None:
    """One sentence on degenerate persona text (``quality``: the per-tier table of
    :func:`personasim.personas.quality.quality_summary`), or None when no persona is flagged."""
    if quality is None or quality.empty or not int(quality["flagged"].sum()):
        return None
    flagged, total = int(quality["flagged"].sum()), int(quality["personas"].sum())
    worst = quality.iloc[int((quality["flagged"] / quality["personas"]).to_numpy().argmax())]
    return (
        f"{flagged} of {total} LLM-written personas have degenerate text in at least one free "
        "field (filler, one value pasted into several fields, a template placeholder or "
        f"look-alike letters), most in the {worst['tier']} tier ({int(worst['flagged'])} of "
        f'{int(worst["personas"])}). They are kept and scored as written; see "Persona text '
        'quality" and the sample personas.'
    )


def headline_reading(
    scores: Mapping[str, pd.DataFrame],
    simulators: Iterable[str],
    quality: pd.DataFrame | None = None,
) -> list[str]:
    """The opening paragraphs: one per scored survey, a sentence on degenerate persona text if
    any (``quality``, see :func:`text_quality_reading`), then the small-model caveat if due.

    ``scores``: survey id -> its scores table or its summary
    (:func:`personasim.scoring.score.summarize`).
    """
    paragraphs = []
    for survey, table in scores.items():
        if table is None or table.empty:
            continue
        # a vote survey (national share metrics, whatever its id) is read as one, others by
        # alignment
        text = election_reading(table) or alignment_reading(survey, table)
        if text:
            paragraphs.append(text)
    if not paragraphs:
        paragraphs.append(
            "This run holds no scores against real answers, so no tier can be ranked "
            "here; the sections below describe the answers."
        )
    if sentence := text_quality_reading(quality):
        paragraphs.append(sentence)
    if uses_embedded_model(simulators):
        paragraphs.append(EMBEDDED_CAVEAT)
    return paragraphs
