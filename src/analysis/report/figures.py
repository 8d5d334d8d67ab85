"""Aggregate figures for reports: attrition flow, score trajectories, waterfall, categories.

Every figure here shows aggregates only (means, percentiles, counts of at least k), never
one patient's values: reports leave the clinic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .privacy import format_count, is_small

__all__ = ["attrition_flow", "trajectory_summary", "plot_trajectory", "waterfall", "category_bars", "new_figure"]

from .._kernel.checks import DOUBLE_COLUMN, SINGLE_COLUMN, new_figure  # noqa: F401 - journal widths, shared


def save_figure(fig, path_stem, formats=("png", "svg", "pdf"), dpi: int = 300) -> list:
    """Save a figure in several formats with fixed metadata, so the same figure gives the
    same bytes on every run (no dates, no random SVG ids, no software string)."""
    import matplotlib
    from pathlib import Path

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    metadata = {
        "png": {"Software": None},
        "svg": {"Date": None, "Creator": None},
        "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
    }
    with matplotlib.rc_context({"svg.hashsalt": "ketamine-outcomes", "svg.fonttype": "path",
                                "pdf.fonttype": 42, "path.simplify": True}):
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, format=fmt, dpi=dpi, metadata=metadata.get(fmt))
            written.append(path)
    return written


def attrition_flow(steps: pd.DataFrame, ax=None):
    """A flow diagram: one box per step with the patients remaining, exclusions to the side.

    ``steps`` is the shown (suppressed) attrition table from
    :func:`analysis.report.privacy.merge_small_steps`.
    """
    # steps that excluded nobody stay in the table but not in the picture
    steps = pd.concat([steps.iloc[:1], steps.iloc[1:][steps.iloc[1:]["n_excluded"].astype(str) != "0"]])
    if ax is None:
        _, ax = new_figure(6.5, 1.0 + 0.9 * len(steps))
    ax.set_axis_off()
    n = len(steps)
    ax.set_xlim(0, 10)
    ax.set_ylim(-n + 0.2, 1)
    box = dict(boxstyle="round,pad=0.4", facecolor="#eef3f8", edgecolor="#4a6c8c")
    side = dict(boxstyle="round,pad=0.3", facecolor="#fbf1e6", edgecolor="#b07a3a")
    first = steps.iloc[0]
    ax.text(3, 0.5, f"{first['step']}\nn = {first['n_in']}", ha="center", va="center", bbox=box, fontsize=8)
    for i, (_, row) in enumerate(steps.iloc[1:].iterrows(), start=1) if n > 1 else []:
        y = 0.5 - i
        ax.annotate("", xy=(3, y + 0.28), xytext=(3, y + 0.72), arrowprops=dict(arrowstyle="->", color="#4a6c8c"))
        ax.text(3, y, f"n = {row['n_remaining']}", ha="center", va="center", bbox=box, fontsize=8)
        ax.text(6.2, y + 0.5, f"excluded: {row['n_excluded']}\n{row['step']}", ha="left", va="center",
                bbox=side, fontsize=7, wrap=True)
    return ax


def trajectory_summary(scores: pd.DataFrame, *, time: str = "week", score: str = "score",
                       conf_level: float = 0.95, k: int = 11) -> pd.DataFrame:
    """Mean score with a t-interval per time point; points with fewer than ``k`` patients are dropped."""
    from scipy import stats

    grouped = scores.groupby(time)[score]
    table = grouped.agg(n="count", mean="mean", sd="std").reset_index()
    table = table[table["n"] >= k].copy()
    half = stats.t.ppf(0.5 + conf_level / 2, np.maximum(table["n"] - 1, 1)) * table["sd"] / np.sqrt(table["n"])
    table["ci_lower"], table["ci_upper"] = table["mean"] - half, table["mean"] + half
    return table.reset_index(drop=True)


def plot_trajectory(summary: pd.DataFrame, *, time: str = "week", label: str | None = None, ax=None,
                    ylabel: str = "score"):
    """Mean score over time with its confidence band (from :func:`trajectory_summary`)."""
    if ax is None:
        _, ax = new_figure()
    (line,) = ax.plot(summary[time], summary["mean"], marker="o", markersize=3, label=label)
    ax.fill_between(summary[time], summary["ci_lower"], summary["ci_upper"], alpha=0.2, color=line.get_color(), linewidth=0)
    ax.set_xlabel(time.replace("_", " "))
    ax.set_ylabel(ylabel)
    return ax


def waterfall(improvement: pd.Series, *, response_pct: float = 50, partial_pct: float = 25, k: int = 11,
              n_bars: int = 100, ax=None):
    """Waterfall of improvement drawn from percentiles, not patients.

    Each bar is one percentile of the improvement distribution (sorted from best to worst),
    so the figure has the familiar shape without showing any one patient's value; with
    fewer than ``k`` patients nothing is drawn.
    """
    if ax is None:
        _, ax = new_figure()
    values = pd.to_numeric(improvement, errors="coerce").dropna().to_numpy()
    if len(values) < k:
        ax.text(0.5, 0.5, f"fewer than {k} patients: not shown", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    # percentile midpoints: no bar is the single best or worst patient
    q = np.percentile(values, np.linspace(100, 0, n_bars + 1)[:-1] - 50 / n_bars, method="linear")
    colors = np.where(q >= response_pct, "#2b7a3d", np.where(q >= partial_pct, "#d9a400", "#b03a2e"))
    ax.bar(np.arange(n_bars), q, width=1.0, color=colors, edgecolor="none")
    ax.axhline(response_pct, color="#2b7a3d", linewidth=0.8, linestyle="--")
    ax.axhline(partial_pct, color="#d9a400", linewidth=0.8, linestyle="--")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlim(-0.5, n_bars - 0.5)
    ax.set_xticks([0, n_bars / 4, n_bars / 2, 3 * n_bars / 4, n_bars - 1], ["best", "75th", "median", "25th", "worst"])
    ax.set_ylabel("improvement from baseline (%)")
    ax.set_xlabel(f"patients ranked by improvement (percentiles of {len(values)})")
    return ax


def category_bars(counts: pd.DataFrame, k: int = 11, ax=None):
    """Bars of the share of patients per category; suppressed cells are drawn empty and labelled."""
    if ax is None:
        _, ax = new_figure(width=4.5)
    # shares of the patients with an endpoint ("of"), not of the sum of the bars: remission overlaps
    total = int(counts["of"].iloc[0]) if "of" in counts else counts["n"].sum()
    shares = np.where(is_small(counts["n"], k), np.nan, 100.0 * counts["n"] / max(total, 1))
    bars = ax.bar(counts["outcome"], np.nan_to_num(shares), color=["#b03a2e", "#d9a400", "#2b7a3d", "#4a6c8c"][: len(counts)])
    for bar, n, share in zip(bars, counts["n"], shares):
        text = format_count(n, k) if np.isnan(share) else f"{share:.0f}%"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("% of patients with an endpoint")
    ax.set_ylim(0, 100)
    return ax
