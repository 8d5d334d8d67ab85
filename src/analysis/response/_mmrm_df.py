"""Degrees of freedom of Wald tests of linear combinations L beta in the MMRM.

* ``residual``: N - p for every test (emmeans' ``mode = "df.error"`` for ``gls``).
* ``asymptotic``: infinite (z tests and normal intervals).
* ``satterthwaite``: for one contrast l, v(theta) = l' Phi(theta) l with Phi = (X'V^-1X)^-1
  and df = 2 v^2 / (g' W g), g = d v / d theta = (l' Phi P_k Phi l)_k, W the inverse of the
  observed information (minus the Hessian of the fitted log-likelihood, REML or ML) at the
  estimate (SAS PROC MIXED ``DDFM=SATTERTHWAITE``, lmerTest, emmeans' ``mode =
  "satterthwaite"`` for gls). A q-row F test decomposes L Phi L' into eigen-contrasts, each
  with its own df nu_m, and takes 2E/(E - q), E = sum nu_m / (nu_m - 2) (lmerTest's and
  SAS's rule; 2 when any nu_m <= 2).
* ``kenward-roger`` (Kenward and Roger 1997, SAS ``DDFM=KR``): the bias-corrected covariance
  Phi_A = Phi + 2 Phi [sum_kl W_kl (Q_kl - P_k Phi P_l - R_kl / 4)] Phi and the df and scale of
  the F statistic from A1, A2 (see :func:`kr_df`). ``W`` is the inverse observed information
  of the REML log-likelihood (SAS's default, named ``"kenward-roger"``) or the inverse
  expected information, 2 [tr(P V_k P V_l)]^-1 with P the REML projection (pbkrtest's
  ``vcovAdj``, named ``"kenward-roger-expected"``). R_kl (second derivatives of Sigma) is zero
  for the linear structures us, cs and toep; pbkrtest, which fits only linear variance
  components, never has it.

The derivative matrices P_k, Q_kl, R_kl are the engine's (``_mmrm_fit``), in the
parameterisation of ``_mmrm_covariance`` (SAS's), which Kenward-Roger depends on for the
nonlinear structures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DF_METHODS", "DFMethod", "f_test", "kr_adjusted_cov", "kr_df", "satterthwaite_df"]

#: the df= choices of mmrm()
DF_METHODS = ("satterthwaite", "kenward-roger", "kenward-roger-expected", "residual", "asymptotic")


def satterthwaite_df(L: np.ndarray, Phi: np.ndarray, P: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Satterthwaite df of each row of ``L`` (``m x p``)."""
    L = np.atleast_2d(L)
    LPhi = L @ Phi
    v = np.einsum("ip,ip->i", LPhi, L)
    g = np.einsum("ip,kpq,iq->ik", LPhi, P, LPhi, optimize=True)
    denom = np.einsum("ik,kl,il->i", g, W, g)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2.0 * v ** 2 / denom, np.inf)


def _combine_satterthwaite(nu: np.ndarray) -> float:
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(nu - nu[0]) < 1e-8):
        return float(nu[0])
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)


def kr_adjusted_cov(Phi: np.ndarray, P: np.ndarray, Q: np.ndarray, R: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Kenward-Roger's Phi_A (see the module docstring)."""
    PPhiP = np.einsum("kpq,qr,lrs->klps", P, Phi, P, optimize=True)
    U = np.einsum("kl,klps->ps", W, Q - PPhiP - 0.25 * R, optimize=True)
    out = Phi + 2.0 * Phi @ U @ Phi
    return 0.5 * (out + out.T)


def kr_df(L: np.ndarray, Phi: np.ndarray, P: np.ndarray, W: np.ndarray) -> tuple[float, float]:
    """(denominator df m, F scale lambda) of the Kenward-Roger test of the rows of ``L``
    jointly (q = rank of L), as pbkrtest's ``Lb_ddf`` and ``KRmodcomp``."""
    L = np.atleast_2d(L)
    q = L.shape[0]
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    U = np.einsum("pq,qr,krs,st->kpt", Theta, Phi, P, Phi, optimize=True)  # Theta Phi P_k Phi
    tr = np.einsum("kpp->k", U)
    A1 = float(tr @ W @ tr)
    A2 = float(np.einsum("kl,kpq,lqp->", W, U, U, optimize=True))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1.0) * A1 - (q + 4.0) * A2) / ((q + 2.0) * A2) if A2 != 0 else 0.0
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2.0 - g) / den
    E_star = 1.0 / (1.0 - A2 / q)
    V_star = (2.0 / q) * (1.0 + c1 * B) / ((1.0 - c2 * B) ** 2 * (1.0 - c3 * B))
    rho = V_star / (2.0 * E_star ** 2)
    m = 4.0 + (q + 2.0) / (q * rho - 1.0)
    lam = m / (E_star * (m - 2.0))
    return float(m), float(lam)


@dataclass(frozen=True)
class DFMethod:
    """Everything a df rule needs at the estimate; ``df(L)`` gives one df per row of L and
    ``cov`` is the covariance of beta the tests use (Phi_A for Kenward-Roger)."""

    name: str
    Phi: np.ndarray
    cov: np.ndarray
    P: np.ndarray | None = None
    W: np.ndarray | None = None
    residual_df: float = np.inf

    def df(self, L: np.ndarray) -> np.ndarray:
        L = np.atleast_2d(np.asarray(L, dtype=float))
        if self.name == "asymptotic":
            return np.full(L.shape[0], np.inf)
        if self.name == "residual":
            return np.full(L.shape[0], float(self.residual_df))
        if self.name == "satterthwaite":
            return satterthwaite_df(L, self.Phi, self.P, self.W)
        return np.array([kr_df(row[None, :], self.Phi, self.P, self.W)[0] for row in L])


def _rank_rows(L: np.ndarray) -> np.ndarray:
    """Rows spanning the row space of L (the hypothesis), via the SVD."""
    U, s, Vt = np.linalg.svd(L, full_matrices=False)
    keep = s > 1e-8 * max(1.0, s.max(initial=0.0))
    return Vt[keep] * s[keep, None] if keep.any() else L[:0]


def f_test(L: np.ndarray, beta: np.ndarray, method: DFMethod) -> tuple[int, float, float]:
    """(numerator df q, F statistic, denominator df) of H0: L beta = 0."""
    L = _rank_rows(np.atleast_2d(np.asarray(L, dtype=float)))
    q = L.shape[0]
    if q == 0:
        raise ValueError("the hypothesis has no estimable contrast (L has rank 0)")
    if method.name == "satterthwaite":
        C = L @ method.Phi @ L.T
        d, U = np.linalg.eigh(C)
        Lr = U.T @ L
        t = Lr @ beta
        F = float(np.sum(t ** 2 / d)) / q
        nu = satterthwaite_df(Lr, method.Phi, method.P, method.W)
        return q, F, _combine_satterthwaite(nu)
    Lb = L @ beta
    F = float(Lb @ np.linalg.solve(L @ method.cov @ L.T, Lb)) / q
    if method.name in ("kenward-roger", "kenward-roger-expected"):
        m, lam = kr_df(L, method.Phi, method.P, method.W)
        return q, lam * F, m
    return q, F, float(method.residual_df if method.name == "residual" else np.inf)
