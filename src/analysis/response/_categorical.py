"""What the ordinal and multinomial models share: the outcome's categories in order, and the
baseline-category (multinomial) logit fit, which :mod:`.multinomial` reports and
:meth:`OrdinalResult.compare_multinomial <analysis.response.OrdinalResult.compare_multinomial>`
compares against. Kept apart so that neither model module imports the other.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.discrete.discrete_model import MNLogit
from statsmodels.tools import sm_exceptions

__all__ = ["MNLogitFit", "fit_mnlogit", "ordered_outcome"]


def ordered_outcome(y: pd.Series, name: str, *, require_order: bool = True) -> tuple[np.ndarray, list]:
    """Integer codes 0..K-1 and the levels, in the outcome's order.

    An (ordered or not) pandas Categorical gives its category order (unused categories
    dropped); numbers are sorted. Strings have no order of their own: an error says how
    to give one (``require_order``); otherwise they are sorted.

    Examples
    --------
    >>> ordered_outcome(pd.Series([3, 1, 3, 2]), "y")
    (array([2, 0, 2, 1]), [1, 2, 3])
    """
    if isinstance(y.dtype, pd.CategoricalDtype):
        raw = y.cat.codes.to_numpy()
        used = np.unique(raw)
        remap = np.full(len(y.cat.categories), -1)
        remap[used] = np.arange(used.size)
        return remap[raw], [y.cat.categories[i] for i in used]
    if pd.api.types.is_bool_dtype(y.dtype) or pd.api.types.is_numeric_dtype(y.dtype):
        codes, uniques = pd.factorize(y, sort=True)
        return codes, [u.item() if isinstance(u, np.generic) else u for u in uniques]
    if require_order:
        vals = ", ".join(map(repr, sorted(map(str, pd.unique(y)))[:6]))
        raise ValueError(
            f"the outcome {name!r} holds text ({vals}) whose order is not known: make it an ordered Categorical, "
            f"e.g. data[{name!r}] = pd.Categorical(data[{name!r}], categories=[...lowest to highest...], ordered=True)"
        )
    codes, uniques = pd.factorize(y.astype(str), sort=True)
    return codes, list(uniques)


class MNLogitFit:
    """The numbers of a baseline-category logit fit.

    Attributes
    ----------
    theta : numpy.ndarray
        Parameters category-major (all terms of the second level, then the third, ...), the
        order of R's ``vcov(multinom)``.
    cov : numpy.ndarray
        Inverse of the analytic Hessian, in the same order.
    loglik : float
    converged : bool
    """

    def __init__(self, theta: np.ndarray, cov: np.ndarray, loglik: float, converged: bool):
        self.theta = theta
        self.cov = cov
        self.loglik = loglik
        self.converged = converged


def fit_mnlogit(X: np.ndarray, codes: np.ndarray, formula: str, *, max_iter: int = 200, tol: float = 1e-12) -> MNLogitFit:
    """Fit log(P(Y = k) / P(Y = first level)) = x'beta_k by Newton-Raphson (statsmodels'
    ``MNLogit``, analytic Hessian) to a change in the parameters below ``tol``."""
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(f"the design matrix of {formula!r} is rank deficient: a predictor is constant or a combination of others")
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # convergence is read from mle_retvals and reported by the caller, with the package's warning
        # class; overflow (separation) shows as non-finite estimates, an error below
        warnings.simplefilter("ignore", category=sm_exceptions.ConvergenceWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        fit = MNLogit(codes, X).fit(method="newton", maxiter=max_iter, tol=tol, disp=False)
    B = np.asarray(fit.params, dtype=float)  # (p, K-1)
    # statsmodels' cov_params is category-major too (all terms of level 2, then 3, ...)
    theta, cov = B.T.ravel(), np.asarray(fit.cov_params(), dtype=float)
    if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(cov))):
        raise ValueError(
            f"{formula!r}: the multinomial fit gave non-finite estimates (a predictor or combination separates the "
            "outcome categories?); the maximum-likelihood estimates do not exist"
        )
    return MNLogitFit(theta, cov, float(fit.llf), bool(fit.mle_retvals.get("converged", True)))
