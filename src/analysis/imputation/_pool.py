"""Rubin's rules for the results of any of the package's models (``pool``).

Each of m fits on m completed datasets gives estimates Q_i and covariance U_i. The pooled
estimate is their mean Q̄; its total variance T = Ū + (1 + 1/m) B adds the between-imputation
variance B to the mean within-imputation variance Ū (Rubin 1987, ch. 3). Degrees of freedom
are Barnard and Rubin's (1999) small-sample ones, which never exceed the complete-data
degrees of freedom. Per term the same quantities as R's ``mice::pool`` (mice 3.15) are
reported: ``riv`` (relative increase in variance), ``lambda`` (proportion of the variance due
to the missing data) and ``fmi`` (fraction of missing information), with mice's floor of
1e-4 on lambda in the degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
import numpy as np
import pandas as pd

from .._kernel.checks import check_conf_level
from .._kernel.results import ModelResult, coef_table

__all__ = ["PooledResult", "barnard_rubin_df", "complete_data_df", "pool", "pool_estimates"]

#: mice's floor on lambda in Barnard and Rubin's degrees of freedom (``mice:::barnard.rubin``)
LAMBDA_FLOOR = 1e-4


@dataclass(kw_only=True, eq=False, repr=False)
class PooledResult(ModelResult):
    """Estimates pooled over m imputations by Rubin's rules.

    ``summary`` follows the results convention (``coef, se, df, statistic, p_value,
    ci_lower, ci_upper`` and the ratio columns when the pooled model has a ratio scale),
    followed by ``ubar, b, t, riv, lambda, fmi``; ``se`` is sqrt(t), ``df`` Barnard and Rubin's.

    Attributes
    ----------
    m : int
        Number of imputations pooled.
    dfcom : float
        Complete-data degrees of freedom used (``inf`` for large-sample inference).
    within, between : pandas.DataFrame
        Ū and B as matrices; ``cov`` is T = Ū + (1 + 1/m) B.
    model : str
        Class name of the pooled results.
    """

    m: int
    dfcom: float
    within: pd.DataFrame
    between: pd.DataFrame
    model: str

    def __repr__(self) -> str:
        return f"PooledResult({self.model}, m={self.m}, n_obs={self.n_obs}, dfcom={self.dfcom:g})\n{self.summary}"


def complete_data_df(fit: ModelResult) -> float:
    """The complete-data degrees of freedom R's ``mice::pool`` would use for ``fit``.

    mice takes ``df.residual`` (n - p for ``glm`` and ``lm``); for a Cox model the number of
    events minus p. Here: ``n_events - p`` for Cox results (``CoxResult``), ``n_obs - p``
    otherwise, at least 1.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.response import logistic
    >>> d = pd.DataFrame({"y": [0, 1, 0, 1, 1, 0, 1, 1], "x": [1, 2, 3, 4, 5, 6, 7, 8]})
    >>> complete_data_df(logistic("y ~ x", d))
    6.0
    """
    p = len(fit.params)
    if type(fit).__name__ == "CoxResult":
        return float(max(int(getattr(fit, "n_events")) - p, 1))
    return float(max(int(fit.n_obs) - p, 1))


def barnard_rubin_df(m: int, b, t, dfcom: float):
    """Barnard and Rubin's (1999) degrees of freedom, as ``mice:::barnard.rubin``.

    Parameters
    ----------
    m : int
        Number of imputations.
    b, t : array-like
        Between-imputation and total variance of each estimate.
    dfcom : float
        Complete-data degrees of freedom (``inf``: the large-sample (m - 1) / lambda^2).

    Examples
    --------
    >>> round(float(barnard_rubin_df(5, 0.02, 0.1, 30.0)), 4)
    16.3695
    """
    b = np.asarray(b, dtype=float)
    t = np.asarray(t, dtype=float)
    lam = np.maximum((1.0 + 1.0 / m) * b / t, LAMBDA_FLOOR)
    df_old = (m - 1) / lam**2
    if math.isinf(dfcom):
        return df_old
    df_obs = (dfcom + 1.0) / (dfcom + 3.0) * dfcom * (1.0 - lam)
    return df_old * df_obs / (df_old + df_obs)


def _has_ratio(fit: ModelResult) -> bool:
    return "ratio" in fit.summary.columns


def pool(fits: Sequence[ModelResult], *, dfcom: float | None = None, conf_level: float | None = None) -> PooledResult:
    """Pool the results of one model fitted to each of m completed datasets (Rubin's rules).

    Parameters
    ----------
    fits : sequence of results
        At least two results of the same model of this package (anything with ``params`` and
        ``cov`` following ``docs/api.md``), one per imputed dataset, with the same terms.
    dfcom : float, optional
        Complete-data degrees of freedom; by default :func:`complete_data_df` of the first fit
        (as ``mice::pool``); ``float("inf")`` for large-sample inference.
    conf_level : float, optional
        Coverage of the pooled intervals (default: that of the fits).

    Returns
    -------
    PooledResult

    Notes
    -----
    Pooling is on the scale of ``params`` (log hazard or odds ratios, logits, coefficients);
    ratios are exp of the pooled coefficient and its limits, never averages of ratios. Where a
    fit's inference is robust (``cov`` is robust: Cox with ``cluster``, GEE), the robust
    covariance is pooled, as mice pools ``robust.se`` when a fit reports it.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.response import logistic
    >>> rng = np.random.default_rng(1)
    >>> sets = [pd.DataFrame({"x": rng.normal(size=80)}).assign(y=lambda d: (d.x + rng.normal(size=80) > 0).astype(int))
    ...         for _ in range(3)]
    >>> pooled = pool([logistic("y ~ x", d) for d in sets])
    >>> list(pooled.summary.columns)[:7]
    ['coef', 'se', 'df', 'statistic', 'p_value', 'ci_lower', 'ci_upper']
    >>> pooled.m, pooled.dfcom
    (3, 78.0)
    """
    fits = list(fits)
    if len(fits) < 2:
        raise ValueError(f"pool: needs the fits of at least 2 imputed datasets, got {len(fits)}")
    first = fits[0]
    for i, fit in enumerate(fits):
        if not hasattr(fit, "params") or not hasattr(fit, "cov"):
            raise TypeError(f"pool: fit {i} is a {type(fit).__name__}, not a model result with params and cov")
        if type(fit) is not type(first):
            raise TypeError(f"pool: fit {i} is a {type(fit).__name__}, fit 0 a {type(first).__name__}; pool fits of one model")
        if not fit.params.index.equals(first.params.index):
            raise ValueError(f"pool: fit {i} has terms {list(fit.params.index)}, fit 0 {list(first.params.index)}; "
                             "fit the same formula to every imputed dataset")
    level = check_conf_level(first.conf_level if conf_level is None else conf_level)
    m = len(fits)
    index = first.params.index
    q = np.vstack([np.asarray(f.params, dtype=float) for f in fits])
    u = np.stack([np.asarray(f.cov.loc[index, index], dtype=float) for f in fits])
    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    between = np.atleast_2d(np.cov(q, rowvar=False, ddof=1))
    total = ubar + (1.0 + 1.0 / m) * between
    b, t, w = np.diag(between), np.diag(total), np.diag(ubar)
    dfc = complete_data_df(first) if dfcom is None else max(float(dfcom), 1.0)
    df = barnard_rubin_df(m, b, t, dfc)
    with np.errstate(divide="ignore", invalid="ignore"):
        riv = (1.0 + 1.0 / m) * b / w
        lam = (1.0 + 1.0 / m) * b / t
        fmi = (riv + 2.0 / (df + 3.0)) / (riv + 1.0)
    summary = coef_table(index, qbar, np.sqrt(t), level, df=df, ratio=_has_ratio(first))
    summary.index = index.copy()
    summary.index.names = first.params.index.names
    summary = summary.assign(ubar=w, b=b, t=t, riv=riv, **{"lambda": lam}, fmi=fmi)
    def frame(a):
        return pd.DataFrame(a, index=index, columns=index)

    result = PooledResult(summary=summary, cov=frame(total), within=frame(ubar), between=frame(between),
                          n_obs=int(first.n_obs), n_dropped=int(first.n_dropped), conf_level=level,
                          converged=all(bool(f.converged) for f in fits), formula=first.formula,
                          m=m, dfcom=dfc, model=type(first).__name__)
    result._ratio_label = type(first)._ratio_label  # plots label the pooled ratio as the model does
    return result


def pool_estimates(estimates, variances, *, dfcom: float = float("inf"), conf_level: float = 0.95) -> pd.Series:
    """Rubin's rules for one quantity estimated on each of m completed datasets.

    For quantities that are not a model's coefficient: a least-squares-mean difference at a
    visit, a risk difference, a rate on the logit scale.

    Parameters
    ----------
    estimates, variances : sequence of float
        The m estimates and their squared standard errors.
    dfcom : float
        Complete-data degrees of freedom (default ``inf``: large-sample).
    conf_level : float
        Coverage of the interval (default 0.95).

    Returns
    -------
    pandas.Series
        ``estimate, se, df, statistic, p_value, ci_lower, ci_upper, ubar, b, t, riv, lambda,
        fmi, m``.

    Examples
    --------
    >>> r = pool_estimates([1.0, 1.2, 0.9], [0.04, 0.05, 0.045])
    >>> r[["estimate", "ubar", "b"]].round(4).tolist()
    [1.0333, 0.045, 0.0233]
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    if q.ndim != 1 or q.shape != u.shape or len(q) < 2:
        raise ValueError(f"pool_estimates: needs as many variances as estimates, at least 2; got {q.shape} and {u.shape}")
    m = len(q)
    level = check_conf_level(conf_level)
    ubar, b = float(u.mean()), float(q.var(ddof=1))
    t = ubar + (1.0 + 1.0 / m) * b
    df = float(barnard_rubin_df(m, b, t, max(float(dfcom), 1.0)))
    row = coef_table(["estimate"], [q.mean()], [np.sqrt(t)], level, df=[df]).iloc[0]
    riv = (1.0 + 1.0 / m) * b / ubar if ubar > 0 else np.inf
    lam = (1.0 + 1.0 / m) * b / t
    return pd.Series({"estimate": row["coef"], "se": row["se"], "df": df, "statistic": row["statistic"],
                      "p_value": row["p_value"], "ci_lower": row["ci_lower"], "ci_upper": row["ci_upper"],
                      "ubar": ubar, "b": b, "t": t, "riv": riv, "lambda": lam,
                      "fmi": (riv + 2.0 / (df + 3.0)) / (riv + 1.0), "m": m})
