"""Logistic regression for a binary outcome (responder, remission), agreeing with R's
``glm(family = binomial)`` and, with probability weights, ``sandwich::vcovHC(type = "HC0")``.

See ``docs/response.md`` section 2.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.tools import sm_exceptions

from .._kernel import (
    ModelFrame, ModelResult, capture_env, check_choice, check_conf_level, coef_table, coefficient_plot, get_ax,
    model_frame, renamed_arguments, with_aliases,
)
from .._kernel.marginal import MarginalInputs
from ._base import ODDS_RATIO_ALIASES, CategoricalModelMixin, warn_not_converged
from ._marginal_methods import MarginalMeansMixin, logit_inverse_link, z_df

__all__ = ["LogisticResult", "logistic", "binary_outcome"]

WEIGHT_TYPES = ("frequency", "probability")
COV_TYPES = ("auto", "model", "HC0")


def binary_outcome(y: pd.Series, name: str) -> np.ndarray:
    """The outcome as 0.0/1.0; booleans or numbers that are all 0 or 1, else a clear error."""
    if pd.api.types.is_bool_dtype(y.dtype):
        return y.to_numpy(dtype=float)
    if isinstance(y.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(y.dtype):
        vals = pd.unique(y)[:6]
        if len(pd.unique(y)) == 2 and all(isinstance(v, (bool, np.bool_)) for v in vals):
            return y.astype(bool).to_numpy(dtype=float)
        raise ValueError(
            f"the outcome {name!r} must be boolean or 0/1; got values {', '.join(map(repr, vals))}. "
            f"Write the event as an expression, e.g. '{name} == \"responder\" ~ ...'"
        )
    v = y.to_numpy(dtype=float)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
        rows = np.flatnonzero(bad)[:5] + 1
        raise ValueError(
            f"the outcome {name!r} must be boolean or 0/1; rows {', '.join(map(str, rows))} have "
            f"{', '.join(map(repr, v[bad][:5]))}"
        )
    return v


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(kw_only=True, eq=False, repr=False)
class LogisticResult(MarginalMeansMixin, CategoricalModelMixin, ModelResult):
    """A fitted logistic regression (the results convention of ``docs/api.md``).

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by term: ``coef`` (log odds ratio), ``se``, ``statistic`` (Wald z),
        ``p_value``, ``ci_lower``, ``ci_upper``, ``ratio`` (odds ratio, exp(coef)),
        ``ratio_lower``, ``ratio_upper`` (Wald intervals, as R's ``confint.default``); with
        a robust covariance (``cov_type="HC0"``) also ``naive_se``, the model-based one.
    params, cov : pandas.Series, pandas.DataFrame
        Coefficients and their covariance (model-based or HC0, see ``cov_type``).
    cov_type : str
        "model" (inverse Fisher information, R's ``vcov(glm)``) or "HC0" (sandwich).
    weight_type : str or None
        "frequency" or "probability" when weighted.
    loglik, deviance, aic : float
        As R's ``logLik``, ``deviance`` and ``AIC`` (frequency weights count as that many
        rows; with probability weights these are of the weighted pseudo-likelihood).
    n_obs, n_events, n_dropped : int
        Rows used, events among them, rows dropped for missing values.
    conf_level, converged, formula
        As every model result.

    Notes
    -----
    ``lsmeans`` and ``contrast`` (emmeans conventions, ``docs/response.md``): probabilities
    by default (``scale="response"``: the log odds averaged over the reference grid, then
    back-transformed; differences of probabilities by the delta method), log odds with
    ``scale="link"``; z-based, with the covariance ``cov`` (model-based or HC0).

    Names of the previous release, kept for one release with a DeprecationWarning: the
    summary columns ``z``, ``odds_ratio``, ``odds_ratio_ci_lower``, ``odds_ratio_ci_upper``
    and the attribute ``vcov`` (now ``cov_type``).
    """

    cov_type: str
    weight_type: str | None = None
    loglik: float
    deviance: float
    aic: float
    n_events: int
    outcome: str
    _mf: ModelFrame = field(repr=False)
    _weights: np.ndarray | None = field(default=None, repr=False)

    _renamed = {"vcov": "cov_type", "n": "n_obs"}
    _ratio_label = "odds ratio"

    @property
    def _prob_labels(self) -> list:
        return [self.outcome]

    def _probs(self, theta, X):
        return _expit(X @ theta)[:, None]

    def _dprobs(self, theta, X, dX):
        p = _expit(X @ theta)
        return (p * (1.0 - p) * (dX @ theta))[:, None]

    def _marginal_blocks(self, scale: str) -> list[tuple[dict, MarginalInputs]]:
        link = logit_inverse_link if scale == "response" else None
        return [({}, MarginalInputs(self._mf, self._theta, self._cov, z_df, self.conf_level, link,
                                    row_weights=self._weights))]

    def predict(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """Predicted probability of the outcome for each covariate profile.

        Parameters
        ----------
        profiles : pandas.DataFrame
            One row per profile, with every column the model uses.

        Returns
        -------
        pandas.DataFrame
            The profiles with ``probability``, ``se`` (delta method) and ``ci_lower``,
            ``ci_upper``: a Wald interval on the log-odds scale transformed back, as
            ``plogis(predict(fit, se.fit = TRUE)$fit +/- z * se.fit)`` in R.
        """
        out = self._predict_probs(profiles).drop(columns=["profile", "category"])
        out.index = profiles.index
        return pd.concat([profiles, out], axis=1)

    def plot(self, ax=None):
        """Forest plot of the odds ratios with their confidence intervals (log scale), the
        intercept left out.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = get_ax(ax)
        tab = self.summary.drop(index="Intercept", errors="ignore")
        return coefficient_plot(ax, tab, xlabel=f"odds ratio ({self.conf_level:.0%} CI)")

    def __repr__(self) -> str:
        w = f", weights={self.weight_type}, cov_type={self.cov_type}" if self.weight_type else ""
        return (f"LogisticResult({self.formula!r}, n_obs={self.n_obs}, events={self.n_events}{w})\n"
                f"{pd.DataFrame(self.summary).round(4).to_string()}")


@renamed_arguments(vcov="cov_type")
def logistic(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: str | None = None,
    weight_type: str | None = None,
    cov_type: str = "auto",
    conf_level: float = 0.95,
    dropna: bool = False,
) -> LogisticResult:
    """Logistic regression of a binary outcome, as R's ``glm(family = binomial)``.

    Parameters
    ----------
    formula : str
        ``"outcome ~ predictors"`` in statsmodels/patsy syntax. The outcome is a boolean or
        0/1 column (``remission``) or an expression (``"category == 'responder' ~ ..."``,
        ``"I(improvement_pct >= 50) ~ ..."``). Categorical predictors are coded against
        their first level (R's default treatment contrasts; ``C(site, Treatment('B'))`` to
        choose another reference).
    data : pandas.DataFrame
        One row per patient (any table).
    weights : str, optional
        Column of case weights (finite, > 0). Requires ``weight_type``.
    weight_type : {"frequency", "probability"}
        What the weights mean. "frequency": a row stands for w identical patients (the fit,
        its standard errors and its likelihood equal those of the expanded table; R's
        ``glm(weights = w)``). "probability": sampling or inverse-probability-of-treatment
        weights (the weighted fit is a pseudo-likelihood; standard errors are robust,
        ``sandwich::vcovHC(fit, type = "HC0")``).
    cov_type : {"auto", "model", "HC0"}, default "auto"
        Covariance of the coefficients: "model" = inverse Fisher information (R's
        ``vcov(glm)``); "HC0" = the sandwich without small-sample factor. "auto": HC0 for
        probability weights, model otherwise. (``survey::svyglm`` reports HC0 times
        n / (n - 1).) Called ``vcov`` in the previous release (still accepted for one
        release, with a DeprecationWarning).
    conf_level : float, default 0.95
        Level of the Wald intervals.
    dropna : bool, default False
        Rows with a missing value in a column the model uses raise an error that names the
        column; with ``dropna=True`` they are dropped and counted in ``n_dropped``.

    Returns
    -------
    LogisticResult

    Examples
    --------
    >>> import pandas as pd
    >>> from analysis.response import logistic
    >>> df = pd.DataFrame({"responder": [1, 0, 1, 1, 0, 1, 0, 0, 1, 1],
    ...                    "failures": [0, 4, 1, 2, 5, 1, 3, 2, 4, 0]})
    >>> fit = logistic("responder ~ failures", df)
    >>> fit.summary.loc["failures", ["coef", "se"]].round(4).tolist()
    [-1.0731, 0.6349]
    >>> round(float(fit.summary.loc["failures", "ratio"]), 3)  # odds ratio per failure
    0.342
    """
    conf_level = check_conf_level(conf_level)
    check_choice("cov_type", cov_type, COV_TYPES)
    if weights is not None:
        if weight_type is None:
            raise ValueError(
                "weights given: say what they mean with weight_type='frequency' (each row stands for w identical "
                "patients; model-based standard errors, as R's glm(weights=)) or weight_type='probability' "
                "(sampling or inverse-probability weights; robust sandwich standard errors)"
            )
        check_choice("weight_type", weight_type, WEIGHT_TYPES)
    elif weight_type is not None:
        raise ValueError("weight_type given without weights")
    # the caller's namespace (capture_env skips the renamed-argument wrapper)
    mf = model_frame(formula, data, env=capture_env(1), dropna=dropna, extra={"weights": weights})
    y = binary_outcome(mf.y, mf.lhs)
    X = mf.X.to_numpy(dtype=float)
    w = None
    if weights is not None:
        w = pd.to_numeric(mf.data[weights], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(w) | (w <= 0)
        if bad.any():
            rows = np.flatnonzero(bad)[:5] + 1
            raise ValueError(f"weights column {weights!r}: weights must be finite numbers > 0 (rows {', '.join(map(str, rows))})")
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        raise ValueError(
            f"the design matrix of {formula!r} is rank deficient ({rank} of {X.shape[1]} columns independent): "
            "a predictor is constant or a combination of others"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=sm_exceptions.PerfectSeparationWarning)
        # convergence is read from the fit and reported below with the package's warning class
        warnings.simplefilter("ignore", category=sm_exceptions.ConvergenceWarning)
        try:
            model = GLM(y, X, family=families.Binomial(), freq_weights=w)
            fit = model.fit(method="IRLS", tol=1e-12, maxiter=200)
        except sm_exceptions.PerfectSeparationWarning:
            raise ValueError(
                f"{formula!r}: perfect separation (a predictor or combination predicts the outcome exactly); "
                "the maximum-likelihood estimates do not exist"
            ) from None
    converged = bool(getattr(fit, "converged", True))
    if not converged:
        warn_not_converged(f"logistic({formula!r})", "IRLS reached 200 iterations")
    if cov_type == "auto":
        cov_type = "HC0" if weight_type == "probability" else "model"
    beta = np.asarray(fit.params, dtype=float)
    cov_model = np.asarray(fit.cov_params(), dtype=float)
    if cov_type == "model":
        cov = cov_model
    else:
        p = _expit(X @ beta)
        ww = np.ones_like(p) if w is None else w
        bread = np.linalg.inv(X.T @ (X * (ww * p * (1.0 - p))[:, None]))
        scores = X * (ww * (y - p))[:, None]
        cov = bread @ (scores.T @ scores) @ bread
    names = list(mf.X.columns)
    summary = coef_table(names, beta, np.sqrt(np.diag(cov)), conf_level, ratio=True)
    if cov_type != "model":
        summary["naive_se"] = np.sqrt(np.diag(cov_model))
    loglik = float(fit.llf)
    return LogisticResult(
        summary=with_aliases(summary, ODDS_RATIO_ALIASES), cov=pd.DataFrame(cov, index=names, columns=names),
        n_obs=mf.n, n_dropped=mf.n_dropped, conf_level=conf_level, converged=converged, formula=mf.formula,
        cov_type=cov_type, weight_type=weight_type, loglik=loglik, deviance=float(fit.deviance),
        aic=float(-2.0 * loglik + 2.0 * len(names)), n_events=int(y.sum()),
        outcome=mf.lhs, _mf=mf, _weights=w,
    )
