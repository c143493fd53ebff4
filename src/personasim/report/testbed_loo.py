"""The figure of the paper's leave-one-out protocol (as Figure 5 of Castricato et al. 2024): the
kappa of every persona pair per attribute as points over a box, the median with its bootstrap
interval drawn on top, attributes ordered by influence (most influential at the top)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personasim.report.figures import _plt, png_data


def loo_distribution(pairs: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Kappa distribution per attribute with the median's interval; a PNG data URI."""
    plt = _plt()
    order = summary["attribute"].tolist()[::-1]  # matplotlib counts rows from the bottom
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(order) + 1.4))
    rng = np.random.default_rng(0)
    for y, attribute in enumerate(order, start=1):
        values = pairs.loc[pairs["attribute"] == attribute, "kappa"].dropna().to_numpy()
        if values.size:
            ax.boxplot([values], positions=[y], widths=0.5, showfliers=False, **_sideways())
            ax.scatter(
                values,
                y + rng.uniform(-0.15, 0.15, values.size),
                s=9,
                alpha=0.5,
                color="#4c72b0",
                zorder=3,
            )
        row = summary[summary["attribute"] == attribute].iloc[0]
        if not np.isnan(row["ci_low"]):
            ax.plot([row["ci_low"], row["ci_high"]], [y + 0.3, y + 0.3], color="#c44e52", lw=2.5)
        if not np.isnan(row["median_kappa"]):
            ax.plot([row["median_kappa"]], [y + 0.3], "o", color="#c44e52", ms=5)
    ax.set_yticks(range(1, len(order) + 1), order)
    ax.set_ylim(0.4, len(order) + 0.7)
    ax.axvline(0, color="#999", lw=0.8)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(
        "Cohen's kappa, persona with vs without the attribute (low = influential);\n"
        "red: median with its bootstrap interval"
    )
    ax.set_title("Leave-one-out attribute influence (paper protocol)")
    fig.tight_layout()
    return png_data(fig)


def _sideways() -> dict[str, object]:
    """The horizontal-box keyword of the installed matplotlib."""
    import matplotlib

    new = tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) >= (3, 10)
    return {"orientation": "horizontal"} if new else {"vert": False}
