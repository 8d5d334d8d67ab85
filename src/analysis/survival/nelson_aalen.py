"""Nelson-Aalen cumulative hazard, agreeing with R's ``survfit(..., ctype=1)$cumhaz``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import check_choice, check_conf_level, prepare, z_value
from ._confint import cumhaz_confint
from ._estimate import GroupEstimate, estimate_groups
from ._plotting import get_ax, step_curve
from .kaplan_meier import resolve_variance

__all__ = ["NelsonAalenResult", "nelson_aalen"]

NA_VARIANCES = ("auto", "aalen", "robust")
NA_CONF_TYPES = ("log", "plain", "none")


class NelsonAalenResult:
    """Nelson-Aalen cumulative hazard, one curve per group.

    Attributes
    ----------
    table : pandas.DataFrame
        ``group, time, at_risk, events, censored, cumhaz, se, ci_lower, ci_upper``: one
        row per distinct time per group; ``se`` is the standard error of the cumulative
        hazard (R's ``std.chaz``).
    conf_type, conf_level, variance, n_dropped
        The settings used and the rows dropped for missing values.
    """

    def __init__(self, levels: list, groups: list[GroupEstimate], *, conf_type: str, conf_level: float,
                 robust: bool, n_dropped: int, group_column: str | None, weighted: bool):
        self.levels = levels
        self._groups = groups
        self.conf_type = conf_type
        self.conf_level = conf_level
        self.variance = "robust" if robust else "aalen"
        self.n_dropped = n_dropped
        self.group_column = group_column
        z = z_value(conf_level)
        parts = []
        for level, g in zip(levels, groups):
            lo, hi = cumhaz_confint(g.cumhaz, g.se_cumhaz, conf_type, z)
            rt = g.rt
            parts.append(pd.DataFrame({
                "group": [level] * rt.time.size, "time": rt.time, "at_risk": rt.at_risk,
                "events": rt.events, "censored": rt.censored, "cumhaz": g.cumhaz,
                "se": g.se_cumhaz, "ci_lower": lo, "ci_upper": hi,
            }))
        self.table = pd.concat(parts, ignore_index=True)
        if not weighted:
            for col in ("at_risk", "events", "censored"):
                self.table[col] = self.table[col].astype(np.int64)

    def plot(self, ax=None, *, ci: bool = True):
        """Step curves of the cumulative hazard with confidence bands; returns the axes."""
        ax = get_ax(ax)
        codes = np.repeat(np.arange(len(self.levels)), [g.rt.time.size for g in self._groups])
        for i, level in enumerate(self.levels):
            part = self.table[codes == i]
            show = ci and self.conf_type != "none"
            label = None if self.group_column is None else f"{self.group_column}={level}"
            step_curve(ax, part["time"].to_numpy(), part["cumhaz"].to_numpy(), start=0.0,
                       lower=part["ci_lower"].to_numpy() if show else None,
                       upper=part["ci_upper"].to_numpy() if show else None, label=label)
        ax.set_xlim(left=0)
        ax.set_xlabel("time")
        ax.set_ylabel("cumulative hazard")
        if self.group_column is not None:
            ax.legend(loc="best", frameon=False)
        return ax

    def __repr__(self) -> str:
        return (f"NelsonAalenResult({len(self.levels)} group(s), conf_type={self.conf_type!r}, "
                f"conf_level={self.conf_level}, variance={self.variance!r}, rows={len(self.table)})")


def nelson_aalen(
    data: pd.DataFrame,
    duration: str,
    event: str,
    *,
    group: str | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log",
    entry: str | None = None,
    variance: str = "auto",
    dropna: bool = False,
) -> NelsonAalenResult:
    """Nelson-Aalen estimate of the cumulative hazard H(t) = sum_{t_j <= t} d_j / n_j.

    Agrees with R's ``survfit(..., ctype=1)``: ``cumhaz`` and ``std.chaz``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (or per interval with ``entry``).
    duration, event : str
        Columns with the time (>= 0) and the event indicator (1/True = event).
    group, weights, entry : str, optional
        As in :func:`kaplan_meier`.
    conf_level : float, default 0.95
        Coverage of the pointwise intervals.
    conf_type : {"log", "plain", "none"}, default "log"
        "log": H exp(-+ z se / H), the log-transformed interval recommended by Klein and
        Moeschberger (2003, section 4.2), which stays positive (NaN where H = 0).
        "plain": H -+ z se, the lower limit clipped at 0.
    variance : {"auto", "aalen", "robust"}, default "auto"
        "aalen": var H(t) = sum d_j / n_j^2 (Aalen 1978; Klein and Moeschberger 2003, section 4.2),
        with weighted counts, which is survfit's ``std.chaz``. "robust": infinitesimal
        jackknife, each row its own cluster. "auto": robust when any weight is not a
        whole number, as survfit.
    dropna : bool, default False
        As in :func:`kaplan_meier`.

    Returns
    -------
    NelsonAalenResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import nelson_aalen
    >>> df = pd.DataFrame({"days": [5, 8, 8, 12, 16], "relapse": [1, 1, 0, 1, 0]})
    >>> nelson_aalen(df, "days", "relapse").table[["time", "at_risk", "cumhaz"]]
       time  at_risk  cumhaz
    0   5.0        5    0.20
    1   8.0        4    0.45
    2  12.0        2    0.95
    3  16.0        1    0.95
    """
    check_choice("conf_type", conf_type, NA_CONF_TYPES)
    check_choice("variance", variance, NA_VARIANCES)
    conf_level = check_conf_level(conf_level)
    sd = prepare(data, duration, event, entry=entry, weights=weights, group=group, dropna=dropna)
    robust = resolve_variance({"aalen": "greenwood"}.get(variance, variance), sd.integer_weights)
    groups = estimate_groups(sd, robust=robust)
    return NelsonAalenResult(sd.group.levels, groups, conf_type=conf_type, conf_level=conf_level, robust=robust,
                             n_dropped=sd.n_dropped, group_column=group, weighted=weights is not None)
