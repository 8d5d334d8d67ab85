"""Log-rank and Harrington-Fleming G-rho tests, agreeing with R's ``survival::survdiff``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import get_ax
from ._common import group_indices, prepare

__all__ = ["LogrankResult", "logrank"]


class LogrankResult:
    """A k-sample log-rank (or G-rho) test.

    Attributes
    ----------
    statistic : float
        Chi-square statistic (O - E)' V^- (O - E) on all groups but the first with E > 0.
    dof : int
        Degrees of freedom: groups with expected > 0, minus 1.
    p_value : float
        Upper tail of the chi-square distribution.
    table : pandas.DataFrame
        ``group, n, observed, expected, (O-E)^2/E, (O-E)^2/V``, summed over strata, as
        R's ``print(survdiff)``. For rho != 0 observed and expected are weighted sums.
    variance : pandas.DataFrame
        The k x k variance matrix V of O - E (summed over strata).
    rho : float
    strata : pandas.DataFrame or None
        ``stratum, n`` when strata were given.
    n_dropped : int
        Rows dropped for missing values (``dropna=True``).
    """

    def __init__(self, table, variance, statistic, dof, rho, strata, n_dropped, group_column):
        self.table = table
        self.variance = variance
        self.statistic = float(statistic)
        self.dof = int(dof)
        self.p_value = float(stats.chi2.sf(self.statistic, self.dof)) if self.dof > 0 else float("nan")
        self.rho = rho
        self.strata = strata
        self.n_dropped = n_dropped
        self.group_column = group_column

    @property
    def summary(self) -> pd.DataFrame:
        """One row: statistic, dof, p_value, rho."""
        return pd.DataFrame([{"statistic": self.statistic, "dof": self.dof, "p_value": self.p_value, "rho": self.rho}])

    def plot(self, ax=None):
        """Observed and expected events per group as paired bars; returns the axes."""
        ax = get_ax(ax)
        k = len(self.table)
        x = np.arange(k)
        ax.bar(x - 0.2, self.table["observed"], width=0.4, label="observed")
        ax.bar(x + 0.2, self.table["expected"], width=0.4, label="expected")
        ax.set_xticks(x, [str(g) for g in self.table["group"]])
        ax.set_xlabel(self.group_column or "group")
        ax.set_ylabel("events" if self.rho == 0 else f"weighted events (rho={self.rho:g})")
        ax.set_title(f"chi-square {self.statistic:.2f} on {self.dof} df, p = {self.p_value:.3g}", fontsize="medium")
        ax.legend(frameon=False)
        return ax

    def __repr__(self) -> str:
        return (f"LogrankResult(statistic={self.statistic:.4f}, dof={self.dof}, p_value={self.p_value:.4g}, "
                f"rho={self.rho:g})\n{self.table.to_string(index=False)}")


def _stratum(time: np.ndarray, event: np.ndarray, codes: np.ndarray, k: int, rho: float):
    """Observed, expected and variance of one stratum (vectorised over times and groups)."""
    order = np.argsort(time, kind="stable")
    t, e, g = time[order], event[order], codes[order]
    new = np.empty(t.size, dtype=bool)
    new[0] = True
    new[1:] = t[1:] != t[:-1]
    u = np.cumsum(new) - 1  # distinct-time index of each row
    m = int(u[-1]) + 1
    rows = np.bincount(u * k + g, minlength=m * k).reshape(m, k).astype(float)
    deaths = np.bincount(u * k + g, weights=e.astype(float), minlength=m * k).reshape(m, k)
    risk = np.cumsum(rows[::-1], axis=0)[::-1]  # at risk per group at each time
    n = risk.sum(axis=1)
    d = deaths.sum(axis=1)
    if rho != 0:
        km = np.cumprod(1.0 - d / n)
        wt = np.concatenate([[1.0], km[:-1]]) ** rho  # left-continuous pooled KM, S(t-)^rho
    else:
        wt = np.ones(m)
    has = d > 0
    risk, deaths, n, d, wt = risk[has], deaths[has], n[has], d[has], wt[has]
    obs = (wt[:, None] * deaths).sum(axis=0)
    frac = risk / n[:, None]
    exp = (wt * d)[:, None] * frac
    exp = exp.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        kk = np.where(n > 1, wt * wt * d * (n - d) / (n - 1), 0.0)
    var = np.diag(kk @ frac) - frac.T @ (kk[:, None] * frac)
    return obs, exp, var


def logrank(
    data: pd.DataFrame,
    duration: str,
    event: str,
    group: str,
    *,
    strata: str | None = None,
    rho: float = 0.0,
    dropna: bool = False,
) -> LogrankResult:
    """Test equality of survival curves across groups (log-rank, or G-rho family).

    Agrees with R's ``survdiff(Surv(duration, event) ~ group + strata(strata), rho=rho)``.
    At each distinct event time t_j (within a stratum) with n_j at risk, d_j events, and
    n_kj at risk in group k, the weight is w_j = S(t_j-)^rho with S the Kaplan-Meier of the
    pooled stratum (Harrington and Fleming 1982), and

    * O_k = sum w_j d_kj, E_k = sum w_j d_j n_kj / n_j,
    * V_kl = sum w_j^2 d_j (n_j - d_j) / (n_j - 1) * (n_kj / n_j) (delta_kl - n_lj / n_j),

    summed over strata; the statistic is (O - E)' V^-1 (O - E) dropping the first group
    with E > 0, on (number of groups with E > 0) - 1 degrees of freedom.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (right-censored data only, no weights, as survdiff).
    duration, event : str
        Columns with the time (>= 0) and the event indicator (1/True = event).
    group : str
        Column with the groups to compare (at least two levels).
    strata : str, optional
        Column of strata: the test is computed within each and summed (stratified test).
    rho : float, default 0.0
        0 gives the log-rank (Mantel-Haenszel) test; 1 the Peto & Peto modification of the
        Gehan-Wilcoxon test, as survdiff's rho=1 (weights S(t-) of the pooled KM).
    dropna : bool, default False
        Missing values raise an error unless ``dropna=True`` (then counted in ``n_dropped``).

    Returns
    -------
    LogrankResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.survival import logrank
    >>> df = pd.DataFrame({"t": [3, 5, 7, 9, 4, 6, 11, 13], "e": [1, 1, 1, 0, 1, 0, 1, 0],
    ...                    "arm": ["a"] * 4 + ["b"] * 4})
    >>> res = logrank(df, "t", "e", "arm")
    >>> round(res.statistic, 4), res.dof
    (1.1538, 1)
    """
    rho = float(rho)
    if not np.isfinite(rho) or rho < 0:
        raise ValueError(f"rho must be a finite number >= 0, got {rho!r}")
    sd = prepare(data, duration, event, group=group, strata=strata, dropna=dropna)
    k = sd.group.n_levels
    if k < 2:
        raise ValueError(f"logrank needs at least two groups in column '{group}'; found {k}: {sd.group.levels}")
    obs = np.zeros(k)
    exp = np.zeros(k)
    var = np.zeros((k, k))
    s_codes = sd.strata.codes if sd.strata is not None else np.zeros(sd.n, dtype=np.intp)
    n_strata = sd.strata.n_levels if sd.strata is not None else 1
    for idx in group_indices(s_codes, n_strata):
        o, e, v = _stratum(sd.time[idx], sd.event[idx], sd.group.codes[idx], k, rho)
        obs += o
        exp += e
        var += v
    ok = exp > 0
    if ok.sum() < 2:
        chi = 0.0
    else:
        diff = (obs - exp)[ok][1:]
        vv = var[np.ix_(ok, ok)][1:, 1:]
        chi = float(diff @ np.linalg.solve(vv, diff))
    dof = int(ok.sum()) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame({
            "group": sd.group.levels,
            "n": np.bincount(sd.group.codes, minlength=k),
            "observed": obs,
            "expected": exp,
            "(O-E)^2/E": (obs - exp) ** 2 / exp,
            "(O-E)^2/V": (obs - exp) ** 2 / np.diag(var),
        })
    variance = pd.DataFrame(var, index=sd.group.levels, columns=sd.group.levels)
    strata_table = None
    if sd.strata is not None:
        strata_table = pd.DataFrame({"stratum": sd.strata.levels,
                                     "n": np.bincount(sd.strata.codes, minlength=sd.strata.n_levels)})
    return LogrankResult(table, variance, chi, dof, rho, strata_table, sd.n_dropped, group)
