"""One imputation step for one variable: the three methods of ``impute``.

Each function takes the predictors ``x`` (an intercept column included), the variable ``y``
and the mask ``observed``, and returns draws for the missing entries. All three are *proper*
imputations (Rubin 1987): the model's parameters are drawn from their posterior before the
values are, so the between-imputation variance carries the parameters' uncertainty.

* ``norm``: Bayesian linear regression (van Buuren 2018, algorithm 3.1; R's
  ``mice.impute.norm``).
* ``pmm``: predictive mean matching, type 1 (van Buuren 2018, algorithm 3.3; R's
  ``mice.impute.pmm`` with ``matchtype = 1``): observed cases are predicted with the
  least-squares coefficients, missing ones with the drawn coefficients, and each missing value
  takes the observed value of one of the ``donors`` closest observed cases, chosen at random.
* ``logreg``: logistic regression with coefficients drawn from their normal approximation
  (van Buuren 2018, algorithm 3.4; R's ``mice.impute.logreg``). A small ridge penalty keeps the
  fit finite under separation, where mice augments the data instead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["draw_logreg", "draw_norm", "draw_pmm", "norm_parameters"]

#: mice's ridge penalty on X'X (``mice.impute.norm``'s ``ridge = 1e-05``)
RIDGE = 1e-5
#: ridge of the logistic step (relative to the diagonal of the information)
LOGREG_RIDGE = 1e-4


def norm_parameters(x: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    """Least-squares coefficients and one draw of (beta, sigma) from their posterior.

    Returns ``(beta_hat, beta_star, sigma_star)``.
    """
    xtx = x.T @ x
    penalised = xtx + np.diag(RIDGE * np.diag(xtx))
    v = np.linalg.inv(penalised)
    v = (v + v.T) / 2.0
    beta_hat = v @ (x.T @ y)
    resid = y - x @ beta_hat
    df = max(len(y) - x.shape[1], 1)
    sigma_star = float(np.sqrt(resid @ resid / rng.chisquare(df)))
    beta_star = beta_hat + np.linalg.cholesky(v) @ rng.standard_normal(x.shape[1]) * sigma_star
    return beta_hat, beta_star, sigma_star


def draw_norm(x: np.ndarray, y: np.ndarray, observed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws for ``y[~observed]`` from a Bayesian linear regression on ``x``."""
    _, beta, sigma = norm_parameters(x[observed], y[observed], rng)
    xm = x[~observed]
    return xm @ beta + rng.standard_normal(len(xm)) * sigma


def draw_pmm(x: np.ndarray, y: np.ndarray, observed: np.ndarray, rng: np.random.Generator, *,
             donors: int = 5) -> np.ndarray:
    """Observed values of ``y`` matched to the missing cases by predictive mean matching."""
    xo, yo = x[observed], y[observed]
    beta_hat, beta_star, _ = norm_parameters(xo, yo, rng)
    fitted_obs = xo @ beta_hat
    fitted_mis = x[~observed] @ beta_star
    k = min(donors, len(yo))
    order = np.argsort(fitted_obs, kind="stable")
    sorted_fit = fitted_obs[order]
    # the k nearest lie within k places either side of each missing case's insertion point
    pos = np.searchsorted(sorted_fit, fitted_mis)
    window = np.arange(-k, k)[None, :] + pos[:, None]
    window = np.clip(window, 0, len(sorted_fit) - 1)
    dist = np.abs(sorted_fit[window] - fitted_mis[:, None])
    # random tie-break, as mice's matchindex does, so equal distances do not favour one side
    dist = dist + rng.uniform(0.0, 1e-12, size=dist.shape) * (1.0 + np.abs(fitted_mis[:, None]))
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    chosen = nearest[np.arange(len(fitted_mis)), rng.integers(0, k, size=len(fitted_mis))]
    return yo[order[window[np.arange(len(fitted_mis)), chosen]]]


def _logistic_fit(x: np.ndarray, y: np.ndarray, *, max_iter: int = 50, tol: float = 1e-8):
    """Ridge-penalised logistic regression by Newton-Raphson: (beta, covariance).

    The penalty, ``LOGREG_RIDGE`` times the diagonal of X'X / 4 (the information at p = 1/2),
    is fixed before the iterations, so they maximise one penalised likelihood.
    """
    penalty = LOGREG_RIDGE * np.maximum(np.einsum("ij,ij->j", x, x) / 4.0, 1e-8)
    beta = np.zeros(x.shape[1])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30.0, 30.0)))
        info = (x * (p * (1.0 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(info, x.T @ (y - p) - penalty * beta)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30.0, 30.0)))
    cov = np.linalg.inv((x * (p * (1.0 - p))[:, None]).T @ x + np.diag(penalty))
    return beta, (cov + cov.T) / 2.0


def draw_logreg(x: np.ndarray, y: np.ndarray, observed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draws of a 0/1 ``y[~observed]`` from a logistic regression on ``x``."""
    beta_hat, cov = _logistic_fit(x[observed], y[observed])
    beta = beta_hat + np.linalg.cholesky(cov) @ rng.standard_normal(len(beta_hat))
    eta = np.clip(x[~observed] @ beta, -30.0, 30.0)
    p = 1.0 / (1.0 + np.exp(-eta))
    return (rng.uniform(size=len(p)) < p).astype(float)
