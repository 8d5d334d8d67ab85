"""Propensity scores, inverse-probability weights, balance and weighted effects.

Adjuncts are given to the patients who respond least (confounding by indication), so a
crude comparison of exposed and unexposed patients is biased. These tools estimate the
probability of exposure from measured baseline covariates, weight patients by its inverse,
check that the weighted groups are balanced, and estimate weighted effects with robust
(sandwich) standard errors. They remove confounding by *measured* covariates only.

Conventions (docs/adjuncts.md):

* Propensity model: logistic regression by maximum likelihood (R ``glm(family=binomial)``).
* Weights: ATE ``T/e + (1-T)/(1-e)``; ATT ``T + (1-T) e/(1-e)``. Stabilised ATE weights
  multiply by the marginal probability of the group received (Robins, Hernán & Brumback
  2000); stabilised ATT weights rescale the controls to sum to their own count.
  Truncation clips weights at stated percentiles (Cole & Hernán 2008).
* Effective sample size per group: (Σw)² / Σw² (Kish 1965).
* Weighted risk difference: weighted least squares of the outcome on exposure with HC0
  sandwich variance (R ``lm(weights=)`` with ``sandwich::vcovHC(type="HC0")``); the
  weights are treated as known, which is conservative for ATE weights (Lunceford &
  Davidian 2004).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from .._kernel import (
    ConvergenceWarning, ModelResult, capture_env, check_choice, check_conf_level, coef_table, get_ax, model_frame,
    with_aliases,
)
from .._table_one import smd

__all__ = ["PropensityModel", "propensity_scores", "ipw_weights", "effective_sample_size", "Balance", "balance",
           "WeightedEffect", "weighted_risk_difference"]

#: summary columns of the previous release -> the convention's (docs/api.md), for one release
SUMMARY_ALIASES = {"z": "statistic", "odds_ratio": "ratio", "or_lower": "ratio_lower", "or_upper": "ratio_upper"}
PLOT_KINDS = ("estimates", "overlap")


def _binary(values: pd.Series, name: str) -> np.ndarray:
    arr = pd.Series(values).astype("object")
    if arr.isna().any():
        raise ValueError(f"{name}: {int(arr.isna().sum())} missing value(s); drop or impute them first")
    numeric = pd.to_numeric(arr.map(lambda v: float(v) if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)) else np.nan))
    bad = numeric[~numeric.isin([0.0, 1.0])]
    if len(bad):
        raise ValueError(f"{name}: expected 0/1 or true/false, found {arr[bad.index[0]]!r} (row {bad.index[0]})")
    return numeric.to_numpy(dtype=float)


@dataclass(kw_only=True, eq=False, repr=False)
class PropensityModel(ModelResult):
    """A fitted propensity-score model: a logistic regression of the exposure on the
    covariates, with the results convention of ``docs/api.md``.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by ``term``: ``coef`` (log-odds), ``se``, ``statistic`` (Wald z),
        ``p_value``, ``ci_lower``, ``ci_upper`` and the odds ratio ``ratio``,
        ``ratio_lower``, ``ratio_upper``. The names of the previous release (``z``,
        ``odds_ratio``, ``or_lower``, ``or_upper``) still answer ``summary["..."]`` for one
        release, with a DeprecationWarning.
    params, cov, conf_int(), n_obs, n_dropped, conf_level, converged, formula
        As every model (``docs/api.md``); ``cov`` is the model-based covariance.
    scores : pandas.Series
        Estimated probability of exposure, indexed like the rows of the data used.
    treatment : pandas.Series
        The exposure (0/1), named after its column.
    result : statsmodels GLMResults
        The underlying fit.
    """

    scores: pd.Series
    treatment: pd.Series
    result: object = None

    _ratio_label: ClassVar[str | None] = "odds ratio"

    @property
    def exposure(self) -> str:
        """Name of the exposure (the formula's left-hand side)."""
        return str(self.treatment.name)

    def weights(self, estimand: str = "ATE", *, stabilized: bool = True, truncate: tuple[float, float] | None = None) -> pd.Series:
        """Inverse-probability weights; see :func:`ipw_weights`."""
        return ipw_weights(self.scores, self.treatment, estimand=estimand, stabilized=stabilized, truncate=truncate)

    def overlap(self) -> pd.DataFrame:
        """Range and quartiles of the scores by group (check positivity)."""
        frame = pd.DataFrame({"score": self.scores, "exposed": self.treatment.astype(bool)})
        return frame.groupby("exposed")["score"].describe()[["count", "min", "25%", "50%", "75%", "max"]]

    def plot(self, ax=None, *, kind: str = "estimates"):
        """Draw on ``ax`` (or the current axes) and return the axes.

        ``kind="estimates"``: the odds ratios with their intervals (log axis), as every
        model; ``kind="overlap"``: histograms of the scores by group (positivity).
        """
        check_choice("kind", kind, PLOT_KINDS)
        if kind == "estimates":
            return super().plot(ax)
        ax = get_ax(ax)
        bins = np.linspace(0, 1, 26)
        for value, label in ((0, "unexposed"), (1, "exposed")):
            ax.hist(self.scores[self.treatment == value], bins=bins, alpha=0.5, density=True, label=label)
        ax.set_xlabel("propensity score")
        ax.set_ylabel("density")
        ax.legend(frameon=False)
        return ax

    def __repr__(self) -> str:
        return (f"PropensityModel({self.formula!r}, n_obs={self.n_obs}, n_dropped={self.n_dropped})\n"
                f"{pd.DataFrame(self.summary).round(4).to_string()}")


def propensity_scores(formula: str, data: pd.DataFrame, *, dropna: bool = False, conf_level: float = 0.95,
                      max_iter: int = 100, tol: float = 1e-10, env=None) -> PropensityModel:
    """Fit a logistic propensity model ``"exposure ~ covariates"`` (patsy syntax).

    Maximum likelihood by IRLS, as R's ``glm(exposure ~ ..., family = binomial)``. The
    formula is read by the package's one formula layer
    (:func:`analysis._kernel.formula.model_frame`): factor levels in R's order, names of the
    caller's namespace, and the one missing-value rule.

    Parameters
    ----------
    formula : str
        ``"exposure ~ covariates"``; the exposure is 0/1 or true/false.
    data : pandas.DataFrame
    dropna : bool, default False
        A missing value in a column the model uses is an error naming the column, unless
        True: those rows are dropped and counted (``n_dropped``); ``scores`` then cover the
        rows used.
    conf_level : float, default 0.95
        Coverage of the summary's intervals.
    max_iter : int, default 100
    tol : float, default 1e-10
        Convergence tolerance of IRLS (relative change in deviance); a fit that stops
        before it issues an :class:`analysis.ConvergenceWarning` and has
        ``converged=False``.
    env : patsy.EvalEnvironment, optional
        Where the formula's names are looked up; default the caller's namespace.

    Returns
    -------
    PropensityModel

    Examples
    --------
    >>> import analysis
    >>> from analysis.adjuncts import propensity_scores
    >>> courses = analysis.derive_outcomes(analysis.load_dataset("data/sample")).courses
    >>> ps = propensity_scores("drug_lamotrigine ~ age + C(diagnosis) + prior_treatment_failures", courses)
    >>> list(ps.summary.columns)
    ['coef', 'se', 'statistic', 'p_value', 'ci_lower', 'ci_upper', 'ratio', 'ratio_lower', 'ratio_upper']
    >>> ps.n_obs, ps.converged
    (500, True)
    >>> w = ps.weights("ATE", stabilized=True, truncate=(1, 99))
    >>> len(w) == ps.n_obs
    True
    """
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning as StatsmodelsConvergenceWarning

    conf_level = check_conf_level(conf_level)
    env = capture_env() if env is None else env
    mf = model_frame(formula, data, env=env, dropna=dropna)
    exposure = mf.lhs
    t = _binary(mf.y, exposure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatsmodelsConvergenceWarning)  # reported below as the package's warning
        result = GLM(t, mf.X, family=families.Binomial()).fit(tol=tol, maxiter=max_iter)
    converged = bool(getattr(result, "converged", True))
    if not converged:
        warnings.warn(f"propensity model {formula!r}: the fit did not converge in {max_iter} iterations; its "
                      "estimates and standard errors may be wrong (check for separation: overlap())",
                      ConvergenceWarning, stacklevel=2)
    names = list(mf.X.columns)
    params = np.asarray(result.params, dtype=float)
    se = np.asarray(result.bse, dtype=float)
    summary = with_aliases(coef_table(names, params, se, conf_level, ratio=True), SUMMARY_ALIASES)
    cov = pd.DataFrame(np.asarray(result.cov_params(), dtype=float), index=pd.Index(names, name="term"),
                       columns=pd.Index(names, name="term"))
    index = data.index[mf.rows]
    return PropensityModel(
        summary=summary, cov=cov, n_obs=mf.n, n_dropped=mf.n_dropped, conf_level=conf_level, converged=converged,
        formula=formula, scores=pd.Series(np.asarray(result.fittedvalues, dtype=float), index=index,
                                          name="propensity_score"),
        treatment=pd.Series(t, index=index, name=exposure), result=result,
    )


def ipw_weights(scores: pd.Series, treatment: pd.Series, *, estimand: str = "ATE", stabilized: bool = True,
                truncate: tuple[float, float] | None = None) -> pd.Series:
    """Inverse-probability weights for the ATE or the ATT (see module docs).

    Parameters
    ----------
    scores, treatment : Series
        Propensity scores in (0, 1) and exposure (0/1), aligned.
    estimand : {"ATE", "ATT"}
    stabilized : bool, default True
    truncate : (low, high) percentiles, optional
        Clip the weights at these percentiles of their distribution, e.g. ``(1, 99)``.

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.adjuncts import ipw_weights
    >>> ipw_weights(pd.Series([0.5, 0.25]), pd.Series([1, 0]), stabilized=False).tolist()
    [2.0, 1.3333333333333333]
    """
    e = np.asarray(scores, dtype=float)
    t = _binary(pd.Series(treatment), "treatment")
    if np.any((e <= 0) | (e >= 1) | np.isnan(e)):
        raise ValueError("propensity scores must lie strictly between 0 and 1 (check positivity: overlap())")
    estimand = estimand.upper()
    if estimand == "ATE":
        w = t / e + (1 - t) / (1 - e)
        if stabilized:
            p = t.mean()
            w = w * np.where(t == 1, p, 1 - p)
    elif estimand == "ATT":
        w = t + (1 - t) * e / (1 - e)
        if stabilized:
            controls = t == 0
            w[controls] = w[controls] * controls.sum() / w[controls].sum()
    else:
        raise ValueError(f"estimand must be 'ATE' or 'ATT', got {estimand!r}")
    if truncate is not None:
        low, high = truncate
        if not 0 <= low < high <= 100:
            raise ValueError(f"truncate must be percentiles (low, high) with 0 <= low < high <= 100, got {truncate}")
        w = np.clip(w, np.percentile(w, low), np.percentile(w, high))
    return pd.Series(w, index=getattr(scores, "index", None), name=f"w_{estimand.lower()}")


def effective_sample_size(weights, treatment=None) -> pd.Series:
    """Kish's effective sample size (Σw)²/Σw², overall or per exposure group."""
    w = np.asarray(weights, dtype=float)
    if treatment is None:
        return pd.Series({"all": w.sum() ** 2 / (w**2).sum()})
    t = _binary(pd.Series(treatment), "treatment")
    return pd.Series({f"{'exposed' if g else 'unexposed'}": w[t == g].sum() ** 2 / (w[t == g] ** 2).sum() for g in (0, 1)})


@dataclass
class Balance:
    """Standardised mean differences before and after weighting, one row per covariate."""

    table: pd.DataFrame
    threshold: float = 0.1

    def plot(self, ax=None):
        """Love plot: absolute SMD per covariate, unweighted and weighted, with the threshold."""
        if ax is None:
            from .._kernel import new_figure

            _, ax = new_figure(width=4.5, height=0.3 * len(self.table) + 1.0)
        y = np.arange(len(self.table))
        ax.scatter(self.table["smd_unweighted"].abs(), y, marker="o", label="unweighted", color="#b03a2e")
        if "smd_weighted" in self.table:
            ax.scatter(self.table["smd_weighted"].abs(), y, marker="s", label="weighted", color="#2b7a3d")
        ax.axvline(self.threshold, color="grey", linestyle="--", linewidth=0.8)
        ax.set_yticks(y, self.table["covariate"])
        ax.set_xlabel("absolute standardised mean difference")
        ax.legend(frameon=False, fontsize=7)
        return ax

    @property
    def balanced(self) -> bool:
        col = "smd_weighted" if "smd_weighted" in self.table else "smd_unweighted"
        return bool((self.table[col].abs() < self.threshold).all())


def balance(data: pd.DataFrame, treatment: str, covariates: list[str], weights=None, *,
            threshold: float = 0.1, smd_denominator: str = "unweighted") -> Balance:
    """SMD of each covariate between exposed and unexposed, before and after weighting.

    Numeric covariates use the continuous SMD, flags the binary one, other columns the
    multivariate SMD over their levels (:func:`analysis.adjuncts.smd`). The denominator
    is the unweighted pooled SD by default (as R's cobalt), so a change reflects means only.
    """
    t = _binary(data[treatment], treatment)
    w = None if weights is None else np.asarray(weights, dtype=float)
    rows = []
    for col in covariates:
        values = data[col]
        if values.isna().any():
            raise ValueError(f"balance: covariate {col!r} has {int(values.isna().sum())} missing value(s)")
        if pd.api.types.is_bool_dtype(values) or set(pd.unique(values)) <= {0, 1, True, False}:
            x, kind = values.astype(float).to_numpy(), "binary"
        elif pd.api.types.is_numeric_dtype(values):
            x, kind = values.to_numpy(dtype=float), "continuous"
        else:
            levels = sorted(pd.unique(values).tolist(), key=str)
            x, kind = np.column_stack([(values == lv).to_numpy(float) for lv in levels]), "categorical"
        row = {"covariate": col, "kind": kind, "smd_unweighted": smd(x, t, 1.0, 0.0, kind=kind)}
        if w is not None:
            row["smd_weighted"] = smd(x, t, 1.0, 0.0, w, kind=kind, denominator=smd_denominator)
        rows.append(row)
    return Balance(pd.DataFrame(rows), threshold)


@dataclass
class WeightedEffect:
    """Weighted outcome rates per group and their difference and ratio."""

    table: pd.DataFrame
    contrast: pd.DataFrame


def weighted_risk_difference(data: pd.DataFrame, outcome: str, treatment: str, weights=None, *,
                             conf_level: float = 0.95) -> WeightedEffect:
    """Weighted rates of a 0/1 outcome by exposure, risk difference and risk ratio, robust SEs.

    The difference is the exposure coefficient of a weighted least-squares fit of the outcome
    on exposure, with the HC0 sandwich variance (R: ``lm(y ~ t, weights = w)`` and
    ``sandwich::vcovHC(fit, type = "HC0")``); the ratio uses the delta method on the log scale
    with the same sandwich covariance of the two rates.
    """
    from statsmodels.regression.linear_model import WLS

    y = _binary(data[outcome], outcome)
    t = _binary(data[treatment], treatment)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    X = np.column_stack([np.ones(len(t)), t])
    fit = WLS(y, X, weights=w).fit(cov_type="HC0")
    cov = np.asarray(fit.cov_params())
    z = stats.norm.ppf(0.5 + conf_level / 2)
    p0 = fit.params[0]
    p1 = fit.params[0] + fit.params[1]
    var0 = cov[0, 0]
    var1 = cov[0, 0] + cov[1, 1] + 2 * cov[0, 1]
    cov01 = cov[0, 0] + cov[0, 1]
    rd, se_rd = fit.params[1], np.sqrt(cov[1, 1])
    log_rr = np.log(p1 / p0)
    se_log_rr = np.sqrt(var1 / p1**2 + var0 / p0**2 - 2 * cov01 / (p0 * p1))
    table = pd.DataFrame({
        "group": ["unexposed", "exposed"], "n": [int((t == 0).sum()), int((t == 1).sum())],
        "weighted_n": [w[t == 0].sum(), w[t == 1].sum()], "rate": [p0, p1], "se": [np.sqrt(var0), np.sqrt(var1)],
    })
    contrast = pd.DataFrame({
        "measure": ["risk difference", "risk ratio"],
        "estimate": [rd, np.exp(log_rr)],
        "se": [se_rd, se_log_rr],
        "ci_lower": [rd - z * se_rd, np.exp(log_rr - z * se_log_rr)],
        "ci_upper": [rd + z * se_rd, np.exp(log_rr + z * se_log_rr)],
        "p_value": [2 * stats.norm.sf(abs(rd / se_rd)), 2 * stats.norm.sf(abs(log_rr / se_log_rr))],
    })
    return WeightedEffect(table, contrast)
