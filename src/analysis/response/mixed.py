"""Linear mixed models of scores over time, agreeing with R's ``lme4::lmer``.

Random intercepts (``re_formula="1"``) or random intercepts and slopes
(``re_formula="~day"``, unstructured covariance as lme4's ``(day | patient)``) per group,
fitted by REML (default, as lmer) or maximum likelihood. See ``docs/response.md``
section 5.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm

from ._base import check_level, coef_table
from ._formula import capture_env, design_for, model_frame

__all__ = ["MixedResult", "mixed"]


class MixedResult:
    """A fitted linear mixed model.

    Attributes
    ----------
    summary : pandas.DataFrame
        Fixed effects indexed by term: ``coef``, ``se``, ``z``, ``p_value``, ``ci_lower``,
        ``ci_upper``. The covariance is lme4's ``vcov(fit)``: sigma^2 (X' V^-1 X)^-1 at the
        estimated variance components (not the inverse observed information of all
        parameters). Wald z-tests and normal intervals: lme4 gives no p-values because the
        null distribution of t in mixed models is not exactly t; with many patients the
        normal approximation is good, with few use a Kenward-Roger or Satterthwaite method
        elsewhere.
    variance_components : pandas.DataFrame
        ``group``, ``term``, ``variance``, ``sd`` (correlations have ``term``
        "a:b", ``variance`` = covariance, ``sd`` = correlation), as
        ``as.data.frame(VarCorr(fit))``; the last row is the residual.
    loglik : float
        REML log-likelihood for ``reml=True`` (lme4's ``logLik``), else the
        log-likelihood.
    reml_criterion, deviance : float
        -2 loglik: lme4's ``REMLcrit`` (REML) or ``deviance`` (ML); the other is NaN.
    aic, bic : float
    n_obs, n_groups, n_dropped : int
    """

    def __init__(self, mf, fit, groups_col, re_cols, reml, cov_fe, conf_level, time_col, y_name):
        self._mf = mf
        self._fit = fit
        self.groups = groups_col
        self.reml = reml
        self.conf_level = conf_level
        names = list(mf.X.columns)
        self._names = names
        beta = np.asarray(fit.fe_params, dtype=float)
        self.params = pd.Series(beta, index=names, name="coef")
        self.cov = pd.DataFrame(cov_fe, index=names, columns=names)
        self.summary = coef_table(names, beta, np.sqrt(np.diag(cov_fe)), conf_level)
        cov_re = np.asarray(fit.cov_re, dtype=float)
        rows = []
        for i, a in enumerate(re_cols):
            rows.append((groups_col, a, cov_re[i, i], np.sqrt(cov_re[i, i])))
        for i in range(len(re_cols)):
            for j in range(i + 1, len(re_cols)):
                rows.append((groups_col, f"{re_cols[i]}:{re_cols[j]}", cov_re[i, j],
                             cov_re[i, j] / np.sqrt(cov_re[i, i] * cov_re[j, j])))
        rows.append(("Residual", "", float(fit.scale), float(np.sqrt(fit.scale))))
        self.variance_components = pd.DataFrame(rows, columns=["group", "term", "variance", "sd"])
        self.loglik = float(fit.llf)
        self.reml_criterion = -2.0 * self.loglik if reml else float("nan")
        self.deviance = float("nan") if reml else -2.0 * self.loglik
        k = len(names) + len(re_cols) * (len(re_cols) + 1) // 2 + 1
        self.n_obs = mf.n
        self.n_groups = int(mf.data[groups_col].nunique())
        self.aic = -2.0 * self.loglik + 2.0 * k
        self.bic = -2.0 * self.loglik + np.log(self.n_obs) * k
        self.n_dropped = mf.n_dropped
        self.formula = mf.formula
        self.time = time_col
        self.outcome = y_name

    def predict(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Population-level (fixed-effects) predictions with delta-method intervals.

        As ``predict(fit, newdata, re.form = NA)`` in lme4; ``se`` from the fixed-effects
        covariance.
        """
        X = design_for(self._mf, profiles).to_numpy(dtype=float)
        est = X @ self.params.to_numpy()
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.cov.to_numpy(), X))
        from ..survival._common import z_value

        z = z_value(self.conf_level)
        out = profiles.copy()
        out["prediction"] = est
        out["se"] = se
        out["ci_lower"] = est - z * se
        out["ci_upper"] = est + z * se
        return out

    def random_effects(self) -> pd.DataFrame:
        """Predicted random effects (BLUPs) per group, as lme4's ``ranef``."""
        re = self._fit.random_effects
        return pd.DataFrame({k: np.asarray(v) for k, v in re.items()}).T.set_axis(
            list(self.variance_components["term"][: len(next(iter(re.values())))]), axis=1
        )

    def plot(self, ax=None, *, data: pd.DataFrame | None = None):
        """Individual trajectories and the model mean with its confidence band (see
        :func:`analysis.response.trajectory_plot`); needs a model with one time variable."""
        from .trajectory import trajectory_plot

        if self.time is None:
            raise ValueError("plot needs the time variable: fit with mixed(..., time='day') or use trajectory_plot")
        return trajectory_plot(self._mf.data if data is None else data, time=self.time, score=self.outcome,
                               groups=self.groups, model=self, ax=ax)

    def __repr__(self) -> str:
        return (f"MixedResult({self.formula!r}, groups={self.groups!r}, reml={self.reml}, n={self.n_obs}, "
                f"n_groups={self.n_groups})\n{self.summary.round(4).to_string()}\n"
                f"{self.variance_components.round(4).to_string(index=False)}")


def _re_formula(re_formula: str) -> str:
    s = re_formula.strip()
    if s.startswith("~"):
        s = s[1:].strip()
    return "~ " + s


def mixed(
    formula: str,
    data: pd.DataFrame,
    *,
    groups: str,
    re_formula: str = "1",
    reml: bool = True,
    time: str | None = None,
    conf_level: float = 0.95,
    dropna: bool = False,
) -> MixedResult:
    """Linear mixed model, as R's ``lme4::lmer(formula + (re | groups), REML = reml)``.

    Parameters
    ----------
    formula : str
        Fixed effects, ``"score ~ day + C(site)"``.
    data : pandas.DataFrame
        Long format: one row per assessment.
    groups : str
        Column identifying the patient (the grouping factor).
    re_formula : str, default "1"
        Random effects per group: "1" (random intercept, lmer's ``(1 | patient)``) or
        "~day" (random intercept and slope with unstructured covariance, ``(day | patient)``).
    reml : bool, default True
        Restricted maximum likelihood (lmer's default) or maximum likelihood (needed to
        compare fixed effects by likelihood ratio).
    time : str, optional
        The time column, for :meth:`MixedResult.plot`; default the single numeric variable
        of ``re_formula`` if any.
    conf_level : float, default 0.95
    dropna : bool, default False

    Returns
    -------
    MixedResult

    Notes
    -----
    statsmodels' ``MixedLM`` on the profiled likelihood: BFGS (gradient tolerance
    1e-9) and L-BFGS (1e-10), keeping the higher likelihood; its REML log-likelihood has the same constants as lme4's. The
    fixed-effects covariance is recomputed as lme4's (see ``summary``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.response import mixed
    >>> rng = np.random.default_rng(1)
    >>> pid = np.repeat(np.arange(20), 5); day = np.tile([0, 7, 14, 21, 28], 20)
    >>> score = 20 - 0.3 * day + rng.normal(0, 3, 20)[pid] + rng.normal(0, 2, 100)
    >>> fit = mixed("score ~ day", pd.DataFrame({"pid": pid, "day": day, "score": score}), groups="pid")
    >>> round(float(fit.summary.loc["day", "coef"]), 2)
    -0.28
    """
    conf_level = check_level(conf_level)
    env = capture_env(1)
    re_f = _re_formula(re_formula)
    re_desc = patsy.ModelDesc.from_formula(re_f)
    from ._formula import _factor_codes, used_columns

    re_cols = used_columns(_factor_codes(re_desc.rhs_termlist), data.columns)
    extra = {"groups": groups}
    for i, c in enumerate(re_cols):
        extra[f"random-effect variable {i + 1}"] = c
    mf = model_frame(formula, data, env=env, dropna=dropna, extra=extra)
    y = mf.y.to_numpy(dtype=float)
    X = mf.X.to_numpy(dtype=float)
    Z = patsy.dmatrix(re_f, mf.data, eval_env=env, return_type="dataframe")
    g = mf.data[groups].to_numpy()
    model = sm.MixedLM(y, X, groups=g, exog_re=Z.to_numpy(dtype=float))
    fit = None
    errors = []
    # BFGS, then L-BFGS (which can step too far and fail on some data); keep the best
    for kw in (dict(method=["bfgs"], gtol=1e-9), dict(method=["lbfgs"], pgtol=1e-10, factr=10.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cand = model.fit(reml=reml, maxiter=2000, **kw)
            except (np.linalg.LinAlgError, ValueError) as exc:
                errors.append(f"{kw['method'][0]}: {exc}")
                continue
        if np.isfinite(cand.llf) and (fit is None or cand.llf > fit.llf + 1e-9):
            fit = cand
    if fit is None:
        raise RuntimeError(f"mixed({formula!r}): the optimiser failed ({'; '.join(errors)})")
    # lme4's vcov: sigma^2 (X' V^-1 X)^-1 with V = Z G Z' / sigma^2 + I per group
    G = np.asarray(fit.cov_re, dtype=float)
    scale = float(fit.scale)
    Zm = Z.to_numpy(dtype=float)
    info = np.zeros((X.shape[1], X.shape[1]))
    codes, _ = pd.factorize(g)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(codes.max() + 2))
    for k in range(codes.max() + 1):
        idx = order[bounds[k]:bounds[k + 1]]
        Zg, Xg = Zm[idx], X[idx]
        V = Zg @ G @ Zg.T + scale * np.eye(len(idx))
        info += Xg.T @ np.linalg.solve(V, Xg)
    cov_fe = np.linalg.inv(info)
    re_names = ["Intercept" if c == "Intercept" else c for c in Z.columns]
    if time is None:
        num = [c for c in re_cols if pd.api.types.is_numeric_dtype(mf.data[c].dtype)]
        time = num[0] if len(num) == 1 else None
    return MixedResult(mf, fit, groups, re_names, reml, cov_fe, conf_level, time, mf.lhs)
