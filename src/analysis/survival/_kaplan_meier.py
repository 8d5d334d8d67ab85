"""Kaplan-Meier survival curves, agreeing with R's ``survival::survfit``.

See ``docs/survival.md`` for the conventions (Greenwood and robust variances, interval
transforms, the median rule) and their sources.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._kernel import check_choice, check_conf_level, get_ax, z_value
from ._common import prepare
from ._confint import CONF_TYPES, survival_confint
from ._estimate import GroupEstimate, estimate_groups
from ._plotting import at_risk_table, step_curve

__all__ = ["KaplanMeierResult", "kaplan_meier"]

VARIANCES = ("auto", "greenwood", "robust")
_TOL = np.finfo(float).eps ** 0.5  # R's tolerance in print.survfit's median rule


def resolve_variance(variance: str, integer_weights: bool) -> bool:
    """True for the robust (infinitesimal jackknife) variance, as R's survfit chooses."""
    check_choice("variance", variance, VARIANCES)
    if variance == "auto":
        return not integer_weights
    return variance == "robust"


def _minmin(y: np.ndarray, x: np.ndarray) -> float:
    """First x where y <= 0.5, R's print.survfit rule (survival:::survmean, ``minmin``).

    When y equals 0.5 (within sqrt(machine epsilon)) on an interval, the midpoint between
    the time it reached 0.5 and the time it next drops is returned.
    """
    keep = ~np.isnan(y) & (y < 0.5 + _TOL)
    if not keep.any():
        return float("nan")
    xk, yk = x[keep], y[keep]
    if abs(yk[0] - 0.5) < _TOL:
        below = np.flatnonzero(yk < yk[0])
        if below.size:
            return float((xk[0] + xk[below[0]]) / 2.0)
    return float(xk[0])


class KaplanMeierResult:
    """Kaplan-Meier estimate, one curve per group.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per distinct time (events or censorings) per group, as R's
        ``summary(survfit(...), censored=TRUE)``: ``group, time, at_risk, events,
        censored, survival, se, ci_lower, ci_upper, se_log``. ``se`` is the standard
        error of S(t) (summary's ``std.err``); ``se_log`` is the standard error of
        log S(t), the scale on which the intervals are built (``fit$std.err`` for the
        Greenwood variance). Counts are weighted sums when weights are given.
    median : pandas.DataFrame
        ``group, n, events, median, ci_lower, ci_upper``, as R's ``print(survfit)``.
    conf_type, conf_level, variance : str, float, str
        The settings used (``variance`` is "greenwood" or "robust", after "auto").
    n_dropped : int
        Rows dropped for missing values (``dropna=True``), 0 otherwise.
    """

    def __init__(self, levels: list, groups: list[GroupEstimate], *, conf_type: str, conf_level: float,
                 robust: bool, n_dropped: int, group_column: str | None, weighted: bool):
        self.levels = levels
        self._groups = groups
        self.conf_type = conf_type
        self.conf_level = conf_level
        self.variance = "robust" if robust else "greenwood"
        self.n_dropped = n_dropped
        self.group_column = group_column
        self.weighted = weighted
        z = z_value(conf_level)
        self._ci = [survival_confint(g.surv, g.se_log, conf_type, z) for g in groups]
        self.table = self._make_table()
        self._median: pd.DataFrame | None = None

    # ------------------------------------------------------------------------------------
    def _make_table(self) -> pd.DataFrame:
        parts = []
        for level, g, (lo, hi) in zip(self.levels, self._groups, self._ci):
            rt = g.rt
            parts.append(
                pd.DataFrame(
                    {
                        "group": [level] * rt.time.size,
                        "time": rt.time,
                        "at_risk": rt.at_risk,
                        "events": rt.events,
                        "censored": rt.censored,
                        "survival": g.surv,
                        "se": g.se_surv,
                        "ci_lower": lo,
                        "ci_upper": hi,
                        "se_log": g.se_log,
                    }
                )
            )
        table = pd.concat(parts, ignore_index=True)
        if not self.weighted:
            for col in ("at_risk", "events", "censored"):
                table[col] = table[col].astype(np.int64)
        return table

    @property
    def median(self) -> pd.DataFrame:
        """Median survival time and its confidence interval per group.

        As R's ``print(survfit)``: the median is the first time S(t) <= 0.5; if S(t) is
        exactly 0.5 (within sqrt(machine epsilon)) over an interval, the midpoint of that
        interval. The interval is where the pointwise confidence band crosses 0.5 (Brookmeyer
        and Crowley 1982): the lower limit is the first time the lower band is <= 0.5, the
        upper limit the first time the upper band is, by the same rule. NaN when not reached.
        """
        if self._median is None:
            rows = []
            for level, g, (lo, hi) in zip(self.levels, self._groups, self._ci):
                t = g.rt.time
                none = self.conf_type == "none"
                rows.append(
                    {
                        "group": level,
                        "n": g.n,
                        "events": float(g.rt.events.sum()) if self.weighted else int(g.rt.events.sum()),
                        "median": _minmin(g.surv, t),
                        "ci_lower": float("nan") if none else _minmin(lo, t),
                        "ci_upper": float("nan") if none else _minmin(hi, t),
                    }
                )
            self._median = pd.DataFrame(rows)
        return self._median

    def at(self, times: Sequence[float] | float, *, extend: bool = False) -> pd.DataFrame:
        """Survival at given times (step function), like R's ``summary(fit, times=...)``.

        Parameters
        ----------
        times : float or sequence of float
            Times at which to read the curves; sorted ascending in the output.
        extend : bool, default False
            Beyond a group's last observed time the curve is unknown: ``survival``, ``se``
            and the limits are NaN unless ``extend=True``, which carries the last value
            forward (R's ``extend=TRUE``; with ``extend=FALSE`` R leaves those rows out).

        Returns
        -------
        pandas.DataFrame
            ``group, time, at_risk, events, survival, se, ci_lower, ci_upper``. ``at_risk``
            is the number at risk at the time; ``events`` the events since the previous
            time asked for (since 0 for the first). Before the first time of a group the
            curve is 1 with se 0 and limits 1.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.survival import kaplan_meier
        >>> df = pd.DataFrame({"t": [1, 2, 2, 4, 5], "e": [1, 1, 0, 1, 0]})
        >>> kaplan_meier(df, "t", "e").at([0, 2, 3])[["time", "at_risk", "survival"]]
           time  at_risk  survival
        0   0.0        5       1.0
        1   2.0        4       0.6
        2   3.0        2       0.6
        """
        req = np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        parts = []
        for level, g, (lo, hi) in zip(self.levels, self._groups, self._ci):
            rt = g.rt
            origin = rt.time.size == 0 or rt.time[0] > 0
            pre = (lambda a, v: np.concatenate([[v], a])) if origin else (lambda a, v: a)
            t0 = pre(rt.time, 0.0)
            s0, se0 = pre(g.surv, 1.0), pre(g.se_surv, 0.0)
            lo0, hi0 = pre(lo, 1.0), pre(hi, 1.0)
            if self.conf_type == "none":
                lo0 = hi0 = np.full(t0.size, np.nan)
            n0 = pre(rt.at_risk, rt.at_risk[0] if rt.time.size else 0.0)
            ev0 = np.cumsum(pre(rt.events, 0.0))
            i1 = np.maximum(np.searchsorted(t0, req, side="right") - 1, 0)
            i2 = np.searchsorted(t0, req, side="left")
            at_risk = np.concatenate([n0, [0.0]])[i2]
            cum_ev = ev0[i1]
            events = np.diff(np.concatenate([[0.0], cum_ev]))
            beyond = (req > t0[-1]) & (not extend)
            nan = lambda a: np.where(beyond, np.nan, a)  # noqa: E731
            parts.append(
                pd.DataFrame(
                    {
                        "group": [level] * req.size,
                        "time": req,
                        "at_risk": at_risk,
                        "events": events,
                        "survival": nan(s0[i1]),
                        "se": nan(se0[i1]),
                        "ci_lower": nan(lo0[i1]),
                        "ci_upper": nan(hi0[i1]),
                    }
                )
            )
        out = pd.concat(parts, ignore_index=True)
        if not self.weighted:
            out["at_risk"] = out["at_risk"].astype(np.int64)
            out["events"] = out["events"].astype(np.int64)
        return out

    def _at_risk(self, ticks: np.ndarray) -> list[np.ndarray]:
        out = []
        for g in self._groups:
            i2 = np.searchsorted(g.rt.time, ticks, side="left")
            out.append(np.concatenate([g.rt.at_risk, [0.0]])[i2])
        return out

    def plot(self, ax=None, *, at_risk: bool = True, ci: bool = True, censor_ticks: bool = True,
             min_at_risk: int | None = None):
        """Step curves with confidence bands, censoring ticks and a number-at-risk table.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default: the current axes).
        at_risk : bool, default True
            Write the number at risk of each group under the x-axis at the tick positions.
        ci : bool, default True
            Shade the pointwise confidence band (``conf_type``).
        censor_ticks : bool, default True
            Mark censoring times with a vertical tick on the curve.
        min_at_risk : int, optional
            For aggregate-only output (small-cell suppression): each curve stops at the
            last time with at least this many at risk, so no step reveals an individual
            event, and at-risk counts from 1 to ``min_at_risk - 1`` show as ``<k``.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        colors = []
        for level, g, (lo, hi) in zip(self.levels, self._groups, self._ci):
            show_ci = ci and self.conf_type != "none"
            label = None if self.group_column is None else f"{self.group_column}={level}"
            keep = slice(None) if min_at_risk is None else g.rt.at_risk >= min_at_risk
            times = g.rt.time[keep]
            line = step_curve(
                ax, times, g.surv[keep], start=1.0,
                lower=lo[keep] if show_ci else None, upper=hi[keep] if show_ci else None,
                censor_times=times[g.rt.censored[keep] > 0] if censor_ticks else None, label=label,
            )
            colors.append(line.get_color())
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(left=0)
        ax.set_xlabel("time")
        ax.set_ylabel("survival probability")
        if self.group_column is not None:
            ax.legend(loc="best", frameon=False)
        if at_risk:
            labels = [str(lv) if self.group_column is None else f"{self.group_column}={lv}" for lv in self.levels]
            fmt = None
            if min_at_risk is not None:
                def fmt(v, k=min_at_risk):
                    return f"<{k}" if 1 <= v < k else f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
            at_risk_table(ax, labels, self._at_risk, colors, fmt=fmt)
        return ax

    def __repr__(self) -> str:
        med = self.median.to_string(index=False)
        return (
            f"KaplanMeierResult({len(self.levels)} group(s), conf_type={self.conf_type!r}, "
            f"conf_level={self.conf_level}, variance={self.variance!r})\n{med}"
        )


def kaplan_meier(
    data: pd.DataFrame,
    duration: str,
    event: str,
    *,
    group: str | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log-log",
    entry: str | None = None,
    variance: str = "auto",
    dropna: bool = False,
) -> KaplanMeierResult:
    """Kaplan-Meier survival curves with pointwise confidence intervals.

    Agrees with R's ``survfit(Surv(duration, event) ~ group, weights=, conf.type=,
    conf.int=)`` (survival 3.x, ``stype=1``): tied event times are handled as there (the
    product-limit step at a time uses all events at it; observations censored at an event
    time are still at risk at it).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (or per interval with ``entry``).
    duration : str
        Column with the time to event or censoring (>= 0).
    event : str
        Column with 1/True for an event and 0/False for censoring.
    group : str, optional
        Column whose levels get separate curves (R's factor order: Categorical order, else
        sorted values).
    weights : str, optional
        Column of case weights (> 0). Counts become weighted sums.
    conf_level : float, default 0.95
        Coverage of the pointwise intervals.
    conf_type : {"log-log", "log", "plain", "logit", "arcsin", "none"}, default "log-log"
        Transform on which the interval is symmetric. The default "log-log"
        (Kalbfleisch and Prentice 1980) keeps limits inside [0, 1] and has good coverage
        in small samples; it is the default of SAS and Stata. Note R's survfit defaults to
        "log"; pass ``conf_type="log"`` to reproduce R's default output.
    entry : str, optional
        Column with delayed-entry (left-truncation) times: a row is at risk at t when
        ``entry < t <= duration`` (R's ``Surv(entry, duration, event)``).
    variance : {"auto", "greenwood", "robust"}, default "auto"
        "greenwood": Greenwood's formula with weighted counts. "robust": infinitesimal
        jackknife with each row its own cluster. "auto" follows R's survfit: robust when
        any weight is not a whole number (sampling or inverse-probability weights),
        Greenwood otherwise (no weights or frequency weights).
    dropna : bool, default False
        Missing values in the columns used raise an error saying how many rows and which
        column; with ``dropna=True`` those rows are dropped and counted in ``n_dropped``.

    Returns
    -------
    KaplanMeierResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import kaplan_meier
    >>> df = pd.DataFrame({"days": [5, 8, 8, 12, 16, 23, 27], "relapse": [1, 1, 0, 1, 0, 1, 1]})
    >>> km = kaplan_meier(df, "days", "relapse")
    >>> km.table[["time", "at_risk", "events", "survival"]].round(4)
       time  at_risk  events  survival
    0   5.0        7       1    0.8571
    1   8.0        6       1    0.7143
    2  12.0        4       1    0.5357
    3  16.0        3       0    0.5357
    4  23.0        2       1    0.2679
    5  27.0        1       1    0.0000
    >>> float(km.median["median"].iloc[0])
    23.0
    """
    check_choice("conf_type", conf_type, CONF_TYPES)
    conf_level = check_conf_level(conf_level)
    sd = prepare(data, duration, event, entry=entry, weights=weights, group=group, dropna=dropna)
    robust = resolve_variance(variance, sd.integer_weights)
    groups = estimate_groups(sd, robust=robust)
    return KaplanMeierResult(
        sd.group.levels, groups, conf_type=conf_type, conf_level=conf_level, robust=robust,
        n_dropped=sd.n_dropped, group_column=group, weighted=weights is not None,
    )
