"""Generalised estimating equations for repeated scores or responses, agreeing with R's
``geepack::geeglm(std.err = "san.se", scale.fix = FALSE)``.

The working correlation's parameter is estimated exactly as geepack does (Yan & Fine
2004; geepack's ``gee2.cc``/``famstr.cc``):

* scale phi = sum of squared Pearson residuals / N (no degrees-of-freedom correction);
* exchangeable: alpha = mean over all within-cluster pairs of r_j r_k / phi;
* AR(1): alpha solves sum over all within-cluster pairs of
  d |t_j - t_k| alpha^(d-1) (r_j r_k / phi - alpha^d) = 0 with d = |t_j - t_k| (least
  squares of the pair products on alpha^d, all lags).

statsmodels' ``Exchangeable`` gives the same alpha with ``ddof_scale=0``, which is set
here; its ``Autoregressive`` uses a different (weighted, conditional) estimator, so
:class:`GeepackAR1` replaces its ``update``. See ``docs/response.md`` section 6.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.genmod import cov_struct as cs

from ..survival._common import check_choice, z_value
from ._base import check_level, coef_table
from ._formula import capture_env, design_for, model_frame

__all__ = ["GEEResult", "GeepackAR1", "gee"]

COV_STRUCTS = ("exchangeable", "ar1", "independence")
FAMILIES = ("gaussian", "binomial")


class GeepackAR1(cs.Autoregressive):
    """AR(1) working correlation with geepack's moment estimator of alpha.

    Correlation alpha^|t_j - t_k| (``time`` gives t; the position within the cluster when
    no time is given). alpha is the least-squares fit of alpha^d to the products of
    standardised Pearson residuals over all within-cluster pairs, phi = mean squared
    Pearson residual, solved by Gauss-Newton (geepack takes one such step per iteration;
    at convergence both solve the same equation).
    """

    def __init__(self):
        super().__init__(grid=False)  # grid only affects statsmodels' own update, replaced here

    def update(self, params):
        model = self.model
        if model.weights is not None:  # pragma: no cover - gee() passes no weights
            raise NotImplementedError("GeepackAR1 does not take weights")
        varfunc = model.family.variance
        resid_li, dist_li = [], []
        ssr, n = 0.0, 0
        for i in range(model.num_group):
            expval, _ = model.cached_means[i]
            r = (model.endog_li[i] - expval) / np.sqrt(varfunc(expval))
            ssr += float(np.sum(r * r))
            n += r.size
            if r.size < 2:
                continue
            j, k = np.triu_indices(r.size, 1)
            t = model.time_li[i][:, 0]
            resid_li.append(r[j] * r[k])
            dist_li.append(np.abs(t[k] - t[j]))
        if not resid_li:
            self.dep_params = 0.0
            return
        phi = ssr / n
        z = np.concatenate(resid_li) / phi
        d = np.concatenate(dist_li)
        a = float(np.clip(self.dep_params, -0.99, 0.99)) if np.isfinite(self.dep_params) else 0.0
        for _ in range(100):
            rho = a**d
            E = np.where(d == 1.0, 1.0, d * a ** np.maximum(d - 1.0, 0.0))
            step = float(E @ (z - rho) / (E @ E))
            a_new = a + step
            if not np.isfinite(a_new):
                break
            a_new = float(np.clip(a_new, -0.999, 0.999))
            if abs(a_new - a) < 1e-14:
                a = a_new
                break
            a = a_new
        self.dep_params = a


def _cov_struct(name: str):
    if name == "exchangeable":
        return cs.Exchangeable()
    if name == "ar1":
        return GeepackAR1()
    return cs.Independence()


class GEEResult:
    """A fitted GEE model.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term: ``coef``, ``se`` (robust sandwich, geepack's "san.se"), ``z``,
        ``p_value``, ``ci_lower``, ``ci_upper``; for ``family="binomial"`` also
        ``odds_ratio`` and its CI.
    alpha : float
        The working correlation parameter (NaN for independence), geepack's ``alpha``.
    scale : float
        phi = mean squared Pearson residual, geepack's ``gamma`` (estimated also for the
        binomial family: it enters alpha, not the robust standard errors).
    n_obs, n_groups, n_dropped : int
    """

    def __init__(self, mf, fit, groups, cov_struct, family, alpha, scale, conf_level, time):
        self._mf = mf
        self._fit = fit
        self.groups = groups
        self.cov_struct = cov_struct
        self.family = family
        self.alpha = alpha
        self.scale = scale
        self.conf_level = conf_level
        names = list(mf.X.columns)
        beta = np.asarray(fit.params, dtype=float)
        cov = np.asarray(fit.cov_robust, dtype=float)
        self.params = pd.Series(beta, index=names, name="coef")
        self.cov = pd.DataFrame(cov, index=names, columns=names)
        self.summary = coef_table(names, beta, np.sqrt(np.diag(cov)), conf_level,
                                  ratio="odds_ratio" if family == "binomial" else None)
        self.n_obs = mf.n
        self.n_groups = int(mf.data[groups].nunique())
        self.n_dropped = mf.n_dropped
        self.formula = mf.formula
        self.time = time
        self.outcome = mf.lhs

    def predict(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Population-averaged predictions for covariate profiles with robust
        delta-method intervals (on the link scale, transformed back for binomial)."""
        X = design_for(self._mf, profiles).to_numpy(dtype=float)
        eta = X @ self.params.to_numpy()
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.cov.to_numpy(), X))
        z = z_value(self.conf_level)
        out = profiles.copy()
        if self.family == "binomial":
            f = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
            p = f(eta)
            out["prediction"], out["se"] = p, se * p * (1 - p)
            out["ci_lower"], out["ci_upper"] = f(eta - z * se), f(eta + z * se)
        else:
            out["prediction"], out["se"] = eta, se
            out["ci_lower"], out["ci_upper"] = eta - z * se, eta + z * se
        return out

    def plot(self, ax=None, *, data: pd.DataFrame | None = None):
        """Individual trajectories and the population-averaged mean with its band."""
        from .trajectory import trajectory_plot

        if self.time is None:
            raise ValueError("plot needs the time variable: fit with gee(..., time='day') or use trajectory_plot")
        return trajectory_plot(self._mf.data if data is None else data, time=self.time, score=self.outcome,
                               groups=self.groups, model=self, ax=ax)

    def __repr__(self) -> str:
        return (f"GEEResult({self.formula!r}, groups={self.groups!r}, cov_struct={self.cov_struct!r}, "
                f"family={self.family!r}, alpha={self.alpha:.4g}, n={self.n_obs}, n_groups={self.n_groups})\n"
                f"{self.summary.round(4).to_string()}")


def gee(
    formula: str,
    data: pd.DataFrame,
    *,
    groups: str,
    cov_struct: str = "exchangeable",
    family: str = "gaussian",
    time: str | None = None,
    conf_level: float = 0.95,
    dropna: bool = False,
) -> GEEResult:
    """GEE with robust (sandwich) standard errors, as R's ``geepack::geeglm``.

    Parameters
    ----------
    formula : str
        Mean model, ``"score ~ day + C(site)"`` (gaussian, identity link) or
        ``"responder ~ day"`` (binomial, logit link; outcome boolean or 0/1).
    data : pandas.DataFrame
        Long format, one row per assessment.
    groups : str
        Cluster (patient) column.
    cov_struct : {"exchangeable", "ar1", "independence"}, default "exchangeable"
        Working correlation. The estimates stay consistent and the robust standard errors
        valid whichever is chosen; a closer one is more efficient.
    family : {"gaussian", "binomial"}, default "gaussian"
    time : str, optional
        Column of integer-like times (geepack's ``waves``): the AR(1) lag between two
        assessments is their difference in time. Without it, rows are taken in their order
        within each patient and the lag is the difference in position (geepack without
        ``waves``). Also used by :meth:`GEEResult.plot`.
    conf_level : float, default 0.95
    dropna : bool, default False

    Returns
    -------
    GEEResult

    Notes
    -----
    statsmodels' ``GEE`` (``cov_type="robust"``, ``ddof_scale=0``, parameter tolerance
    1e-10) with geepack's AR(1) estimator (:class:`GeepackAR1`). Match on the R side with
    ``geeglm(..., corstr=, scale.fix = FALSE, std.err = "san.se", waves = time)``: sorted
    by cluster and, within it, by time. Sandwich without small-sample correction.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.response import gee
    >>> rng = np.random.default_rng(2)
    >>> pid = np.repeat(np.arange(30), 4); week = np.tile([0, 1, 2, 3], 30)
    >>> score = 20 - 2 * week + rng.normal(0, 3, 30)[pid] + rng.normal(0, 2, 120)
    >>> fit = gee("score ~ week", pd.DataFrame({"pid": pid, "week": week, "score": score}), groups="pid")
    >>> round(fit.alpha, 2) > 0.3
    True
    """
    conf_level = check_level(conf_level)
    check_choice("cov_struct", cov_struct, COV_STRUCTS)
    check_choice("family", family, FAMILIES)
    mf = model_frame(formula, data, env=capture_env(1), dropna=dropna, extra={"groups": groups, "time": time})
    if family == "binomial":
        from .logistic import binary_outcome

        y = binary_outcome(mf.y, mf.lhs)
        fam = sm.families.Binomial()
    else:
        y = mf.y.to_numpy(dtype=float)
        fam = sm.families.Gaussian()
    X = mf.X.to_numpy(dtype=float)
    g = mf.data[groups].to_numpy()
    # stable order: by cluster (first appearance), then time
    codes, _ = pd.factorize(g)
    if time is not None:
        t = mf.data[time].to_numpy(dtype=float)
        order = np.lexsort((t, codes))
    else:
        t = None
        order = np.argsort(codes, kind="stable")
    if time is None:
        pos = pd.Series(np.arange(len(codes))).groupby(codes).cumcount().to_numpy(dtype=float)
        t_used = pos
    else:
        t_used = t
    model = sm.GEE(y[order], X[order], groups=codes[order], time=t_used[order], family=fam,
                   cov_struct=_cov_struct(cov_struct))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=sm.tools.sm_exceptions.ConvergenceWarning)
        fit = model.fit(maxiter=500, ctol=1e-10, ddof_scale=0, cov_type="robust")
    # geepack's phi: mean squared Pearson residual at the estimate
    mu = fit.fittedvalues
    var = fam.variance(mu)
    phi = float(np.mean((y[order] - mu) ** 2 / var))
    alpha = float("nan") if cov_struct == "independence" else float(np.atleast_1d(model.cov_struct.dep_params)[0])
    return GEEResult(mf, fit, groups, cov_struct, family, alpha, phi, conf_level, time)
