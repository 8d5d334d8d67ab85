"""Fitting helper for the adjunct comparison at registry scale.

* :func:`logit_scores` -- fitted probabilities of a logistic regression by plain IRLS on a
  numeric matrix, for the overlap and balance *diagnostics* of the comparison table (the
  reported propensity analyses use :func:`analysis.adjuncts.propensity_scores`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["logit_scores"]


def logit_scores(X: np.ndarray, t: np.ndarray, *, max_iter: int = 25, tol: float = 1e-7,
                 max_rows: int = 50_000) -> np.ndarray:
    """Fitted P(t = 1 | X) of a logistic regression (X includes the intercept) by Newton's
    method; quasi-separated columns give scores near 0 or 1, which the overlap diagnostic
    reports. Fitted on at most ``max_rows`` rows (a fixed-seed random subset; diagnostics
    only), predicted for all."""
    Xf, tf = X, t
    if len(t) > max_rows:
        idx = np.sort(np.random.default_rng(20260101).choice(len(t), max_rows, replace=False))
        Xf, tf = X[idx], t[idx]
    beta = np.zeros(X.shape[1])
    ridge = 1e-8 * np.eye(X.shape[1])
    for _ in range(max_iter):
        mu = 1.0 / (1.0 + np.exp(-np.clip(Xf @ beta, -30, 30)))
        w = np.maximum(mu * (1 - mu), 1e-12)
        try:
            step = np.linalg.solve((Xf.T * w) @ Xf + ridge, Xf.T @ (tf - mu))
        except np.linalg.LinAlgError:
            break
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            break
    return 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -30, 30)))
