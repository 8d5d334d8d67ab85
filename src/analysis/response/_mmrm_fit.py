"""Numerics of the MMRM: (restricted) maximum likelihood of a linear model whose errors
have a structured covariance Sigma over ordered visits, subjects with missing visits kept.

Model: y_i = X_i beta + e_i, e_i ~ N(0, Sigma_{S_i}), with S_i the visits subject i has
and Sigma_S the rows and columns of Sigma at S (likelihood-based, valid under missing at
random). beta is profiled out: beta(theta) = A^-1 b, A = sum_i X_i' Sigma_S^-1 X_i,
b = sum_i X_i' Sigma_S^-1 y_i, and

    ML:   l(theta) = -1/2 [N log 2 pi + sum_i log|Sigma_S| + r' V^-1 r]
    REML: l(theta) = -1/2 [(N - p) log 2 pi + sum_i log|Sigma_S| + log|A| + r' V^-1 r]

(the REML constant of nlme's ``gls`` and SAS PROC MIXED, without log|X'X|).

Speed: subjects are grouped by their pattern of observed visits, and each pattern keeps
the sufficient statistics M[a, b] = sum_i x_ia x_ib' (``s x s x p x p``), sum_i x_ia y_ib and
sum_i y_ia y_ib. Every evaluation of the likelihood, of its gradient and of the matrices of
the degrees-of-freedom methods then costs O(patterns x s^2 p^2), independent of the number
of subjects. The gradient is analytic: with W = Sigma_S^-1, S_g the residual cross-products
of the pattern and C_g[a, b] = tr(A^-1 M[a, b]) (REML only),

    d l / d Sigma_S = -1/2 sum_patterns [n_g W - W S_g W - W C_g W]

and the chain rule through d Sigma / d theta and d theta / d phi (``_mmrm_covariance``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ._mmrm_covariance import CovarianceStructure

__all__ = ["MMRMData", "MMRMEngine", "Pattern"]

_LOG2PI = float(np.log(2.0 * np.pi))


@dataclass
class Pattern:
    """Subjects sharing one set of observed visits and their sufficient statistics."""

    visits: np.ndarray  # visit positions (sorted)
    n: int  # subjects
    M: np.ndarray  # s x s x p x p
    Xy: np.ndarray  # s x s x p: sum_i x_ia y_ib
    yy: np.ndarray  # s x s


@dataclass
class MMRMData:
    """Rows grouped by subject pattern: what the engine needs from the data."""

    patterns: list[Pattern]
    n_obs: int
    n_subjects: int
    p: int

    @classmethod
    def build(cls, y: np.ndarray, X: np.ndarray, subject_codes: np.ndarray, visit_pos: np.ndarray) -> "MMRMData":
        """Group rows (y, X) by subject and visit pattern; ``visit_pos`` are 0-based visit
        positions, at most one row per subject and visit (checked by the caller)."""
        n_obs, p = X.shape
        order = np.lexsort((visit_pos, subject_codes))
        subj = subject_codes[order]
        vis = visit_pos[order]
        Xs, ys = X[order], y[order]
        starts = np.flatnonzero(np.r_[True, subj[1:] != subj[:-1]])
        ends = np.r_[starts[1:], len(subj)]
        # pattern key of each subject: bitmask of visits
        mask = np.bitwise_or.reduceat(np.left_shift(np.int64(1), vis.astype(np.int64)), starts)
        patterns = []
        for key in np.unique(mask):
            subs = np.flatnonzero(mask == key)
            s = ends[subs[0]] - starts[subs[0]]
            rows = (starts[subs][:, None] + np.arange(s)[None, :]).ravel()
            Xg = Xs[rows].reshape(len(subs), s, p)
            yg = ys[rows].reshape(len(subs), s)
            patterns.append(Pattern(
                visits=vis[starts[subs[0]]:ends[subs[0]]].copy(), n=len(subs),
                M=np.einsum("nap,nbq->abpq", Xg, Xg, optimize=True),
                Xy=np.einsum("nap,nb->abp", Xg, yg, optimize=True),
                yy=np.einsum("na,nb->ab", yg, yg, optimize=True),
            ))
        return cls(patterns=patterns, n_obs=n_obs, n_subjects=len(starts), p=p)


@dataclass
class Evaluation:
    """The likelihood and what its derivatives need, at one theta."""

    loglik: float
    beta: np.ndarray
    A: np.ndarray  # X' V^-1 X
    Ainv: np.ndarray
    W: list[np.ndarray]  # Sigma_S^-1 per pattern
    G: np.ndarray  # d l / d Sigma (T x T)


class MMRMEngine:
    """Likelihood, gradient, fit and the derivative matrices of one MMRM."""

    def __init__(self, data: MMRMData, cov: CovarianceStructure, *, reml: bool):
        self.data = data
        self.cov = cov
        self.reml = reml

    # ------------------------------------------------------------------ likelihood
    def evaluate(self, theta: np.ndarray) -> Evaluation:
        """log-likelihood (REML or ML), beta(theta) and d l / d Sigma at ``theta``;
        raises LinAlgError when Sigma(theta) or A is not positive definite."""
        Sigma = self.cov.sigma(theta)
        T, p = self.cov.n_visits, self.data.p
        A = np.zeros((p, p))
        b = np.zeros(p)
        logdet = 0.0
        Ws = []
        for pat in self.data.patterns:
            S = Sigma[np.ix_(pat.visits, pat.visits)]
            Lc = np.linalg.cholesky(S)
            Linv = np.linalg.inv(Lc)
            W = Linv.T @ Linv
            Ws.append(W)
            logdet += pat.n * 2.0 * np.sum(np.log(np.diag(Lc)))
            # matrix products on flattened sufficient statistics (einsum's overhead dominates small fits)
            A += (W.ravel() @ pat.M.reshape(-1, p * p)).reshape(p, p)
            b += W.ravel() @ pat.Xy.reshape(-1, p)
        LA = np.linalg.cholesky(0.5 * (A + A.T))
        Ainv = np.linalg.inv(LA)
        Ainv = Ainv.T @ Ainv
        beta = Ainv @ b
        G = np.zeros((T, T))
        quad = 0.0
        for pat, W in zip(self.data.patterns, Ws):
            s_ = len(pat.visits)
            Mf = pat.M.reshape(s_ * s_, p * p)
            Xyb = pat.Xy @ beta
            bMb = (Mf @ np.outer(beta, beta).ravel()).reshape(s_, s_)
            Sres = pat.yy - Xyb - Xyb.T + bMb
            quad += float(np.sum(W * Sres))
            inner = pat.n * W - W @ Sres @ W
            if self.reml:
                C = (Mf @ Ainv.T.ravel()).reshape(s_, s_)
                inner = inner - W @ C @ W
            G[np.ix_(pat.visits, pat.visits)] += -0.5 * inner
        n = self.data.n_obs
        if self.reml:
            ll = -0.5 * ((n - p) * _LOG2PI + logdet + 2.0 * np.sum(np.log(np.diag(LA))) + quad)
        else:
            ll = -0.5 * (n * _LOG2PI + logdet + quad)
        return Evaluation(loglik=float(ll), beta=beta, A=A, Ainv=Ainv, W=Ws, G=G)

    def grad_theta(self, theta: np.ndarray) -> np.ndarray:
        """d l / d theta (analytic)."""
        ev = self.evaluate(theta)
        return np.einsum("ab,kab->k", ev.G, self.cov.dsigma(theta))

    def hessian_theta(self, theta: np.ndarray) -> np.ndarray:
        """d2 l / d theta2 by central differences of the analytic gradient."""
        theta = np.asarray(theta, dtype=float)
        k = theta.size
        H = np.empty((k, k))
        for j in range(k):
            h = 1e-5 * max(1.0, abs(theta[j]))
            tp, tm = theta.copy(), theta.copy()
            tp[j] += h
            tm[j] -= h
            H[:, j] = (self.grad_theta(tp) - self.grad_theta(tm)) / (2.0 * h)
        return 0.5 * (H + H.T)

    # ------------------------------------------------------------------ fit
    def _objective(self, phi: np.ndarray):
        theta = self.cov.theta_of(phi)
        try:
            ev = self.evaluate(theta)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(phi)
        g_theta = np.einsum("ab,kab->k", ev.G, self.cov.dsigma(theta))
        g_phi = self.cov.dtheta_dphi(phi).T @ g_theta
        return -ev.loglik, -g_phi

    def fit(self, phi0: np.ndarray, *, max_iter: int, tol: float) -> tuple[np.ndarray, bool, int, str]:
        """Maximise the likelihood from ``phi0``: BFGS with the analytic gradient, then
        Newton steps on the numerical Hessian of the gradient in phi until the gradient's
        largest entry is below ``tol``. Returns (phi, converged, iterations, message)."""
        res = optimize.minimize(self._objective, phi0, jac=True, method="BFGS",
                                options={"gtol": tol, "maxiter": max_iter})
        phi = res.x
        f, g = self._objective(phi)
        it = int(res.nit)
        for _ in range(min(20, max(0, max_iter - it))):  # Newton polish: BFGS stops early on flat surfaces
            if np.max(np.abs(g)) < 1e-10 * max(1.0, abs(f)):
                break
            H = self._hessian_phi(phi)
            try:
                step = np.linalg.solve(H, g)
            except np.linalg.LinAlgError:
                break
            t = 1.0
            while t > 1e-4:
                cand = phi - t * step
                fc, gc = self._objective(cand)
                if fc <= f + 1e-12 * abs(f):
                    break
                t /= 2.0
            else:
                break
            phi, f, g = cand, fc, gc
            it += 1
        converged = bool(np.isfinite(f) and np.max(np.abs(g)) < tol)
        return phi, converged, it, str(res.message)

    def _hessian_phi(self, phi: np.ndarray) -> np.ndarray:
        k = phi.size
        H = np.empty((k, k))
        for j in range(k):
            h = 1e-5 * max(1.0, abs(phi[j]))
            pp, pm = phi.copy(), phi.copy()
            pp[j] += h
            pm[j] -= h
            H[:, j] = (self._objective(pp)[1] - self._objective(pm)[1]) / (2.0 * h)
        return 0.5 * (H + H.T)

    # ------------------------------------------------------------------ df matrices
    def p_matrices(self, theta: np.ndarray, ev: Evaluation) -> np.ndarray:
        """P_k = X' V^-1 (d V / d theta_k) V^-1 X (``k x p x p``); d A / d theta_k = -P_k."""
        dS = self.cov.dsigma(theta)
        k, p = dS.shape[0], self.data.p
        P = np.zeros((k, p, p))
        for pat, W in zip(self.data.patterns, ev.W):
            ix = np.ix_(pat.visits, pat.visits)
            WdW = np.stack([W @ dS[j][ix] @ W for j in range(k)])
            P += (WdW.reshape(k, -1) @ pat.M.reshape(-1, p * p)).reshape(k, p, p)
        return P

    def kr_matrices(self, theta: np.ndarray, ev: Evaluation):
        """P_k, Q_kl = X'V^-1 V_k V^-1 V_l V^-1 X, R_kl = X'V^-1 V_kl V^-1 X and the traces
        tr(V^-1 V_k V^-1 V_l) of Kenward and Roger (1997)."""
        dS = self.cov.dsigma(theta)
        d2S = self.cov.d2sigma(theta)
        k, p = dS.shape[0], self.data.p
        P = np.zeros((k, p, p))
        Q = np.zeros((k, k, p, p))
        R = np.zeros((k, k, p, p))
        trVV = np.zeros((k, k))
        nonlinear = bool(np.any(d2S))
        for pat, W in zip(self.data.patterns, ev.W):
            ix = np.ix_(pat.visits, pat.visits)
            Wd = np.stack([W @ dS[j][ix] for j in range(k)])  # W V_k
            WdW = Wd @ W
            Mf = pat.M.reshape(-1, p * p)
            P += (WdW.reshape(k, -1) @ Mf).reshape(k, p, p)
            WdWdW = np.einsum("kab,lbc->klac", Wd, WdW, optimize=True)
            Q += (WdWdW.reshape(k * k, -1) @ Mf).reshape(k, k, p, p)
            trVV += pat.n * np.einsum("kab,lba->kl", Wd, Wd, optimize=True)
            if nonlinear:
                sub = d2S[:, :, ix[0], ix[1]]
                WddW = np.einsum("ab,klbc,cd->klad", W, sub, W, optimize=True)
                R += (WddW.reshape(k * k, -1) @ Mf).reshape(k, k, p, p)
        return P, Q, R, trVV
