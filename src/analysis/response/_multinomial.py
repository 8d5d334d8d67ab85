"""Baseline-category (multinomial) logistic regression, agreeing with R's
``nnet::multinom(Hess = TRUE)``: log(P(Y = k) / P(Y = first level)) = x'beta_k.

See ``docs/response.md`` section 4.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._kernel import ModelFrame, ModelResult, capture_env, check_conf_level, coef_table, get_ax, model_frame, with_aliases
from ._base import RRR_ALIASES, CategoricalModelMixin, warn_not_converged
from ._categorical import fit_mnlogit, ordered_outcome

__all__ = ["MultinomialResult", "multinomial"]


def _softmax_full(E: np.ndarray) -> np.ndarray:
    E = np.column_stack([np.zeros(E.shape[0]), E])
    E = E - E.max(axis=1, keepdims=True)
    P = np.exp(E)
    return P / P.sum(axis=1, keepdims=True)


@dataclass(kw_only=True, eq=False, repr=False)
class MultinomialResult(CategoricalModelMixin, ModelResult):
    """A fitted multinomial logistic regression (the results convention of
    ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by (``category``, ``term``): one block per non-reference category with
        ``coef`` (log relative-risk ratio against the reference category), ``se``,
        ``statistic`` (Wald z), ``p_value``, ``ci_lower``, ``ci_upper``, ``ratio``
        (relative-risk ratio, exp(coef)), ``ratio_lower``, ``ratio_upper``. Standard
        errors from the inverse analytic Hessian, as ``summary(multinom(..., Hess = TRUE))``.
    levels : list
        Outcome categories; the first is the reference.
    params, cov : pandas.Series, pandas.DataFrame
        Parameters category-major (all terms of the second level, then the third, ...),
        the order of R's ``vcov(multinom)``.
    loglik, aic : float
    n_obs, n_dropped, conf_level, converged, formula
        As every model result.

    Notes
    -----
    The summary columns of the previous release (``z``, ``rrr``, ``rrr_ci_lower``,
    ``rrr_ci_upper``) still answer for one release, with a DeprecationWarning.
    """

    levels: list
    loglik: float
    aic: float
    _mf: ModelFrame = field(repr=False)
    _codes: np.ndarray = field(repr=False)

    _renamed = {"n": "n_obs"}
    _ratio_label = "relative-risk ratio"

    @property
    def _prob_labels(self) -> list:
        return list(self.levels)

    @property
    def _p(self) -> int:
        return self._mf.X.shape[1]

    def _B(self, theta):
        return theta.reshape(len(self.levels) - 1, self._p)  # (K-1, p)

    def _probs(self, theta, X):
        return _softmax_full(X @ self._B(theta).T)

    def _dprobs(self, theta, X, dX):
        B = self._B(theta)
        P = self._probs(theta, X)
        dE = np.column_stack([np.zeros(X.shape[0]), dX @ B.T])
        return P * (dE - (P * dE).sum(axis=1, keepdims=True))

    def predict(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Predicted probability of each category for each covariate profile (long
        format), with delta-method intervals on the logit of each probability.
        ``probability`` equals R's ``predict(multinom, type = "probs")``."""
        out = self._predict_probs(profiles)
        prof = profiles.reset_index(drop=True).iloc[out["profile"].to_numpy()].reset_index(drop=True)
        return pd.concat([prof, out.drop(columns="profile")], axis=1)

    def plot(self, ax=None):
        """Relative-risk ratios against the reference category, one colour per category.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        tab = self.summary.drop(index="Intercept", level="term", errors="ignore")
        terms = list(dict.fromkeys(tab.index.get_level_values("term")))
        cats = list(dict.fromkeys(tab.index.get_level_values("category")))
        base = np.arange(len(terms))[::-1].astype(float)
        for i, c in enumerate(cats):
            sub = tab.loc[c].reindex(terms)
            pos = base + (i - (len(cats) - 1) / 2) * 0.2
            ax.errorbar(sub["ratio"], pos, xerr=[sub["ratio"] - sub["ratio_lower"], sub["ratio_upper"] - sub["ratio"]],
                        fmt="o", capsize=3, label=f"{c} vs {self.levels[0]}")
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yticks(base)
        ax.set_yticklabels(terms)
        ax.set_xlabel(f"relative-risk ratio ({self.conf_level:.0%} CI)")
        ax.legend(frameon=False)
        return ax

    def __repr__(self) -> str:
        return (f"MultinomialResult({self.formula!r}, n_obs={self.n_obs}, reference={self.levels[0]!r})\n"
                f"{pd.DataFrame(self.summary).round(4).to_string()}")


def multinomial(formula: str, data: pd.DataFrame, *, conf_level: float = 0.95, dropna: bool = False) -> MultinomialResult:
    """Multinomial (baseline-category) logistic regression, as R's ``nnet::multinom``.

    log(P(Y = k) / P(Y = level 1)) = x'beta_k for every level k after the first.

    Parameters
    ----------
    formula : str
        ``"category ~ predictors"``. Levels are the Categorical's order (unused ones
        dropped), otherwise sorted values; the first is the reference, as in R.
    data : pandas.DataFrame
    conf_level : float, default 0.95
    dropna : bool, default False

    Returns
    -------
    MultinomialResult

    Notes
    -----
    statsmodels' ``MNLogit`` with Newton-Raphson on its analytic Hessian (to a change in
    the parameters below 1e-12); the covariance is the inverse of that Hessian. nnet fits
    by BFGS and computes the same Hessian analytically (``nnet:::multinomHess``).

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.response import multinomial
    >>> df = pd.DataFrame({"category": ["non-responder", "partial", "responder", "responder", "partial",
    ...                                 "non-responder", "responder", "partial", "responder", "non-responder"],
    ...                    "failures": [4, 2, 0, 1, 3, 5, 1, 2, 3, 2]})
    >>> fit = multinomial("category ~ failures", df)
    >>> fit.summary["coef"].round(3).tolist()
    [3.299, -1.108, 5.678, -2.288]
    """
    conf_level = check_conf_level(conf_level)
    mf = model_frame(formula, data, env=capture_env(1), dropna=dropna)
    codes, levels = ordered_outcome(mf.y, mf.lhs, require_order=False)
    if len(levels) < 2:
        raise ValueError(f"the outcome {mf.lhs!r} has a single level ({levels}); nothing to model")
    fit = fit_mnlogit(mf.X.to_numpy(dtype=float), codes, mf.formula)
    if not fit.converged:
        warn_not_converged(f"multinomial({formula!r})", "Newton-Raphson reached 200 iterations")
    terms = list(mf.X.columns)
    index = pd.MultiIndex.from_tuples([(levels[k + 1], t) for k in range(len(levels) - 1) for t in terms],
                                      names=["category", "term"])
    tab = coef_table(range(len(fit.theta)), fit.theta, np.sqrt(np.diag(fit.cov)), conf_level, ratio=True)
    tab.index = index
    return MultinomialResult(
        summary=with_aliases(tab, RRR_ALIASES), cov=pd.DataFrame(fit.cov, index=index, columns=index),
        n_obs=mf.n, n_dropped=mf.n_dropped, conf_level=conf_level, converged=fit.converged, formula=mf.formula,
        levels=list(levels), loglik=fit.loglik, aic=-2.0 * fit.loglik + 2.0 * len(fit.theta), _mf=mf, _codes=codes,
    )
