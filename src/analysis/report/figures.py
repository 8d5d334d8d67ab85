"""Aggregate figures for reports: attrition flow, score trajectories, waterfall, categories.

Every figure here shows aggregates only (means, percentiles, counts of at least k), never
one patient's values: reports leave the clinic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .privacy import is_small

__all__ = ["attrition_flow", "censor_for_display", "relabel_groups", "trajectory_summary", "plot_trajectory", "waterfall", "category_bars",
           "new_figure", "save_figure"]

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
            if fmt == "tiff":  # LZW-compressed, as journals accept; Pillow writes no date or software tag
                fig.savefig(path, format=fmt, dpi=dpi, pil_kwargs={"compression": "tiff_lzw"})
            else:
                fig.savefig(path, format=fmt, dpi=dpi, metadata=metadata.get(fmt))
            written.append(path)
    return written


#: the box under each step of the patient flow (by the step's last part, as merged)
FLOW_BOXES = {
    "patients in dataset": "Patients in the dataset",
    "no sessions": "With a session",
    "PHQ-9 not recorded": "With the instrument recorded",
    "no baseline": "With a baseline score",
    "baseline score 0": "With a baseline score above 0",
    "no endpoint": "Analysed: with an end-of-induction score",
    "not a responder": "Responders",
    "no follow-up after induction": "Analysed for relapse: followed after induction",
}


def _box_label(step: str, instrument: str | None) -> str:
    last = str(step).split("; ")[-1]
    if instrument and last == f"{instrument} not recorded":
        last = "PHQ-9 not recorded"
    return FLOW_BOXES.get(last, last)


def attrition_flow(steps: pd.DataFrame, ax=None, instrument: str | None = None):
    """A CONSORT-style flow diagram: connected boxes from the patients in the dataset to those
    analysed, with each exclusion and its reasons branching off to the side.

    ``steps`` is the shown (suppressed) attrition table from
    :func:`analysis.report.privacy.suppress_attrition` (counts as text); steps that excluded
    nobody are left out of the picture.
    """
    import textwrap

    from matplotlib.patches import FancyArrowPatch

    rows = [steps.iloc[0]] + [r for _, r in steps.iloc[1:].iterrows() if str(r["n_excluded"]) != "0"]
    if len(steps) > 1 and str(steps.iloc[-1]["n_excluded"]) == "0":
        rows.append(steps.iloc[-1])     # the last box (analysed for relapse) is drawn even when nobody left there
    n = len(rows)
    if ax is None:
        _, ax = new_figure(DOUBLE_COLUMN, 0.9 + 1.05 * n)
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    ax.set_ylim(-1.05 * (n - 1) - 0.6, 0.6)
    main = dict(boxstyle="round,pad=0.45", facecolor="#eef3f8", edgecolor="#4a6c8c")
    side = dict(boxstyle="round,pad=0.35", facecolor="#fbf1e6", edgecolor="#b07a3a")
    x_main, x_side = 2.9, 6.0
    first = rows[0]
    ax.text(x_main, 0, f"{_box_label(first['step'], instrument)}\nn = {first['n_in']}", ha="center", va="center",
            bbox=main, fontsize=8)
    for i, row in enumerate(rows[1:], start=1):
        y, y_prev = -1.05 * i, -1.05 * (i - 1)
        mid = (y + y_prev) / 2
        ax.add_patch(FancyArrowPatch((x_main, y_prev - 0.28), (x_main, y + 0.28), arrowstyle="-|>", mutation_scale=10,
                                     color="#4a6c8c", linewidth=1))
        if str(row["n_excluded"]) != "0":
            ax.add_patch(FancyArrowPatch((x_main, mid), (x_side - 0.1, mid), arrowstyle="-|>", mutation_scale=10,
                                         color="#b07a3a", linewidth=1))
            reasons = "\n".join(textwrap.fill(r.strip(), 46) for r in str(row["reason"]).split(";") if r.strip())
            ax.text(x_side, mid, f"Excluded: n = {row['n_excluded']}\n{reasons}", ha="left", va="center", bbox=side,
                    fontsize=6.5)
        ax.text(x_main, y, f"{_box_label(row['step'], instrument)}\nn = {row['n_remaining']}", ha="center",
                va="center", bbox=main, fontsize=8)
    return ax


def censor_for_display(data: pd.DataFrame, *, time: str = "time", event: str = "event", k: int = 11,
                       group: str | None = None) -> pd.DataFrame:
    """Survival data cut where fewer than ``k`` would remain: each curve (per ``group``) is
    censored after the last time at which at least ``k`` patients are still at risk after its
    events and censorings, so no drawn step leaves fewer than ``k`` (a step from 15 at risk to
    7 would show 8 events of a small remainder).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.report.figures import censor_for_display
    >>> d = pd.DataFrame({"time": [5] * 2 + [16] * 8 + [30] * 7, "event": [1] * 2 + [1] * 8 + [0] * 7})
    >>> cut = censor_for_display(d, k=11)
    >>> int(cut["time"].max()), int(cut["event"].sum())
    (5, 2)
    """
    out = data.copy()
    parts = [(None, out)] if group is None else list(out.groupby(group, sort=False))
    for _, part in parts:
        times = np.sort(part[time].unique())
        remaining = np.array([(part[time] > t).sum() for t in times])
        ok = times[remaining >= k]
        cut = ok.max() if len(ok) else -np.inf
        late = part.index[part[time] > cut]
        out.loc[late, time] = max(cut, 0.0) if np.isfinite(cut) else 0.0
        out.loc[late, event] = 0
    return out


def relabel_groups(ax, column: str, labels: dict | None = None) -> None:
    """Replace ``column=level`` in a Kaplan-Meier plot's legend and number-at-risk rows by a
    publication label (``labels[level]``, or the level itself)."""
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    prefix = f"{column}="

    def fix(text: str) -> str:
        if text.startswith(prefix):
            level = text[len(prefix):]
            return labels.get(level, level)
        return text

    for t in ax.texts:
        t.set_text(fix(t.get_text()))
    handles, names = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, [fix(n) for n in names], frameon=False, fontsize=7)


def trajectory_summary(scores: pd.DataFrame, *, time: str = "week", score: str = "score",
                       conf_level: float = 0.95, k: int = 11) -> pd.DataFrame:
    """Mean score with a t-interval per time point; points with fewer than ``k`` patients are dropped.

    With a ``patient_id`` column, a patient's scores at one time point are averaged first, so
    ``n`` counts patients (not assessments) and each patient weighs the same."""
    from scipy import stats

    if "patient_id" in scores:
        scores = scores.groupby([time, "patient_id"], as_index=False)[score].mean()
    grouped = scores.groupby(time)[score]
    table = grouped.agg(n="count", mean="mean", sd="std").reset_index()
    table = table[table["n"] >= k].copy()
    half = stats.t.ppf(0.5 + conf_level / 2, np.maximum(table["n"] - 1, 1)) * table["sd"] / np.sqrt(table["n"])
    table["ci_lower"], table["ci_upper"] = table["mean"] - half, table["mean"] + half
    return table.reset_index(drop=True)


#: the colour of each response category, in every figure
CATEGORY_COLORS = {"non-responder": "#b03a2e", "partial": "#d9a400", "responder": "#2b7a3d", "remission": "#4a6c8c"}


def plot_trajectory(summary: pd.DataFrame, *, time: str = "week", label: str | None = None, ax=None,
                    ylabel: str = "score", color: str | None = None):
    """Mean score over time with its confidence band (from :func:`trajectory_summary`)."""
    if ax is None:
        _, ax = new_figure()
    (line,) = ax.plot(summary[time], summary["mean"], marker="o", markersize=3, label=label,
                      color=color or CATEGORY_COLORS.get(label))
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
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color="#2b7a3d", label=f"response (at least {response_pct:g}%)"),
               Patch(color="#d9a400", label=f"partial response ({partial_pct:g}% to under {response_pct:g}%)"),
               Patch(color="#b03a2e", label=f"no response (under {partial_pct:g}%)"),
               Line2D([], [], color="#2b7a3d", linestyle="--", linewidth=0.8, label=f"{response_pct:g}% line"),
               Line2D([], [], color="#d9a400", linestyle="--", linewidth=0.8, label=f"{partial_pct:g}% line")]
    ax.legend(handles=handles, loc="upper right", frameon=False, fontsize=6.5)
    ax.set_xlim(-0.5, n_bars - 0.5)
    ax.set_xticks([0, n_bars / 4, n_bars / 2, 3 * n_bars / 4, n_bars - 1], ["best", "75th", "median", "25th", "worst"])
    ax.set_ylabel("improvement from baseline (%)")
    ax.set_xlabel("patients ranked by improvement (percentiles)")
    return ax


def category_bars(counts: pd.DataFrame, k: int = 11, ax=None, hidden=None):
    """Bars of the share of patients per category; hidden categories (``hidden``: bool per row,
    default: small counts) are drawn empty and labelled ``*`` (not shown)."""
    if ax is None:
        _, ax = new_figure(width=4.5)
    # shares of the patients with an endpoint ("of"), not of the sum of the bars: remission overlaps
    total = int(counts["of"].iloc[0]) if "of" in counts and len(counts) else counts["n"].sum()
    hide = np.asarray(is_small(counts["n"], k) if hidden is None else hidden, dtype=bool)
    shares = np.where(hide, np.nan, 100.0 * counts["n"] / max(total, 1))
    bars = ax.bar(counts["outcome"], np.nan_to_num(shares),
                  color=[CATEGORY_COLORS.get(o, "#4a6c8c") for o in counts["outcome"]])
    for bar, share in zip(bars, shares):
        text = "* not shown" if np.isnan(share) else f"{share:.0f}%"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("% of patients with an endpoint")
    ax.set_ylim(0, 100)
    return ax
