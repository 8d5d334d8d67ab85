"""Spaghetti plot of score trajectories with a model's mean and confidence band."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._kernel import get_ax, renamed_arguments

__all__ = ["trajectory_plot", "typical_profiles"]


def typical_profiles(model, time: str, grid: np.ndarray) -> pd.DataFrame:
    """Profiles over a time grid with every other variable at a typical value: the mean of
    a numeric column, the first level (reference) of a boolean or categorical one."""
    data = model._mf.data
    prof = pd.DataFrame({time: grid})
    for col in model._mf.columns:
        if col == time:
            continue
        s = data[col]
        if pd.api.types.is_bool_dtype(s.dtype):
            prof[col] = False
        elif pd.api.types.is_numeric_dtype(s.dtype) and not isinstance(s.dtype, pd.CategoricalDtype):
            prof[col] = float(s.mean())
        elif isinstance(s.dtype, pd.CategoricalDtype):
            prof[col] = pd.Categorical([s.cat.categories[0]] * len(grid), categories=s.cat.categories)
        else:
            prof[col] = sorted(pd.unique(s.dropna()), key=str)[0]
    return prof


@renamed_arguments(groups="cluster")
def trajectory_plot(data: pd.DataFrame, *, time: str, score: str, cluster: str, model=None, ax=None,
                    max_curves: int | None = 500, seed: int = 0, n_grid: int = 60):
    """Individual score curves (thin, transparent) and, with a model, its mean and band.

    Parameters
    ----------
    data : pandas.DataFrame
        Long format: one row per assessment.
    time, score, cluster : str
        Columns of the time (days or sessions), the score and the patient (``cluster``
        was ``groups`` in the previous release; still accepted for one release, with a
        DeprecationWarning).
    model : MixedResult or GEEResult, optional
        A model whose only time-varying variable is ``time``; its population mean (fixed
        effects, or the GEE mean) is drawn over the observed time range with its pointwise
        confidence band, other variables held at typical values (numeric: mean; boolean
        or categorical: the reference level).
    ax : matplotlib.axes.Axes, optional
    max_curves : int or None, default 500
        Draw at most this many patients' curves (a seeded random subset, so figures are
        reproducible); None for all.
    seed : int, default 0
    n_grid : int, default 60
        Points of the mean curve.

    Returns
    -------
    matplotlib.axes.Axes
    """
    for col in (time, score, cluster):
        if col not in data.columns:
            raise ValueError(f"column {col!r} not found; columns are: {', '.join(map(str, data.columns[:30]))}")
    ax = get_ax(ax)
    d = data[[cluster, time, score]].dropna().sort_values([cluster, time], kind="stable")
    ids = pd.unique(d[cluster])
    if max_curves is not None and len(ids) > max_curves:
        rng = np.random.default_rng(seed)
        ids = rng.choice(ids, size=max_curves, replace=False)
        d = d[d[cluster].isin(set(ids))]
    alpha = float(np.clip(8.0 / max(len(ids), 1), 0.05, 0.6))
    for _, sub in d.groupby(cluster, sort=False):
        ax.plot(sub[time].to_numpy(dtype=float), sub[score].to_numpy(dtype=float), color="tab:blue",
                linewidth=0.6, alpha=alpha)
    if model is not None:
        t = data[time].astype(float)
        grid = np.linspace(float(t.min()), float(t.max()), n_grid)
        pred = model.predict(typical_profiles(model, time, grid))
        ax.fill_between(grid, pred["ci_lower"], pred["ci_upper"], color="black", alpha=0.25, linewidth=0,
                        label=f"{model.conf_level:.0%} CI")
        ax.plot(grid, pred["prediction"], color="black", linewidth=2.0, label="model mean")
        ax.legend(frameon=False)
    ax.set_xlabel(time)
    ax.set_ylabel(score)
    return ax
