"""Restricted mean survival time (RMST), agreeing with R's ``print(survfit(...), rmean=tau)``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import check_conf_level, get_ax, z_value
from ._common import prepare
from ._estimate import GroupEstimate, estimate_groups
from ._plotting import step_curve

__all__ = ["RMSTResult", "rmst"]


def rmst_one(g: GroupEstimate, tau: float) -> tuple[float, float]:
    """Restricted mean and its standard error for one group, as ``survival:::survmean``.

    RMST = integral_0^tau S(t) dt of the Kaplan-Meier step function;
    var = sum_{t_j <= tau} A_j^2 d_j / (n_j (n_j - d_j)), with A_j = integral_{t_j}^tau S(t) dt
    (terms with n_j = d_j are 0), using the weighted counts when weighted.
    """
    rt = g.rt
    keep = rt.time <= tau
    if not keep.any():
        return float(tau), 0.0
    n, d = rt.at_risk[keep], rt.events[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(n - d == 0, 0.0, d / (n * (n - d)))
    tt = np.concatenate([rt.time[keep], [tau]])
    ss = g.surv[keep]
    ss = np.concatenate([ss, [ss[-1]]])
    hh = np.concatenate([hh, [0.0]])
    delta = np.diff(np.concatenate([[0.0], tt]))
    rect = delta * np.concatenate([[1.0], ss[:-1]])
    var = float(np.sum(np.cumsum(rect[1:][::-1]) ** 2 * hh[::-1][1:]))
    return float(rect.sum()), float(np.sqrt(var))


class RMSTResult:
    """Restricted mean survival time per group, and contrasts between groups.

    Attributes
    ----------
    table : pandas.DataFrame
        ``group, tau, rmst, se, ci_lower, ci_upper``; the interval is rmst -+ z se.
    contrast : pandas.DataFrame
        For two or more groups, each group against the first level (``reference``):
        ``group, reference, measure, estimate, se, ci_lower, ci_upper, p_value``.
        ``measure`` "difference": rmst - rmst_ref with se = sqrt(se^2 + se_ref^2) (groups
        are independent); "ratio": rmst / rmst_ref with ``se`` the standard error of the
        log ratio by the delta method, sqrt((se/rmst)^2 + (se_ref/rmst_ref)^2), and the
        interval exp(log ratio -+ z se). p-values are two-sided Wald tests of no
        difference (ratio 1). Empty for one group.
    tau, conf_level, n_dropped
    """

    def __init__(self, table, contrast, tau, conf_level, n_dropped, group_column, km_groups, levels):
        self.table = table
        self.contrast = contrast
        self.tau = tau
        self.conf_level = conf_level
        self.n_dropped = n_dropped
        self.group_column = group_column
        self._groups = km_groups
        self.levels = levels

    def plot(self, ax=None):
        """Kaplan-Meier curves with the area up to tau shaded; returns the axes."""
        ax = get_ax(ax)
        for level, g, row in zip(self.levels, self._groups, self.table.itertuples()):
            label = None if self.group_column is None else f"{self.group_column}={level}: RMST {row.rmst:.3g}"
            line = step_curve(ax, g.rt.time, g.surv, start=1.0, label=label)
            keep = g.rt.time <= self.tau
            x = np.concatenate([[0.0], g.rt.time[keep], [self.tau]])
            y = np.concatenate([[1.0], g.surv[keep], [g.surv[keep][-1] if keep.any() else 1.0]])
            ax.fill_between(x, y, step="post", alpha=0.15, color=line.get_color(), linewidth=0)
        ax.axvline(self.tau, color="0.4", linestyle="--", linewidth=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.set_xlabel("time")
        ax.set_ylabel("survival probability")
        if self.group_column is not None:
            ax.legend(loc="best", frameon=False)
        return ax

    def __repr__(self) -> str:
        text = f"RMSTResult(tau={self.tau:g}, conf_level={self.conf_level})\n{self.table.to_string(index=False)}"
        if len(self.contrast):
            text += "\n" + self.contrast.to_string(index=False)
        return text


def _contrasts(table: pd.DataFrame, z: float) -> pd.DataFrame:
    cols = ["group", "reference", "measure", "estimate", "se", "ci_lower", "ci_upper", "p_value"]
    if len(table) < 2:
        return pd.DataFrame(columns=cols)
    ref = next(table.itertuples(index=False))
    rows = []
    for row in table.iloc[1:].itertuples(index=False):
        dif = float(row.rmst - ref.rmst)
        se_d = float(np.hypot(row.se, ref.se))
        with np.errstate(divide="ignore", invalid="ignore"):
            p_d = float(2 * stats.norm.sf(abs(dif / se_d))) if se_d > 0 else float("nan")
            lr = np.log(row.rmst / ref.rmst)
            se_l = float(np.hypot(row.se / row.rmst, ref.se / ref.rmst))
            p_r = float(2 * stats.norm.sf(abs(lr / se_l))) if se_l > 0 else float("nan")
        rows.append([row.group, ref.group, "difference", dif, se_d, dif - z * se_d, dif + z * se_d, p_d])
        rows.append([row.group, ref.group, "ratio", float(np.exp(lr)), se_l, float(np.exp(lr - z * se_l)),
                     float(np.exp(lr + z * se_l)), p_r])
    return pd.DataFrame(rows, columns=cols)


def rmst(
    data: pd.DataFrame,
    duration: str,
    event: str,
    tau: float,
    *,
    group: str | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
    dropna: bool = False,
) -> RMSTResult:
    """Restricted mean survival time up to ``tau``: the area under the Kaplan-Meier curve.

    Agrees with R's ``print(survfit(Surv(duration, event) ~ group), rmean=tau)``
    (``rmean`` and ``se(rmean)``). The variance is survfit's: sum over event times t_j <= tau
    of A_j^2 d_j / (n_j (n_j - d_j)), where A_j is the area under the curve from t_j to tau
    (Klein and Moeschberger 2003, section 4.5; the Greenwood-type variance, also used by
    survRM2). If tau lies beyond a group's last time while its curve is above 0, the curve is
    carried forward flat (as R does) and a warning says so.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject.
    duration, event : str
        Columns with the time (>= 0) and the event indicator (1/True = event).
    tau : float
        Truncation time (> 0), in the units of ``duration``.
    group : str, optional
        Column whose levels get separate RMSTs; contrasts are against the first level.
    weights : str, optional
        Case weights; the curve and the variance use weighted counts (as survfit's print).
    conf_level : float, default 0.95
        Coverage of the normal (Wald) intervals.
    dropna : bool, default False
        Missing values raise an error unless ``dropna=True`` (then counted in ``n_dropped``).

    Returns
    -------
    RMSTResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import rmst
    >>> df = pd.DataFrame({"t": [2, 4, 6, 8, 3, 9, 12, 15], "e": [1, 1, 1, 0, 1, 0, 1, 1],
    ...                    "arm": ["a"] * 4 + ["b"] * 4})
    >>> res = rmst(df, "t", "e", tau=8, group="arm")
    >>> res.table[["group", "rmst"]]
      group  rmst
    0     a  5.00
    1     b  6.75
    >>> res.contrast[["group", "reference", "measure", "estimate"]]
      group reference     measure  estimate
    0     b         a  difference      1.75
    1     b         a       ratio      1.35
    """
    try:
        tau = float(tau)
    except (TypeError, ValueError):
        raise ValueError(f"tau must be a positive number, got {tau!r}") from None
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive finite number, got {tau!r}")
    conf_level = check_conf_level(conf_level)
    z = z_value(conf_level)
    sd = prepare(data, duration, event, weights=weights, group=group, dropna=dropna)
    groups = estimate_groups(sd, robust=False)
    rows = []
    for level, g in zip(sd.group.levels, groups):
        last = float(g.rt.time[-1])
        if tau > last and g.surv[-1] > 0:
            where = "" if group is None else f" in group {level!r}"
            warnings.warn(
                f"tau = {tau:g} is beyond the last follow-up time ({last:g}){where}: the Kaplan-Meier "
                "curve is carried forward flat from there, as R's survfit does", UserWarning, stacklevel=2,
            )
        m, se = rmst_one(g, tau)
        rows.append({"group": level, "tau": tau, "rmst": m, "se": se, "ci_lower": m - z * se, "ci_upper": m + z * se})
    table = pd.DataFrame(rows)
    return RMSTResult(table, _contrasts(table, z), tau, conf_level, sd.n_dropped, group, groups, sd.group.levels)
