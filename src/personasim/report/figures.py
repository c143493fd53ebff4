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
TIER_COLORS = {
    "meta": "#7f7f7f",
    "objective": "#1f77b4",
    "subjective": "#9467bd",
    "descriptive": "#d62728",
    "persona": "#2ca02c",
}


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
        ax.text(
            col + 0.46,
            -row + 0.46,
            label,
            ha="center",
            va="center",
            fontsize=6.5,
            color="white" if dark else "#222222",
        )
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
    fig, axes = plt.subplots(
        1, len(simulators), figsize=(3.2 + 2.6 * len(simulators), 3.4), squeeze=False, sharey=True
    )
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
    labels = [
        t if g == "census" else f"{t}\n{_short(g)}"
        for t, g in zip(rows["tier"], rows["generator"], strict=True)
    ]
    x = np.arange(len(rows))
    err = np.vstack([rows["value"] - rows["ci_low"], rows["ci_high"] - rows["value"]])
    colors = [TIER_COLORS.get(t, "#333333") for t in rows["tier"]]
    ax.errorbar(
        x,
        rows["value"],
        yerr=np.clip(np.nan_to_num(err), 0, None),
        fmt="none",
        ecolor="#555555",
        capsize=3,
    )
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
                ax.text(
                    left + width / 2,
                    y,
                    caption,
                    ha="center",
                    va="center",
                    fontsize=5.5,
                    color="white",
                )
            left += width
    handles = [
        Patch(color=cmap(k % 10), label=option_caption(o.text, 34))
        for k, o in enumerate(question.options)
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.0, -0.12),
        ncol=2,
        fontsize=5.5,
        frameon=False,
        handlelength=1.0,
        columnspacing=1.0,
    )
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


# --------------------------------------------------------------------------- cross-tabs

#: Vertical room of one group row, shared by the models drawn in it.
ROW_SPAN = 0.7


def interval_points(rows: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Where each cross-tab cell of one panel is drawn, and whether it gets an interval bar.

    ``rows``: one attribute's cells (``group, model, share, ci_low, ci_high, n, small``).
    Returns one row per cell with ``y`` (the group's row, groups top to bottom in sorted order,
    the models spread within it), ``x`` (the simulated share) and ``bar``: True only for a cell
    of more than one person whose interval is finite and not reversed (a cell with n = 1 or
    without a CI is a bare dot).
    """
    place, offset = _slots(sorted(rows["group"].astype(str).unique()), models)
    low, high = rows["ci_low"].astype(float), rows["ci_high"].astype(float)
    bar = (rows["n"].astype(float) > 1) & np.isfinite(low) & np.isfinite(high) & (low <= high)
    return pd.DataFrame(
        {
            "group": rows["group"].astype(str).to_numpy(),
            "model": rows["model"].astype(str).to_numpy(),
            "y": [
                place[str(g)] + offset[str(m)]
                for g, m in zip(rows["group"], rows["model"], strict=True)
            ],
            "x": rows["share"].astype(float).to_numpy(),
            "ci_low": low.where(bar).to_numpy(),
            "ci_high": high.where(bar).to_numpy(),
            "bar": bar.to_numpy(),
            "small": rows["small"].astype(bool).to_numpy(),
        }
    )


def _slots(groups: Sequence[str], slots: Sequence[str]) -> tuple[dict[str, int], dict[str, float]]:
    """The row of each group (first group on top) and the offset of each slot (a model, or the
    real result) within a row, first slot on top."""
    place = {g: len(groups) - 1 - i for i, g in enumerate(groups)}
    step = ROW_SPAN / max(len(slots), 1)
    return place, {m: ROW_SPAN / 2 - step * (k + 0.5) for k, m in enumerate(slots)}


def model_colors(models: Sequence[str]) -> dict[str, str]:
    """A color per model label: the tier's color when each tier appears once, else tab10."""
    tiers = [m.split(" · ")[0] for m in models]
    if len(set(tiers)) == len(tiers):
        return {m: TIER_COLORS.get(t, "#333333") for m, t in zip(models, tiers, strict=True)}
    cmap = _plt().get_cmap("tab10")
    return {m: _hex(cmap(k % 10)) for k, m in enumerate(models)}


def _hex(rgba: tuple[float, ...]) -> str:
    """An RGBA tuple as ``#rrggbb``."""
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgba[:3])


def crosstab_figure(rows: pd.DataFrame, title: str, xlabel: str) -> str:
    """Dot-and-interval plots of one question's cross-tab, one panel per attribute.

    ``rows``: cells of one question and option (``attribute, group, model, share, ci_low,
    ci_high, n, small, truth_share``, optionally ``truth_ci_low, truth_ci_high``). Per group,
    a dot per model with its 95% bar (none for n = 1 or a missing CI; hollow when the cell is
    small) and, below them in the same row, the real share as a black diamond with its own 95%
    bar where the table has them (:func:`real_points`); each group label carries its cell count
    (the range over models when they differ).
    """
    plt = _plt()
    attributes = list(dict.fromkeys(rows["attribute"].astype(str)))
    models = sorted(dict.fromkeys(rows["model"].astype(str)), key=_model_rank)
    colors = model_colors(models)
    heights = [max(rows.loc[rows["attribute"] == a, "group"].nunique(), 1) for a in attributes]
    fig, axes = plt.subplots(
        len(attributes),
        1,
        squeeze=False,
        sharex=True,
        layout="constrained",
        figsize=(9.0, 1.2 + 0.34 * sum(heights) + 0.45 * len(attributes)),
        gridspec_kw={"height_ratios": heights},
    )
    for ax, attribute in zip(axes[:, 0], attributes, strict=True):
        part = rows[rows["attribute"].astype(str) == attribute]
        _crosstab_panel(ax, part, models, colors)
        label = "all persons" if attribute == "overall" else f"by {attribute_caption(attribute)}"
        ax.set_title(label, fontsize=8, loc="left")
    axes[-1, 0].set_xlabel(xlabel)
    axes[-1, 0].set_xlim(-0.02, 1.02)
    _crosstab_legend(fig, models, colors, bool(rows["truth_share"].notna().any()))
    fig.suptitle(title, fontsize=10)
    return png_data(fig, dpi=100)


def _model_rank(model: str) -> tuple[int, str]:
    """Models in the paper's tier order, then by name."""
    tier = model.split(" · ")[0]
    return (TIER_ORDER.index(tier) if tier in TIER_ORDER else 99, model)


def _crosstab_panel(
    ax: Any, part: pd.DataFrame, models: Sequence[str], colors: dict[str, str]
) -> None:
    """One attribute: groups on the y axis, a dot (and bar) per model, the real share."""
    real = real_points(part, models)
    points = interval_points(part, [*models, REAL] if len(real) else models)
    for model in models:
        mine = points[points["model"] == model]
        barred = mine[mine["bar"]]
        ax.errorbar(
            barred["x"],
            barred["y"],
            xerr=[barred["x"] - barred["ci_low"], barred["ci_high"] - barred["x"]],
            fmt="none",
            ecolor=colors[model],
            elinewidth=1.2,
            capsize=2,
        )
        face = [("white" if s else colors[model]) for s in mine["small"]]
        ax.scatter(mine["x"], mine["y"], s=22, facecolors=face, edgecolors=colors[model], zorder=3)
    groups = sorted(part["group"].astype(str).unique())
    counts = part.assign(group=part["group"].astype(str)).groupby("group")["n"]
    n = {
        g: _count_text(low, high)
        for g, low, high in zip(
            groups, counts.min().reindex(groups), counts.max().reindex(groups), strict=True
        )
    }
    barred = real[real["bar"]]
    ax.errorbar(
        barred["x"],
        barred["y"],
        xerr=[barred["x"] - barred["ci_low"], barred["ci_high"] - barred["x"]],
        fmt="none",
        ecolor="black",
        elinewidth=1.2,
        capsize=2,
    )
    ax.scatter(real["x"], real["y"], marker="D", s=22, color="black", zorder=4)
    ys = np.arange(len(groups))[::-1]
    ax.set_yticks(ys, [f"{g} ({n[g]})" for g in groups], fontsize=7)
    ax.set_ylim(-0.5, len(groups) - 0.5)
    ax.grid(axis="x", alpha=0.3)


REAL = "real result"
"""The slot of the real share in a cross-tab row (below the models)."""


def real_points(part: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Where the real share of each group of one panel is drawn: ``group, y, x`` (the truth's
    share, in the slot after the models) and its interval ``ci_low, ci_high`` with ``bar``
    (True where the truth is a respondent sample and carries one). Empty when the panel has no
    real share."""
    groups = sorted(part["group"].astype(str).unique())
    cells = part.assign(group=part["group"].astype(str))
    columns = [c for c in ("truth_share", "truth_ci_low", "truth_ci_high") if c in cells.columns]
    truth = cells.groupby("group")[columns].first().reindex(groups)
    truth = truth.reindex(columns=["truth_share", "truth_ci_low", "truth_ci_high"])
    truth = truth[truth["truth_share"].notna()]
    place, offset = _slots(groups, [*models, REAL])
    low, high = truth["truth_ci_low"].astype(float), truth["truth_ci_high"].astype(float)
    bar = np.isfinite(low) & np.isfinite(high) & (low <= high)
    return pd.DataFrame(
        {
            "group": truth.index.to_numpy(),
            "y": [place[g] + offset[REAL] for g in truth.index],
            "x": truth["truth_share"].astype(float).to_numpy(),
            "ci_low": low.where(bar).to_numpy(),
            "ci_high": high.where(bar).to_numpy(),
            "bar": bar.to_numpy(),
        }
    )


def _count_text(low: float, high: float) -> str:
    """``n=40``, or ``n=1-12`` when the models' cells of a group differ in size."""
    return f"n={int(low)}" if low == high else f"n={int(low)}-{int(high)}"


def _crosstab_legend(
    fig: Any, models: Sequence[str], colors: dict[str, str], has_truth: bool
) -> None:
    """Legend under the panels: the models, hollow = small cell, the real share."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="-", color=colors[m], label=m) for m in models]
    handles.append(
        Line2D(
            [],
            [],
            marker="o",
            ls="none",
            markerfacecolor="white",
            markeredgecolor="#555555",
            label="small cell (hollow)",
        )
    )
    if has_truth:
        handles.append(
            Line2D(
                [],
                [],
                marker="D",
                ls="-",
                color="black",
                markersize=5,
                label="real result (95% interval from the respondents)",
            )
        )
    fig.legend(
        handles=handles,
        loc="outside lower center",
        fontsize=7.5,
        ncol=min(len(handles), 5),
        frameon=False,
    )


# --------------------------------------------------------------------------- by group


def group_order(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """The ``(attribute, group)`` rows of an alignment-by-group figure, best mean alignment
    over the models first (top), the overall group left out (it is the reference line)."""
    groups = rows[rows["attribute"].astype(str) != "overall"]
    means = groups.groupby([groups["attribute"].astype(str), groups["group"].astype(str)])[
        "value"
    ].mean()
    ranked = means.reset_index().sort_values(
        ["value", "attribute", "group"], ascending=[False, True, True], kind="stable"
    )
    return list(zip(ranked["attribute"], ranked["group"], strict=True))


def group_alignment_figure(rows: pd.DataFrame, title: str) -> str:
    """Alignment by group: one panel per model (``model`` column: tier, plus generator and
    simulator when several ran), groups on the y axis sorted by alignment (:func:`group_order`),
    a dot per group with its 95% bar (``ci_low``/``ci_high``, both noise sources), the
    uniform-answer baseline as a grey cross and the overall alignment as a dashed line. Each
    label carries the group's persons and, for a respondent-sample truth, its effective
    respondents (``truth_n_eff``)."""
    plt = _plt()
    order = group_order(rows)
    models = sorted(dict.fromkeys(rows["model"].astype(str)), key=_model_rank)
    colors = model_colors(models)
    fig, axes = plt.subplots(
        1,
        len(models),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
        figsize=(min(3.0 + 2.8 * len(models), 13.0), 1.4 + 0.26 * max(len(order), 1)),
    )
    for ax, model in zip(axes[0], models, strict=True):
        _group_panel(ax, rows[rows["model"].astype(str) == model], order, colors[model])
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("alignment (1 - distance)")
    labels = [_group_label(rows, key) for key in order]
    axes[0, 0].set_yticks(np.arange(len(order))[::-1], labels, fontsize=7)
    axes[0, 0].set_ylim(-0.6, len(order) - 0.4)
    _group_legend(fig)
    fig.suptitle(title, fontsize=10)
    return png_data(fig, dpi=100)


def _group_legend(fig: Any) -> None:
    """Legend under the panels of the alignment-by-group figure."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", ls="-", color="#555555", label="group (95% interval)"),
        Line2D([], [], ls="--", color="#555555", label="all persons"),
        Line2D([], [], marker="x", ls="none", color="#999999", label="uniform answers"),
    ]
    fig.legend(handles=handles, loc="outside lower center", fontsize=7.5, ncol=3, frameon=False)


ATTRIBUTE_CAPTIONS = {
    "AGE": "age",
    "SEX": "sex",
    "RACE": "race/ethnicity",
    "EDUCATION": "education",
    "CREGION": "region",
    "INCOME_BAND": "income",
}
"""Readable names of the group attributes derived from census columns (upper-case codes)."""


def attribute_caption(name: str) -> str:
    """The name a figure shows for a group attribute (``INCOME_BAND`` -> ``income``)."""
    return ATTRIBUTE_CAPTIONS.get(name, name)


def _group_label(rows: pd.DataFrame, key: tuple[str, str]) -> str:
    """``age: 18-29 (n=40, 160 resp.)``: persons (most over models), effective respondents."""
    mine = rows[(rows["attribute"].astype(str) == key[0]) & (rows["group"].astype(str) == key[1])]
    text = f"{attribute_caption(key[0])}: {key[1]} (n={int(mine['n'].max())}"
    real = pd.to_numeric(mine.get("truth_n_eff"), errors="coerce")
    if real is not None and real.notna().any():
        text += f", {real.min():.0f} resp."
    return text + ")"


def _group_panel(ax: Any, part: pd.DataFrame, order: list[tuple[str, str]], color: str) -> None:
    """One model: a dot and bar per group in ``order``, the baseline tick, the overall line."""
    keyed = part.assign(
        key=list(zip(part["attribute"].astype(str), part["group"].astype(str), strict=True))
    ).set_index("key")
    ys = np.arange(len(order))[::-1]
    found = keyed.reindex(pd.Index(order, tupleize_cols=False))
    x = found["value"].astype(float).to_numpy()
    low, high = found["ci_low"].astype(float), found["ci_high"].astype(float)
    bar = (np.isfinite(low) & np.isfinite(high)).to_numpy()
    ends = np.column_stack([low.to_numpy(), high.to_numpy()])[bar]
    ax.errorbar(  # drawn from its ends: a test-inversion interval need not hold the plug-in dot
        ends.mean(axis=1),
        ys[bar],
        xerr=(ends[:, 1] - ends[:, 0]) / 2,
        fmt="none",
        ecolor=color,
        elinewidth=1.2,
        capsize=2,
    )
    ax.scatter(x, ys, s=22, color=color, zorder=3)
    ax.scatter(found["uniform"].astype(float), ys, marker="x", s=18, color="#999999", zorder=2)
    overall = part.loc[part["attribute"].astype(str) == "overall", "value"]
    if len(overall):
        ax.axvline(float(overall.iloc[0]), color=color, ls="--", lw=1, alpha=0.7)
    ax.grid(axis="x", alpha=0.3)


# --------------------------------------------------------------------------- cross-model


def heatmap_cells(frame: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray, list[list[str]]]:
    """The generator x simulator grid of one panel: row and column names, the values (NaN
    where the pair was not run) and each cell's text ``value`` over ``[low, high]`` (no
    interval line when the cell has none)."""
    generators = sorted(frame["generator"].astype(str).unique())
    simulators = sorted(frame["simulator"].astype(str).unique())
    values = np.full((len(generators), len(simulators)), np.nan)
    texts = [["" for _ in simulators] for _ in generators]
    for row in frame.itertuples(index=False):
        i, j = generators.index(str(row.generator)), simulators.index(str(row.simulator))
        values[i, j] = float(row.value)
        texts[i][j] = f"{row.value:.3f}"
        if np.isfinite(row.ci_low) and np.isfinite(row.ci_high):
            texts[i][j] += f"\n[{row.ci_low:.3f}, {row.ci_high:.3f}]"
    return generators, simulators, values, texts


def cross_model_figure(frame: pd.DataFrame, title: str) -> str:
    """The cross-model matrix as heatmaps, one panel per tier (and estimator when several):
    generators as rows, simulators as columns, each cell's alignment and 95% interval
    written in it. ``frame``: a ``cross_model_<id>`` table."""
    plt = _plt()
    keys = ["tier", "estimator"] if frame["estimator"].nunique() > 1 else ["tier"]
    panels = sorted(frame.groupby(keys, sort=False), key=lambda kv: _model_rank(str(kv[0][0])))
    vmin, vmax = _alignment_range(frame["value"].astype(float))
    width = max(frame["simulator"].nunique(), 1)
    fig, axes = plt.subplots(
        1,
        len(panels),
        squeeze=False,
        layout="constrained",
        figsize=(2.0 + 2.2 * width * len(panels), 1.6 + 0.8 * frame["generator"].nunique()),
    )
    image = None
    for ax, (key, part) in zip(axes[0], panels, strict=True):
        image = _heatmap_panel(ax, part, vmin, vmax)
        ax.set_title(" · ".join(str(k) for k in key), fontsize=8)
    axes[0][0].set_ylabel("generator", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.8, label="alignment")
    fig.suptitle(title, fontsize=9)
    return png_data(fig)


def _alignment_range(values: pd.Series) -> tuple[float, float]:
    """The color scale of the heatmap: from the tenth at or below the lowest value up to 1, so
    that small differences do not look like large ones."""
    low = float(np.nanmin(values)) if values.notna().any() else 0.0
    return min(np.floor(10 * low) / 10, 0.9), 1.0


def _heatmap_panel(ax: Any, part: pd.DataFrame, vmin: float, vmax: float) -> Any:
    """One tier's grid, annotated cell by cell."""
    generators, simulators, values, texts = heatmap_cells(part)
    cmap = _plt().get_cmap("viridis").with_extremes(bad="#e6e6e6")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    middle = (vmin + vmax) / 2
    for i, j in np.ndindex(values.shape):
        dark = np.isfinite(values[i, j]) and values[i, j] < middle
        ax.text(
            j,
            i,
            texts[i][j] or "not run",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark else "#222222",
        )
    ax.set_xticks(range(len(simulators)), [_short(s) for s in simulators], fontsize=7)
    ax.set_yticks(range(len(generators)), [_short(g) for g in generators], fontsize=7)
    ax.set_xlabel("simulator", fontsize=7)
    return image
