"""Satterthwaite and Kenward-Roger degrees of freedom for the linear mixed model of
:func:`analysis.response.mixed` (random effects Z b per cluster, b ~ N(0, G), residuals
sigma^2 I), with the machinery of the MMRM's ``_mmrm_df``.

The covariance parameters are theta = (vech(G) row-wise, sigma^2), so that V_i = Z_i G Z_i' +
sigma^2 I is linear in theta (d V_i / d theta_k is Z_i (E_ab + E_ba) Z_i' or I; no second
derivatives), as pbkrtest's parameterisation of lmer models.

* ``satterthwaite``: lmerTest's convention, W the inverse observed information (minus the
  Hessian of the fitted REML or ML log-likelihood, here by central differences of its
  analytic gradient; at the optimum the result does not depend on the parameterisation,
  lmerTest's (theta, sigma) included).
* ``kenward-roger``: pbkrtest's ``vcovAdj`` and ``Lb_ddf``: W the inverse expected
  information 2 [tr(P V_k P V_l)]^-1 (REML only), adjusted covariance Phi_A.

Each evaluation loops over clusters in Python: fine for trial-sized data; the cost grows with
the number of clusters times the number of covariance parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._mmrm_df import DFMethod, kr_adjusted_cov

__all__ = ["MIXED_DF_METHODS", "mixed_df_method"]

#: the df= choices of mixed()
MIXED_DF_METHODS = ("asymptotic", "satterthwaite", "kenward-roger")


def _split(X, y, Z, groups):
    codes, _ = pd.factorize(np.asarray(groups))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(codes.max() + 2))
    return [(X[order[a:b]], y[order[a:b]], Z[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]


def _theta_parts(q: int):
    rows, cols = np.tril_indices(q)
    order = np.lexsort((cols, rows))
    return rows[order], cols[order]


def _G(theta, q):
    rows, cols = _theta_parts(q)
    G = np.zeros((q, q))
    G[rows, cols] = theta[: rows.size]
    G[cols, rows] = theta[: rows.size]
    return G


def _dV(Zi, q):
    """d V_i / d theta_k for every k (``k x n_i x n_i``)."""
    rows, cols = _theta_parts(q)
    out = []
    for a, b in zip(rows, cols):
        E = np.zeros((q, q))
        E[a, b] = E[b, a] = 1.0
        out.append(Zi @ E @ Zi.T)
    out.append(np.eye(Zi.shape[0]))
    return np.stack(out)


class _LMM:
    def __init__(self, X, y, Z, groups, reml: bool):
        self.blocks = _split(np.asarray(X, float), np.asarray(y, float), np.asarray(Z, float), groups)
        self.q = Z.shape[1]
        self.p = X.shape[1]
        self.reml = reml
        self.dV = [_dV(Zi, self.q) for _, _, Zi in self.blocks]

    def pieces(self, theta):
        G, s2 = _G(theta, self.q), theta[-1]
        Ws = []
        A = np.zeros((self.p, self.p))
        b = np.zeros(self.p)
        for Xi, yi, Zi in self.blocks:
            W = np.linalg.inv(Zi @ G @ Zi.T + s2 * np.eye(len(yi)))
            Ws.append(W)
            A += Xi.T @ W @ Xi
            b += Xi.T @ W @ yi
        Phi = np.linalg.inv(A)
        return Ws, Phi, Phi @ b

    def gradient(self, theta):
        Ws, Phi, beta = self.pieces(theta)
        k = theta.size
        g = np.zeros(k)
        P = np.zeros((k, self.p, self.p))
        for (Xi, yi, _), W, dV in zip(self.blocks, Ws, self.dV):
            r = W @ (yi - Xi @ beta)
            WX = W @ Xi
            for j in range(k):
                g[j] += -0.5 * np.sum(W * dV[j]) + 0.5 * r @ dV[j] @ r
                if self.reml:
                    P[j] += WX.T @ dV[j] @ WX
        if self.reml:
            g += 0.5 * np.einsum("pq,kqp->k", Phi, P)
        return g

    def hessian(self, theta):
        k = theta.size
        H = np.empty((k, k))
        for j in range(k):
            h = 1e-5 * max(1.0, abs(theta[j]))
            tp, tm = theta.copy(), theta.copy()
            tp[j] += h
            tm[j] -= h
            H[:, j] = (self.gradient(tp) - self.gradient(tm)) / (2.0 * h)
        return 0.5 * (H + H.T)

    def kr_matrices(self, theta):
        Ws, Phi, _ = self.pieces(theta)
        k = theta.size
        P = np.zeros((k, self.p, self.p))
        Q = np.zeros((k, k, self.p, self.p))
        trVV = np.zeros((k, k))
        for (Xi, _, _), W, dV in zip(self.blocks, Ws, self.dV):
            WX = W @ Xi
            WdV = np.einsum("ab,kbc->kac", W, dV)
            P += np.einsum("ap,kab,bq->kpq", WX, dV, WX)
            Q += np.einsum("ap,kab,lbc,cq->klpq", WX, dV, WdV, WX, optimize=True)
            trVV += np.einsum("kab,lba->kl", WdV, WdV)
        return Phi, P, Q, trVV


def mixed_df_method(name: str, X, y, Z, groups, G, sigma2: float, *, reml: bool, residual_df: float) -> DFMethod:
    """The :class:`~._mmrm_df.DFMethod` of a fitted linear mixed model at (G, sigma^2)."""
    q = Z.shape[1]
    rows, cols = _theta_parts(q)
    theta = np.concatenate([np.asarray(G, float)[rows, cols], [float(sigma2)]])
    model = _LMM(X, y, Z, groups, reml)
    if name == "satterthwaite":
        Phi, P, _, _ = model.kr_matrices(theta)
        W = np.linalg.inv(-model.hessian(theta))
        return DFMethod(name="satterthwaite", Phi=Phi, cov=Phi, P=P, W=W, residual_df=residual_df)
    if name == "kenward-roger":
        if not reml:
            raise ValueError("mixed(df='kenward-roger'): Kenward-Roger is defined for REML fits; pass reml=True")
        Phi, P, Q, trVV = model.kr_matrices(theta)
        PhiP = np.einsum("pq,kqr->kpr", Phi, P)
        info = 0.5 * (trVV - 2.0 * np.einsum("pq,klqp->kl", Phi, Q) + np.einsum("kpq,lqp->kl", PhiP, PhiP))
        W = np.linalg.inv(info)
        cov = kr_adjusted_cov(Phi, P, Q, np.zeros_like(Q), W)
        return DFMethod(name="kenward-roger-expected", Phi=Phi, cov=cov, P=P, W=W, residual_df=residual_df)
    raise ValueError(name)
