"""Drawing helpers shared by the survival curves (matplotlib, imported lazily): step curves
and the number-at-risk table. The axes to draw on come from the kernel's ``get_ax``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def step_curve(
    ax,
    time: np.ndarray,
    value: np.ndarray,
    *,
    start: float,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    censor_times: np.ndarray | None = None,
    label: str | None = None,
    color=None,
    band_alpha: float = 0.2,
):
    """A right-continuous step function from (0, start), with an optional band and ticks."""
    x = np.concatenate([[0.0], np.asarray(time, dtype=float)])
    y = np.concatenate([[start], np.asarray(value, dtype=float)])
    (line,) = ax.step(x, y, where="post", label=label, color=color)
    color = line.get_color()
    if lower is not None and upper is not None:
        lo = np.concatenate([[start], np.asarray(lower, dtype=float)])
        hi = np.concatenate([[start], np.asarray(upper, dtype=float)])
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(x, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), step="post", alpha=band_alpha,
                        color=color, linewidth=0)
    if censor_times is not None and len(censor_times):
        ct = np.asarray(censor_times, dtype=float)
        idx = np.searchsorted(x, ct, side="right") - 1
        ax.plot(ct, y[idx], linestyle="none", marker="|", markersize=7, color=color)
    return line


def at_risk_table(
    ax,
    labels: Sequence[str],
    counts: Callable[[np.ndarray], list[np.ndarray]],
    colors: Sequence,
    *,
    title: str = "Number at risk",
    fmt: Callable[[float], str] | None = None,
) -> None:
    """Write the number at risk of each group under the x-axis, at the x tick positions.

    ``counts(ticks)`` returns one array of counts per group at the tick times.
    """
    from matplotlib.transforms import blended_transform_factory

    ax.figure.canvas.draw_idle()
    lo, hi = ax.get_xlim()
    ticks = np.array([t for t in ax.get_xticks() if lo <= t <= hi and t >= 0])
    if ticks.size == 0:
        return
    ax.set_xticks(ticks)
    ax.set_xlim(lo, hi)
    values = counts(ticks)
    fmt = fmt or (lambda v: f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}")
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    label_trans = blended_transform_factory(ax.transAxes, ax.transAxes)
    base = 42  # points below the axis, leaving room for tick labels and the x label
    ax.annotate(title, xy=(0, 0), xycoords=label_trans, xytext=(0, -base), textcoords="offset points",
                ha="left", va="top", fontsize="small", fontweight="bold")
    for i, (label, vals, color) in enumerate(zip(labels, values, colors)):
        dy = -(base + 12 * (i + 1))
        ax.annotate(str(label), xy=(0, 0), xycoords=label_trans, xytext=(-16, dy), textcoords="offset points",
                    ha="right", va="top", fontsize="small", color=color)
        for t, v in zip(ticks, vals):
            ax.annotate(fmt(v), xy=(t, 0), xycoords=trans, xytext=(0, dy), textcoords="offset points",
                        ha="center", va="top", fontsize="small", color=color)
