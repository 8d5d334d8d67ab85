"""Test of proportional hazards for a Cox model, agreeing with R's ``cox.zph``.

For a time transform g(t), the test asks whether adding the time interactions
``x_k * g(t)`` improves the model: a score test at the fitted coefficients (and 0 for the
interactions), using the full information matrix of the enlarged model (survival 3.x;
Grambsch & Therneau 1994 give the approximation used by survival 2.x). ``terms=True``
tests all columns of a formula term together (``C(route)`` with k - 1 columns gets
k - 1 degrees of freedom); ``GLOBAL`` tests all columns at once. g(t) is centred at its
mean over the events. ``transform="km"`` (R's default) uses g(t) = 1 - KM(t-), the
left-continuous Kaplan-Meier estimate of the pooled data (unweighted, no strata, with
entry times when given), which spreads the event times evenly and resists outliers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import get_ax
from ._common import risk_table
from ._cox_engine import Problem, schoenfeld, zph_statistics

__all__ = ["PHTestResult", "ph_test"]

TRANSFORMS = ("km", "rank", "identity", "log")


class PHTestResult:
    """Result of :meth:`CoxResult.ph_test`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per term (``terms=True``) or model column (``terms=False``) and a
        ``GLOBAL`` row: ``chisq, df, p_value`` (R's ``cox.zph(...)$table``).
    residuals : pandas.DataFrame
        Scaled Schoenfeld residuals, one row per event sorted by stratum and time:
        ``time``, ``g`` (the transformed time, uncentred), ``stratum`` (with strata) and
        one column per term (R's ``zph$y``); their smoothed trend against ``g`` estimates
        beta(t).
    transform : str
    """

    def __init__(self, table: pd.DataFrame, residuals: pd.DataFrame, transform: str, coef: pd.Series):
        self.table = table
        self.residuals = residuals
        self.transform = transform
        self._coef = coef

    def plot(self, term: str | None = None, ax=None, *, smooth: bool = True):
        """Scaled Schoenfeld residuals of one term against transformed time, with a
        lowess smooth and a dashed line at the fitted coefficient (single-column terms).

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        names = [c for c in self.table.index if c != "GLOBAL"]
        term = names[0] if term is None else term
        if term not in names:
            raise ValueError(f"term must be one of {names}; got {term!r}")
        x = self.residuals["g"].to_numpy()
        y = self.residuals[term].to_numpy()
        ok = np.isfinite(y)
        ax.plot(x[ok], y[ok], "o", markersize=3, alpha=0.5, color="grey")
        if smooth and ok.sum() > 3:
            from statsmodels.nonparametric.smoothers_lowess import lowess

            fitted = lowess(y[ok], x[ok], frac=2 / 3, return_sorted=True)
            ax.plot(fitted[:, 0], fitted[:, 1], color="black")
        if term in self._coef.index:
            ax.axhline(float(self._coef[term]), linestyle="--", color="tab:blue", linewidth=1)
        label = {"km": "1 - KM(t-)", "rank": "rank of time", "identity": "time", "log": "log time"}
        ax.set_xlabel(label.get(self.transform, f"g(time) [{self.transform}]"))
        ax.set_ylabel(f"beta(t) for {term}")
        p = self.table.loc[term, "p_value"]
        ax.set_title(f"{term}: p = {p:.3g}", fontsize="medium")
        return ax

    def __repr__(self) -> str:
        return f"PHTestResult(transform={self.transform!r})\n{self.table.round(4).to_string()}"


def _transform_times(fit, transform) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    d = fit._data
    stop, event, entry = d["stop"], d["event"], d["entry"]
    if callable(transform):
        name = getattr(transform, "__name__", "user")
        return (lambda t: np.asarray(transform(np.asarray(t, dtype=float)), dtype=float)), name
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(map(repr, TRANSFORMS))} or a function; got {transform!r}")
    if transform == "identity":
        return (lambda t: np.asarray(t, dtype=float)), transform
    if transform == "log":
        return (lambda t: np.log(np.asarray(t, dtype=float))), transform
    if transform == "rank":
        srt = np.sort(stop)

        def rank(t):
            t = np.asarray(t, dtype=float)
            below = np.searchsorted(srt, t, side="left")
            upto = np.searchsorted(srt, t, side="right")
            return below + (upto - below + 1) / 2.0

        return rank, transform
    # km: left-continuous Kaplan-Meier of the pooled data (unweighted), as R
    rt = risk_table(stop, event, None, entry)
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - np.where(rt.at_risk > 0, rt.events / rt.at_risk, 0.0))

    def km(t):
        k = np.searchsorted(rt.time, np.asarray(t, dtype=float), side="left")
        return 1.0 - np.concatenate([[1.0], surv])[k]

    return km, transform


def ph_test(fit, *, transform="km", terms: bool = True) -> PHTestResult:
    """Proportional-hazards test of a fitted :class:`~analysis.survival.cox.CoxResult`.

    See :meth:`CoxResult.ph_test`; agrees with R's ``cox.zph(fit, transform=, terms=)``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import cox
    >>> df = pd.DataFrame({"days": [5, 8, 12, 20, 6, 15, 30, 41, 9, 25, 3, 17],
    ...                    "relapsed": [1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1],
    ...                    "rapamycin": [0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1]})
    >>> fit = cox("rapamycin", df, duration="days", event="relapsed")
    >>> fit.ph_test().table.round(3)
               chisq  df  p_value
    rapamycin  0.119   1     0.73
    GLOBAL     0.119   1     0.73
    """
    p = len(fit.columns)
    if p == 0:
        raise ValueError("the model has no covariates: there is nothing to test")
    coef = fit.summary["coef"]
    keep = np.flatnonzero(np.isfinite(coef.to_numpy()))
    if keep.size == 0:
        raise ValueError("every coefficient is NaN (redundant columns): there is nothing to test")
    prob0 = fit._problem
    scale = fit._scale[keep]
    sub = Problem(np.ascontiguousarray(prob0.X[:, keep]), prob0.w, prob0.rs, prob0.efron)
    beta = fit._beta_work[keep]
    rs = prob0.rs
    g_fun, tname = _transform_times(fit, transform)
    tg = g_fun(rs.group_time)
    nd = rs.n_deaths
    gt = tg - np.sum(nd * tg) / nd.sum()  # centred at the mean over events
    u, imat = zph_statistics(sub, beta, gt)
    q = keep.size
    names = [fit.columns[i] for i in keep]
    remap = {int(old): new for new, old in enumerate(keep)}
    if terms:
        groups = {}
        for term, cols in fit.terms.items():
            kept = [remap[c] for c in cols if c in remap]
            if kept:
                groups[term] = kept
    else:
        groups = {names[j]: [j] for j in range(q)}
    rows = []
    for term, jj in groups.items():
        kk = list(range(q)) + [q + j for j in jj]
        uu = np.concatenate([np.zeros(q), u[[q + j for j in jj]]])
        stat = float(np.linalg.solve(imat[np.ix_(kk, kk)], uu) @ uu)
        rows.append((term, stat, len(jj)))
    uu = np.concatenate([np.zeros(q), u[q:]])
    rows.append(("GLOBAL", float(np.linalg.solve(imat, uu) @ uu), q))
    table = pd.DataFrame(rows, columns=["term", "chisq", "df"]).set_index("term")
    table["p_value"] = stats.chi2.sf(table["chisq"], table["df"])
    table.index.name = None

    residuals = _scaled_schoenfeld(fit, sub, beta, scale, imat[:q, :q], groups, terms, keep, g_fun)
    return PHTestResult(table, residuals, tname, coef.iloc[keep])


def _scaled_schoenfeld(fit, sub, beta, scale, imat11, groups, terms, keep, g_fun) -> pd.DataFrame:
    """R's ``cox.zph(...)$y``: Schoenfeld residuals scaled by the inverse of the average
    information (per stratum where a covariate is constant there), plus the coefficient."""
    d = fit._data
    rs = sub.rs
    ev = rs.event_rows
    q = keep.size
    sch = schoenfeld(sub, beta) / scale
    vinfo = imat11 / np.outer(scale, scale)
    s_codes = d["strata"] if d["strata"] is not None else np.zeros(d["stop"].size, dtype=np.intp)
    n_str = max(len(fit.strata_levels), 1)
    order = np.lexsort((ev, d["stop"][ev], s_codes[ev]))
    ev_sorted = ev[order]
    sch = sch[order]
    # used[s, k]: events of stratum s if column k varies in stratum s, else 0
    Xk = sub.X
    used = np.zeros((n_str, q))
    deaths_s = np.bincount(s_codes[ev], minlength=n_str)
    frame = pd.DataFrame(Xk).groupby(s_codes)
    varies = (frame.max() != frame.min()).reindex(range(n_str), fill_value=False).to_numpy()
    used = np.where(varies, deaths_s[:, None], 0).astype(float)
    fcoef = beta * scale
    multi = terms and any(len(j) > 1 for j in groups.values())
    for jj in groups.values():
        if len(jj) > 1 and np.any(used[:, jj] == 0):
            used[:, jj] = used[:, jj].max(axis=1, keepdims=True)
    wt = np.zeros((q, q))
    for s in range(n_str):
        wt += np.minimum.outer(used[s], used[s])
    vmean = vinfo / np.where(wt == 0, 1.0, wt)
    cols = list(groups.keys())
    if multi:
        T = np.zeros((q, len(groups)))
        for i, jj in enumerate(groups.values()):
            if len(jj) == 1:
                T[jj[0], i] = 1.0
            else:
                T[jj, i] = fcoef[jj]
        sch = sch @ T
        vmean = T.T @ vmean @ T
        used = used[:, [jj[0] for jj in groups.values()]]
    elif terms:
        sel = [jj[0] for jj in groups.values()]
        sch, vmean, used = sch[:, sel], vmean[np.ix_(sel, sel)], used[:, sel]
    sres = np.array(sch, dtype=float)
    start = 0
    counts = used.max(axis=1).astype(int)
    for s in range(n_str):
        k = np.flatnonzero(used[s] > 0)
        j = slice(start, start + counts[s])
        if k.size:
            tmp = np.full((counts[s], sres.shape[1]), np.nan)
            tmp[:, k] = np.linalg.solve(vmean[np.ix_(k, k)], sres[j][:, k].T).T
            sres[j] = tmp
        start += counts[s]
    for i, jj in enumerate(groups.values()):
        sres[:, i] += fcoef[jj[0]] if len(jj) == 1 or not multi else 1.0
    times = d["stop"][ev_sorted]
    out = pd.DataFrame({"time": times, "g": g_fun(times)})
    if fit.strata_columns:
        out["stratum"] = [fit.strata_levels[s] for s in s_codes[ev_sorted]]
    for i, c in enumerate(cols):
        out[c] = sres[:, i]
    return out
