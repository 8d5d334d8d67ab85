"""Linear mixed models of scores over time, agreeing with R's ``lme4::lmer``.

Random intercepts (``re_formula="1"``) or random intercepts and slopes
(``re_formula="~day"``, unstructured covariance as lme4's ``(day | patient)``) per
cluster (patient), fitted by REML (default, as lmer) or maximum likelihood. See
``docs/response.md`` section 5.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
from statsmodels.regression.mixed_linear_model import MixedLM

from .._kernel import (
    ModelFrame, ModelResult, capture_env, check_choice, check_conf_level, coef_table, design_for,
    formula_variables, model_frame, renamed_arguments, with_aliases, z_value,
)
from ._base import LONGITUDINAL_PLOT_KINDS, STATISTIC_ALIASES, longitudinal_plot, warn_not_converged
from .._kernel.marginal import MarginalInputs
from ._marginal_methods import MarginalMeansMixin, z_df
from ._mmrm_df import DFMethod
from ._mmrm_lmm_df import MIXED_DF_METHODS, mixed_df_method

__all__ = ["MixedResult", "mixed"]

PLOT_KINDS = LONGITUDINAL_PLOT_KINDS


@dataclass(kw_only=True, eq=False, repr=False)
class MixedResult(MarginalMeansMixin, ModelResult):
    """A fitted linear mixed model (the results convention of ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        Fixed effects indexed by term: ``coef``, ``se``, ``statistic`` (Wald z),
        ``p_value``, ``ci_lower``, ``ci_upper`` (no ratio columns: a linear model). The
        covariance is lme4's ``vcov(fit)``: sigma^2 (X' V^-1 X)^-1 at the estimated
        variance components (not the inverse observed information of all parameters).
        Wald z-tests and normal intervals: lme4 gives no p-values because the null
        distribution of t in mixed models is not exactly t; with many patients the normal
        approximation is good, with few use a Kenward-Roger or Satterthwaite method
        elsewhere.
    params, cov : pandas.Series, pandas.DataFrame
        Fixed effects and their covariance (lme4's ``vcov``).
    cluster : str
        The column identifying a patient's rows (the grouping factor).
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
    df_method : str
        The ``df=`` option of the fit (``"asymptotic"``, ``"satterthwaite"``,
        ``"kenward-roger"``).
    n_obs, n_clusters, n_dropped : int
    conf_level, converged, formula
        As every model result.

    Notes
    -----
    ``lsmeans`` and ``contrast`` (emmeans conventions, ``docs/response.md``) use ``cov`` and
    the fit's ``df=`` rule for every linear combination (emmeans' ``lmer.df``:
    ``"satterthwaite"``, ``"kenward-roger"`` with its adjusted covariance, ``"asymptotic"``:
    z tests, df ``inf``); ``scale`` has no effect (identity link).

    Names of the previous release, kept for one release with a DeprecationWarning: the
    summary column ``z``, the attributes ``groups`` (now ``cluster``) and ``n_groups``
    (now ``n_clusters``).
    """

    cluster: str
    reml: bool
    variance_components: pd.DataFrame
    loglik: float
    reml_criterion: float
    deviance: float
    aic: float
    bic: float
    n_clusters: int
    time: str | None = None
    outcome: str | None = None
    df_method: str = "asymptotic"
    _mf: ModelFrame = field(repr=False)
    _fit: object = field(repr=False)
    _df: DFMethod | None = field(default=None, repr=False)

    _renamed = {"groups": "cluster", "n_groups": "n_clusters", "n": "n_obs"}

    def _marginal_blocks(self, scale: str) -> list[tuple[dict, MarginalInputs]]:
        df = z_df if self._df is None else self._df.df
        return [({}, MarginalInputs(self._mf, self.params.to_numpy(dtype=float), self.cov.to_numpy(dtype=float), df,
                                    self.conf_level))]

    def predict(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Population-level (fixed-effects) predictions with delta-method intervals.

        As ``predict(fit, newdata, re.form = NA)`` in lme4; ``se`` from the fixed-effects
        covariance.
        """
        X = design_for(self._mf, profiles).to_numpy(dtype=float)
        est = X @ self.params.to_numpy()
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.cov.to_numpy(), X))
        z = z_value(self.conf_level)
        out = profiles.copy()
        out["prediction"] = est
        out["se"] = se
        out["ci_lower"] = est - z * se
        out["ci_upper"] = est + z * se
        return out

    def random_effects(self) -> pd.DataFrame:
        """Predicted random effects (BLUPs) per cluster, as lme4's ``ranef``."""
        re = self._fit.random_effects
        return pd.DataFrame({k: np.asarray(v) for k, v in re.items()}).T.set_axis(
            list(self.variance_components["term"][: len(next(iter(re.values())))]), axis=1
        )

    def plot(self, ax=None, *, kind: str = "estimates", data: pd.DataFrame | None = None):
        """The fixed effects with their intervals (``kind="estimates"``, the intercept left
        out), or individual trajectories with the model mean and its confidence band
        (``kind="trajectories"``, see :func:`analysis.response.trajectory_plot`; needs a
        model with one time variable, drawn from ``data`` or the rows fitted).

        Returns
        -------
        matplotlib.axes.Axes
        """
        return longitudinal_plot(self, ax, kind, data, ratio_label="estimate", model_name="mixed")

    def __repr__(self) -> str:
        return (f"MixedResult({self.formula!r}, cluster={self.cluster!r}, reml={self.reml}, n_obs={self.n_obs}, "
                f"n_clusters={self.n_clusters})\n{pd.DataFrame(self.summary).round(4).to_string()}\n"
                f"{self.variance_components.round(4).to_string(index=False)}")


def _re_formula(re_formula: str) -> str:
    s = re_formula.strip()
    if s.startswith("~"):
        s = s[1:].strip()
    return "~ " + s


@renamed_arguments(groups="cluster")
def mixed(
    formula: str,
    data: pd.DataFrame,
    *,
    cluster: str,
    re_formula: str = "1",
    reml: bool = True,
    time: str | None = None,
    conf_level: float = 0.95,
    dropna: bool = False,
    df: str = "asymptotic",
) -> MixedResult:
    """Linear mixed model, as R's ``lme4::lmer(formula + (re | cluster), REML = reml)``.

    Parameters
    ----------
    formula : str
        Fixed effects, ``"score ~ day + C(site)"``.
    data : pandas.DataFrame
        Long format: one row per assessment.
    cluster : str
        Column identifying the patient (the grouping factor). Called ``groups`` in the
        previous release (still accepted for one release, with a DeprecationWarning).
    re_formula : str, default "1"
        Random effects per cluster: "1" (random intercept, lmer's ``(1 | patient)``) or
        "~day" (random intercept and slope with unstructured covariance, ``(day | patient)``).
    reml : bool, default True
        Restricted maximum likelihood (lmer's default) or maximum likelihood (needed to
        compare fixed effects by likelihood ratio).
    time : str, optional
        The time column, for :meth:`MixedResult.plot` with ``kind="trajectories"``; default
        the single numeric variable of ``re_formula`` if any.
    conf_level : float, default 0.95
    dropna : bool, default False
        Rows with a missing value in a column the model uses (the formula's, ``cluster``,
        the random-effect variables) raise an error naming the column; with ``dropna=True``
        they are dropped and counted in ``n_dropped``.
    df : str, default "asymptotic"
        Degrees of freedom of the coefficient tests: ``"asymptotic"`` (Wald z, as before),
        ``"satterthwaite"`` (lmerTest's ``ddf = "Satterthwaite"``, observed information) or
        ``"kenward-roger"`` (pbkrtest's / lmerTest's ``ddf = "Kenward-Roger"``, expected
        information, REML only; ``cov`` and ``se`` are then its adjusted covariance). With
        either, ``summary`` has a ``df`` column and t-based p-values and intervals
        (``analysis.response._mmrm_lmm_df``).

    Returns
    -------
    MixedResult

    Notes
    -----
    statsmodels' ``MixedLM`` on the profiled likelihood: BFGS (gradient tolerance
    1e-9) and L-BFGS (1e-10), keeping the higher likelihood; its REML log-likelihood has the
    same constants as lme4's. ``converged`` says that an optimiser met its criterion at the
    log-likelihood kept (to 1e-6); otherwise a :class:`~analysis.ConvergenceWarning` is
    issued. The fixed-effects
    covariance is recomputed as lme4's (see ``summary``).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from analysis.response import mixed
    >>> rng = np.random.default_rng(1)
    >>> pid = np.repeat(np.arange(20), 5); day = np.tile([0, 7, 14, 21, 28], 20)
    >>> score = 20 - 0.3 * day + rng.normal(0, 3, 20)[pid] + rng.normal(0, 2, 100)
    >>> fit = mixed("score ~ day", pd.DataFrame({"pid": pid, "day": day, "score": score}), cluster="pid")
    >>> round(float(fit.summary.loc["day", "coef"]), 2)
    -0.28
    >>> list(fit.summary.columns)
    ['coef', 'se', 'statistic', 'p_value', 'ci_lower', 'ci_upper']
    """
    conf_level = check_conf_level(conf_level)
    check_choice("df", df, MIXED_DF_METHODS)
    if df == "kenward-roger" and not reml:
        raise ValueError("mixed(df='kenward-roger'): Kenward-Roger is defined for REML fits; pass reml=True")
    env = capture_env(1)  # the caller's namespace (capture_env skips the renamed-argument wrapper)
    re_f = _re_formula(re_formula)
    try:
        re_desc = patsy.ModelDesc.from_formula(re_f)
    except patsy.PatsyError as exc:
        raise ValueError(f"re_formula {re_formula!r} could not be parsed: {exc}") from None
    re_codes = [f.code for term in re_desc.rhs_termlist for f in term.factors]
    re_cols, re_unknown = formula_variables(re_codes, data.columns, env=env)
    extra: dict[str, str | list[str]] = {"cluster": cluster}
    if re_cols or re_unknown:
        extra["random-effect variable"] = re_cols + re_unknown  # unknown names are reported as missing columns
    mf = model_frame(formula, data, env=env, dropna=dropna, extra=extra)
    y = mf.y.to_numpy(dtype=float)
    X = mf.X.to_numpy(dtype=float)
    try:
        Z = patsy.dmatrix(re_f, mf.data, eval_env=mf.env, return_type="dataframe")
    except patsy.PatsyError as exc:
        raise ValueError(f"re_formula {re_formula!r} could not be evaluated on the data: {exc}") from None
    g = mf.data[cluster].to_numpy()
    model = MixedLM(y, X, groups=g, exog_re=Z.to_numpy(dtype=float))
    fit = None
    errors = []
    candidates = []
    # BFGS, then L-BFGS (which can step too far and fail on some data); keep the best
    for kw in (dict(method=["bfgs"], gtol=1e-9), dict(method=["lbfgs"], pgtol=1e-10, factr=10.0)):
        with warnings.catch_warnings():
            # statsmodels' own warnings (boundary, Hessian); convergence is read from the fits below
            warnings.simplefilter("ignore")
            try:
                cand = model.fit(reml=reml, maxiter=2000, **kw)
            except (np.linalg.LinAlgError, ValueError) as exc:
                errors.append(f"{kw['method'][0]}: {exc}")
                continue
        if not np.isfinite(cand.llf):
            continue
        candidates.append(cand)
        if fit is None or cand.llf > fit.llf + 1e-9:
            fit = cand
    if fit is None:
        raise RuntimeError(f"mixed({formula!r}): the optimiser failed ({'; '.join(errors)})")
    # converged: the fit kept met its optimiser's criterion, or another optimiser that did
    # reached the same log-likelihood (BFGS's gradient tolerance 1e-9 is often just missed
    # at the optimum that L-BFGS confirms)
    converged = any(bool(getattr(c, "converged", True)) and c.llf >= fit.llf - 1e-6 for c in candidates)
    if not converged:
        warn_not_converged(f"mixed({formula!r})", "neither BFGS nor L-BFGS met its tolerance")
    # lme4's vcov: sigma^2 (X' V^-1 X)^-1 with V = Z G Z' / sigma^2 + I per cluster
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
    re_names = list(Z.columns)
    if time is None:
        num = [c for c in re_cols if pd.api.types.is_numeric_dtype(mf.data[c].dtype)]
        time = num[0] if len(num) == 1 else None

    names = list(mf.X.columns)
    beta = np.asarray(fit.fe_params, dtype=float)
    method = None
    if df == "asymptotic":
        summary = coef_table(names, beta, np.sqrt(np.diag(cov_fe)), conf_level)
    else:
        method = mixed_df_method(df, X, y, Zm, g, G, scale, reml=reml, residual_df=float(len(y) - X.shape[1]))
        cov_fe = method.cov
        summary = coef_table(names, beta, np.sqrt(np.diag(cov_fe)), conf_level, df=method.df(np.eye(len(names))))
    cov_re = np.asarray(fit.cov_re, dtype=float)
    rows = []
    for i, a in enumerate(re_names):
        rows.append((cluster, a, cov_re[i, i], np.sqrt(cov_re[i, i])))
    for i in range(len(re_names)):
        for j in range(i + 1, len(re_names)):
            rows.append((cluster, f"{re_names[i]}:{re_names[j]}", cov_re[i, j],
                         cov_re[i, j] / np.sqrt(cov_re[i, i] * cov_re[j, j])))
    rows.append(("Residual", "", float(fit.scale), float(np.sqrt(fit.scale))))
    loglik = float(fit.llf)
    k = len(names) + len(re_names) * (len(re_names) + 1) // 2 + 1
    return MixedResult(
        summary=with_aliases(summary, STATISTIC_ALIASES), cov=pd.DataFrame(cov_fe, index=names, columns=names),
        n_obs=mf.n, n_dropped=mf.n_dropped, conf_level=conf_level, converged=converged, formula=mf.formula,
        cluster=cluster, reml=reml,
        variance_components=pd.DataFrame(rows, columns=["group", "term", "variance", "sd"]),
        loglik=loglik, reml_criterion=-2.0 * loglik if reml else float("nan"),
        deviance=float("nan") if reml else -2.0 * loglik,
        aic=-2.0 * loglik + 2.0 * k, bic=-2.0 * loglik + np.log(mf.n) * k,
        n_clusters=int(mf.data[cluster].nunique()), time=time, outcome=mf.lhs, df_method=df, _mf=mf, _fit=fit,
        _df=method,
    )
