"""Nelson-Aalen cumulative hazard, agreeing with R's ``survfit(..., ctype=1)$cumhaz``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._kernel import check_choice, check_conf_level, get_ax, z_value
from ._common import prepare
from ._confint import cumhaz_confint
from ._estimate import GroupEstimate, estimate_groups
from ._kaplan_meier import _minmin, resolve_variance
from ._plotting import step_curve

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
    median : pandas.DataFrame
        ``group, n, events, median, ci_lower, ci_upper``: the median of the survival
        curve exp(-H(t)) (Fleming-Harrington), as R's ``print(survfit(..., stype=2,
        ctype=1))``.
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
        self.weighted = weighted
        if not weighted:
            for col in ("at_risk", "events", "censored"):
                self.table[col] = self.table[col].astype(np.int64)
        self._median: pd.DataFrame | None = None

    def _parts(self):
        codes = np.repeat(np.arange(len(self.levels)), [g.rt.time.size for g in self._groups])
        for i, (level, g) in enumerate(zip(self.levels, self._groups)):
            yield level, g, self.table[codes == i]

    @property
    def median(self) -> pd.DataFrame:
        """Median of the survival curve exp(-H(t)) and its interval, per group.

        The rule of :attr:`KaplanMeierResult.median` (R's ``print(survfit)``) applied to
        exp(-H) and to exp(-limits of H): the median is the first time H(t) >= log 2 (the
        midpoint of an interval where exp(-H) equals 0.5 within sqrt(machine epsilon)); the
        lower limit is the first time the upper limit of H reaches log 2, the upper limit
        the first time its lower limit does. NaN when not reached (or ``conf_type="none"``).
        With ``conf_type="log"`` these are R's ``print(survfit(..., stype=2, ctype=1,
        conf.type="log-log"))`` median and limits; with ``"plain"``, R's ``conf.type="log"``.
        """
        if self._median is None:
            rows = []
            none = self.conf_type == "none"
            for level, g, part in self._parts():
                t = part["time"].to_numpy()
                with np.errstate(over="ignore"):
                    s = np.exp(-part["cumhaz"].to_numpy())
                    s_lo = np.exp(-part["ci_upper"].to_numpy())
                    s_hi = np.exp(-part["ci_lower"].to_numpy())
                rows.append({
                    "group": level,
                    "n": g.n,
                    "events": float(g.rt.events.sum()) if self.weighted else int(g.rt.events.sum()),
                    "median": _minmin(s, t),
                    "ci_lower": float("nan") if none else _minmin(s_lo, t),
                    "ci_upper": float("nan") if none else _minmin(s_hi, t),
                })
            self._median = pd.DataFrame(rows)
        return self._median

    def at(self, times: Sequence[float] | float, *, extend: bool = False) -> pd.DataFrame:
        """The cumulative hazard at given times (step function), as :meth:`KaplanMeierResult.at`.

        Parameters
        ----------
        times : float or sequence of float
            Times at which to read the curves; sorted ascending in the output.
        extend : bool, default False
            Beyond a group's last observed time the estimate is unknown: NaN unless
            ``extend=True``, which carries the last value forward.

        Returns
        -------
        pandas.DataFrame
            ``group, time, at_risk, events, cumhaz, se, ci_lower, ci_upper``. ``at_risk``
            is the number at risk at the time, ``events`` the events since the previous
            time asked for. Before a group's first time H is 0 with se 0 and limits 0.

        Examples
        --------
        >>> import pandas as pd
        >>> from analysis.survival import nelson_aalen
        >>> df = pd.DataFrame({"t": [1, 2, 2, 4, 5], "e": [1, 1, 0, 1, 0]})
        >>> nelson_aalen(df, "t", "e").at([0, 2, 3])[["time", "at_risk", "events", "cumhaz"]]
           time  at_risk  events  cumhaz
        0   0.0        5       0    0.00
        1   2.0        4       2    0.45
        2   3.0        2       0    0.45
        """
        req = np.sort(np.atleast_1d(np.asarray(times, dtype=float)))
        out = []
        for level, g, part in self._parts():
            rt = g.rt
            origin = rt.time.size == 0 or rt.time[0] > 0
            pre = (lambda a, v: np.concatenate([[v], a])) if origin else (lambda a, v: a)
            t0 = pre(rt.time, 0.0)
            cols = {c: pre(part[c].to_numpy(dtype=float), 0.0) for c in ("cumhaz", "se", "ci_lower", "ci_upper")}
            if self.conf_type == "none":
                cols["ci_lower"] = cols["ci_upper"] = np.full(t0.size, np.nan)
            n0 = pre(rt.at_risk, rt.at_risk[0] if rt.time.size else 0.0)
            ev0 = np.cumsum(pre(rt.events, 0.0))
            i1 = np.maximum(np.searchsorted(t0, req, side="right") - 1, 0)
            i2 = np.searchsorted(t0, req, side="left")
            beyond = (req > t0[-1]) & (not extend)
            frame = {"group": [level] * req.size, "time": req, "at_risk": np.concatenate([n0, [0.0]])[i2],
                     "events": np.diff(np.concatenate([[0.0], ev0[i1]]))}
            for c, v in cols.items():
                frame[c] = np.where(beyond, np.nan, v[i1])
            out.append(pd.DataFrame(frame))
        res = pd.concat(out, ignore_index=True)
        if not self.weighted:
            res["at_risk"] = res["at_risk"].astype(np.int64)
            res["events"] = res["events"].astype(np.int64)
        return res

    def plot(self, ax=None, *, ci: bool = True):
        """Step curves of the cumulative hazard with confidence bands; returns the axes."""
        ax = get_ax(ax)
        for level, _, part in self._parts():
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
