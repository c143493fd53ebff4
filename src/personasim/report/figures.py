"""Figures of the report, drawn with matplotlib (Agg backend) and returned as base64 PNG data.

Every function takes plain tables and returns a ``data:image/png;base64,...`` string, so the
report embeds its images and loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from personasim.report.tilegrid import N_COLS, N_ROWS, TILES

TIER_ORDER = ("meta", "objective", "subjective", "descriptive", "persona")
TIER_COLORS = {"meta": "#7f7f7f", "objective": "#1f77b4", "subjective": "#9467bd",
               "descriptive": "#d62728", "persona": "#2ca02c"}  # fmt: skip


def _plt() -> Any:
    """``matplotlib.pyplot`` on the Agg backend with the bundled DejaVu font."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9, "svg.fonttype": "none"})
    return plt


def png_data(fig: Any, dpi: int = 110) -> str:
    """Render a figure to a base64 ``data:`` URI and close it."""
    plt = _plt()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return bytes_data(buffer.getvalue())


def bytes_data(png: bytes) -> str:
    """PNG bytes as a base64 ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def tier_sort(tiers: Sequence[str]) -> list[str]:
    """Tiers in the paper's order (meta first); unknown tiers last."""
    rank = {t: i for i, t in enumerate(TIER_ORDER)}
    return sorted(dict.fromkeys(tiers), key=lambda t: (rank.get(t, 99), t))


# --------------------------------------------------------------------------- maps


def _draw_tiles(ax: Any, shares: dict[str, float], title: str) -> Any:
    """One tile map: each state colored by Democratic two-party share (grey: not simulated)."""
    from matplotlib.colors import TwoSlopeNorm

    cmap, norm = _plt().get_cmap("RdBu"), TwoSlopeNorm(0.5, 0.2, 0.8)
    for state, (row, col) in TILES.items():
        share = shares.get(state)
        color = "#e6e6e6" if share is None or np.isnan(share) else cmap(norm(share))
        ax.add_patch(_plt().Rectangle((col, -row), 0.92, 0.92, color=color, lw=0))
        label = state if share is None or np.isnan(share) else f"{state}\n{share:.0%}"
        dark = share is not None and not np.isnan(share) and abs(share - 0.5) > 0.15
        ax.text(col + 0.46, -row + 0.46, label, ha="center", va="center", fontsize=6.5,
                color="white" if dark else "#222222")  # fmt: skip
    ax.set_xlim(-0.1, N_COLS + 0.1)
    ax.set_ylim(-N_ROWS + 0.9, 1.0)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    return _plt().cm.ScalarMappable(norm=norm, cmap=cmap)


def election_map(state_rows: pd.DataFrame, tier: str, years: Sequence[str]) -> str:
    """One row of tile maps, a map per year: a tier's simulated Democratic two-party share.

    ``state_rows``: ``dem_share`` score rows of one tier (``group`` = state, ``value`` =
    simulated share, ``year``).
    """
    shares = {
        year: state_rows[state_rows["year"] == year].groupby("group")["value"].mean().to_dict()
        for year in years
    }
    return _map_row(shares, lambda year: f"{year}: simulated ({tier})")


def actual_map(years: Sequence[str]) -> str:
    """One row of tile maps, a map per year: the actual Democratic two-party share by state."""
    from personasim.truth.elections import state_truth

    shares = {year: _actual_shares(state_truth(int(year))) for year in years}
    return _map_row(shares, lambda year: f"{year}: actual result")


def _map_row(shares: dict[str, dict[str, float]], title: Callable[[str], str]) -> str:
    """Tile maps side by side, one per key of ``shares``, with one color bar."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(shares), figsize=(4.4 * len(shares), 2.9), squeeze=False)
    mappable = None
    for ax, (year, by_state) in zip(axes[0], shares.items(), strict=True):
        mappable = _draw_tiles(ax, by_state, title(year))
    fig.colorbar(mappable, ax=axes, shrink=0.7, label="Democratic two-party share")
    return png_data(fig)


def _actual_shares(table: Any) -> dict[str, float]:
    """State -> actual Democratic two-party share from a ``state_truth`` result."""
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    column = next(c for c in ("dem_share", "share", "two_party_share") if c in frame.columns)
    return dict(zip(frame["state"], frame[column].astype(float), strict=True))


# --------------------------------------------------------------------------- alignment


def alignment_figure(summary: pd.DataFrame, title: str) -> str:
    """Alignment per tier (x) with CIs, one panel per simulator, beside the uniform and meta
    baselines (the paper's Figure 5). ``summary``: :func:`personasim.scoring.score.summarize` rows
    of
    the ``alignment`` metric."""
    plt = _plt()
    simulators = list(dict.fromkeys(summary["simulator"]))
    fig, axes = plt.subplots(1, len(simulators), figsize=(3.2 + 2.6 * len(simulators), 3.4),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax, simulator in zip(axes[0], simulators, strict=True):
        _alignment_panel(ax, summary[summary["simulator"] == simulator], simulator)
    axes[0][0].set_ylabel("alignment (1 - distance)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    return png_data(fig)


def _alignment_panel(ax: Any, rows: pd.DataFrame, simulator: str) -> None:
    """One simulator's points, error bars and baselines."""
    rows = rows.assign(_t=rows["tier"].map({t: i for i, t in enumerate(TIER_ORDER)}).fillna(99))
    rows = rows.sort_values(["_t", "generator"])
    labels = [t if g == "census" else f"{t}\n{_short(g)}" for t, g in
              zip(rows["tier"], rows["generator"], strict=True)]  # fmt: skip
    x = np.arange(len(rows))
    err = np.vstack([rows["value"] - rows["ci_low"], rows["ci_high"] - rows["value"]])
    colors = [TIER_COLORS.get(t, "#333333") for t in rows["tier"]]
    ax.errorbar(x, rows["value"], yerr=np.clip(np.nan_to_num(err), 0, None), fmt="none",
                ecolor="#555555", capsize=3)  # fmt: skip
    ax.scatter(x, rows["value"], c=colors, s=40, zorder=3)
    ax.axhline(rows["uniform"].mean(), ls="--", c="#999999", lw=1, label="uniform baseline")
    if rows["meta"].notna().any():
        ax.axhline(rows["meta"].mean(), ls=":", c="#7f7f7f", lw=1.2, label="meta-tier baseline")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_title(f"simulator: {_short(simulator)}", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def _short(model: str) -> str:
    """A short model label (``llamacpp:SmolLM2-135M-Instruct.Q4_1`` -> ``SmolLM2-135M-I...``)."""
    name = str(model).split(":", 1)[-1]
    return name if len(name) <= 22 else name[:20] + "…"


# --------------------------------------------------------------------------- answer shares


def answer_shares_figure(shares: pd.DataFrame, questions: Sequence[Any], cols: int = 3) -> str:
    """Per question, the mean answer share of each option per tier as stacked horizontal bars
    (the paper's Figure 6). ``shares``: rows ``question_id, tier, option (index), share``."""
    plt = _plt()
    rows_n = int(np.ceil(len(questions) / cols))
    most = max((len(q.options) for q in questions), default=2)
    height = 2.1 + 0.16 * int(np.ceil(most / 2))  # room for the legend of option texts
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.0 * cols, height * rows_n), squeeze=False)
    for ax, question in zip(axes.flat, questions, strict=False):
        _shares_panel(ax, shares[shares["question_id"] == question.id], question)
    for ax in list(axes.flat)[len(questions) :]:
        ax.axis("off")
    fig.tight_layout()
    return png_data(fig, dpi=100)


#: Characters of option text that fit across a whole panel bar at the label font size.
BAR_CHARS = 55


def option_caption(text: str, room: int) -> str:
    """``text`` cut to ``room`` characters (with an ellipsis), or "" when under 3 fit."""
    text = " ".join(str(text).split())
    if len(text) <= room:
        return text
    return text[: room - 1].rstrip() + "…" if room >= 4 else ""


def _shares_panel(ax: Any, rows: pd.DataFrame, question: Any) -> None:
    """Stacked bars of one question, one bar per tier; each segment is labelled with its
    option's text where it fits, and a legend under the panel names every option."""
    from matplotlib.patches import Patch

    cmap = _plt().get_cmap("tab10")
    tiers = tier_sort(list(rows["tier"]))
    for y, tier in enumerate(tiers):
        left = 0.0
        part = rows[rows["tier"] == tier].set_index("option")["share"]
        for k, option in enumerate(question.options):
            width = float(part.get(k, 0.0))
            ax.barh(y, width, left=left, color=cmap(k % 10), edgecolor="white", lw=0.5)
            caption = option_caption(option.text, int(width * BAR_CHARS))
            if caption:
                ax.text(left + width / 2, y, caption, ha="center", va="center", fontsize=5.5,
                        color="white")  # fmt: skip
            left += width
    handles = [Patch(color=cmap(k % 10), label=option_caption(o.text, 34))
               for k, o in enumerate(question.options)]  # fmt: skip
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2,
              fontsize=5.5, frameon=False, handlelength=1.0, columnspacing=1.0)  # fmt: skip
    ax.set_yticks(range(len(tiers)), tiers, fontsize=7)
    ax.set_xlim(0, 1)
    ax.tick_params(axis="x", labelsize=6)
    import textwrap

    domain = question.tags.get("domain", "")
    title = f"[{domain}] {question.text}" if domain else question.text
    lines = textwrap.wrap(title, 62)
    text = "\n".join(lines[:2]) + ("…" if len(lines) > 2 else "")
    ax.set_title(text, fontsize=6.5, loc="left")


# --------------------------------------------------------------------------- sentiment


def sentiment_figure(stats: pd.DataFrame) -> str:
    """Polarity and subjectivity per tier: one dot per persona and the tier mean (the paper's
    Figure 8)."""
    plt = _plt()
    tiers = tier_sort(list(stats["tier"]))
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.2))
    rng = np.random.default_rng(0)
    for ax, column in zip(axes, ("polarity", "subjectivity"), strict=True):
        for i, tier in enumerate(tiers):
            values = stats.loc[stats["tier"] == tier, column].dropna().to_numpy()
            jitter = rng.uniform(-0.15, 0.15, len(values))
            color = TIER_COLORS.get(tier, "#333333")
            ax.scatter(i + jitter, values, s=12, alpha=0.5, color=color)
            if len(values):
                ax.hlines(values.mean(), i - 0.3, i + 0.3, color=color, lw=2.5)
        ax.set_xticks(range(len(tiers)), tiers)
        ax.set_title(f"TextBlob {column} (bar = mean)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].axhline(0, color="#999999", lw=0.8)
    fig.tight_layout()
    return png_data(fig)


# --------------------------------------------------------------------------- OpinionQA


def topic_rank_figure(ranks: pd.DataFrame) -> str:
    """Topics ranked by the variance of alignment among tiers (the paper's Figure 7).
    ``ranks``: rows ``topic, variance`` sorted ascending."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(ranks) + 1.0))
    ax.barh(range(len(ranks)), ranks["variance"], color="#1f77b4")
    ax.set_yticks(range(len(ranks)), ranks["topic"], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("variance of alignment among persona tiers")
    fig.tight_layout()
    return png_data(fig)
