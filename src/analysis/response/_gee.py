"""Generalised estimating equations for repeated scores or responses, agreeing with R's
``geepack::geeglm(std.err = "san.se", scale.fix = FALSE)``.

The working correlation's parameter is estimated exactly as geepack does (Yan & Fine
2004; geepack's ``gee2.cc``/``famstr.cc``):

* scale phi = sum of squared Pearson residuals / N (no degrees-of-freedom correction);
* exchangeable: alpha = mean over all within-cluster pairs of r_j r_k / phi;
* AR(1): the correlation of two visits of a patient is alpha^|w_j - w_k|, with w the
  **wave index**: the position of the visit's time among the distinct times of the data,
  in order (geepack's ``geeglm(waves = time)`` turns the times into ``as.factor(time)``
  and uses its integer codes, so only the order of the times matters: ages 8/10/12/14
  and days 0/7/14/21 are waves 1, 2, 3, 4, and a patient who missed the second visit has
  waves 1, 3, 4). Without a time column the wave is the position within the patient.
  alpha solves sum over all within-cluster pairs of
  d alpha^(d-1) (r_j r_k / phi - alpha^d) = 0 with d = |w_j - w_k| (least squares of the
  pair products on alpha^d, all lags; geepack's ``cor_rho_ar1`` and ``update_alpha``).

statsmodels' ``Exchangeable`` gives the same alpha with ``ddof_scale=0``, which is set
here; its ``Autoregressive`` uses a different (weighted, conditional) estimator and builds
the working correlation from positions, not times, so :class:`GeepackAR1` replaces its
``update`` and its correlation matrix. See ``docs/response.md`` section 6.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.genmod import cov_struct as cs
from statsmodels.genmod import families
from statsmodels.genmod.generalized_estimating_equations import GEE
from statsmodels.tools import sm_exceptions

from .._kernel import (
    ModelFrame, ModelResult, capture_env, check_choice, check_conf_level, coef_table, design_for,
    model_frame, renamed_arguments, with_aliases, z_value,
)
from ._base import LONGITUDINAL_PLOT_KINDS, ODDS_RATIO_ALIASES, STATISTIC_ALIASES, longitudinal_plot, warn_not_converged
from .._kernel.marginal import MarginalInputs
from ._logistic import binary_outcome
from ._marginal_methods import MarginalMeansMixin, logit_inverse_link, z_df

__all__ = ["GEEResult", "GeepackAR1", "gee", "wave_index"]

COV_STRUCTS = ("exchangeable", "ar1", "independence")
FAMILIES = ("gaussian", "binomial")
PLOT_KINDS = LONGITUDINAL_PLOT_KINDS
#: |alpha| is kept below this so that the working correlation stays invertible
_ALPHA_MAX = 0.999


def wave_index(time) -> np.ndarray:
    """geepack's waves: 1 + the position of each time among the distinct times, in order
    (R's ``as.integer(as.factor(time))``).

    Examples
    --------
    >>> wave_index([0, 7, 14, 21, 0, 14]).tolist()
    [1, 2, 3, 4, 1, 3]
    """
    codes, _ = pd.factorize(pd.Series(np.asarray(time)), sort=True)
    return codes.astype(np.int64) + 1


def _ar1_alpha(z: np.ndarray, d: np.ndarray, start: float) -> float:
    """Root of sum E (z - a^d) = 0, E = d a^(d-1) (the least-squares fit of a^d to the pair
    products z at lags d, geepack's fixed point), by Gauss-Newton from ``start``."""
    a = float(np.clip(start, -_ALPHA_MAX, _ALPHA_MAX)) if np.isfinite(start) else 0.0
    dmin = float(d.min())
    if a == 0.0 and dmin > 1.0:
        # at 0 the derivative of a^d vanishes for every lag above 1: start from the moment
        # estimate of the shortest lag instead (geepack, whose waves are consecutive
        # integers, always has lag-1 pairs in practice)
        m = float(np.mean(z[d == dmin]))
        a = float(np.clip(np.sign(m) * abs(m) ** (1.0 / dmin), -0.95, 0.95))
    for _ in range(200):
        rho = a**d
        E = d * a ** (d - 1.0)
        den = float(E @ E)
        if den == 0.0 or not np.isfinite(den):
            break
        a_new = float(np.clip(a + float(E @ (z - rho)) / den, -_ALPHA_MAX, _ALPHA_MAX))
        if not np.isfinite(a_new):
            break
        if abs(a_new - a) < 1e-14:
            return a_new
        a = a_new
    return a


class GeepackAR1(cs.Autoregressive):
    """AR(1) working correlation as geepack's: alpha^|w_j - w_k| for the waves w (the
    model's ``time``: wave indices from :func:`wave_index`, or positions within the
    cluster), with geepack's moment estimator of alpha.

    alpha is the least-squares fit of alpha^d to the products of standardised Pearson
    residuals over all within-cluster pairs, phi = mean squared Pearson residual, solved by
    Gauss-Newton (geepack takes one such step per iteration; at convergence both solve the
    same equation). Rows of a cluster must come in increasing wave order, without ties
    (:func:`gee` sorts and checks them); the inverse of the correlation matrix is then
    tridiagonal also when waves are missed, which :meth:`covariance_matrix_solve` uses.
    """

    def __init__(self):
        super().__init__(grid=False)  # grid only affects statsmodels' own update, replaced here

    def _waves(self, index: int) -> np.ndarray:
        return np.asarray(self.model.time_li[index][:, 0], dtype=float)

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
            w = self._waves(i)
            resid_li.append(r[j] * r[k])
            dist_li.append(np.abs(w[k] - w[j]))
        if not resid_li:
            self.dep_params = 0.0
            return
        phi = ssr / n
        self.dep_params = _ar1_alpha(np.concatenate(resid_li) / phi, np.concatenate(dist_li), float(self.dep_params))

    def covariance_matrix(self, endog_expval, index):
        w = self._waves(index)
        return float(self.dep_params) ** np.abs(w[:, None] - w[None, :]), True

    def covariance_matrix_solve(self, expval, index, stdev, rhs):
        # AR(1) at increasing waves is Markov: with rho_i = alpha^(w_{i+1} - w_i) between
        # neighbours, the inverse correlation is tridiagonal with diagonal
        # 1/(1 - rho_{i-1}^2) + rho_i^2/(1 - rho_i^2) (rho_0 = rho_n = 0) and off-diagonal
        # -rho_i/(1 - rho_i^2)
        w = self._waves(index)
        k = w.size
        if k == 1:
            return [x / stdev**2 if x.ndim == 1 else x / (stdev**2)[:, None] for x in rhs]
        rho = float(self.dep_params) ** np.diff(w)
        c = 1.0 / (1.0 - rho**2)
        diag = np.ones(k)
        diag[1:] += rho**2 * c  # 1/(1 - rho^2) = 1 + rho^2/(1 - rho^2)
        diag[:-1] += rho**2 * c
        off = -rho * c
        out = []
        for x in rhs:
            flat = x.ndim == 1
            x1 = (x[:, None] if flat else x) / stdev[:, None]
            y = diag[:, None] * x1
            y[:-1] += off[:, None] * x1[1:]
            y[1:] += off[:, None] * x1[:-1]
            y /= stdev[:, None]
            out.append(y[:, 0] if flat else y)
        return out


def _cov_struct(name: str):
    if name == "exchangeable":
        return cs.Exchangeable()
    if name == "ar1":
        return GeepackAR1()
    return cs.Independence()


@dataclass(kw_only=True, eq=False, repr=False)
class GEEResult(MarginalMeansMixin, ModelResult):
    """A fitted GEE model (the results convention of ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term: ``coef``, ``se`` (robust sandwich, geepack's "san.se"),
        ``statistic`` (Wald z), ``p_value``, ``ci_lower``, ``ci_upper``; for
        ``family="binomial"`` also ``ratio`` (odds ratio), ``ratio_lower``,
        ``ratio_upper``; then ``naive_se``, the model-based standard error (geepack's
        ``vbeta.naiv``, with the estimated scale).
    params, cov : pandas.Series, pandas.DataFrame
        Coefficients and their robust covariance.
    cluster : str
        The column identifying a patient's rows.
    alpha : float
        The working correlation parameter (NaN for independence), geepack's ``alpha``; for
        AR(1) the correlation of visits one wave apart.
    scale : float
        phi = mean squared Pearson residual, geepack's ``gamma`` (estimated also for the
        binomial family: it enters alpha and ``naive_se``, not the robust standard errors).
    cov_struct, family : str
    time : str or None
        The time column (geepack's ``waves``).
    n_obs, n_clusters, n_dropped : int
    conf_level, converged, formula
        As every model result.

    Notes
    -----
    ``lsmeans`` and ``contrast`` (emmeans conventions, ``docs/response.md``) use the robust
    covariance and z tests (emmeans' ``vcov.method = "vbeta"``); for the binomial family
    probabilities by default (``scale="response"``, the delta method; ``scale="link"``: log
    odds), for the Gaussian family the identity scale.

    Names of the previous release, kept for one release with a DeprecationWarning: the
    summary columns ``z`` (and, binomial, ``odds_ratio``, ``odds_ratio_ci_lower``,
    ``odds_ratio_ci_upper``), the attributes ``groups`` (now ``cluster``) and ``n_groups``
    (now ``n_clusters``).
    """

    cluster: str
    cov_struct: str
    family: str
    alpha: float
    scale: float
    n_clusters: int
    time: str | None = None
    outcome: str | None = None
    _mf: ModelFrame = field(repr=False)
    _fit: object = field(repr=False)

    _renamed = {"groups": "cluster", "n_groups": "n_clusters", "n": "n_obs"}

    def _marginal_blocks(self, scale: str) -> list[tuple[dict, MarginalInputs]]:
        link = logit_inverse_link if self.family == "binomial" and scale == "response" else None
        inputs = MarginalInputs(self._mf, self.params.to_numpy(dtype=float), self.cov.to_numpy(dtype=float), z_df,
                                self.conf_level, link)
        return [({}, inputs)]

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

    def plot(self, ax=None, *, kind: str = "estimates", data: pd.DataFrame | None = None):
        """The coefficients with their robust intervals (``kind="estimates"``, odds ratios
        on a log axis for the binomial family, the intercept left out), or individual
        trajectories with the population-averaged mean and its band
        (``kind="trajectories"``, needs ``time``; drawn from ``data`` or the rows fitted).

        Returns
        -------
        matplotlib.axes.Axes
        """
        return longitudinal_plot(self, ax, kind, data, ratio_label="odds ratio" if self.family == "binomial" else "estimate", model_name="gee")

    def __repr__(self) -> str:
        return (f"GEEResult({self.formula!r}, cluster={self.cluster!r}, cov_struct={self.cov_struct!r}, "
                f"family={self.family!r}, alpha={self.alpha:.4g}, n_obs={self.n_obs}, n_clusters={self.n_clusters})\n"
                f"{pd.DataFrame(self.summary).round(4).to_string()}")


@renamed_arguments(groups="cluster")
def gee(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str,
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
    cluster : str
        Column identifying the patient (the cluster). Called ``groups`` in the previous
        release (still accepted for one release, with a DeprecationWarning).
    cov_struct : {"exchangeable", "ar1", "independence"}, default "exchangeable"
        Working correlation. The estimates stay consistent and the robust standard errors
        valid whichever is chosen; a closer one is more efficient.
    family : {"gaussian", "binomial"}, default "gaussian"
    time : str, optional
        Column of the visit times (numbers or anything with an order; geepack's
        ``waves``). For AR(1) only the **order** of the times counts, as in geepack: each
        distinct time of the data is a wave, numbered in order, and the lag between two
        visits is the difference of their wave numbers (visits every 7 days are one wave
        apart; a missed visit makes a lag of 2). A patient may not have two rows at the
        same time. Without ``time``, rows are taken in their order within each patient and
        the lag is the difference in position (geepack without ``waves``). Also used by
        :meth:`GEEResult.plot` with ``kind="trajectories"``.
    conf_level : float, default 0.95
    dropna : bool, default False
        Rows with a missing value in a column the model uses (the formula's, ``cluster``,
        ``time``) raise an error naming the column; with ``dropna=True`` they are dropped
        and counted in ``n_dropped`` (the waves are then numbered among the rows kept, as
        geeglm does after ``na.omit``).

    Returns
    -------
    GEEResult

    Notes
    -----
    statsmodels' ``GEE`` (``cov_type="robust"``, ``ddof_scale=0``, parameter tolerance
    1e-10, at most 500 iterations) with geepack's AR(1) (:class:`GeepackAR1`). Match on the
    R side with ``geeglm(..., corstr=, scale.fix = FALSE, std.err = "san.se", waves = time)``
    on data sorted by cluster. Sandwich without small-sample correction.

    Examples
    --------
    Weekly visits (days 0, 7, 14, 21), one missed by every fifth patient; with AR(1) the
    correlation is per visit (wave), not per day:

    >>> import numpy as np, pandas as pd
    >>> from analysis.response import gee
    >>> rng = np.random.default_rng(2)
    >>> pid = np.repeat(np.arange(30), 4); day = np.tile([0, 7, 14, 21], 30)
    >>> score = 20 - 0.3 * day + rng.normal(0, 3, 30)[pid] + rng.normal(0, 2, 120)
    >>> d = pd.DataFrame({"pid": pid, "day": day, "score": score})
    >>> d = d[~((d["pid"] % 5 == 0) & (d["day"] == 7))]
    >>> fit = gee("score ~ day", d, cluster="pid", cov_struct="ar1", time="day")
    >>> 0.3 < fit.alpha < 0.9, fit.n_obs, fit.n_clusters
    (True, 114, 30)
    >>> list(fit.summary.columns)
    ['coef', 'se', 'statistic', 'p_value', 'ci_lower', 'ci_upper', 'naive_se']
    """
    conf_level = check_conf_level(conf_level)
    check_choice("cov_struct", cov_struct, COV_STRUCTS)
    check_choice("family", family, FAMILIES)
    # the caller's namespace (capture_env skips the renamed-argument wrapper)
    mf = model_frame(formula, data, env=capture_env(1), dropna=dropna, extra={"cluster": cluster, "time": time})
    if family == "binomial":
        y = binary_outcome(mf.y, mf.lhs)
        fam = families.Binomial()
    else:
        y = mf.y.to_numpy(dtype=float)
        fam = families.Gaussian()
    X = mf.X.to_numpy(dtype=float)
    g = mf.data[cluster].to_numpy()
    codes, uniques = pd.factorize(g)  # clusters in order of first appearance
    if time is not None:
        waves = wave_index(mf.data[time])
        order = np.lexsort((waves, codes))
        if cov_struct == "ar1":
            sc, sw = codes[order], waves[order]
            tie = (sc[1:] == sc[:-1]) & (sw[1:] == sw[:-1])
            if tie.any():
                i = int(np.flatnonzero(tie)[0])
                n_ties = int(tie.sum())
                raise ValueError(
                    f"{n_ties} pair(s) of rows have the same cluster and {time!r} (first: cluster "
                    f"{uniques[sc[i]]!r} at {time} = {mf.data[time].to_numpy()[order[i]]!r}): the AR(1) working "
                    "correlation needs one row per patient and time; aggregate or drop the repeats"
                )
    else:
        order = np.argsort(codes, kind="stable")
        waves = pd.Series(np.arange(len(codes))).groupby(codes).cumcount().to_numpy() + 1
    model = GEE(y[order], X[order], groups=codes[order], time=waves[order].astype(float), family=fam,
                   cov_struct=_cov_struct(cov_struct))
    with warnings.catch_warnings():
        # convergence is read from the fit and reported with the package's warning class
        warnings.simplefilter("ignore", category=sm_exceptions.ConvergenceWarning)
        fit = model.fit(maxiter=500, ctol=1e-10, ddof_scale=0, cov_type="robust")
    converged = bool(getattr(fit, "converged", True))
    if not converged:
        warn_not_converged(f"gee({formula!r})", "500 iterations")
    # geepack's phi: mean squared Pearson residual at the estimate
    mu = fit.fittedvalues
    phi = float(np.mean((y[order] - mu) ** 2 / fam.variance(mu)))
    alpha = float("nan") if cov_struct == "independence" else float(np.atleast_1d(model.cov_struct.dep_params)[0])
    names = list(mf.X.columns)
    beta = np.asarray(fit.params, dtype=float)
    cov = np.asarray(fit.cov_robust, dtype=float)
    # statsmodels' naive covariance carries its own scale (1 for the binomial); geepack's uses phi
    cov_naive = np.asarray(fit.cov_naive, dtype=float) / float(fit.scale) * phi
    binomial = family == "binomial"
    summary = coef_table(names, beta, np.sqrt(np.diag(cov)), conf_level, ratio=binomial)
    summary["naive_se"] = np.sqrt(np.diag(cov_naive))
    return GEEResult(
        summary=with_aliases(summary, ODDS_RATIO_ALIASES if binomial else STATISTIC_ALIASES),
        cov=pd.DataFrame(cov, index=names, columns=names), n_obs=mf.n, n_dropped=mf.n_dropped,
        conf_level=conf_level, converged=converged, formula=mf.formula, cluster=cluster, cov_struct=cov_struct,
        family=family, alpha=alpha, scale=phi, n_clusters=len(uniques), time=time, outcome=mf.lhs, _mf=mf, _fit=fit,
    )
