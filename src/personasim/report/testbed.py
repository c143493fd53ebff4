"""Figures of the testbed (matplotlib, Agg): the leave-one-out box plot of the cheaper protocol
(the paper protocol's Figure 5 analogue is :mod:`personasim.report.testbed_loo`), the pairwise
kappa heatmap (Figures 6 and 8) and per-persona kappa histograms (Figures 7 and 9). Each returns
a ``data:image/png;base64,...`` URI that a report embeds as it is; :func:`png_bytes` turns one
back into PNG bytes for a file.
"""

from __future__ import annotations

import base64
import itertools
import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.tables import read_table
from personasim.report.figures import _plt, png_data
from personasim.testbed import FOLDER
from personasim.testbed.pairs import pair_stats


def png_bytes(data_uri: str) -> bytes:
    """The PNG bytes of a ``data:image/png;base64,...`` URI."""
    return base64.b64decode(data_uri.split(",", 1)[1])


def loo_boxplot(pairs: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Kappa per attribute (box plot), most influential attribute at the top."""
    plt = _plt()
    order = summary["attribute"].tolist()[::-1]
    data = [pairs.loc[pairs["attribute"] == a, "kappa"].dropna().to_numpy() for a in order]
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(order) + 1.2))
    import matplotlib

    new = tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    sideways = {"orientation": "horizontal"} if new else {"vert": False}
    ax.boxplot([d if d.size else [np.nan] for d in data], showmeans=True, **sideways)
    ax.set_yticks(range(1, len(order) + 1), order)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("Cohen's kappa, persona with vs without the attribute (low = influential)")
    ax.set_title("Leave-one-out attribute influence")
    return png_data(fig)


def kappa_heatmap(matrix: pd.DataFrame, title: str = "Pairwise Cohen's kappa") -> str:
    """The raters x raters kappa matrix (upper triangle and diagonal), values written in."""
    plt = _plt()
    values = matrix.to_numpy(dtype=float)
    shown = np.where(np.tril(np.ones_like(values, dtype=bool), -1), np.nan, values)
    n = len(matrix)
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 0.9 * n + 1.8))
    image = ax.imshow(np.ma.masked_invalid(shown), vmin=-1, vmax=1, cmap="RdBu")
    for i, j in itertools.product(range(n), repeat=2):
        if j >= i:
            text = "NaN" if np.isnan(values[i, j]) else f"{values[i, j]:.2f}"
            dark = not np.isnan(values[i, j]) and abs(values[i, j]) > 0.6
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
    labels = ["\n".join(textwrap.wrap(str(r), 22)) for r in matrix.index]
    ax.set_xticks(range(n), labels, rotation=35, ha="right")
    ax.set_yticks(range(n), labels)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(title)
    return png_data(fig)


def kappa_histograms(per_persona: pd.DataFrame, cols: int = 3) -> str:
    """One histogram of per-persona kappa per rater pair (undefined values counted in titles)."""
    plt = _plt()
    groups = list(per_persona.groupby(["rater_a", "rater_b"], sort=False))
    rows = max(1, math.ceil(len(groups) / cols))
    fig, axes = plt.subplots(
        rows,
        min(cols, max(1, len(groups))),
        squeeze=False,
        figsize=(3.2 * min(cols, max(1, len(groups))), 2.6 * rows),
    )
    for ax, ((a, b), group) in zip(axes.ravel(), groups, strict=False):
        values = group["kappa"].dropna()
        ax.hist(values, bins=np.linspace(-1, 1, 21), color="#4c72b0")
        nan = int(group["kappa"].isna().sum())
        ax.set_title(f"{str(a)[-18:]} vs {str(b)[-18:]}\n(NaN: {nan})", fontsize=8)
        ax.set_xlim(-1, 1)
    for ax in axes.ravel()[len(groups) :]:
        ax.axis("off")
    fig.supxlabel("per-persona Cohen's kappa")
    fig.tight_layout()
    return png_data(fig)


def _loo_figure(loo: pd.DataFrame, summary: pd.DataFrame) -> str:
    """The paper protocol's kappa distribution with median intervals (its summary has
    ``median_kappa``), else the cheaper protocol's box plot."""
    from personasim.report.testbed_loo import loo_distribution

    if "median_kappa" in summary.columns:
        return loo_distribution(loo, summary)
    return loo_boxplot(loo, summary)


def _human_baseline(folder: Path, shows: Callable[[str], bool]) -> dict[str, str] | None:
    """The human-vs-human heatmap and histograms (None without a non-empty baseline)."""
    if not shows("human_kappa_matrix.parquet"):
        return None
    matrix = read_table(folder / "human_kappa_matrix.parquet", "human kappa matrix")
    per = read_table(folder / "human_per_persona.parquet", "human per-persona kappa")
    if matrix.empty:
        return None
    return {
        "heatmap": kappa_heatmap(matrix.set_index("rater"), "Human baseline: annotator slots"),
        "histograms": kappa_histograms(per),
    }


def report_section(
    run_dir: str | Path, shows: Callable[[str], bool] | None = None
) -> dict[str, Any] | None:
    """The report's testbed section from the tables (None when the run has no testbed).

    ``shows(name)`` says whether a table of the testbed folder may be shown (default: it
    exists); the report passes the study's declared outputs."""
    folder = Path(run_dir) / FOLDER
    shows = shows or (lambda name: (folder / name).exists())
    if not (folder / "pairs.parquet").exists():
        return None
    pairs = read_table(folder / "pairs.parquet", "pairs table")
    loo = read_table(folder / "loo.parquet", "leave-one-out table")
    summary = read_table(folder / "loo_summary.parquet", "leave-one-out summary")
    matrix = read_table(folder / "kappa_matrix.parquet", "kappa matrix").set_index("rater")
    per = read_table(folder / "per_persona.parquet", "per-persona kappa")
    overall = read_table(folder / "agreement.parquet", "agreement table").iloc[0]
    return {
        "stats": pair_stats(pairs),
        "loo_protocol": "paper" if "median_kappa" in summary.columns else "choice",
        "loo_figure": _loo_figure(loo, summary),
        "loo_summary": summary,
        "heatmap": kappa_heatmap(matrix),
        "histograms": kappa_histograms(per),
        "human": _human_baseline(folder, shows),
        "fleiss_kappa": float(overall["fleiss_kappa"]),
        "alpha": float(overall["krippendorff_alpha"]),
        "notes": str(overall["notes"]),
    }
